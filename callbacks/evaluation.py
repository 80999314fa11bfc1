"""Periodic deterministic evaluation; a new best saves ``best_model.zip`` + ``best_vecnormalize.pkl``."""

from __future__ import annotations

from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.vec_env import VecEnv

from training.saving import named_paths, save_pair


class SaveBestPairCallback(BaseCallback):
    """Run by ``EvalCallback`` on a new best mean reward: saves the model and the training normalizer
    together (SB3's ``EvalCallback`` saves only the model, which is useless without its statistics)."""

    def __init__(self, save_dir: str, verbose: int = 0):
        super().__init__(verbose)
        self.save_dir = save_dir

    def _on_step(self) -> bool:
        model_path, norm_path = named_paths(self.save_dir, "best")
        save_pair(self.model, self.model.get_vec_normalize_env(), model_path, norm_path)
        if self.verbose >= 1:
            print(f"New best mean reward {self.parent.best_mean_reward:.2f}: saved {model_path}")
        return True


def make_eval_callback(eval_env: VecEnv, save_dir: str, eval_freq_steps: int, n_envs: int,
                       n_eval_episodes: int, log_dir: str | None) -> EvalCallback:
    """SB3 ``EvalCallback`` on ``eval_env`` (a ``VecNormalize`` with ``training=False``, ``norm_reward=False``:
    ``EvalCallback`` copies the training statistics into it before each evaluation).

    :param eval_freq_steps: environment steps (all envs together) between evaluations.
    """
    return EvalCallback(
        eval_env,
        callback_on_new_best=SaveBestPairCallback(save_dir),
        n_eval_episodes=n_eval_episodes,
        eval_freq=max(eval_freq_steps // n_envs, 1),
        log_path=log_dir,
        best_model_save_path=None,
        deterministic=True,
        verbose=0,
    )
