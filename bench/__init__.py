"""Throughput benchmark: from raw RocketSim to end-to-end PPO, measured in one run.

``python -m bench.throughput`` runs five stages one after another and reports agent-steps per second
(one car's decision, held ``tick_skip`` physics ticks, is one agent-step) for each:

* ``ceiling``        raw RocketSim arenas with random controls, one process per core (:mod:`bench.ceiling`)
* ``env``            one ``RocketLeagueEnv`` in-process, random actions
* ``collect_random`` the training vec env (SubprocVecEnv + VecMonitor + VecNormalize), random actions
* ``collect_policy`` the same, actions chosen by the PPO policy (inference, no update)
* ``train``          ``PPO.learn`` end to end (collection + update), over whole iterations

(:mod:`bench.stages`), and with ``--profile`` a breakdown of one training iteration's wall time
(:mod:`bench.profile`).

This package's modules import only the standard library at top level, so that the spawned ceiling
workers (which re-import ``__main__``) start without loading torch.
"""
