"""Model + normalizer files: names, atomic saves that refuse a diverged model, finding a model's normalizer.

Every model file has a ``VecNormalize`` statistics file beside it, named after it:

====================  =========================
model                 normalizer
====================  =========================
checkpoint_N.zip      vecnormalize_N.pkl
best_model.zip        best_vecnormalize.pkl
model_final.zip       vecnormalize_final.pkl
model_interrupted.zip vecnormalize_interrupted.pkl
====================  =========================
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional

import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecNormalize

from training.signals import stop_signals_deferred

CHECKPOINT_RE = re.compile(r"^checkpoint_(\d+)\.zip$")


def checkpoint_paths(directory: str | Path, steps: int) -> tuple[Path, Path]:
    """``(checkpoint_<steps>.zip, vecnormalize_<steps>.pkl)`` in ``directory``."""
    directory = Path(directory)
    return directory / f"checkpoint_{steps}.zip", directory / f"vecnormalize_{steps}.pkl"


def named_paths(directory: str | Path, tag: str) -> tuple[Path, Path]:
    """Pair for a named save: ``best`` -> best_model/best_vecnormalize, else model_<tag>/vecnormalize_<tag>."""
    directory = Path(directory)
    if tag == "best":
        return directory / "best_model.zip", directory / "best_vecnormalize.pkl"
    return directory / f"model_{tag}.zip", directory / f"vecnormalize_{tag}.pkl"


def normalizer_path_for(model_path: str | Path) -> Path:
    """The ``.pkl`` that belongs to ``model_path`` (see the table in this module's docstring).

    :raises ValueError: the file name follows none of the naming rules.
    """
    model_path = Path(model_path)
    stem = model_path.name[:-4] if model_path.name.endswith(".zip") else model_path.name
    if stem.startswith("checkpoint_"):
        name = "vecnormalize_" + stem[len("checkpoint_"):]
    elif stem.startswith("model_"):
        name = "vecnormalize_" + stem[len("model_"):]
    elif stem.endswith("_model"):
        name = stem[: -len("_model")] + "_vecnormalize"
    else:
        raise ValueError(
            f"cannot tell which normalizer belongs to '{model_path.name}' (expected checkpoint_N.zip, "
            "best_model.zip or model_<tag>.zip); pass the .pkl file explicitly."
        )
    return model_path.with_name(name + ".pkl")


class DivergedError(RuntimeError):
    """Training produced NaN or infinity: such a model must never replace a good file."""


def nonfinite_parts(model: BaseAlgorithm, vec_normalize: Optional[VecNormalize] = None) -> list[str]:
    """Names of the policy parameters and normalizer statistics holding NaN or infinity (empty: all finite)."""
    bad = [name for name, param in model.policy.named_parameters() if not bool(th.isfinite(param).all())]
    if vec_normalize is not None:
        for name in ("obs_rms", "ret_rms"):
            rms = getattr(vec_normalize, name, None)
            if rms is not None and not (np.isfinite(rms.mean).all() and np.isfinite(rms.var).all()):
                bad.append(f"normalizer {name}")
    return bad


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (POSIX; Windows cannot open a folder and needs no such step)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_replace(tmp: Path, final: Path) -> None:
    """Move the finished file ``tmp`` over ``final`` so that a crash or power loss leaves either the old or the new
    file whole: ``tmp``'s data reaches the disk (fsync) before the rename, and the rename before this returns."""
    with open(tmp, "rb") as written:
        os.fsync(written.fileno())
    os.replace(tmp, final)  # atomic on POSIX and Windows when both are on the same filesystem
    _fsync_dir(Path(final).parent)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file beside it, then :func:`atomic_replace`)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        atomic_replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_pair(model: BaseAlgorithm, vec_normalize: Optional[VecNormalize], model_path: Path,
              normalizer_path: Path) -> None:
    """Save model and normalizer atomically: each is written to a temporary file, then renamed.

    A crash or a full disk at any point leaves any previous file of the same name whole (the ``OSError``
    propagates). The model is renamed last, so a model file on disk always has its normalizer beside it.
    A stop signal (Ctrl-C, SIGTERM) that arrives during the save is acted on once both files are written.

    :raises DivergedError: the weights or normalizer statistics hold NaN/inf; nothing is written.
    """
    bad = nonfinite_parts(model, vec_normalize)
    if bad:
        raise DivergedError(f"refusing to save {model_path.name}: NaN or infinity in {', '.join(bad[:4])}"
                            + (f" and {len(bad) - 4} more" if len(bad) > 4 else ""))
    model_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_model = model_path.with_name(f".{model_path.name}.{os.getpid()}.tmp")
    tmp_norm = normalizer_path.with_name(f".{normalizer_path.name}.{os.getpid()}.tmp")
    try:
        with stop_signals_deferred():
            model.save(tmp_model)
            if vec_normalize is not None:
                vec_normalize.save(str(tmp_norm))
                atomic_replace(tmp_norm, normalizer_path)
            atomic_replace(tmp_model, model_path)
    finally:
        for tmp in (tmp_model, tmp_norm):
            tmp.unlink(missing_ok=True)


def list_checkpoints(directory: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoint pairs in ``directory`` as ``(steps, model_path)``, oldest first."""
    directory = Path(directory)
    found = []
    if directory.is_dir():
        for path in directory.iterdir():
            match = CHECKPOINT_RE.match(path.name)
            if match and normalizer_path_for(path).is_file():
                found.append((int(match.group(1)), path))
    return sorted(found)
