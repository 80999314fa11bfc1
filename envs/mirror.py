"""Left-right mirror symmetry of the field, in observation and action space.

The soccar field, its boost pads, the kickoff spots and the car are symmetric under ``x -> -x``. A state mirrored
that way is as good for the same team as the original, so a policy should act in the mirrored state as it acts in
the original, with steering, yaw and roll reversed. :class:`ObsMirror` maps a ``DefaultObs`` observation to the
observation of the mirrored state and :func:`action_mirror` maps a lookup-table action to the mirrored action;
``training.mirror`` uses them to add the mirrored copy of every rollout sample (``training/mirror.py``).

Neither rlgym nor rlgym-tools has this (their obs builders only mirror the field for the orange team, which is a
180 degree rotation, not a reflection), hence this module.
"""

from __future__ import annotations

import numpy as np
from rlgym.rocket_league.common_values import BOOST_LOCATIONS

#: Lookup-table columns: throttle, steer, pitch, yaw, roll, jump, boost, handbrake. Steer, yaw and roll turn the
#: car about axes that a left-right reflection reverses.
MIRRORED_ACTION_COLUMNS = (1, 3, 4)
#: Pads farther than this from the mirror image of another pad (in uu) mean the pad list is not symmetric
#: (rlgym's list has pairs 2 uu apart: 3308 / 3310).
PAD_TOLERANCE_UU = 10.0


def pad_mirror_permutation(locations: np.ndarray = np.asarray(BOOST_LOCATIONS)) -> np.ndarray:
    """``perm[i]`` = the pad at the mirror image ``(-x, y)`` of pad ``i``, ``[n_pads]`` ints.

    The same permutation holds in orange's inverted frame: rlgym orders orange's pad timers reversed, and the pad
    list is symmetric under that 180 degree rotation, so index ``i`` sits at ``locations[i]`` in both frames.
    """
    xy = np.asarray(locations, dtype=np.float64)[:, :2]
    mirrored = xy * np.array([-1.0, 1.0])
    dist = np.linalg.norm(mirrored[:, None, :] - xy[None, :, :], axis=-1)
    perm = dist.argmin(axis=1)
    if dist[np.arange(len(xy)), perm].max() > PAD_TOLERANCE_UU or len(set(perm.tolist())) != len(perm):
        raise ValueError("boost pad locations are not left-right symmetric: cannot mirror the observation")
    return perm


class ObsMirror:
    """Mirror of rlgym's ``DefaultObs`` observations (``[..., 52 + 40 * zero_padding]`` floats).

    Layout (rlgym ``DefaultObs``): ball position, velocity, angular velocity (3 each), 34 pad timers, 9 partial
    observables of the own car, then one 20-float block per car (own, allies, enemies, zero padded): position,
    forward, up, linear velocity (3 each), angular velocity (3), 5 scalars. Under ``x -> -x`` positions,
    velocities and direction vectors flip their x; angular velocities are pseudovectors and flip y and z instead;
    pad timers swap with the mirrored pad. Orange's inverted frame commutes with the reflection, so one map serves
    both teams.
    """

    BALL = 9
    PARTIAL = 9
    CAR = 20

    def __init__(self, zero_padding: int, n_pads: int = len(BOOST_LOCATIONS)):
        size = self.BALL + n_pads + self.PARTIAL + self.CAR * 2 * zero_padding
        sign = np.ones(size, dtype=np.float32)
        perm = np.arange(size)
        sign[[0, 3]] = -1.0  # ball position x, velocity x
        sign[[7, 8]] = -1.0  # ball angular velocity y, z
        perm[self.BALL:self.BALL + n_pads] = self.BALL + pad_mirror_permutation()
        start = self.BALL + n_pads + self.PARTIAL
        for car in range(2 * zero_padding):
            base = start + car * self.CAR
            sign[[base, base + 3, base + 6, base + 9]] = -1.0  # position, forward, up, velocity: x
            sign[[base + 13, base + 14]] = -1.0  # angular velocity: y, z
        #: ``mirrored = obs[..., perm] * sign`` (``[size]`` each).
        self.perm, self.sign, self.size = perm, sign, size

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """The observations of the mirrored states, same shape as ``obs`` (``[..., size]``)."""
        if obs.shape[-1] != self.size:
            raise ValueError(f"observation has {obs.shape[-1]} floats, the mirror expects {self.size} "
                             f"(rlgym DefaultObs with this zero padding)")
        return obs[..., self.perm] * self.sign


def action_mirror(table: np.ndarray) -> np.ndarray:
    """``perm[a]`` = the lookup-table row with steer, yaw and roll reversed, ``[n_actions]`` ints.

    :raises ValueError: if the table has no mirrored row for some action.
    """
    table = np.asarray(table)
    mirrored = table.copy()
    mirrored[:, list(MIRRORED_ACTION_COLUMNS)] *= -1
    rows = {tuple(row): i for i, row in enumerate(table.tolist())}
    missing = [i for i, row in enumerate(mirrored.tolist()) if tuple(row) not in rows]
    if missing:
        raise ValueError(f"the action lookup table has no mirrored row for actions {missing[:5]}")
    return np.array([rows[tuple(row)] for row in mirrored.tolist()], dtype=np.int64)
