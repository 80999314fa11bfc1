"""Sizing a run to the machine: ``environment.selfplay.scale: auto`` and ``training.batch_size: auto``.

What was measured (docs/performance.md): on 2 cores the default layout, 56 self-play + 16 league 1v1 matches (128
learning cars) x 32 steps, was the fastest of the layouts tried; on 16 cores with a GPU the same layout trained at
17,714 agent-steps/s while 4 times the matches (512 learning cars, minibatch 4096) trained at 46,159: the trainer
needs more cars per inference call and per update once the cores step matches faster than it consumes them. So
``scale: auto`` multiplies the configured match counts by one per :data:`CORES_PER_SCALE` cores (2-4 cores: the
counts as written), and ``batch_size: auto`` keeps :data:`MINIBATCHES_PER_EPOCH` gradient steps per epoch whatever
the rollout's size (1024 for the 2-core default's 4096-sample rollout). Values the user writes are never changed:
``scale`` given as a number is used as it is, and ``auto`` leaves the counts as written when the user's own
config file or ``--set`` gives match counts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from config.schema import Config, TrainingConfig

#: Cores per unit of ``environment.selfplay.scale: auto`` (2-4 cores: 1, 8: 2, 16: 4).
CORES_PER_SCALE = 4
#: ``training.batch_size: auto``: the rollout (learning cars x ``n_steps``) split into this many minibatches.
MINIBATCHES_PER_EPOCH = 4


def available_cores() -> int:
    """CPU cores this process may run on (respects taskset / container CPU sets)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def auto_scale(cores: int) -> int:
    """``scale: auto`` on a machine with ``cores`` cores."""
    return max(1, cores // CORES_PER_SCALE)


@dataclass(frozen=True)
class Sizing:
    """How the run's match counts were sized: the machine's ``cores``, the ``scale`` applied, and why (``auto``:
    chosen for this machine; ``counts_given``: ``auto`` left the user's own counts as written)."""

    cores: int
    scale: int
    auto: bool
    counts_given: bool

    def describe(self) -> str:
        if not self.auto:
            return f"match counts x {self.scale} (environment.selfplay.scale)"
        if self.counts_given:
            return "match counts as your config gives them (scale auto leaves counts you set alone)"
        return (f"auto for {self.cores} core(s): match counts x {self.scale} (one per {CORES_PER_SCALE} cores; "
                "environment.selfplay.scale)")


def resolve_scale(cfg: Config, counts_given: bool, cores: int | None = None) -> Config:
    """``cfg`` with ``environment.selfplay.scale`` applied to the self-play and league match counts (and set to 1,
    so the run's saved config holds the counts it played, and a resumed run keeps them on any machine).

    :param counts_given: the user's own config file or ``--set`` gives match counts: ``auto`` keeps them.
    :param cores: the machine's cores (default: :func:`available_cores`).
    """
    selfplay = cfg.environment.selfplay
    cores = available_cores() if cores is None else cores
    auto = selfplay.scale == "auto"
    scale = (1 if counts_given else auto_scale(cores)) if auto else int(selfplay.scale)
    out = cfg.model_copy(deep=True)
    out.environment.selfplay.scale = 1
    if cfg.environment.vec_env == "selfplay":
        out.environment.selfplay.matches = {name: count * scale for name, count in selfplay.matches.items()}
        out.league.matches = {name: count * scale for name, count in cfg.league.matches.items()}
    out._sizing = Sizing(cores, scale, auto, auto and counts_given)
    return out


def minibatch(train: TrainingConfig, num_envs: int) -> int:
    """``training.batch_size`` for a rollout of ``num_envs`` x ``n_steps`` samples (``auto``: the rollout split
    into :data:`MINIBATCHES_PER_EPOCH` minibatches)."""
    if train.batch_size == "auto":
        return max(2, num_envs * train.n_steps // MINIBATCHES_PER_EPOCH)
    return int(train.batch_size)
