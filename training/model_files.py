"""Read saved model + normalizer files and say clearly what is wrong with a bad one.

``PPO.load`` and ``VecNormalize.load`` fail on a truncated, empty or foreign file with a raw traceback from
``zipfile``, ``pickle`` or torch, and ``PPO.load`` silently accepts an A2C model (same policy class). The
trainer and ``evaluate.py`` read every pair through :func:`inspect_pair` first, which checks everything
that can be checked without an env and raises :class:`BadModelFile` naming the file and the fix.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.vec_env import VecNormalize

from training.saving import normalizer_path_for

#: Keys of a saved model's ``data`` that only PPO has (A2C shares its policy class but has neither).
PPO_ONLY_KEYS = ("clip_range", "n_epochs")
#: A key only one other SB3 algorithm saves, to name it in the error message.
OTHER_ALGORITHM_MARKERS = (("exploration_rate", "DQN"), ("target_policy_noise", "TD3"), ("ent_coef_optimizer", "SAC"),
                           ("tau", "an off-policy algorithm (SAC/TD3/DDPG)"), ("normalize_advantage", "A2C"))


class BadModelFile(ValueError):
    """A model or normalizer file cannot be used; the message names the file, what is wrong and the fix."""


@dataclass(frozen=True)
class PairInfo:
    """What a readable pair holds. ``obs_shape`` is the model's observation shape, e.g. ``(172,)``."""

    model_path: Path
    normalizer_path: Path
    num_timesteps: int
    obs_shape: tuple[int, ...]


def _check_exists(path: Path, what: str) -> None:
    if not path.exists():
        raise FileNotFoundError(f"{what} '{path}' not found.")
    if not path.is_file():
        raise BadModelFile(f"{what} '{path}' is a folder, not a file.")
    if path.stat().st_size == 0:
        raise BadModelFile(f"{what} '{path}' is empty (0 bytes): the save that wrote it did not finish. "
                           "Use another checkpoint of the run (python train_sb3.py --list-runs).")


def read_model_data(path: Path) -> dict:
    """The ``data`` dictionary of an SB3 zip, deserialized (spaces, schedules), without loading the weights.

    :raises BadModelFile: not a zip, truncated, not an SB3 save, or not a PPO model.
    """
    path = Path(path)
    _check_exists(path, "model")
    try:
        data, params, _ = load_from_zip_file(path, device="cpu", load_data=True)
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, ValueError, RuntimeError, pickle.UnpicklingError) as exc:
        raise BadModelFile(
            f"model '{path}' cannot be read ({type(exc).__name__}: {exc}); the file is truncated or corrupt, or "
            "not a Stable-Baselines3 save. Use another checkpoint of the run (python train_sb3.py --list-runs)."
        ) from None
    if data is None or "policy" not in (params or {}):
        raise BadModelFile(f"model '{path}' is a zip but not a Stable-Baselines3 model (no data or no policy "
                           "weights inside).")
    policy_class = data.get("policy_class")
    is_ppo = all(key in data for key in PPO_ONLY_KEYS) and isinstance(policy_class, type) and issubclass(
        policy_class, ActorCriticPolicy)
    if not is_ppo:
        guess = next((name for key, name in OTHER_ALGORITHM_MARKERS if key in data), "another algorithm")
        raise BadModelFile(f"model '{path}' was saved by {guess}, not PPO; this trainer trains and plays PPO models "
                           "(train one with python train_sb3.py).")
    return data


def read_num_timesteps(path: Path) -> Optional[int]:
    """Steps a saved model was trained for, read from the zip's JSON alone (fast); None if unreadable."""
    try:
        with zipfile.ZipFile(path) as archive:
            return int(json.loads(archive.read("data"))["num_timesteps"])
    except (OSError, zipfile.BadZipFile, KeyError, ValueError, TypeError):
        return None


def read_normalizer(path: Path) -> VecNormalize:
    """Unpickle a ``VecNormalize`` saved by ``VecNormalize.save`` (no venv attached yet).

    :raises FileNotFoundError: no such file. :raises BadModelFile: empty, corrupt, or not a VecNormalize.
    """
    path = Path(path)
    _check_exists(path, "normalizer")
    try:
        with path.open("rb") as file:
            vec_norm = pickle.load(file)
    except Exception as exc:  # pickle raises many types on garbage: UnpicklingError, EOFError, ValueError, ...
        raise BadModelFile(
            f"normalizer '{path}' cannot be read ({type(exc).__name__}: {exc}); the file is truncated or corrupt. "
            "Use another checkpoint of the run: every checkpoint_N.zip has its vecnormalize_N.pkl."
        ) from None
    if not isinstance(vec_norm, VecNormalize):
        raise BadModelFile(f"normalizer '{path}' is not a VecNormalize file (it holds a {type(vec_norm).__name__}).")
    return vec_norm


def normalizer_obs_shape(vec_norm: VecNormalize) -> Optional[tuple[int, ...]]:
    """Shape of the observations a normalizer was made for: its observation statistics, or without them
    (``norm_obs`` false) its observation space; None if it has neither.

    Read from the instance's own attributes: an unpickled ``VecNormalize`` has no ``venv``, and SB3's attribute
    forwarding to it recurses on a name the instance lacks (``obs_rms`` when ``norm_obs`` is false).
    """
    own = vars(vec_norm)
    mean = getattr(own.get("obs_rms"), "mean", None)
    if mean is not None:
        return tuple(mean.shape)
    shape = getattr(own.get("observation_space"), "shape", None)
    return None if shape is None else tuple(shape)


def inspect_pair(model_path: Path, normalizer_path: Optional[Path] = None) -> PairInfo:
    """Check that a model and its normalizer can be read and belong together.

    :param normalizer_path: default: the ``.pkl`` named after the model (:func:`normalizer_path_for`).
    :raises FileNotFoundError: a file is missing. :raises BadModelFile: a file is unreadable, not PPO, or the
        normalizer's observation size differs from the model's.
    """
    model_path = Path(model_path)
    normalizer_path = Path(normalizer_path) if normalizer_path else normalizer_path_for(model_path)
    data = read_model_data(model_path)
    obs_shape = tuple(data["observation_space"].shape)
    norm_shape = normalizer_obs_shape(read_normalizer(normalizer_path))
    if norm_shape != obs_shape:
        raise BadModelFile(
            f"normalizer '{normalizer_path}' holds statistics for observations of shape {norm_shape}, but model "
            f"'{model_path}' takes observations of shape {obs_shape}: they are not a pair. Use the .pkl saved beside "
            "this model (same step count), or pass it with --vecnormalize."
        )
    return PairInfo(model_path, normalizer_path, int(data.get("num_timesteps", 0)), obs_shape)
