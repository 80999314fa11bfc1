"""An observation of your own: an rlgym v2 ``ObsBuilder``. Here rlgym's ``DefaultObs`` plus two numbers the car
would otherwise have to work out: its distance to the ball and the ball's height. ``export_rlbot.py`` copies this
package into the exported bot, which builds the same observation in the game."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np
from rlgym.api import AgentID
from rlgym.rocket_league.api import GameState
from rlgym.rocket_league.obs_builders import DefaultObs

#: Distances are divided by this (uu; about the length of the field), as DefaultObs scales positions.
DISTANCE_SCALE = 2300.0


class BallDistanceObs(DefaultObs):
    """``DefaultObs(zero_padding)`` followed by [distance car-ball, ball height], both / 2,300 uu.

    Shape: ``52 + 40 * zero_padding + 2`` floats (174 with the default padding of 3).
    """

    def get_obs_space(self, agent: AgentID) -> Tuple[str, int]:
        kind, size = super().get_obs_space(agent)
        return kind, size + 2

    def build_obs(self, agents: List[AgentID], state: GameState, shared_info: Dict[str, Any]) -> Dict[AgentID, np.ndarray]:
        obs = super().build_obs(agents, state, shared_info)
        ball = state.ball.position
        for agent in agents:
            distance = float(np.linalg.norm(state.cars[agent].physics.position - ball))
            extra = np.array([distance / DISTANCE_SCALE, float(ball[2]) / DISTANCE_SCALE], dtype=obs[agent].dtype)
            obs[agent] = np.concatenate([obs[agent], extra])
        return obs
