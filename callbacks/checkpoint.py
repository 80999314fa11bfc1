"""Periodic checkpoints: ``checkpoint_<steps>.zip`` + ``vecnormalize_<steps>.pkl``, keeping the last K,
plus snapshots on request (SIGUSR1): ``model_snapshot_<steps>.zip`` + ``vecnormalize_snapshot_<steps>.pkl``, kept."""

from __future__ import annotations

import sys
from pathlib import Path

from stable_baselines3.common.callbacks import CheckpointCallback
from tqdm import tqdm

from training.saving import checkpoint_paths, list_checkpoints, named_paths, normalizer_path_for, save_pair


def save_or_warn(model, model_path: Path, norm_path: Path, what: str) -> bool:
    """``save_pair``; an ``OSError`` (disk full, folder removed) becomes a warning and training goes on: the
    previous files are intact (atomic saves) and the next save tries again. Returns whether it saved.

    :raises training.saving.DivergedError: the model holds NaN/inf (stopping the run is the caller's job).
    """
    try:
        save_pair(model, model.get_vec_normalize_env(), model_path, norm_path)
        return True
    except OSError as exc:
        tqdm.write(f"Warning: could not save {what} '{model_path}' ({exc.strerror or exc}); the files saved before "
                   "are intact and training goes on (the next save tries again). Free some disk space.",
                   file=sys.stderr)
        return False


class PairCheckpointCallback(CheckpointCallback):
    """``CheckpointCallback(save_vecnormalize=True)`` with this project's file names, atomic writes,
    pruning of old pairs, and saves on request.

    SB3 names files ``<prefix>_<steps>_steps.zip`` / ``<prefix>_vecnormalize_<steps>_steps.pkl`` and writes
    them in place; users expect ``checkpoint_<steps>.zip`` / ``vecnormalize_<steps>.pkl``, and a crash
    or a full disk mid-save must neither break a file nor stop the run.

    :param save_freq_steps: environment steps (all envs together) between two checkpoints.
    :param save_path: the run's folder.
    :param n_envs: envs stepped per ``env.step`` call.
    :param keep_last: number of newest pairs kept (0 keeps all).
    """

    def __init__(self, save_freq_steps: int, save_path: str, n_envs: int, keep_last: int, verbose: int = 0):
        super().__init__(max(save_freq_steps // n_envs, 1), save_path, save_vecnormalize=True, verbose=verbose)
        self.keep_last = keep_last
        self.save_requested = False

    def request_save(self) -> None:
        """Save a snapshot pair at the next step (safe to call from a signal handler: it only sets a flag).
        Snapshots are never pruned: the user asked for that one."""
        self.save_requested = True

    def _on_step(self) -> bool:
        if self.save_requested:
            self.save_requested = False
            model_path, norm_path = named_paths(self.save_path, f"snapshot_{self.num_timesteps}")
            if save_or_warn(self.model, model_path, norm_path, "snapshot"):
                tqdm.write(f"Saved {model_path} + {norm_path.name} (SIGUSR1)")
        if self.n_calls % self.save_freq == 0:
            model_path, norm_path = checkpoint_paths(self.save_path, self.num_timesteps)
            if save_or_warn(self.model, model_path, norm_path, "checkpoint"):
                if self.verbose >= 1:
                    tqdm.write(f"Saved {model_path} + {norm_path.name}")
                self._prune()
        return True

    def _prune(self) -> None:
        if self.keep_last <= 0:
            return
        for _, path in list_checkpoints(self.save_path)[: -self.keep_last]:
            normalizer_path_for(path).unlink(missing_ok=True)
            path.unlink(missing_ok=True)
