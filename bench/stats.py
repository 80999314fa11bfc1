"""Confidence intervals over seeds and games: a two-level (hierarchical) bootstrap.

Why a bootstrap and not a t-interval: the per-game values are 0/1 (touched, won) or small counts (goals), and two
sources of spread add up (seed to seed, game to game); resampling seeds, then games within each resampled seed,
carries both into the interval without assuming a distribution. numpy only (no scipy needed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

#: Bootstrap resamples per interval.
RESAMPLES = 2000
#: Two-sided confidence level of every interval.
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A mean and its 95% bootstrap interval."""

    mean: float
    low: float
    high: float

    def to_json(self) -> dict[str, float]:
        return {"mean": self.mean, "low": self.low, "high": self.high}

    def format(self, percent: bool = False) -> str:
        if percent:
            return f"{self.mean:.0%} [{self.low:.0%}, {self.high:.0%}]"
        return f"{self.mean:.2f} [{self.low:.2f}, {self.high:.2f}]"


def _resampled_means(groups: Sequence[np.ndarray], rng: np.random.Generator, resamples: int) -> np.ndarray:
    """Means of ``resamples`` two-level resamples: seeds with replacement, then games within each."""
    k = len(groups)
    means = np.empty(resamples)
    picks = rng.integers(0, k, size=(resamples, k))
    for r in range(resamples):
        values = [groups[g][rng.integers(0, len(groups[g]), len(groups[g]))] for g in picks[r]]
        means[r] = np.mean([v.mean() for v in values])
    return means


def interval(groups: Sequence[Sequence[float]], seed: int = 0, resamples: int = RESAMPLES) -> Optional[Interval]:
    """Mean over seeds of the per-seed mean of ``groups`` (one list of per-game values per seed), with its
    interval. None when no seed has a game."""
    arrays = [np.asarray(g, dtype=np.float64) for g in groups if len(g)]
    if not arrays:
        return None
    rng = np.random.default_rng(seed)
    means = _resampled_means(arrays, rng, resamples)
    tail = (1 - LEVEL) / 2 * 100
    return Interval(float(np.mean([a.mean() for a in arrays])), float(np.percentile(means, tail)),
                    float(np.percentile(means, 100 - tail)))


@dataclass(frozen=True)
class Difference:
    """``a - b`` with its interval; significant when the interval excludes 0."""

    diff: Interval
    significant: bool

    def to_json(self) -> dict:
        return {**self.diff.to_json(), "significant": self.significant}


def difference(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]], seed: int = 0,
               resamples: int = RESAMPLES) -> Optional[Difference]:
    """Mean of ``a`` minus mean of ``b`` (each as in :func:`interval`), the two resampled independently."""
    arrays_a = [np.asarray(g, dtype=np.float64) for g in a if len(g)]
    arrays_b = [np.asarray(g, dtype=np.float64) for g in b if len(g)]
    if not arrays_a or not arrays_b:
        return None
    rng = np.random.default_rng(seed)
    diffs = _resampled_means(arrays_a, rng, resamples) - _resampled_means(arrays_b, rng, resamples)
    tail = (1 - LEVEL) / 2 * 100
    mean = float(np.mean([x.mean() for x in arrays_a]) - np.mean([x.mean() for x in arrays_b]))
    low, high = float(np.percentile(diffs, tail)), float(np.percentile(diffs, 100 - tail))
    return Difference(Interval(mean, low, high), low > 0 or high < 0)
