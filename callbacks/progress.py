"""Terminal progress bar: steps done / total, steps/s, ETA, episodes, last and 100-episode mean reward."""

from __future__ import annotations

import sys

import numpy as np
from stable_baselines3.common.callbacks import ProgressBarCallback
from tqdm import tqdm


class TrainingProgressBar(ProgressBarCallback):
    """SB3's ``ProgressBarCallback`` counting the whole run (a resumed run starts where it stopped) and
    showing episode statistics from the ``VecMonitor`` episode buffer (raw, un-normalized rewards).

    Uses plain ``tqdm`` (SB3 uses ``tqdm.rich``, which floods logs when the output is not a terminal).
    """

    def __init__(self, refresh_every: int = 50):
        super().__init__()
        self.refresh_every = refresh_every
        self.episodes = 0

    def _on_training_start(self) -> None:
        self.pbar = tqdm(
            total=self.locals["total_timesteps"],
            initial=self.model.num_timesteps,
            desc="Training",
            unit="step",
            unit_scale=True,
            dynamic_ncols=True,
            mininterval=0.5 if sys.stderr.isatty() else 10.0,
            smoothing=0.05,
        )

    def _on_step(self) -> bool:
        self.pbar.update(self.training_env.num_envs)
        self.episodes += int(np.sum(self.locals["dones"]))
        if self.n_calls % self.refresh_every == 0 and self.model.ep_info_buffer:
            rewards = [info["r"] for info in self.model.ep_info_buffer]
            self.pbar.set_postfix_str(
                f"ep={self.episodes} r={rewards[-1]:.2f} avg100={np.mean(rewards):.2f}", refresh=False
            )
        return True
