"""Periodic checkpoints: ``checkpoint_<steps>.zip`` + ``vecnormalize_<steps>.pkl``, keeping the last K."""

from __future__ import annotations

from stable_baselines3.common.callbacks import CheckpointCallback

from training.saving import checkpoint_paths, list_checkpoints, normalizer_path_for, save_pair


class PairCheckpointCallback(CheckpointCallback):
    """``CheckpointCallback(save_vecnormalize=True)`` with this project's file names, atomic writes,
    and pruning of old pairs.

    SB3 names files ``<prefix>_<steps>_steps.zip`` / ``<prefix>_vecnormalize_<steps>_steps.pkl`` and writes
    them in place; users expect ``checkpoint_<steps>.zip`` / ``vecnormalize_<steps>.pkl``, and a crash
    mid-save must not leave a broken file.

    :param save_freq_steps: environment steps (all envs together) between two checkpoints.
    :param n_envs: envs stepped per ``env.step`` call.
    :param keep_last: number of newest pairs kept (0 keeps all).
    """

    def __init__(self, save_freq_steps: int, save_path: str, n_envs: int, keep_last: int, verbose: int = 0):
        super().__init__(max(save_freq_steps // n_envs, 1), save_path, save_vecnormalize=True, verbose=verbose)
        self.keep_last = keep_last

    def _on_step(self) -> bool:
        if self.n_calls % self.save_freq == 0:
            model_path, norm_path = checkpoint_paths(self.save_path, self.num_timesteps)
            save_pair(self.model, self.model.get_vec_normalize_env(), model_path, norm_path)
            if self.verbose >= 1:
                print(f"Saved {model_path} + {norm_path.name}")
            self._prune()
        return True

    def _prune(self) -> None:
        if self.keep_last <= 0:
            return
        for _, path in list_checkpoints(self.save_path)[: -self.keep_last]:
            normalizer_path_for(path).unlink(missing_ok=True)
            path.unlink(missing_ok=True)
