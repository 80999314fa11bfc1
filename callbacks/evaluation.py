"""Periodic deterministic evaluation; a new best saves ``best_model.zip`` + ``best_vecnormalize.pkl``."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.vec_env import VecEnv

from callbacks.checkpoint import save_or_warn
from training.saving import named_paths


class SaveBestPairCallback(BaseCallback):
    """Run by ``EvalCallback`` on a new best mean reward: saves the model and the training normalizer
    together (SB3's ``EvalCallback`` saves only the model, which is useless without its statistics)."""

    parent: EvalCallback  # set by the EvalCallback that runs it

    def __init__(self, save_dir: str, verbose: int = 0):
        super().__init__(verbose)
        self.save_dir = save_dir

    def _on_step(self) -> bool:
        model_path, norm_path = named_paths(self.save_dir, "best")
        if save_or_warn(self.model, model_path, norm_path, "best model") and self.verbose >= 1:
            print(f"New best mean reward {self.parent.best_mean_reward:.2f}: saved {model_path}")
        return True


class ResumableEvalCallback(EvalCallback):
    """SB3's ``EvalCallback`` that, in a resumed run, starts from the run's ``evaluations.npz``.

    Plain ``EvalCallback`` starts every session with ``best_mean_reward = -inf`` and an empty history: after
    ``--resume``, its first evaluation would replace the run's best model even when worse, and
    ``evaluations.npz`` would lose the earlier evaluations.
    """

    def _init_callback(self) -> None:
        super()._init_callback()
        path = Path(f"{self.log_path}.npz") if self.log_path else None
        if path is None or not path.is_file():
            return
        try:
            with np.load(path) as data:
                timesteps, results, lengths = data["timesteps"], data["results"], data["ep_lengths"]
        except Exception as exc:  # np.load raises many types on a truncated or foreign file
            warnings.warn(f"'{path}' is unreadable ({type(exc).__name__}: {exc}); the evaluation history starts "
                          "anew (the next evaluation replaces the run's best model).", RuntimeWarning)
            return
        self.evaluations_timesteps = [int(t) for t in timesteps]
        self.evaluations_results = [list(r) for r in results]
        self.evaluations_length = [list(n) for n in lengths]
        if self.evaluations_results:
            self.best_mean_reward = float(max(np.mean(r) for r in self.evaluations_results))


def make_eval_callback(eval_env: VecEnv, save_dir: str, eval_freq_steps: int, n_envs: int,
                       n_eval_episodes: int) -> EvalCallback:
    """:class:`ResumableEvalCallback` on ``eval_env`` (a ``VecNormalize`` with ``training=False``,
    ``norm_reward=False``: ``EvalCallback`` copies the training statistics into it before each evaluation).
    The best pair and ``evaluations.npz`` go to ``save_dir``, the run's folder.

    :param eval_freq_steps: environment steps (all envs together) between evaluations.
    """
    return ResumableEvalCallback(
        eval_env,
        callback_on_new_best=SaveBestPairCallback(save_dir),
        n_eval_episodes=n_eval_episodes,
        eval_freq=max(eval_freq_steps // n_envs, 1),
        log_path=save_dir,
        best_model_save_path=None,
        deterministic=True,
        verbose=0,
    )
