"""Observations, rewards and done conditions of all the matches of one self-play worker, computed at once.

Why: after a step, rlgym's components loop over cars in Python: ``DefaultObs`` builds each car's 20 floats
once per observer, the rewards and done conditions walk ``state.cars`` per part. With 36 1v1 matches per
worker that per-car Python was ~60% of a worker's time (``bench.throughput --profile``), six times the
physics. Here each match's ``GameState`` is read once into arrays (:class:`StateArrays`, one row per match
and one per car) and the same quantities are computed in numpy over every car of the worker.

What stays rlgym's: the physics and ``GameState`` (:class:`envs.engine.RepeatedActionEngine`), every reset
(state mutators, ``set_state``, each component's ``reset``, the reset observation), and any reward part listed
in ``config.yaml`` without a batched version here (it is called per match, as in ``RLGym.step``).
``tests/test_batched.py`` steps the same matches both ways and checks equal observations (bit for bit), done
flags, and rewards (to float32 rounding: rlgym computes some parts in float32 scalars, here in float64).

Supported (else the worker keeps the per-match ``RLGym.step``): the ``default`` observation with
``obs_zero_padding`` at least the team size, the lookup-table action parser, no extra done conditions. A user's
reward part is always called per match (as a fallback part).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Sequence

import numpy as np
from rlgym.rocket_league.api import Car, GameState
from rlgym.rocket_league.common_values import (
    BALL_MAX_SPEED,
    BLUE_GOAL_BACK,
    CAR_MAX_SPEED,
    DOUBLEJUMP_MAX_DELAY,
    FLIP_TORQUE_TIME,
    ORANGE_GOAL_BACK,
    ORANGE_TEAM,
    TICKS_PER_SECOND,
)

from envs.obs import CAR_SIZE, GLOBAL_SIZE, PARTIAL_SIZE, FastDefaultObs
from envs.schema import EnvironmentConfig

#: Sign flips that mirror a vector / rotation matrix for the orange side (rlgym's ``PhysicsObject.inverted``).
INV_VEC = np.array([-1, -1, 1], dtype=np.float32)

#: Columns of :attr:`StateArrays.car_values` (float64: they are Python numbers in ``GameState``).
CAR_VALUES = ("team", "boost", "demo_timer", "wheels", "boost_active_time", "supersonic_time", "holding_jump",
              "handbrake", "has_jumped", "is_jumping", "has_flipped", "flip_time", "has_double_jumped",
              "air_time_since_jump", "ball_touches")
_COL = {name: i for i, name in enumerate(CAR_VALUES)}


def _car_row(car: Car) -> tuple:
    return (car.team_num, car.boost_amount, car.demo_respawn_timer, sum(car.wheels_with_contact),
            car.boost_active_time, car.supersonic_time, car.is_holding_jump, car.handbrake, car.has_jumped,
            car.is_jumping, car.has_flipped, car.flip_time, car.has_double_jumped, car.air_time_since_jump,
            car.ball_touches)


class StateArrays:
    """One step of ``M`` matches with ``C`` cars in all, read once from their ``GameState`` objects.

    Match rows: ``tick`` [M] int64, ``ball_pos`` / ``ball_vel`` / ``ball_ang`` [M, 3] float32, ``pads`` [M, 34]
    float32 (seconds until available), ``goal_scored`` [M] bool, ``scoring_team`` [M] int (-1: no goal).
    Car rows, match by match in ``state.cars`` order: ``car_match`` [C] (its match row), ``pos`` / ``vel`` /
    ``ang`` [C, 3] float32 (uu, uu/s, rad/s), ``rot`` [C, 3, 3] float32 (columns forward, right, up),
    ``car_values`` [C, len(CAR_VALUES)] float64.
    """

    def __init__(self, states: Sequence[GameState], car_match: np.ndarray):
        self.car_match = car_match
        self.tick = np.fromiter((s.tick_count for s in states), dtype=np.int64, count=len(states))
        self.ball_pos = np.array([s.ball.position for s in states], dtype=np.float32)
        self.ball_vel = np.array([s.ball.linear_velocity for s in states], dtype=np.float32)
        self.ball_ang = np.array([s.ball.angular_velocity for s in states], dtype=np.float32)
        self.pads = np.array([s.boost_pad_timers for s in states], dtype=np.float32)
        self.goal_scored = np.array([s.goal_scored for s in states], dtype=bool)
        # GameState.scoring_team: blue (0) when the ball is in orange's half, else orange (1).
        self.scoring_team = np.where(self.goal_scored, np.where(self.ball_pos[:, 1] > 0, 0, 1), -1)
        cars = [car for s in states for car in s.cars.values()]
        physics = [car.physics for car in cars]
        self.pos = np.array([p.position for p in physics], dtype=np.float32)
        self.vel = np.array([p.linear_velocity for p in physics], dtype=np.float32)
        self.ang = np.array([p.angular_velocity for p in physics], dtype=np.float32)
        self.rot = np.array([p.rotation_mtx for p in physics], dtype=np.float32)
        self.car_values = np.array([_car_row(car) for car in cars], dtype=np.float64)
        self.team = self.car_values[:, _COL["team"]].astype(np.int64)  # [C] 0 blue, 1 orange
        self.touched = self.car_values[:, _COL["ball_touches"]] > 0      # [C] touched the ball this step

    def value(self, name: str) -> np.ndarray:
        """Column ``name`` of :data:`CAR_VALUES`, [C] float64."""
        return self.car_values[:, _COL[name]]



@dataclass(frozen=True)
class ObsLayout:
    """Where every car's 20-float block goes in every observation of its match (``DefaultObs`` order: own car,
    then teammates, then opponents, each in ``state.cars`` order, zero-padded to ``zero_padding`` per team).

    ``dst`` [K] observing car, ``block`` [K] block position (0 own, 1.. teammates, ``zero_padding``..
    opponents), ``src`` [K] car whose block it is.
    """

    dst: np.ndarray
    block: np.ndarray
    src: np.ndarray

    @staticmethod
    def build(teams: Sequence[Sequence[int]], zero_padding: int) -> "ObsLayout":
        """``teams[m]`` = team of each car of match ``m`` in ``state.cars`` order."""
        dst, block, src = [], [], []
        first = 0
        for match_teams in teams:
            for i, team in enumerate(match_teams):
                ally, enemy = 1, zero_padding
                dst.append(first + i)
                block.append(0)
                src.append(first + i)
                for j, other in enumerate(match_teams):
                    if j == i:
                        continue
                    dst.append(first + i)
                    src.append(first + j)
                    if other == team:
                        block.append(ally)
                        ally += 1
                    else:
                        block.append(enemy)
                        enemy += 1
            first += len(match_teams)
        return ObsLayout(np.array(dst, dtype=np.int64), np.array(block, dtype=np.int64), np.array(src, dtype=np.int64))


class BatchedDefaultObs:
    """``DefaultObs`` (through :class:`envs.obs.FastDefaultObs`'s coefficients) for every car of many matches.

    Same float32 values as rlgym's: vector parts are scaled in float32 as rlgym does, the per-car scalars in
    float64 and rounded once.
    """

    def __init__(self, builder: FastDefaultObs):
        self.zero_padding = int(builder.zero_padding)
        self.size = GLOBAL_SIZE + PARTIAL_SIZE + 2 * self.zero_padding * CAR_SIZE
        self.coef = {name: np.float32(getattr(builder, name))
                     for name in ("POS_COEF", "LIN_VEL_COEF", "ANG_VEL_COEF", "PAD_TIMER_COEF")}
        self.boost_coef = float(builder.BOOST_COEF)

    def build(self, s: StateArrays, layout: ObsLayout) -> np.ndarray:
        """Observations of every car, [C, size] float32, in car-row order."""
        c = self.coef
        inverted = (s.team == ORANGE_TEAM).astype(np.int64)
        global_parts = np.stack([
            np.concatenate([s.ball_pos * c["POS_COEF"], s.ball_vel * c["LIN_VEL_COEF"],
                            s.ball_ang * c["ANG_VEL_COEF"], s.pads * c["PAD_TIMER_COEF"]], axis=1),
            np.concatenate([(s.ball_pos * INV_VEC) * c["POS_COEF"], (s.ball_vel * INV_VEC) * c["LIN_VEL_COEF"],
                            (s.ball_ang * INV_VEC) * c["ANG_VEL_COEF"], s.pads[:, ::-1] * c["PAD_TIMER_COEF"]],
                           axis=1),
        ])
        on_ground = s.value("wheels") >= 3
        has_flipped = s.value("has_flipped") > 0
        has_flip = ((s.value("has_double_jumped") == 0) & ~has_flipped
                    & (s.value("air_time_since_jump") < DOUBLEJUMP_MAX_DELAY))
        holding_jump = s.value("holding_jump") > 0
        partial = np.stack([
            s.value("holding_jump"), s.value("handbrake"), s.value("has_jumped"), s.value("is_jumping"),
            s.value("has_flipped"), has_flipped & (s.value("flip_time") < FLIP_TORQUE_TIME),
            s.value("has_double_jumped"), ~on_ground & ~holding_jump & has_flip, s.value("air_time_since_jump"),
        ], axis=1)
        scalars = np.stack([s.value("boost") * self.boost_coef, s.value("demo_timer"), on_ground,
                            s.value("boost_active_time") > 0, s.value("supersonic_time") > 0], axis=1)
        forward, up = s.rot[:, :, 0], s.rot[:, :, 2]
        blocks = np.stack([
            np.concatenate([s.pos * c["POS_COEF"], forward, up, s.vel * c["LIN_VEL_COEF"],
                            s.ang * c["ANG_VEL_COEF"], scalars.astype(np.float32)], axis=1),
            np.concatenate([(s.pos * INV_VEC) * c["POS_COEF"], forward * INV_VEC, up * INV_VEC,
                            (s.vel * INV_VEC) * c["LIN_VEL_COEF"], (s.ang * INV_VEC) * c["ANG_VEL_COEF"],
                            scalars.astype(np.float32)], axis=1),
        ])
        obs = np.zeros((len(inverted), self.size), dtype=np.float32)
        obs[:, :GLOBAL_SIZE] = global_parts[inverted, s.car_match]
        obs[:, GLOBAL_SIZE:GLOBAL_SIZE + PARTIAL_SIZE] = partial
        columns = (GLOBAL_SIZE + PARTIAL_SIZE + CAR_SIZE * layout.block)[:, None] + np.arange(CAR_SIZE)
        obs[layout.dst[:, None], columns] = blocks[inverted[layout.dst], layout.src]
        return obs


def _unit(vectors: np.ndarray, floor: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    norm = np.sqrt(np.einsum("ij,ij->i", vectors, vectors))
    return vectors / np.maximum(norm, floor)[:, None], norm


def _player_to_ball(s: StateArrays, dt: np.ndarray) -> np.ndarray:
    to_ball, _ = _unit(s.ball_pos[s.car_match] - s.pos)
    return np.einsum("ij,ij->i", to_ball, s.vel).astype(np.float64) / CAR_MAX_SPEED * dt[s.car_match]


def _ball_to_goal(s: StateArrays, dt: np.ndarray) -> np.ndarray:
    rates = np.empty((len(s.tick), 2), dtype=np.float64)
    for team, target in ((0, ORANGE_GOAL_BACK), (1, BLUE_GOAL_BACK)):
        direction, _ = _unit(np.asarray(target, dtype=np.float32) - s.ball_pos, 1e-6)
        rates[:, team] = np.einsum("ij,ij->i", direction, s.ball_vel) / BALL_MAX_SPEED
    return rates[s.car_match, s.team] * dt[s.car_match]


def _face_ball(s: StateArrays, dt: np.ndarray) -> np.ndarray:
    to_ball = s.ball_pos[s.car_match] - s.pos
    norm = np.maximum(np.sqrt(np.einsum("ij,ij->i", to_ball, to_ball)), 1e-6)
    return np.einsum("ij,ij->i", s.rot[:, :, 0], to_ball) / norm * dt[s.car_match]


def _goal(s: StateArrays, dt: np.ndarray) -> np.ndarray:
    scorer = s.scoring_team[s.car_match]
    return np.where(scorer < 0, 0.0, np.where(scorer == s.team, 1.0, -1.0))


#: A reward part without a batched version: ``fn(match_index, terminated, truncated) -> {agent: value}``.
FallbackPart = Callable[[int, bool, bool], Mapping[str, float]]

#: Reward part name -> its value for every car [C] float64, given the step duration of each match ``dt`` [M]
#: (game seconds). Each equals the rlgym / rlgym-tools / envs.rewards part of the same name.
BATCHED_PARTS: dict[str, Callable[[StateArrays, np.ndarray], np.ndarray]] = {
    "goal": _goal,
    "touch": lambda s, dt: s.touched.astype(np.float64),
    "player_to_ball": _player_to_ball,
    "speed_to_ball": lambda s, dt: np.maximum(_player_to_ball(s, dt), 0.0),
    "face_ball": _face_ball,
    "ball_to_goal": _ball_to_goal,
}


class MatchClocks:
    """Per-match tick counters the batched parts and done conditions need (what rlgym's components keep
    per instance): the previous step's tick, the episode's first tick and the last tick a car touched the ball."""

    def __init__(self, n_matches: int):
        self.prev_tick = np.zeros(n_matches, dtype=np.int64)
        self.start_tick = np.zeros(n_matches, dtype=np.int64)
        self.last_touch_tick = np.zeros(n_matches, dtype=np.int64)

    def reset(self, match: int, tick: int) -> None:
        self.prev_tick[match] = self.start_tick[match] = self.last_touch_tick[match] = tick


@dataclass
class StepResult:
    """What one batched step gives, in car-row order: ``obs`` [C, size] float32, ``rewards`` [C] float64, ``parts``
    [C, n_parts] float64 (weighted), and per match ``terminated`` / ``truncated`` [M] bool."""

    obs: np.ndarray
    rewards: np.ndarray
    parts: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray


class BatchedStep:
    """Obs, weighted reward parts and done flags of all matches of a worker after their engines stepped.

    :param part_names: the reward parts in ``NamedPartsReward.names`` order; ``weights`` their weights.
    :param no_touch_terminal: the no-touch timeout terminates (``environment.no_touch_timeout_terminal``), else it
        truncates.
    :param fallback: part name -> ``fn(match_index, terminated, truncated) -> {agent: value}`` for parts without
        a batched version (each match's own rlgym reward function, called as ``RLGym.step`` would).
    """

    def __init__(self, obs_builder: FastDefaultObs, part_names: Sequence[str], weights: Sequence[float],
                 episode_seconds: float, no_touch_seconds: float, no_touch_terminal: bool, n_matches: int,
                 fallback: Optional[dict[str, FallbackPart]] = None):
        self.obs = BatchedDefaultObs(obs_builder)
        self.part_names = tuple(part_names)
        self.weights = np.asarray(weights, dtype=np.float64)
        self.episode_seconds = episode_seconds
        self.no_touch_seconds = no_touch_seconds
        self.no_touch_terminal = no_touch_terminal
        self.fallback = fallback or {}
        self.clocks = MatchClocks(n_matches)

    @staticmethod
    def supports(env_cfg: EnvironmentConfig, team_sizes: Sequence[int]) -> bool:
        """Whether this config can take the batched path."""
        return (env_cfg.obs_builder == "default" and env_cfg.action_parser == "lookup_table"
                and not env_cfg.done_conditions.terminal and not env_cfg.done_conditions.truncation
                and max(team_sizes, default=1) <= env_cfg.obs_zero_padding)

    def step(self, s: StateArrays, layout: ObsLayout, agent_orders: Sequence[Sequence[str]]) -> StepResult:
        """Everything after the physics for one step. ``agent_orders[m]`` = match m's agent ids in car-row order
        (for the fallback parts)."""
        obs = self.obs.build(s, layout)
        terminated, truncated = self.dones(s)
        rewards, parts = self.rewards(s, terminated, truncated, agent_orders)
        return StepResult(obs, rewards, parts, terminated, truncated)

    def dones(self, s: StateArrays) -> tuple[np.ndarray, np.ndarray]:
        """Per match (terminated, truncated) [M] bool: rlgym's GoalCondition; TimeoutCondition and
        NoTouchTimeoutCondition (game seconds since the episode's first tick / the last touch), the latter a
        termination instead when ``no_touch_terminal``."""
        clocks = self.clocks
        touched_any = np.bincount(s.car_match, weights=s.touched, minlength=len(s.tick)) > 0
        clocks.last_touch_tick[touched_any] = s.tick[touched_any]
        no_touch = ~touched_any & ((s.tick - clocks.last_touch_tick) / TICKS_PER_SECOND >= self.no_touch_seconds)
        timeout = (s.tick - clocks.start_tick) / TICKS_PER_SECOND >= self.episode_seconds
        if self.no_touch_terminal:
            return s.goal_scored | no_touch, timeout
        return s.goal_scored.copy(), timeout | no_touch

    def rewards(self, s: StateArrays, terminated: np.ndarray, truncated: np.ndarray,
                agent_orders: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
        """(reward [C], weighted parts [C, n_parts]) float64 of every car; the step's duration per match is the
        game time since the previous step (or the reset)."""
        dt = (s.tick - self.clocks.prev_tick) / TICKS_PER_SECOND
        self.clocks.prev_tick[:] = s.tick
        parts = np.zeros((len(s.car_match), len(self.part_names)), dtype=np.float64)
        for k, name in enumerate(self.part_names):
            if name in self.fallback:
                row = 0
                for m, agents in enumerate(agent_orders):
                    values = self.fallback[name](m, bool(terminated[m]), bool(truncated[m]))
                    parts[row:row + len(agents), k] = [float(values[agent]) for agent in agents]
                    row += len(agents)
                parts[:, k] *= self.weights[k]
            else:
                parts[:, k] = BATCHED_PARTS[name](s, dt) * self.weights[k]
        rewards = np.zeros(len(s.car_match), dtype=np.float64)
        for k in range(len(self.part_names)):  # summed in part order, as NamedPartsReward does
            rewards += parts[:, k]
        return rewards, parts
