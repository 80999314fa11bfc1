"""State mutators that rlgym and rlgym-tools do not ship.

:class:`KickoffJitterMutator` moves the cars and the ball of a kickoff a little (rlgym's ``KickoffMutator`` puts
them on the five exact spots, rlgym-tools' ``RandomPhysicsMutator`` anywhere on the field, moving). A deterministic
bot against a deterministic opponent plays exactly one game per kickoff spot; jittered kickoffs make every game a
different one while staying kickoff-like, for training starts and for evaluation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rlgym.api import StateMutator
from rlgym.rocket_league.api import GameState


class KickoffJitterMutator(StateMutator[GameState]):
    """Uniform random offsets added to a kickoff state set by an earlier mutator (``kickoff`` before it in
    ``environment.state_mutators``).

    Draws from the process-global ``np.random``, as rlgym's mutators do (each self-play match installs its own
    state of it around its resets, so runs stay reproducible).

    :param car_xy_uu: each car moves by up to this many unreal units in x and in y.
    :param car_yaw_rad: each car turns by up to this many radians.
    :param ball_xy_uu: the ball moves by up to this many unreal units in x and in y (it stays at rest).
    """

    def __init__(self, car_xy_uu: float, car_yaw_rad: float, ball_xy_uu: float):
        self.car_xy_uu, self.car_yaw_rad, self.ball_xy_uu = car_xy_uu, car_yaw_rad, ball_xy_uu

    def apply(self, state: GameState, shared_info: dict[str, Any]) -> None:
        ball = state.ball.position.copy()
        ball[:2] += np.random.uniform(-self.ball_xy_uu, self.ball_xy_uu, 2)
        state.ball.position = ball.astype(np.float32)
        for car in state.cars.values():
            position = car.physics.position.copy()
            position[:2] += np.random.uniform(-self.car_xy_uu, self.car_xy_uu, 2)
            car.physics.position = position.astype(np.float32)
            euler = np.array(car.physics.euler_angles, dtype=np.float32)
            euler[1] += np.float32(np.random.uniform(-self.car_yaw_rad, self.car_yaw_rad))
            car.physics.euler_angles = euler
