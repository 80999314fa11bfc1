"""An example bot project: its own rlgym v2 reward, start state and observation, trained without editing the
trainer (``examples/config.yaml`` names them by import path). Copy this folder next to your own config."""
