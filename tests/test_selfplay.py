"""The self-play vec env: slots <-> cars, episode ends per match, seeds, worker restarts, clean shutdown.

Everything runs real RocketSim matches; the vec env tests start real worker processes.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
from pathlib import Path

import numpy as np
import psutil
import pytest
from rlgym.rocket_league.api import Car, PhysicsObject
from rlgym.rocket_league.obs_builders import DefaultObs
from rlgym.rocket_league.sim import RocketSimEngine

from envs.components import build_match, selfplay_team_sizes
from envs.obs import FastDefaultObs
from envs.scripted import ScriptedDriver
from vecenv.base import probe_spaces
from vecenv.selfplay import SelfPlayVecEnv, WorkerError
from vecenv.worker import MatchGroup, SharedArrays, WorkerPlan, plan_workers
from tests.helpers import BallIntoOrangeGoalMutator, fast_config

POS_COEF = DefaultObs().POS_COEF
IDLE = 8  # the lookup-table row with all controls zero (checked by the last test)
SHM = Path("/dev/shm")


def selfplay_config(*matches: str, extra: tuple[str, ...] = ()) -> dict:
    """fast_config with only the given matches, e.g. selfplay_config("1v1=1", "2v2=1")."""
    zero = [f"environment.selfplay.matches.{name}=0" for name in ("1v1", "2v2", "3v3")]
    return fast_config(*zero, *(f"environment.selfplay.matches.{m}" for m in matches), *extra)


def make_venv(cfg: dict, seed: int = 0, workers: int = 2, **kwargs) -> SelfPlayVecEnv:
    return SelfPlayVecEnv(cfg.environment, cfg.rewards, seed, num_workers=workers, **kwargs)


def in_process_group(cfg: dict, seed: int) -> MatchGroup:
    """The matches of the config in one MatchGroup in this process (what a single worker runs)."""
    sizes = selfplay_team_sizes(cfg.environment)
    plan: WorkerPlan = plan_workers(sizes, 1)[0]
    obs_space, _, part_names = probe_spaces(cfg.environment, cfg.rewards)
    arrays = SharedArrays(mp.get_context("spawn"), 2 * sum(sizes), obs_space.shape[0], len(part_names))
    group = MatchGroup(plan, arrays, cfg.environment, cfg.rewards)
    group.reset(seed, 0)
    return group


def test_plan_workers_covers_every_slot_once_and_balances_cars():
    plans = plan_workers([1, 1, 1, 2, 3], 2)
    slots = [s for plan in plans for m in plan.matches for s in range(m.first_slot, m.stop_slot)]
    assert slots == list(range(16))
    cars = [sum(2 * m.team_size for m in plan.matches) for plan in plans]
    assert cars == [10, 6]  # whole matches: 1v1 x3 + 2v2 | 3v3
    assert len(plan_workers([1, 1], 8)) == 2  # never more workers than matches
    assert [len(p.matches) for p in plan_workers([1] * 16, 2)] == [8, 8]


def test_slots_hold_their_own_car_with_orange_mirrored():
    cfg = selfplay_config("1v1=1", "2v2=1")
    group = in_process_group(cfg, seed=3)
    rng = np.random.default_rng(0)
    for step in range(40):
        group.arrays.actions[:] = rng.integers(0, 90, size=6)
        group.step()
        for match in group.matches:
            state = match.env.state
            assert match.agents == sorted(match.agents, key=lambda a: (not a.startswith("blue"), a))
            for i, agent in enumerate(match.agents):
                obs = group.arrays.obs[match.plan.first_slot + i]
                car = state.cars[agent]
                orange = agent.startswith("orange")
                physics = car.inverted_physics if orange else car.physics
                ball = state.inverted_ball if orange else state.ball
                np.testing.assert_allclose(obs[52:55], physics.position * POS_COEF, rtol=1e-5, atol=1e-6)
                np.testing.assert_allclose(obs[0:3], ball.position * POS_COEF, rtol=1e-5, atol=1e-6)
    group.close()


def test_kickoff_observations_are_mirror_images_for_the_two_teams():
    cfg = selfplay_config("1v1=1")
    venv = make_venv(cfg, workers=1)
    try:
        obs = venv.reset()
        # Kickoff spots are point-symmetric: seen from its own side, each car sees the same field.
        np.testing.assert_allclose(obs[0], obs[1], atol=1e-6)
        assert not np.allclose(obs[0, 52:55], 0.0)
    finally:
        venv.close()


def test_goal_terminates_all_slots_of_the_match_and_resets_it():
    cfg = selfplay_config("1v1=1", "2v2=1")
    venv = make_venv(cfg, state_mutator=BallIntoOrangeGoalMutator())
    try:
        start = venv.reset()
        for _ in range(30):
            obs, rewards, dones, infos = venv.step(np.full(venv.num_envs, IDLE))
            if dones.any():
                break
        assert dones.all()  # both matches: the same start state, the same goal
        for slot, info in enumerate(infos):
            assert info["TimeLimit.truncated"] is False
            assert info["terminal_observation"].shape == (172,)
            blue = slot in (0, 2, 3)  # slots: 1v1 [blue-0, orange-0], 2v2 [blue-0, blue-1, orange-0, orange-1]
            assert info["goal"] == (1 if blue else -1)
            assert info["reward_parts"]["goal"] == (10.0 if blue else -10.0)
            assert not np.allclose(info["terminal_observation"], obs[slot])
        np.testing.assert_allclose(obs, start, atol=1e-6)  # reset to the mutator's start state in the same step
    finally:
        venv.close()


def test_timeout_truncates_every_slot_with_terminal_observation():
    cfg = selfplay_config("1v1=1", "2v2=1", extra=("environment.episode_seconds=1.0",))
    venv = make_venv(cfg)
    try:
        venv.reset()
        for step in range(1, 16):
            obs, _, dones, infos = venv.step(np.full(venv.num_envs, IDLE))
            assert dones.all() == (step == 15)  # 1 s at 15 decisions per second
        assert all(info["TimeLimit.truncated"] is True for info in infos)
        assert all(info["terminal_observation"].shape == obs.shape[1:] for info in infos)
    finally:
        venv.close()


def test_reward_of_each_car_is_the_sum_of_its_parts():
    cfg = selfplay_config("1v1=2")
    venv = make_venv(cfg)
    rng = np.random.default_rng(1)
    try:
        venv.reset()
        nonzero = set()
        for _ in range(200):
            _, rewards, _, infos = venv.step(rng.integers(0, 90, size=venv.num_envs))
            for reward, info in zip(rewards, infos):
                assert reward == pytest.approx(sum(info["reward_parts"].values()), abs=1e-5)
                nonzero |= {k for k, v in info["reward_parts"].items() if v != 0}
        assert "player_to_ball" in nonzero
    finally:
        venv.close()


def test_mixed_team_sizes_keep_num_envs_fixed():
    cfg = selfplay_config("1v1=2", "2v2=1", "3v3=1", extra=("environment.episode_seconds=0.5",))
    venv = make_venv(cfg)
    try:
        assert venv.num_envs == 2 * 2 + 4 + 6
        assert venv.reset().shape == (14, 172)
        ends = 0
        for _ in range(20):  # several resets of every match
            obs, rewards, dones, infos = venv.step(np.zeros(14, dtype=np.int64))
            assert obs.shape == (14, 172) and rewards.shape == dones.shape == (14,) and len(infos) == 14
            ends += int(dones.sum())
        assert ends >= 2 * 14
    finally:
        venv.close()


def rollout(venv: SelfPlayVecEnv, steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(123)
    seen = [venv.reset()]
    rewards, dones = [], []
    for _ in range(steps):
        obs, reward, done, _ = venv.step(rng.integers(0, 90, size=venv.num_envs))
        seen.append(obs)
        rewards.append(reward)
        dones.append(done)
    return np.array(seen), np.array(rewards), np.array(dones)


def test_same_seed_same_rollout_with_one_or_two_matches_per_worker():
    cfg = selfplay_config("1v1=2", extra=("environment.episode_seconds=2.0",))
    one_each, two_in_one = make_venv(cfg, seed=5, workers=2), make_venv(cfg, seed=5, workers=1)
    try:
        assert [len(p.matches) for p in one_each.plans] == [1, 1]
        assert [len(p.matches) for p in two_in_one.plans] == [2]
        a, b = rollout(one_each, 100), rollout(two_in_one, 100)
        assert a[2].any()  # the rollout crosses episode ends (and so kickoff resets, which draw random spots)
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    finally:
        one_each.close()
        two_in_one.close()


def test_repeated_action_engine_steps_exactly_like_rlgyms_engine():
    cfg = selfplay_config("2v2=1")
    runs = []
    for stock in (False, True):
        match, _ = build_match(cfg.environment, cfg.rewards, team_sizes=(2, 2))
        if stock:
            match.transition_engine = RocketSimEngine()
        random.seed(1)  # KickoffMutator's spots
        obs = match.reset()
        rng = np.random.default_rng(5)
        seen = []
        for _ in range(200):
            obs, _, terminated, truncated = match.step({a: rng.integers(90, size=1) for a in sorted(match.agents)})
            seen.append(np.concatenate([obs[a] for a in sorted(obs)]))
            if any(terminated.values()) or any(truncated.values()):
                obs = match.reset()
        runs.append(np.array(seen))
        match.close()
    np.testing.assert_array_equal(runs[0], runs[1])


def test_killed_worker_is_restarted_and_its_slots_truncated():
    cfg = selfplay_config("1v1=2")
    venv = make_venv(cfg, workers=2, max_restarts=1)
    try:
        last = venv.reset()
        for _ in range(3):
            last, _, _, _ = venv.step(np.zeros(4, dtype=np.int64))
        victim = venv.worker_pids()[1]
        os.kill(victim, signal.SIGKILL)
        with pytest.warns(RuntimeWarning, match="died"):
            obs, rewards, dones, infos = venv.step(np.zeros(4, dtype=np.int64))
        assert list(dones) == [False, False, True, True]
        for slot in (2, 3):
            assert infos[slot]["worker_restarted"] and infos[slot]["TimeLimit.truncated"]
            np.testing.assert_array_equal(infos[slot]["terminal_observation"], last[slot])
            assert rewards[slot] == 0.0
        assert venv.worker_pids()[1] != victim and venv.restarts == 1
        for _ in range(5):  # it goes on
            venv.step(np.zeros(4, dtype=np.int64))
        os.kill(venv.worker_pids()[0], signal.SIGKILL)
        with pytest.raises(WorkerError, match="max_worker_restarts"):  # one restart allowed, then it stops
            venv.step(np.zeros(4, dtype=np.int64))
    finally:
        venv.close()


def test_close_leaves_no_process_and_no_shared_memory_file():
    before = set(os.listdir(SHM))
    cfg = selfplay_config("1v1=2")
    venv = make_venv(cfg)
    pids = venv.worker_pids()
    venv.reset()
    venv.step(np.zeros(4, dtype=np.int64))
    venv.step_async(np.zeros(4, dtype=np.int64))  # a step cut short (as by Ctrl-C) must not hang close()
    venv.close()
    assert not [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    assert set(os.listdir(SHM)) == before


def test_idle_action_index_is_all_zero_controls():
    cfg = selfplay_config("1v1=1")
    match, _ = build_match(cfg.environment, cfg.rewards, team_sizes=(1, 1))
    assert not match.action_parser.parser._lookup_table[IDLE].any()
    match.close()


@pytest.mark.parametrize("size", [1, 2, 3])
def test_fast_default_obs_equals_rlgyms_default_obs(size):
    """On random states (rlgym-tools' random physics: cars and ball anywhere, moving) and random actions."""
    cfg = selfplay_config("1v1=1", extra=("environment.random_start_share=1.0",))
    match, _ = build_match(cfg.environment, cfg.rewards, team_sizes=(size, size))
    assert isinstance(match.obs_builder, FastDefaultObs)
    reference = DefaultObs(zero_padding=cfg.environment.obs_zero_padding)
    random.seed(size)
    match.reset()
    rng = np.random.default_rng(size)
    for _ in range(100):
        obs, _, terminated, truncated = match.step({a: rng.integers(90, size=1) for a in match.agents})
        expected = reference.build_obs(list(match.agents), match.state, {})
        for agent in match.agents:
            np.testing.assert_array_equal(obs[agent], expected[agent].astype(np.float32))
        if any(terminated.values()) or any(truncated.values()):
            match.reset()
    match.close()


def _slots(obj: object) -> dict:
    """Every slot of an rlgym state object, nested objects expanded, arrays as lists."""
    out = {}
    for cls in type(obj).__mro__:
        for name in getattr(cls, "__slots__", ()):
            value = getattr(obj, name)
            if isinstance(value, (PhysicsObject, Car)):
                value = _slots(value)
            elif isinstance(value, dict):
                value = {key: _slots(item) if isinstance(item, Car) else item for key, item in value.items()}
            elif isinstance(value, np.ndarray):
                value = (value.dtype.str, value.tolist())
            out[name] = value
    return out


def test_repeated_action_engines_game_state_is_rlgyms_field_for_field():
    """RepeatedActionEngine._get_state builds the GameState the stock RocketSimEngine._get_state builds."""
    cfg = selfplay_config("2v2=1", extra=("environment.random_start_share=0.5",))
    match, _ = build_match(cfg.environment, cfg.rewards, team_sizes=(2, 2))
    engine = match.transition_engine
    random.seed(3)
    match.reset()
    rng = np.random.default_rng(2)
    chaser = ScriptedDriver("chaser", match.action_parser.parser._lookup_table, rng)  # touches, demos, flips
    touched = 0
    for _ in range(300):
        agents = list(match.agents)
        chosen = chaser.act(match.state, agents) if rng.random() < 0.7 else rng.integers(90, size=len(agents))
        match.step({a: chosen[i: i + 1] for i, a in enumerate(agents)})
        for agent, car in match.state.cars.items():  # the step's touches, handed out again to both methods
            engine._touches[engine._cars[agent].id] = car.ball_touches
        touches = dict(engine._touches)
        stock = _slots(RocketSimEngine._get_state(engine))
        engine._touches.update(touches)  # _get_state hands the touches out once
        fast = _slots(engine._get_state())
        assert fast == stock
        touched += sum(car["ball_touches"] for car in fast["cars"].values())
        if match.state.goal_scored or rng.random() < 0.01:
            match.reset()
    assert touched > 0
    match.close()
