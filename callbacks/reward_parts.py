"""Log each reward part to TensorBoard as ``reward/<part>_mean`` (and ``league_reward/<part>_mean``)."""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback


class RewardPartsCallback(BaseCallback):
    """Sums every env's ``info["reward_parts"]`` over each episode; at each log, records per part the
    mean per-episode sum over the episodes finished since the previous log: ``reward/<part>_mean`` over every
    learning car, and ``league_reward/<part>_mean`` over the learning cars of league matches
    (``info["league"]``). In self-play both teams learn, so zero-sum parts (``goal``, ``ball_to_goal``) average
    to 0 there; the league cars' sums show what the policy wins against its opponents.

    :param log_interval: PPO iterations between two logger dumps (the same value given to ``learn``).
    """

    def __init__(self, log_interval: int = 1):
        super().__init__()
        self.log_interval = log_interval
        self._names: list[str] = []
        self._running: np.ndarray = np.zeros((0, 0))  # [n_envs, n_parts] sums of the current episodes
        self._finished: list[tuple[bool, np.ndarray]] = []  # per finished episode: (league, [n_parts])
        self._rollouts = 0

    def _on_step(self) -> bool:
        infos = self.locals["infos"]
        dones = self.locals["dones"]
        if not self._names:
            self._names = list(infos[0]["reward_parts"])
            self._running = np.zeros((len(infos), len(self._names)))
        for i, info in enumerate(infos):
            parts = info["reward_parts"]
            self._running[i] += [parts[name] for name in self._names]
            if dones[i]:
                # Read per episode: a curriculum stage change moves which slots play league matches.
                self._finished.append((bool(info.get("league")), self._running[i].copy()))
                self._running[i] = 0.0
        return True

    def _on_rollout_end(self) -> None:
        self._rollouts += 1
        if self._rollouts % self.log_interval != 0 or not self._finished:
            return
        groups = {"reward": [sums for _, sums in self._finished],
                  "league_reward": [sums for league, sums in self._finished if league]}
        for prefix, episodes in groups.items():
            if episodes:
                for name, value in zip(self._names, np.mean(episodes, axis=0)):
                    self.logger.record(f"{prefix}/{name}_mean", float(value))
        self.logger.record("reward/episodes", len(self._finished))
        self._finished.clear()
