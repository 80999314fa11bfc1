"""rlgym's ``DefaultObs``, built with less per-step work (same numbers)."""

from __future__ import annotations

from typing import Any, Dict, List

import numpy as np
from rlgym.api import AgentID
from rlgym.rocket_league.api import GameState
from rlgym.rocket_league.common_values import ORANGE_TEAM
from rlgym.rocket_league.obs_builders import DefaultObs

#: Floats per car block in DefaultObs (position, forward, up, velocities, boost, demo timer, 3 flags).
CAR_SIZE = 20
#: Floats before the cars: ball position/velocity/angular velocity (9) + 34 boost pad timers.
GLOBAL_SIZE = 43
#: Partially observable flags of the agent's own car (9), between the global part and the car blocks.
PARTIAL_SIZE = 9


class FastDefaultObs(DefaultObs):
    """``DefaultObs`` (same layout, same float32 values) with the shared parts computed once per step.

    Why: in self-play every car needs an observation, and ``DefaultObs`` rebuilds, for every agent, the ball
    and pad block and every other car's block from Python lists, then pads with fresh zero arrays and
    concatenates ~10 small arrays. Here the ball/pads block and each car's 20 floats are computed once per
    side (normal, and mirrored for orange) and copied into one preallocated vector per agent. Only the
    ``zero_padding`` layout is supported (the one this project uses); ``tests/test_selfplay.py`` checks the
    output equals ``DefaultObs`` exactly in 1v1, 2v2 and 3v3.
    """

    def build_obs(self, agents: List[AgentID], state: GameState, shared_info: Dict[str, Any]) -> Dict[AgentID, np.ndarray]:
        if self.zero_padding is None:
            return super().build_obs(agents, state, shared_info)
        self._state = state
        size = self.get_obs_space(agents[0])[1] if agents else 0
        sides: dict[bool, tuple[np.ndarray, dict[AgentID, np.ndarray]]] = {}
        obs: Dict[AgentID, np.ndarray] = {}
        for agent in agents:
            car = state.cars[agent]
            inverted = car.team_num == ORANGE_TEAM
            if inverted not in sides:
                sides[inverted] = self._side(state, inverted)
            global_part, car_blocks = sides[inverted]
            out = np.zeros(size, dtype=np.float32)
            out[:GLOBAL_SIZE] = global_part
            out[GLOBAL_SIZE:GLOBAL_SIZE + PARTIAL_SIZE] = (
                car.is_holding_jump, car.handbrake, car.has_jumped, car.is_jumping, car.has_flipped,
                car.is_flipping, car.has_double_jumped, car.can_flip, car.air_time_since_jump)
            start = GLOBAL_SIZE + PARTIAL_SIZE
            out[start:start + CAR_SIZE] = car_blocks[agent]
            ally = start + CAR_SIZE                                   # allies: zero_padding - 1 blocks
            enemy = ally + (self.zero_padding - 1) * CAR_SIZE          # then enemies: zero_padding blocks
            for other, other_car in state.cars.items():
                if other == agent:
                    continue
                if other_car.team_num == car.team_num:
                    out[ally:ally + CAR_SIZE] = car_blocks[other]
                    ally += CAR_SIZE
                else:
                    out[enemy:enemy + CAR_SIZE] = car_blocks[other]
                    enemy += CAR_SIZE
            obs[agent] = out
        return obs

    def _side(self, state: GameState, inverted: bool) -> tuple[np.ndarray, dict[AgentID, np.ndarray]]:
        """The ball + pads block and every car's block, seen from blue (``inverted`` False) or orange."""
        ball = state.inverted_ball if inverted else state.ball
        pads = state.inverted_boost_pad_timers if inverted else state.boost_pad_timers
        global_part = np.concatenate([ball.position * self.POS_COEF, ball.linear_velocity * self.LIN_VEL_COEF,
                                      ball.angular_velocity * self.ANG_VEL_COEF, pads * self.PAD_TIMER_COEF])
        return global_part, {agent: self._generate_car_obs(car, inverted) for agent, car in state.cars.items()}
