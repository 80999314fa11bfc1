"""Play matches between two drivers in this process: a trained model, a past version, or a scripted bot.

One place that plays matches, reused by ``evaluate.py``, the learning benchmark (``bench/learning.py``) and the
league tests. A *driver* chooses the lookup-table actions of one team's cars each decision, from their raw
observations (each car sees the match from its own side) and the game state.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Protocol, Sequence

import numpy as np
from rlgym.rocket_league.api import GameState
from rlgym.rocket_league.common_values import BLUE_TEAM
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

from config.schema import EnvironmentConfig, Rewards
from envs.components import build_match, lookup_table  # noqa: F401 - lookup_table: re-exported for the scripts
from envs.scripted import SCRIPTED_NAMES, ScriptedDriver
from training.flat_obs import normalize_obs
from training.model_files import inspect_pair, read_normalizer

#: Called after every step with (info holding ``"state"``, blue's mean step reward, 1-based episode, blue score,
#: orange score).
StepObserver = Callable[[dict, float, int, int, int], None]


class Driver(Protocol):
    """Chooses actions for ``agents``: ``obs`` is their raw observations ``[n, obs_size]``; returns ``[n]`` ints."""

    def __call__(self, obs: np.ndarray, state: GameState, agents: Sequence[str]) -> np.ndarray: ...


class PolicyDriver:
    """A PPO policy with its own frozen observation statistics (``VecNormalize``; None: raw observations)."""

    def __init__(self, model: PPO, normalizer: Optional[VecNormalize], deterministic: bool = True):
        self.model, self.normalizer, self.deterministic = model, normalizer, deterministic

    def __call__(self, obs: np.ndarray, state: GameState, agents: Sequence[str]) -> np.ndarray:
        if self.normalizer is not None:
            obs = normalize_obs(self.normalizer, obs)
        actions, _ = self.model.predict(obs, deterministic=self.deterministic)
        return np.asarray(actions, dtype=np.int64).reshape(len(agents))


class ScriptedTeam:
    """A :class:`envs.scripted.ScriptedDriver` as a :class:`Driver` (it ignores the observations)."""

    def __init__(self, driver: ScriptedDriver):
        self.driver = driver

    def __call__(self, obs: np.ndarray, state: GameState, agents: Sequence[str]) -> np.ndarray:
        return self.driver.act(state, agents)


def load_policy_driver(model_path: Path, deterministic: bool = True, normalizer_path: Optional[Path] = None,
                       device: str = "cpu") -> PolicyDriver:
    """A saved pair as a driver (normalizer found beside the model unless given).

    :raises FileNotFoundError, training.model_files.BadModelFile: with a message naming the file.
    """
    pair = inspect_pair(Path(model_path), normalizer_path)
    normalizer = read_normalizer(pair.normalizer_path)
    normalizer.training = False
    return PolicyDriver(PPO.load(pair.model_path, device=device), normalizer, deterministic)


def make_driver(opponent: str, table: np.ndarray, seed: int, deterministic: bool = True) -> Driver:
    """A scripted driver by name (:data:`envs.scripted.SCRIPTED_NAMES`), a saved model's ``.zip`` path, or a bot
    folder written by ``export_rlbot.py`` (always deterministic, as it plays in the game)."""
    if opponent in SCRIPTED_NAMES:
        return ScriptedTeam(ScriptedDriver(opponent, table, np.random.default_rng(seed)))
    from rlbot_harness.driver import ExportedBotDriver, is_bot_folder

    if is_bot_folder(Path(opponent)):
        return ExportedBotDriver(Path(opponent))
    return load_policy_driver(Path(opponent), deterministic)


@dataclass
class MatchEpisode:
    """One episode. ``reward`` is the blue cars' mean raw reward sum; ``length_s`` in game seconds; ``*_touched``
    whether a car of that team touched the ball; ``blue_start`` where the first blue car started (x, y in uu,
    rounded): from kickoffs, one of the five kickoff spots."""

    reward: float
    length_s: float
    blue_goals: int
    orange_goals: int
    blue_touched: bool
    orange_touched: bool
    blue_start: tuple[int, int]


def play_episodes(blue: Driver, orange: Optional[Driver], env_cfg: EnvironmentConfig, reward_weights: Rewards,
                  team_size: int, episodes: int, seed: int,
                  observers: Sequence[StepObserver] = ()) -> list[MatchEpisode]:
    """Play ``episodes`` ``team_size`` v ``team_size`` episodes; ``blue`` drives the blue cars, ``orange`` the
    orange ones (None: ``blue`` drives both teams in one batch, as in self-play training).

    Episodes end as in training (goal, time limit, no-touch timeout); start states follow the configured
    mutators, seeded by ``seed``. Drivers that read RLBot packets (exported bots: they have ``attach_engine``)
    get a :class:`rlbot_harness.sim.PacketEngine`, which has the training engine's physics and timing.
    """
    engine = None
    packet_drivers = [d for d in (blue, orange) if d is not None and hasattr(d, "attach_engine")]
    if packet_drivers:
        from rlbot_harness.sim import PacketEngine

        engine = PacketEngine()
        for driver in packet_drivers:
            driver.attach_engine(engine)
    match, _ = build_match(env_cfg, reward_weights, team_sizes=(team_size, team_size), transition_engine=engine)
    decision_seconds = env_cfg.tick_skip / 120
    random.seed(seed)  # rlgym's mutators draw from the global generators
    np.random.seed(seed % 2**32)
    results: list[MatchEpisode] = []
    try:
        obs = match.reset()
        start = blue_start(match.state)
        reward = 0.0
        steps = blue_goals = orange_goals = 0
        touched = {0: False, 1: False}
        while len(results) < episodes:
            state = match.state
            agents = sorted(obs)
            blue_cars = [a for a in agents if state.cars[a].team_num == BLUE_TEAM]
            orange_cars = [a for a in agents if state.cars[a].team_num != BLUE_TEAM]
            teams = [(blue, agents)] if orange is None else [(blue, blue_cars), (orange, orange_cars)]
            actions = {}
            for driver, cars in teams:
                chosen = driver(np.stack([obs[a] for a in cars]), state, cars)
                actions.update({a: np.array([int(x)]) for a, x in zip(cars, chosen)})
            obs, rewards, terminated, truncated = match.step(actions)
            state = match.state
            steps += 1
            step_reward = float(np.mean([rewards[a] for a in blue_cars]))
            reward += step_reward
            for car in state.cars.values():
                touched[car.team_num] |= car.ball_touches > 0
            if state.goal_scored:
                blue_goals += int(state.scoring_team == BLUE_TEAM)
                orange_goals += int(state.scoring_team != BLUE_TEAM)
            for observer in observers:
                observer({"state": state}, step_reward, len(results) + 1, blue_goals, orange_goals)
            if any(terminated.values()) or any(truncated.values()):
                results.append(MatchEpisode(reward, steps * decision_seconds, blue_goals, orange_goals,
                                            touched[0], touched[1], start))
                obs = match.reset()
                start = blue_start(match.state)
                reward = 0.0
                steps = blue_goals = orange_goals = 0
                touched = {0: False, 1: False}
    finally:
        match.close()
    return results


def blue_start(state: GameState) -> tuple[int, int]:
    """Where the first blue car (by agent id) starts, (x, y) in uu rounded to whole units."""
    car = next(state.cars[a] for a in sorted(state.cars) if state.cars[a].team_num == BLUE_TEAM)
    x, y = car.physics.position[:2]
    return int(round(float(x))), int(round(float(y)))


def summarize_episodes(results: Sequence[MatchEpisode]) -> dict[str, Any]:
    """Per-episode means from blue's side: goals for/against, touch rates, win/draw/loss shares, and the start
    spots (``start_spots``: how many different blue start positions were played, ``start_spots_touched``: from
    how many of them blue touched the ball at least once; from kickoffs a deterministic bot against a
    deterministic opponent plays one game per spot, so these say more than the touch rate)."""
    rewards = np.array([r.reward for r in results])
    margin = np.array([r.blue_goals - r.orange_goals for r in results])
    return {
        "episodes": len(results),
        "mean_reward": float(rewards.mean()),
        "std_reward": float(rewards.std()),
        "mean_length_s": float(np.mean([r.length_s for r in results])),
        "goals_for_per_episode": float(np.mean([r.blue_goals for r in results])),
        "goals_against_per_episode": float(np.mean([r.orange_goals for r in results])),
        "touch_rate": {"blue": float(np.mean([r.blue_touched for r in results])),
                       "orange": float(np.mean([r.orange_touched for r in results]))},
        "win_rate": float(np.mean(margin > 0)),
        "loss_rate": float(np.mean(margin < 0)),
        "start_spots": len({r.blue_start for r in results}),
        "start_spots_touched": len({r.blue_start for r in results if r.blue_touched}),
    }
