"""A start state of your own: an rlgym v2 ``StateMutator``, listed after ``kickoff`` in ``state_mutators``."""

from __future__ import annotations

from typing import Any, Dict

import numpy as np
from rlgym.api import StateMutator
from rlgym.rocket_league.api import GameState
from rlgym.rocket_league.common_values import BALL_RADIUS


class ShotSetter(StateMutator[GameState]):
    """In a share of the episodes, the kickoff's ball is moved to a random spot of the middle third of the field
    (|x| <= ``spread_uu``, |y| <= 1,700 uu) and rolls toward a random goal at ``speed_uu_s``; the cars keep their
    kickoff spots. Teaches reading a moving ball early in training.

    :param share: fraction of episodes this mutator changes (the others keep the kickoff).
    :param speed_uu_s: ball speed in uu/s (the ball's top speed is 6,000).
    :param spread_uu: largest |x| of the ball.
    """

    def __init__(self, share: float = 0.5, speed_uu_s: float = 800.0, spread_uu: float = 2500.0):
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"share must be in [0, 1] (got {share})")
        self.share, self.speed, self.spread = float(share), float(speed_uu_s), float(spread_uu)
        self.rng = np.random.default_rng()

    def apply(self, state: GameState, shared_info: Dict[str, Any]) -> None:
        if self.rng.random() >= self.share:
            return
        x, y = self.rng.uniform(-self.spread, self.spread), self.rng.uniform(-1700.0, 1700.0)
        direction = self.rng.choice([-1.0, 1.0])
        state.ball.position = np.array([x, y, BALL_RADIUS], dtype=np.float32)
        state.ball.linear_velocity = np.array([0.0, direction * self.speed, 0.0], dtype=np.float32)
        state.ball.angular_velocity = np.zeros(3, dtype=np.float32)
