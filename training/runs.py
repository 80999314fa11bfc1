"""One folder per run: naming runs, finding the pair to resume, listing runs, checking output folders.

A run named ``PPO_3`` writes everything under ``<checkpoint root>/PPO_3/`` (pairs, best model, final and
interrupted saves, ``config.yaml``, ``evaluations.npz``) and its TensorBoard events under
``<log root>/PPO_3/``. New runs are numbered like SB3 numbers TensorBoard runs (``PPO_<max + 1>``), looking
at both roots so the two never disagree.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
from stable_baselines3.common.utils import get_latest_run_id

from config.load import to_yaml
from config.parts import with_paths
from config.schema import Config
from training.model_files import BadModelFile, PairInfo, inspect_pair, read_num_timesteps
from training.saving import CHECKPOINT_RE, atomic_write_text, named_paths, normalizer_path_for

RUN_PREFIX = "PPO"
RUN_CONFIG_NAME = "config.yaml"
EVALUATIONS_NAME = "evaluations.npz"
#: Named saves a run may hold besides its ``checkpoint_N`` pairs (``best`` is not resumed from: it is older).
RESUMABLE_TAGS = ("interrupted", "final")
#: Pairs saved on SIGUSR1 (never pruned).
SNAPSHOT_RE = re.compile(r"^model_snapshot_\d+\.zip$")
_RUN_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class RunError(ValueError):
    """A run name, a resume target or an output folder cannot be used; the message says what to do."""


@dataclass(frozen=True)
class Run:
    """Where one run writes: ``checkpoint_dir`` (models, config, evaluations) and ``log_dir`` (TensorBoard)."""

    name: str
    checkpoint_dir: Path
    log_dir: Path

    @property
    def config_path(self) -> Path:
        return self.checkpoint_dir / RUN_CONFIG_NAME


def next_run_name(checkpoint_root: Path, log_root: Path) -> str:
    """``PPO_<n + 1>``, n the highest number used by a run folder in either root (SB3's ``get_latest_run_id``, which
    names SB3's own TensorBoard runs the same way; 0 if none)."""
    latest = max(get_latest_run_id(str(root), RUN_PREFIX) for root in (checkpoint_root, log_root))
    return f"{RUN_PREFIX}_{latest + 1}"


def resumable_pairs(folder: Path) -> list[Path]:
    """Model files of ``folder`` that have their normalizer beside them (checkpoints, SIGUSR1 snapshots,
    interrupted, final), newest first by modification time."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if CHECKPOINT_RE.match(p.name) or SNAPSHOT_RE.match(p.name)]
    found += [named_paths(folder, tag)[0] for tag in RESUMABLE_TAGS]
    found = [p for p in found if p.is_file() and normalizer_path_for(p).is_file()]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def run_folders(checkpoint_root: Path) -> list[Path]:
    """Run folders under ``checkpoint_root`` that hold at least one pair, the most recently saved first."""
    if not checkpoint_root.is_dir():
        return []
    runs = [(pairs[0].stat().st_mtime, p) for p in checkpoint_root.iterdir()
            if p.is_dir() and (pairs := resumable_pairs(p))]
    return [p for _, p in sorted(runs, key=lambda item: item[0], reverse=True)]


def newest_readable_pair(candidates: Iterable[Path]) -> Optional[PairInfo]:
    """The first pair of ``candidates`` that :func:`inspect_pair` accepts; each unreadable one is skipped
    with a warning naming it and why."""
    for model_path in candidates:
        try:
            return inspect_pair(model_path)
        except (BadModelFile, FileNotFoundError) as exc:
            print(f"warning: skipping an unreadable pair: {exc}", file=sys.stderr, flush=True)
    return None


def find_resume_pair(spec: str, checkpoint_root: Path) -> PairInfo:
    """The pair ``--resume spec`` means, checked readable.

    ``latest``: the newest readable pair of the most recent run. A model ``.zip``: that pair. A folder: its
    newest readable pair. A run name: the newest readable pair of ``<checkpoint_root>/<name>``.

    :raises RunError: nothing matches, or no readable pair is there.
    :raises BadModelFile: an explicitly named model file (or its normalizer) is unreadable.
    """
    if spec == "latest":
        folders = run_folders(checkpoint_root)
        candidates = [pair for folder in folders for pair in resumable_pairs(folder)]
        where = f"any run folder of '{checkpoint_root}'"
    else:
        path = Path(spec)
        if path.is_file() or path.suffix == ".zip":
            return inspect_pair(path)
        folder = path if path.is_dir() else checkpoint_root / spec
        if not folder.is_dir():
            known = ", ".join(p.name for p in run_folders(checkpoint_root)) or "none"
            raise RunError(f"--resume '{spec}': no such model file, folder, or run in '{checkpoint_root}' (runs "
                           f"there: {known}); give 'latest', a run name, a run folder or a model .zip.")
        candidates, where = resumable_pairs(folder), f"'{folder}'"
    pair = newest_readable_pair(candidates)
    if pair is None:
        raise RunError(f"--resume {spec}: no readable checkpoint pair (checkpoint_N.zip + vecnormalize_N.pkl, or "
                       f"model_interrupted/model_final with their .pkl) in {where}; pass --checkpoint-dir DIR or "
                       "--resume PATH/TO/checkpoint_N.zip.")
    return pair


def new_run(checkpoint_root: Path, log_root: Path, name: Optional[str]) -> Run:
    """A fresh run: ``name``, or the next ``PPO_N``.

    :raises RunError: the name is not a plain folder name, or a run of that name already has files.
    """
    name = name or next_run_name(checkpoint_root, log_root)
    if not _RUN_NAME_RE.match(name) or name == "latest":
        raise RunError(f"--run-name '{name}': use letters, digits, '.', '_' and '-' only (it names a folder), "
                       "and not 'latest'.")
    run = Run(name, checkpoint_root / name, log_root / name)
    for folder in (run.checkpoint_dir, run.log_dir):
        if folder.is_dir() and any(folder.iterdir()):
            raise RunError(f"run '{name}' already exists ('{folder}' is not empty); continue it with "
                           f"--resume {name}, or start a new one with another --run-name (or none).")
    return run


def run_of_pair(pair: PairInfo, checkpoint_root: Path, log_root: Path) -> Run:
    """The run a resumed pair continues: the folder holding it. A pair saved directly in the checkpoint
    root (the layout before run folders) continues in a new run folder, so it never mixes with other runs."""
    folder = pair.model_path.parent
    if folder.resolve() == checkpoint_root.resolve():
        return new_run(checkpoint_root, log_root, None)
    return Run(folder.name, folder, log_root / folder.name)


def write_run_config(run: Run, cfg: Config) -> None:
    """Save the resolved config (defaults + file + ``--set``, custom parts with the folder they import from) as the
    run's ``config.yaml``, atomically."""
    run.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    header = (f"# Resolved config of run '{run.name}', written {time.strftime('%Y-%m-%d %H:%M:%S')}.\n"
              "# train_sb3.py --resume and evaluate.py use it for this run's models unless --config is given.\n")
    atomic_write_text(run.config_path, header + to_yaml(with_paths(cfg)))


def check_output_folders(folders: dict[str, Path], min_free_mb: int) -> None:
    """Before any worker starts: every folder (keyed by its command-line flag) can be created and written,
    and its disk has room. All are checked before any is created.

    :raises RunError: a file stands in a path, a folder is not writable, or less than ``min_free_mb`` MB
        are free.
    """
    for flag, folder in folders.items():
        existing = folder
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            raise RunError(f"{flag}: '{existing}' is a file, not a folder; pass a folder path ({flag} DIR), or move "
                           "the file away.")
        free_mb = shutil.disk_usage(existing).free / 2**20
        if free_mb < min_free_mb:
            raise RunError(f"{flag}: only {free_mb:,.0f} MB free on the disk of '{existing}' "
                           f"(checkpoints.min_free_mb is {min_free_mb:,}); free some space, or pass a folder on "
                           "another disk.")
    for flag, folder in folders.items():
        probe = folder / f".write_test.{os.getpid()}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"ok")
        except OSError as exc:
            raise RunError(f"{flag}: cannot write to '{folder}' ({exc.strerror or exc}); pass a folder you can "
                           "write to.") from None
        finally:
            probe.unlink(missing_ok=True)


@dataclass(frozen=True)
class RunSummary:
    """One line of ``--list-runs``. ``best_eval`` = (mean reward, step) of the best evaluation, if any."""

    name: str
    steps: Optional[int]
    saved: float
    state: str
    best_eval: Optional[tuple[float, int]]


def best_evaluation(folder: Path) -> Optional[tuple[float, int]]:
    """(best mean evaluation reward, its step) from the run's ``evaluations.npz``, or None."""
    path = folder / EVALUATIONS_NAME
    try:
        with np.load(path) as data:
            means, steps = data["results"].mean(axis=1), data["timesteps"]
    except Exception:  # missing, truncated (BadZipFile) or foreign file: no best evaluation to show
        return None
    if len(means) == 0:
        return None
    best = int(np.argmax(means))
    return float(means[best]), int(steps[best])


def summarize_runs(checkpoint_root: Path) -> list[RunSummary]:
    """Every run folder with pairs, most recent first."""
    summaries = []
    for folder in run_folders(checkpoint_root):
        newest = resumable_pairs(folder)[0]
        state = {"model_final.zip": "finished", "model_interrupted.zip": "interrupted"}.get(newest.name, "in progress")
        summaries.append(RunSummary(folder.name, read_num_timesteps(newest), newest.stat().st_mtime, state,
                                    best_evaluation(folder)))
    return summaries


def format_runs(checkpoint_root: Path) -> str:
    """``--list-runs`` as a table: run, steps of its newest pair, when saved, state, best evaluation."""
    summaries = summarize_runs(checkpoint_root)
    if not summaries:
        return f"No runs in '{checkpoint_root}' yet (start one with: python train_sb3.py)."
    rows = [("run", "steps", "last save", "state", "best eval reward (at step)")]
    for s in summaries:
        best = f"{s.best_eval[0]:.2f} ({s.best_eval[1]:,})" if s.best_eval else "-"
        steps = f"{s.steps:,}" if s.steps is not None else "unreadable"
        rows.append((s.name, steps, time.strftime("%Y-%m-%d %H:%M", time.localtime(s.saved)), s.state, best))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines + ["", f"Resume one with: python train_sb3.py --resume RUN (or latest); runs are in "
                                  f"'{checkpoint_root}'."])
