"""Scripted drivers: fixed, non-learning opponents that choose lookup-table actions from the game state.

They anchor the league's rating scale (their skill never changes) and are the first opponents a bot must beat:

* ``idle``: no input (the all-zero controls row).
* ``random``: a uniformly random lookup-table action every decision.
* ``chaser``: drives at the ball: full throttle, steers toward it, boosts when facing it, handbrake in sharp
  turns. It reaches the ball from anywhere and pushes it, without aiming: a floor any trained bot should beat.

rlgym and rlgym-tools ship no scripted policies for RLGym v2 (rlgym-tools' v1 ``SB3MultipleInstanceEnv``-era
bots are gone), so these are ours. They read the ``GameState`` directly, so they work with any obs builder and
run inside the env workers, next to the simulation.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from rlgym.rocket_league.api import GameState

#: Names accepted in the config (``league.scripted``) and by ``evaluate.py --opponent``.
SCRIPTED_NAMES = ("idle", "random", "chaser")
#: Columns of rlgym's ``LookupTableAction`` table.
THROTTLE, STEER, PITCH, YAW, ROLL, JUMP, BOOST, HANDBRAKE = range(8)
#: Chaser: turn with the handbrake beyond this angle to the ball (radians); boost only within this angle.
HANDBRAKE_ANGLE = 1.8
BOOST_ANGLE = 0.3
#: Chaser: drive straight when the ball is within this angle of the car's nose (radians).
STRAIGHT_ANGLE = 0.1


class ScriptedDriver:
    """Chooses actions (rows of the lookup table) for some cars of a match.

    :param name: one of :data:`SCRIPTED_NAMES`.
    :param table: the action parser's lookup table, ``[n_actions, 8]``.
    :param rng: source of the random driver's actions.
    """

    def __init__(self, name: str, table: np.ndarray, rng: np.random.Generator):
        if name not in SCRIPTED_NAMES:
            raise ValueError(f"unknown scripted driver '{name}'; known: {', '.join(SCRIPTED_NAMES)}")
        self.name = name
        self.table = np.asarray(table)
        self.rng = rng
        self.idle_action = int(np.flatnonzero(~self.table.any(axis=1))[0])
        ground = (self.table[:, [PITCH, ROLL, JUMP]] == 0).all(axis=1) & (self.table[:, THROTTLE] == 1)
        # Chaser actions indexed by (steer -1/0/1, boost, handbrake): ground rows at full throttle.
        self._chase = {(int(row[STEER]), int(row[BOOST]), int(row[HANDBRAKE])): i
                       for i, row in enumerate(self.table) if ground[i]}

    def act(self, state: GameState, agents: Sequence[str]) -> np.ndarray:
        """Action indices for ``agents`` (cars of ``state``), shape ``[len(agents)]``."""
        if self.name == "idle":
            return np.full(len(agents), self.idle_action, dtype=np.int64)
        if self.name == "random":
            return self.rng.integers(0, len(self.table), size=len(agents), dtype=np.int64)
        return np.array([self._chase_action(state, agent) for agent in agents], dtype=np.int64)

    def _chase_action(self, state: GameState, agent: str) -> int:
        car = state.cars[agent].physics
        to_ball = state.ball.position - car.position
        # Signed angle to the ball in the car's ground plane (positive: the ball is to the car's right).
        ahead, right = float(np.dot(to_ball, car.forward)), float(np.dot(to_ball, car.right))
        angle = float(np.arctan2(right, ahead))
        steer = 0 if abs(angle) < STRAIGHT_ANGLE else int(np.sign(angle))
        boost = int(abs(angle) < BOOST_ANGLE)
        handbrake = int(abs(angle) > HANDBRAKE_ANGLE)
        return self._chase[(steer, boost, handbrake if not boost else 0)]
