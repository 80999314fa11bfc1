"""Reward as a weighted sum of named parts.

Parts come from rlgym (``GoalReward``, ``TouchReward``) and rlgym-tools (``VelocityPlayerToBallReward``,
``BoostChangeReward``). Only :class:`VelocityBallToGoalReward` is written here: neither package has a
ball-velocity-toward-goal reward for RLGym v2.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List

import numpy as np
from rlgym.api import AgentID, RewardFunction
from rlgym.rocket_league.api import GameState
from rlgym.rocket_league.common_values import (
    BALL_MAX_SPEED,
    BLUE_GOAL_BACK,
    BLUE_TEAM,
    ORANGE_GOAL_BACK,
    TICKS_PER_SECOND,
)
from rlgym.rocket_league.reward_functions import CombinedReward, GoalReward, TouchReward
from rlgym_tools.rocket_league.reward_functions.boost_change_reward import BoostChangeReward
from rlgym_tools.rocket_league.reward_functions.velocity_player_to_ball_reward import VelocityPlayerToBallReward

from envs.parts import PartRaised, build_part
from envs.schema import PartSpec, RewardPartSpec, Rewards



class PerSecondReward(RewardFunction[AgentID, GameState, float]):
    """Base of the rewards given as a rate (units per game second) and integrated over each step: subclasses
    implement :meth:`rates`; the reward is ``rate * step duration``, so it does not depend on ``tick_skip``
    (as rlgym-tools' ``VelocityPlayerToBallReward`` does)."""

    def __init__(self) -> None:
        self._prev_tick: int = 0

    def reset(self, agents: List[AgentID], initial_state: GameState, shared_info: Dict[str, Any]) -> None:
        self._prev_tick = initial_state.tick_count

    def rates(self, agents: List[AgentID], state: GameState) -> Dict[AgentID, float]:
        raise NotImplementedError

    def get_rewards(self, agents: List[AgentID], state: GameState, is_terminated: Dict[AgentID, bool],
                    is_truncated: Dict[AgentID, bool], shared_info: Dict[str, Any]) -> Dict[AgentID, float]:
        dt = (state.tick_count - self._prev_tick) / TICKS_PER_SECOND
        self._prev_tick = state.tick_count
        return {agent: rate * dt for agent, rate in self.rates(agents, state).items()}


class VelocityBallToGoalReward(PerSecondReward):
    """Ball velocity toward the opponent's goal (back of the net), integrated over the step.

    Units: 1.0 per game second when the ball flies straight at the goal at ``BALL_MAX_SPEED``;
    negative when it moves toward the agent's own goal.
    """

    def rates(self, agents: List[AgentID], state: GameState) -> Dict[AgentID, float]:
        ball = state.ball
        per_team = {}
        for team, target in ((BLUE_TEAM, ORANGE_GOAL_BACK), (1 - BLUE_TEAM, BLUE_GOAL_BACK)):
            to_goal = np.asarray(target, dtype=np.float32) - ball.position
            direction = to_goal / max(float(np.linalg.norm(to_goal)), 1e-6)
            per_team[team] = float(np.dot(direction, ball.linear_velocity)) / BALL_MAX_SPEED
        return {agent: per_team[state.cars[agent].team_num] for agent in agents}


class FaceBallReward(PerSecondReward):
    """How straight the car's nose points at the ball, integrated over the step.

    Units: 1.0 per game second when facing the ball exactly (cosine of the angle between the car's forward
    axis and the direction to the ball), -1.0 per second facing away. rlgym and rlgym-tools (v2) have no
    face-ball reward; community guides use a small one early in training.
    """

    def rates(self, agents: List[AgentID], state: GameState) -> Dict[AgentID, float]:
        rates = {}
        for agent in agents:
            car = state.cars[agent].physics
            to_ball = state.ball.position - car.position
            rates[agent] = float(np.dot(car.forward, to_ball)) / max(float(np.linalg.norm(to_ball)), 1e-6)
        return rates


def _boost_gain() -> RewardFunction:
    return BoostChangeReward(gain_weight=1.0, lose_weight=0.0)


def _speed_to_ball() -> RewardFunction:
    return VelocityPlayerToBallReward(include_negative_values=False)


#: Reward part name (the key in ``config.yaml``'s ``rewards:``) -> constructor of the rlgym reward function.
REWARD_PARTS: dict[str, Callable[[], RewardFunction]] = {
    "goal": GoalReward,
    "touch": TouchReward,
    "player_to_ball": VelocityPlayerToBallReward,
    "speed_to_ball": _speed_to_ball,
    "face_ball": FaceBallReward,
    "ball_to_goal": VelocityBallToGoalReward,
    "boost_gain": _boost_gain,
}


class NamedPartsReward(CombinedReward):
    """``CombinedReward`` that also remembers each part's weighted value per agent.

    :param parts: the ``rewards:`` section: name -> weight of a built-in part, or a user's part
        (:class:`envs.schema.RewardPartSpec`: its class by import path, kwargs and weight).

    After ``get_rewards``, ``last_parts[agent]`` maps part name -> weight * part reward for that step,
    and the returned reward is exactly ``sum(last_parts[agent].values())``.
    Parts whose weight is 0 are not built at all (they cost nothing). A part that raises names itself in the
    error (:class:`envs.parts.PartRaised`), so a user's reward that breaks mid-run is found at once.
    """

    def __init__(self, parts: Rewards):
        unknown = sorted(name for name, part in parts.items() if not isinstance(part, PartSpec)
                         and name not in REWARD_PARTS)
        if unknown:
            raise KeyError(f"unknown reward parts {unknown}; known: {sorted(REWARD_PARTS)}")
        built = []
        for name, part in parts.items():
            if isinstance(part, RewardPartSpec):
                if part.weight != 0:
                    built.append((name, build_part(f"rewards.{name}", part, RewardFunction), part.weight))
            elif part != 0:
                built.append((name, REWARD_PARTS[name](), float(part)))
        super().__init__(*[(fn, weight) for _, fn, weight in built])
        self.names: tuple[str, ...] = tuple(name for name, _, _ in built)
        #: Names of the user's parts (by import path): a built-in name given a custom class counts as custom.
        self.custom: frozenset[str] = frozenset(name for name, part in parts.items() if isinstance(part, PartSpec))
        self.last_parts: Dict[AgentID, Dict[str, float]] = {}

    def reset(self, agents: List[AgentID], initial_state: GameState, shared_info: Dict[str, Any]) -> None:
        for name, reward_fn in zip(self.names, self.reward_fns):
            try:
                reward_fn.reset(agents, initial_state, shared_info)
            except Exception as exc:
                raise PartRaised(f"rewards.{name}", type(reward_fn).__qualname__, "reset") from exc

    def part_rewards(self, k: int, agents: List[AgentID], state: GameState, is_terminated: Dict[AgentID, bool],
                     is_truncated: Dict[AgentID, bool], shared_info: Dict[str, Any]) -> Dict[AgentID, float]:
        """Unweighted rewards of part ``k`` (in ``names`` order).

        :raises PartRaised: the part raised (its exception is the cause).
        """
        try:
            return self.reward_fns[k].get_rewards(agents, state, is_terminated, is_truncated, shared_info)
        except Exception as exc:
            raise PartRaised(f"rewards.{self.names[k]}", type(self.reward_fns[k]).__qualname__, "get_rewards") from exc

    def get_rewards(self, agents: List[AgentID], state: GameState, is_terminated: Dict[AgentID, bool],
                    is_truncated: Dict[AgentID, bool], shared_info: Dict[str, Any]) -> Dict[AgentID, float]:
        parts: Dict[AgentID, Dict[str, float]] = {agent: {} for agent in agents}
        for k, (name, weight) in enumerate(zip(self.names, self.weights)):
            values = self.part_rewards(k, agents, state, is_terminated, is_truncated, shared_info)
            for agent in agents:
                parts[agent][name] = float(values[agent]) * weight
        self.last_parts = parts
        return {agent: sum(parts[agent].values()) for agent in agents}
