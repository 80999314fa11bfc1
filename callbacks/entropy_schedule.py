"""Entropy-coefficient schedule for PPO (SB3 2.9 PPO only takes a float ``ent_coef``)."""

from __future__ import annotations

from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.type_aliases import Schedule


class EntropyScheduleCallback(BaseCallback):
    """Before every rollout, sets ``model.ent_coef = schedule(progress_remaining)`` and logs
    ``train/entropy_coef``.

    ``progress_remaining = 1 - num_timesteps / total_timesteps`` of the whole run, computed from the
    step count, so a resumed run continues the schedule where it stopped.

    :param schedule: picklable callable of progress_remaining (1 at the start, 0 at the end),
        e.g. ``stable_baselines3.common.utils.LinearSchedule(0.01, 0.001, 1.0)``.
    """

    model: PPO  # ent_coef is PPO's

    def __init__(self, schedule: Schedule):
        super().__init__()
        self.schedule = schedule

    def progress_remaining(self) -> float:
        total = self.model._total_timesteps
        return max(0.0, 1.0 - self.model.num_timesteps / total) if total else 1.0

    def _apply(self) -> None:
        self.model.ent_coef = float(self.schedule(self.progress_remaining()))
        self.logger.record("train/entropy_coef", self.model.ent_coef)

    def _on_training_start(self) -> None:
        self._apply()

    def _on_rollout_start(self) -> None:
        self._apply()

    def _on_step(self) -> bool:
        return True
