"""Soccar field geometry in world coordinates.

All lengths are in Unreal Units (uu, 1 uu = 1 cm). World axes follow Rocket
League: ``x`` across the field (side walls at ``x = +/-SIDE_WALL_X``), ``y`` along
the field (blue goal at ``-y``, orange goal at ``+y``), ``z`` up.

Boost pad positions and car hitbox sizes are read from RocketSim once per
process and cached, so drawing a frame never touches the simulator.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from rlgym.rocket_league.common_values import (
    BACK_NET_Y,
    BACK_WALL_Y,
    CEILING_Z,
    CORNER_CATHETUS_LENGTH,
    GOAL_CENTER_TO_POST,
    GOAL_HEIGHT,
    SIDE_WALL_X,
)

#: Half the width of a goal mouth, post to centre (uu).
GOAL_HALF_WIDTH: float = GOAL_CENTER_TO_POST
#: Depth of a goal from the back wall plane to the back of the net (uu).
GOAL_DEPTH: float = BACK_NET_Y - BACK_WALL_Y
#: Radius of the painted centre circle (uu); visual only, not a physics value.
CENTER_CIRCLE_RADIUS: float = 1000.0


@dataclass(frozen=True)
class BoostPad:
    """A boost pad: centre position (uu) and whether it is a big (100 boost) pad."""

    x: float
    y: float
    z: float
    is_big: bool


def arena_outline_xy() -> np.ndarray:
    """Top-view outline of the playable area including both goal pockets.

    Returns:
        ``(N, 2)`` float array of world ``(x, y)`` vertices (uu) of a closed
        polygon (the first vertex is not repeated). The four corners are cut
        diagonally by ``CORNER_CATHETUS_LENGTH``; each back wall has an opening
        ``2 * GOAL_HALF_WIDTH`` wide leading into a goal ``GOAL_DEPTH`` deep.
    """
    sx, by, c = SIDE_WALL_X, BACK_WALL_Y, CORNER_CATHETUS_LENGTH
    gw, ny = GOAL_HALF_WIDTH, BACK_NET_Y
    return np.array(
        [
            # blue back wall (y = -BACK_WALL_Y), from -x to +x, with the goal pocket
            (-sx + c, -by), (-gw, -by), (-gw, -ny), (gw, -ny), (gw, -by), (sx - c, -by),
            # +x side wall
            (sx, -by + c), (sx, by - c),
            # orange back wall, from +x to -x, with the goal pocket
            (sx - c, by), (gw, by), (gw, ny), (-gw, ny), (-gw, by), (-sx + c, by),
            # -x side wall
            (-sx, by - c), (-sx, -by + c),
        ],
        dtype=float,
    )


def goal_rect_xy(team_sign: int) -> tuple[float, float, float, float]:
    """Top-view rectangle of one goal (the volume behind the goal line).

    Args:
        team_sign: ``-1`` for the blue goal (at ``-y``), ``+1`` for the orange goal.

    Returns:
        ``(x_min, y_min, width_x, depth_y)`` in uu, with ``width_x, depth_y > 0``.
    """
    y0 = BACK_WALL_Y if team_sign > 0 else -BACK_NET_Y
    return (-GOAL_HALF_WIDTH, y0, 2.0 * GOAL_HALF_WIDTH, GOAL_DEPTH)


def goal_rect_yz(team_sign: int) -> tuple[float, float, float, float]:
    """Side-view (y-z) rectangle of one goal.

    Args:
        team_sign: ``-1`` for the blue goal, ``+1`` for the orange goal.

    Returns:
        ``(y_min, z_min, depth_y, height_z)`` in uu.
    """
    y0 = BACK_WALL_Y if team_sign > 0 else -BACK_NET_Y
    return (y0, 0.0, GOAL_DEPTH, GOAL_HEIGHT)


def side_outline_yz() -> np.ndarray:
    """Side-view (y-z) outline of the arena between the back walls.

    Returns:
        ``(5, 2)`` float array of ``(y, z)`` vertices (uu) of the closed
        rectangle floor / back walls / ceiling (first vertex repeated last).
    """
    by = BACK_WALL_Y
    return np.array([(-by, 0.0), (by, 0.0), (by, CEILING_Z), (-by, CEILING_Z), (-by, 0.0)], dtype=float)


def _init_rocketsim() -> None:
    """Load RocketSim's collision meshes the same way ``RocketSimEngine`` does.

    ``RocketSim.init`` may only run once per process; a second call raises
    ``RuntimeError("Already inited")``, which is ignored here.
    """
    import RocketSim
    from rlgym.rocket_league.sim import rocketsim_engine

    meshes_dir = os.path.join(os.path.dirname(os.path.realpath(rocketsim_engine.__file__)), "collision_meshes")
    try:
        RocketSim.init(meshes_dir)
    except RuntimeError:
        pass  # already initialised (e.g. by a RocketSimEngine in this process)


@lru_cache(maxsize=1)
def boost_pads() -> tuple[BoostPad, ...]:
    """All soccar boost pads in RocketSim's order (cached after the first call).

    The order matches ``GameState.boost_pad_timers`` as produced by
    ``RocketSimEngine``. Positions are in uu.
    """
    import RocketSim

    _init_rocketsim()
    arena = RocketSim.Arena(RocketSim.GameMode.SOCCAR)
    pads = []
    for pad in arena.get_boost_pads():
        pos = pad.get_pos()
        x, y, z = pos.x, pos.y, pos.z
        pads.append(BoostPad(float(x), float(y), float(z), bool(pad.is_big)))
    return tuple(pads)


@lru_cache(maxsize=None)
def hitbox_length_width(hitbox_type: int) -> tuple[float, float]:
    """Length (along forward) and width (along right) of a car hitbox, in uu.

    Args:
        hitbox_type: ``common_values.OCTANE`` ... ``MERC`` (``Car.hitbox_type``).
    """
    import RocketSim

    length, width, _height = RocketSim.CarConfig(int(hitbox_type)).hitbox_size
    return float(length), float(width)
