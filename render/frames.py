"""The per-step record that the animation draws."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rlgym.rocket_league.common_values import TICKS_PER_SECOND

if TYPE_CHECKING:
    from rlgym.rocket_league.api import GameState


@dataclass
class Frame:
    """One decision step of an evaluated episode (what the animation draws).

    Attributes:
        state: game state AFTER the step (``cars`` dict AgentID -> Car, ``ball``,
            ``boost_pad_timers``). Positions are in uu, velocities in uu/s, pad
            timers in seconds (0 = pad available). The renderer only reads it;
            ``RocketSimEngine`` builds a new ``GameState`` every step, so keeping
            the reference is safe.
        episode: 1-based episode number.
        time_s: match clock, seconds since the episode started.
        blue_score: goals scored by blue so far (including this step).
        orange_score: goals scored by orange so far (including this step).
        reward: the step reward of the learning car (unitless).
        touched: a car touched the ball during this step.
        goal: a goal was scored on this step.
    """

    state: "GameState"
    episode: int
    time_s: float
    blue_score: int
    orange_score: int
    reward: float
    touched: bool
    goal: bool


def frame_from_state(
    state: "GameState",
    *,
    episode: int,
    reward: float,
    blue_score: int,
    orange_score: int,
    start_tick: int = 0,
) -> Frame:
    """Builds a :class:`Frame` from a post-step state, deriving clock, touch and goal.

    Args:
        state: state after the step (e.g. ``env.state``).
        episode: 1-based episode number.
        reward: step reward of the learning car.
        blue_score: blue goals so far, including a goal on this step.
        orange_score: orange goals so far, including a goal on this step.
        start_tick: ``state.tick_count`` at the episode's reset (physics ticks,
            ``TICKS_PER_SECOND`` per second; 0 after a ``RocketSimEngine`` reset).

    Returns:
        A frame with ``time_s = (tick_count - start_tick) / TICKS_PER_SECOND``,
        ``touched`` true if any car's ``ball_touches`` is positive and ``goal``
        equal to ``state.goal_scored``.
    """
    return Frame(
        state=state,
        episode=episode,
        time_s=(state.tick_count - start_tick) / TICKS_PER_SECOND,
        blue_score=blue_score,
        orange_score=orange_score,
        reward=float(reward),
        touched=any(car.ball_touches > 0 for car in state.cars.values()),
        goal=bool(state.goal_scored),
    )
