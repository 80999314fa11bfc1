"""League self-play: league matches in the vec env, frozen past versions, ratings, and the league in a real run."""

from __future__ import annotations

import json
import shutil
from typing import Any

import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from config.schema import Shares
from envs.scripted import SCRIPTED_NAMES
from vecenv.base import ScriptedOpponents
from vecenv.selfplay import SelfPlayVecEnv
from vecenv.worker import TRAINER_DRIVEN
from league.league import League
from league.ratings import ANCHORS, CURRENT, Ratings
from tests.helpers import FAST_TRAIN, BallIntoOrangeGoalMutator, fast_config, run_cli, run_module, set_args
from training.setup import make_model, make_training_env

LEAGUE_TRAIN = ["league.matches.1v1=1", "league.snapshot_every=256"]  # one league match beside the self-play one


class RecordingOpponents(ScriptedOpponents):
    """Scripted opponents that also keep every result and every batch of observations asked from the trainer."""

    def __init__(self, kinds: list[int]):
        super().__init__()
        self.kinds, self.results, self.asked = kinds, [], []

    def assign(self, match: int) -> int:
        return self.kinds[match]

    def result(self, match: int, outcome, touched=False):
        self.results.append((match, outcome, touched))

    def act(self, obs: np.ndarray, matches: np.ndarray) -> np.ndarray:
        self.asked.append((obs.copy(), matches.copy()))
        return np.full(len(obs), 8)  # idle row


def test_league_matches_make_only_learning_cars_slots_and_report_outcomes():
    cfg = fast_config("environment.selfplay.matches.1v1=1")
    # League match 0 is driven from the trainer, match 1 by the scripted chaser; the ball flies into the orange
    # goal at every reset, so the learning team wins when it plays blue and loses when it plays orange.
    opponents = RecordingOpponents([TRAINER_DRIVEN, 1 + SCRIPTED_NAMES.index("chaser")])
    venv = SelfPlayVecEnv(cfg.environment, cfg.rewards, seed=3, num_workers=2, league_sizes=[1, 1],
                          opponents=opponents, state_mutator=BallIntoOrangeGoalMutator())
    try:
        assert venv.num_envs == 2 + 1 + 1  # self-play 1v1: 2 cars; each league 1v1: only the learning car
        obs = venv.reset()
        sides = []
        for _ in range(60):
            sides.append(venv._arrays.learner_team.copy())
            obs, rewards, dones, infos = venv.step(np.full(venv.num_envs, 8))
            assert obs.shape == (4, venv.observation_space.shape[0])
            assert [info.get("league", False) for info in infos] == [False, False, True, True]
        assert opponents.results, "no league episode ended"
        for match, outcome, touched in opponents.results:
            assert outcome in (1, -1)  # every episode ends in a goal
            assert isinstance(touched, bool)
        # The trainer was asked for actions of match 0's opponent only, one row per step.
        assert all(len(obs_rows) == 1 and list(matches) == [0] for obs_rows, matches in opponents.asked)
        assert len(opponents.asked) == 60
        drawn = {int(side) for step in sides for side in step}
        assert drawn == {0, 1}  # the learning side is drawn per episode
    finally:
        venv.close()


def test_outcome_follows_the_learning_side():
    cfg = fast_config("environment.selfplay.matches.1v1=0", "league.matches.1v1=1")  # a league match alone
    opponents = RecordingOpponents([1])  # idle opponent
    venv = SelfPlayVecEnv(cfg.environment, cfg.rewards, seed=5, num_workers=1, league_sizes=[1],
                          opponents=opponents, state_mutator=BallIntoOrangeGoalMutator())
    try:
        venv.reset()
        touched = False
        for _ in range(80):
            side = int(venv._arrays.learner_team[0])
            _, rewards, dones, infos = venv.step(np.full(1, 8))
            touched |= bool(infos[0]["touched"])
            if dones[0]:
                _, outcome, reported_touch = opponents.results[-1]
                assert outcome == (1 if side == 0 else -1)  # blue scores: a win only for a blue learner
                assert infos[0]["goal"] == outcome
                assert reported_touch == touched  # the league hears whether the learning car touched the ball
                touched = False
    finally:
        venv.close()


def test_scripted_learner_that_always_scores_gains_rating():
    ratings = Ratings()
    ordinals = [ratings.current.ordinal]
    for _ in range(30):
        ratings.record_game("idle", 1)
        ordinals.append(ratings.current.ordinal)
    assert all(b > a for a, b in zip(ordinals, ordinals[1:]))
    assert ratings.current.ordinal > ANCHORS["idle"][0]  # above the anchor it keeps beating
    assert ratings.records["idle"].mu == ANCHORS["idle"][0]  # anchors never move
    assert ratings.win_probability("idle") > 0.9 and ratings.current.wins == 30


def test_draws_do_not_pull_the_rating_down_to_the_opponent():
    """Most early league games end without a goal. A bot that wins 1 game in 5 against random and draws the rest
    is better than random: its rating must end above random's, and the even-games pick must then prefer the chaser
    (closer to even) to the idle car (which rating draws as ties used to make look even)."""
    ratings = Ratings()
    for game in range(200):
        ratings.record_game("random", 1 if game % 5 == 0 else 0)
    assert ratings.current.mu > ANCHORS["random"][0]
    assert ratings.current.draws == 160 and ratings.current.wins == 40
    assert ratings.win_probability("random") > 0.5
    p = {name: ratings.win_probability(name) for name in ("idle", "chaser")}
    assert p["chaser"] * (1 - p["chaser"]) > p["idle"] * (1 - p["idle"])


def test_stage_mix_weights_the_scripted_pick(tmp_path):
    league = League(fast_config(*LEAGUE_TRAIN).league, tmp_path, n_matches=1, seed=0)
    def picks(weights: dict[str, float]) -> set[str]:
        league.set_mix(Shares(past=0.0, scripted=1.0, self=0.0), weights)
        drawn = set()
        for _ in range(50):
            league.assign(0)
            drawn.add(league.assigned[0])
        return drawn

    assert picks({"idle": 1.0}) == {"idle"}  # a curriculum stage against idle only
    assert picks({"idle": 1.0, "chaser": 1.0}) == {"idle", "chaser"}
    league.resize(3)
    assert len(league.assigned) == 3


def league_run(tmp_path, n_matches: int) -> tuple[dict, Any, PPO, League]:
    """A small league run's config, vec env (close it), model and league, bound together."""
    cfg = fast_config(*[f"{k}" for k in LEAGUE_TRAIN])
    env = make_training_env(cfg, 3, seed=0)
    model = make_model(cfg, env, th.device("cpu"), seed=0)
    league = League(cfg.league, tmp_path, n_matches=n_matches, seed=0)
    league.bind(model, env)
    env.unwrapped.set_opponents(league)
    return cfg, env, model, league


def test_snapshot_acts_from_frozen_weights_and_its_own_normalizer(tmp_path):
    cfg, env, model, league = league_run(tmp_path, n_matches=1)
    try:
        model.learn(128)
        name = league.snapshot()
        past = league.pool[name]
        obs = np.random.default_rng(0).normal(size=(16, env.observation_space.shape[0])).astype(np.float32) * 3

        def probs(policy, normalizer: VecNormalize) -> np.ndarray:
            with th.no_grad():
                dist = policy.get_distribution(th.as_tensor(normalizer.normalize_obs(obs)))
            return dist.distribution.probs.numpy()

        before = probs(past.policy, past.normalizer)
        assert np.allclose(before, probs(model.policy, env))  # a copy of the current policy and statistics
        model.learn(512, reset_num_timesteps=False)  # train on: weights and running statistics move on
        assert not np.allclose(probs(model.policy, env), before, atol=1e-4)
        assert np.array_equal(probs(past.policy, past.normalizer), before)  # the past version did not move
        # The saved pair is an ordinary PPO.load pair, and the league restores it as the same opponent.
        restored = League(cfg.league, tmp_path, n_matches=1, seed=0)
        restored.load("cpu")
        assert list(restored.pool) == [name]
        assert np.allclose(probs(restored.pool[name].policy, restored.pool[name].normalizer), before, atol=1e-6)
        steps = int(name.split("_")[1])
        assert PPO.load(tmp_path / "league" / f"model_{name}.zip", device="cpu").num_timesteps == steps
        assert restored.ratings.records[name].steps == steps
    finally:
        env.close()


def test_past_versions_act_together_as_each_would_alone(tmp_path):
    """All past versions in play answer in one stacked pass (league/stacked.py) with each version's own weights
    and normalizer: the same logits as each version's policy on its own normalized observations."""
    _, env, model, league = league_run(tmp_path, n_matches=4)
    try:
        names = []
        for steps in (128, 256, 256):  # three versions: different weights and observation statistics
            model.learn(steps, reset_num_timesteps=False)
            names.append(league.snapshot())
        obs = np.random.default_rng(1).normal(size=(10, env.observation_space.shape[0])).astype(np.float32) * 3
        version = np.array([2, 0, 1, 1, 2, 0, 0, 2, 1, 2])
        stacked = league._stacked_pool()
        assert stacked is not None and list(league._stacked[0]) == names
        for i, name in enumerate(names):
            past = league.pool[name]
            with th.no_grad():
                alone = past.policy.get_distribution(th.as_tensor(past.normalizer.normalize_obs(obs)))
            rows = np.flatnonzero(version == i)
            np.testing.assert_array_equal(stacked.normalize(obs[rows], version[rows]),
                                          past.normalizer.normalize_obs(obs[rows]))
            together = stacked.logits(obs[rows], version[rows]).numpy()
            mixed = stacked.logits(obs, version).numpy()[rows]  # rows of other versions in the same batch
            expected = alone.distribution.logits.numpy()[rows]
            shift = lambda x: x - x.max(axis=1, keepdims=True)  # noqa: E731 (Categorical normalizes logits)
            np.testing.assert_allclose(shift(together), shift(expected), rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(shift(mixed), shift(expected), rtol=1e-5, atol=1e-5)
        league.assigned = [names[0], CURRENT, names[2], "chaser"]
        actions = league.act(obs[:3], np.array([0, 1, 2]))
        assert actions.shape == (3,) and ((0 <= actions) & (actions < 90)).all()
        league.drop(names[1])  # the pool changed: the stack is rebuilt without it
        assert league._stacked is None and league._stacked_pool() is not None and list(league._stacked[0]) == [
            names[0], names[2]]
    finally:
        env.close()


def test_league_run_logs_ratings_and_its_pool_survives_resume(tmp_path):
    args = ["--checkpoint-dir", "ck", "--log-dir", "logs", *set_args(FAST_TRAIN + LEAGUE_TRAIN)]
    first = run_cli("train_sb3.py", "--total-timesteps", "768", *args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "League:      opponents past 0.5, scripted 0.4, self 0.1" in first.stdout
    ladder_path = tmp_path / "ck" / "PPO_1" / "league" / "ladder.json"
    state = json.loads(ladder_path.read_text())
    pool = state["pool"]  # 3 slots: a snapshot at the first step past 256, 512 and 768
    assert [int(name.split("_")[1]) // 256 for name in pool] == [1, 2, 3] and state["first_snapshot"] == pool[0]
    games_before = next(r for r in state["ratings"] if r["name"] == "current")

    acc = EventAccumulator(str(tmp_path / "logs" / "PPO_1"), size_guidance={"scalars": 0})
    acc.Reload()
    for tag in ("league/rating", "league/pool_size", "league/games", "league_reward/goal_mean", "reward/goal_mean"):
        assert tag in acc.Tags()["scalars"], tag

    resumed = run_cli("train_sb3.py", "--resume", "PPO_1", "--total-timesteps", "1536", "--checkpoint-dir", "ck",
                      "--log-dir", "logs", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    state = json.loads(ladder_path.read_text())
    assert state["pool"][:3] == pool and len(state["pool"]) > 3  # kept, and grew
    current = next(r for r in state["ratings"] if r["name"] == "current")
    assert current["wins"] + current["draws"] + current["losses"] >= (
        games_before["wins"] + games_before["draws"] + games_before["losses"])  # the record carried over

    ladder = run_module("league.ladder", "PPO_1", "--checkpoint-dir", "ck", cwd=tmp_path, timeout=60)
    assert ladder.returncode == 0, ladder.stderr
    assert f"{pool[0]} (first snapshot)" in ladder.stdout and "chaser" in ladder.stdout


def test_evaluate_plays_two_saved_models_against_each_other(trained, tmp_path):
    root, _ = trained
    shutil.copytree(root / "ck", tmp_path / "ck")
    result = run_cli("evaluate.py", "--model", "ck/PPO_1/model_final.zip", "--opponent",
                     "ck/PPO_1/checkpoint_256.zip,chaser", "--episodes", "2", "--stochastic", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1v1, stochastic (sampled actions)" in result.stdout  # the header says how both sides chose actions
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(summary) >= {"vs_ck/PPO_1/checkpoint_256.zip", "vs_chaser"}
    run = summary["vs_ck/PPO_1/checkpoint_256.zip"]
    assert run["episodes"] == 2 and 0.0 <= run["win_rate"] <= 1.0
    bad = run_cli("evaluate.py", "--model", "ck/PPO_1/model_final.zip", "--opponent", "ck/PPO_1/nope.zip",
                  cwd=tmp_path, timeout=60)
    assert bad.returncode == 2 and "nope.zip" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize("name", SCRIPTED_NAMES)
def test_scripted_names_are_config_choices(name):
    from config.schema import SCRIPTED_OPPONENTS

    assert name in SCRIPTED_OPPONENTS


def test_dropping_a_past_version_mid_episode_hands_its_matches_to_the_current_policy(tmp_path):
    cfg = fast_config(*LEAGUE_TRAIN, "league.pool_size=1", "league.shares.past=1", "league.shares.scripted=0",
                      "league.shares.self=0")
    env = make_training_env(cfg, 3, seed=0)
    try:
        model = make_model(cfg, env, th.device("cpu"), seed=0)
        league = League(cfg.league, tmp_path, n_matches=1, seed=0)
        league.bind(model, env)
        first = league.snapshot()
        model.num_timesteps = 10
        second = league.snapshot()  # pool_size 1, but the first snapshot stays: both are kept
        model.num_timesteps = 20
        league.assign(0)
        playing = league.assigned[0]
        third = league.snapshot()  # now the second (not the first) is dropped
        assert list(league.pool) == [first, third] and second not in league.ratings.records
        assert not (tmp_path / "league" / f"model_{second}.zip").exists()
        if playing == second:
            assert league.assigned[0] == "current"
        obs = np.zeros((1, env.observation_space.shape[0]), dtype=np.float32)
        assert league.act(obs, np.array([0])).shape == (1,)  # no KeyError, whoever was playing
        league.assigned[0] = second  # the case that crashed a run: force it
        league.drop(second)
        assert league.assigned[0] == "current" and league.act(obs, np.array([0])).shape == (1,)
    finally:
        env.close()
