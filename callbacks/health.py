"""Say when a run goes wrong: PPO metrics outside their healthy range, and NaN/inf that would ruin the model."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Optional

from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from tqdm import tqdm

from config.schema import HealthConfig
from training.saving import DivergedError, nonfinite_parts

#: Losses SB3's PPO records after each update; a NaN or infinity in any of them means the update diverged.
LOSS_TAGS = ("train/loss", "train/policy_gradient_loss", "train/value_loss", "train/entropy_loss", "train/grad_norm")


@dataclass(frozen=True)
class Limit:
    """An upper limit on one logged metric and what to do when it is exceeded (the README's advice)."""

    tag: str
    high: float
    fix: str


def health_limits(health_cfg: HealthConfig) -> list[Limit]:
    """The limits of the config's ``health`` section."""
    return [
        Limit("train/approx_kl", health_cfg.approx_kl_max,
              "the policy moves too fast: lower training.learning_rate (e.g. --set training.learning_rate=0.0001) "
              "or training.n_epochs"),
        Limit("train/clip_fraction", health_cfg.clip_fraction_max,
              "the policy moves too fast: lower training.learning_rate (e.g. --set training.learning_rate=0.0001)"),
        Limit("train/grad_norm", health_cfg.grad_norm_max,
              "gradients explode: lower training.learning_rate"),
    ]


def update_number(model: PPO) -> int:
    """PPO updates finished so far in the whole run (SB3 counts gradient epochs in ``_n_updates``)."""
    return model._n_updates // max(model.n_epochs, 1)


class TrainingHealthCallback(BaseCallback):
    """After every PPO update (at the next rollout's start, before any step could save a checkpoint):

    * NaN or infinity in a loss, the gradient norm or the weights: raise :class:`DivergedError` naming the
      update, so the run stops with its last good pair still the newest file on disk.
    * A metric above its :class:`Limit` for ``patience`` updates in a row: one warning on the console and as
      TensorBoard text (``health/warning``), repeated only after the metric came back into range.

    Must run after ``GradNormCallback``, which records ``train/grad_norm`` at the same moment.
    """

    model: PPO  # update_number reads PPO's n_epochs

    def __init__(self, limits: list[Limit], patience: int):
        super().__init__()
        self.limits = limits
        self.patience = patience
        self.streaks = {limit.tag: 0 for limit in limits}
        self.warnings_given: list[str] = []

    def _on_rollout_start(self) -> None:
        values = self.logger.name_to_value
        if not any(tag in values for tag in LOSS_TAGS):
            return  # no update since the last check (first rollout of a session)
        update, step = update_number(self.model), self.model.num_timesteps
        bad = [tag for tag in LOSS_TAGS if tag in values and not math.isfinite(values[tag])]
        bad += nonfinite_parts(self.model, self.model.get_vec_normalize_env())
        if bad:
            raise DivergedError(f"NaN or infinity in {', '.join(bad[:4])} after PPO update #{update} (step {step:,})")
        for limit in self.limits:
            value: Optional[float] = values.get(limit.tag)
            if value is None:
                continue
            self.streaks[limit.tag] = self.streaks[limit.tag] + 1 if value > limit.high else 0
            if self.streaks[limit.tag] == self.patience:
                text = (f"{limit.tag.split('/')[1]} has been above {limit.high:g} for {self.patience} updates in a "
                        f"row (now {value:.3g}, update #{update}, step {step:,}): {limit.fix}.")
                self.warnings_given.append(text)
                tqdm.write(f"Warning: {text}", file=sys.stderr)
                self.logger.record("health/warning", text, exclude=("stdout", "log", "json", "csv"))

    def _on_step(self) -> bool:
        return True
