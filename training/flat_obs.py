"""``VecNormalize`` calls for flat observation arrays, the only kind this trainer has.

Why: SB3 types ``VecNormalize`` for dict observations too (``normalize_obs`` returns an array or a dict of arrays;
``obs_rms`` is declared as the dict's statistics). These give the array types, and check them.
"""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import VecNormalize


def normalize_obs(normalizer: VecNormalize, obs: np.ndarray) -> np.ndarray:
    """``normalizer.normalize_obs(obs)`` of an observation array."""
    out = normalizer.normalize_obs(obs)
    assert isinstance(out, np.ndarray)
    return out


def unnormalize_obs(normalizer: VecNormalize, obs: np.ndarray) -> np.ndarray:
    """``normalizer.unnormalize_obs(obs)`` of an observation array."""
    out = normalizer.unnormalize_obs(obs)
    assert isinstance(out, np.ndarray)
    return out


def obs_stats(normalizer: VecNormalize) -> RunningMeanStd:
    """The running mean and variance of the observations (``normalizer.obs_rms``; it has them when ``norm_obs``)."""
    stats: object = normalizer.obs_rms
    assert isinstance(stats, RunningMeanStd)
    return stats
