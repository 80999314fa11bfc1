"""A reward of your own: an rlgym v2 ``RewardFunction``, named in ``config.yaml`` by its import path."""

from __future__ import annotations

from typing import Any, Dict, List

from rlgym.api import AgentID, RewardFunction
from rlgym.rocket_league.api import GameState


class AerialTouchReward(RewardFunction[AgentID, GameState, float]):
    """1 on a step where the car touches the ball while the ball is at least ``min_height`` uu above the ground,
    scaled up to ``max_scale`` as the ball gets higher (``height / min_height``, capped); 0 otherwise.

    :param min_height: ball height (uu, the ball's centre; it rests at 93) from which a touch counts.
    :param max_scale: the reward of the highest touches.
    """

    def __init__(self, min_height: float = 300.0, max_scale: float = 3.0):
        if min_height <= 0:
            raise ValueError(f"min_height must be > 0 (got {min_height})")
        self.min_height = float(min_height)
        self.max_scale = float(max_scale)

    def reset(self, agents: List[AgentID], initial_state: GameState, shared_info: Dict[str, Any]) -> None:
        pass

    def get_rewards(self, agents: List[AgentID], state: GameState, is_terminated: Dict[AgentID, bool],
                    is_truncated: Dict[AgentID, bool], shared_info: Dict[str, Any]) -> Dict[AgentID, float]:
        height = float(state.ball.position[2])
        value = min(height / self.min_height, self.max_scale) if height >= self.min_height else 0.0
        return {agent: value if state.cars[agent].ball_touches > 0 else 0.0 for agent in agents}
