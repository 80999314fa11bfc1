"""The Gymnasium env and its worker processes: API, episode ends, reward parts, threads and seeds."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3.common.env_checker import check_env
from stable_baselines3.common.vec_env import SubprocVecEnv

from envs.rocket_league_env import RocketLeagueEnv
from vecenv.subproc import EnvFactory, close_vec_env, make_subproc_vec_env, single_threaded_children
from tests.helpers import BallIntoOrangeGoalMutator, fast_config


@pytest.fixture(scope="module")
def cfg():
    return fast_config()


def test_check_env_passes(cfg):
    env = RocketLeagueEnv(cfg.environment, cfg.rewards)
    check_env(env, warn=True)
    assert env.action_space.n == 90
    assert env.observation_space.shape == (52 + 40 * cfg.environment.obs_zero_padding,)
    env.close()


def test_reward_parts_add_up_to_reward(cfg):
    env = RocketLeagueEnv(cfg.environment, cfg.rewards)
    env.reset(seed=3)
    seen_nonzero = set()
    for step in range(300):
        # Full throttle + boost toward the ball from kickoff: touches happen.
        _, reward, terminated, truncated, info = env.step(env.action_space.sample() if step % 3 else 20)
        parts = info["reward_parts"]
        assert set(parts) == {k for k, w in cfg.rewards.items() if w != 0}
        assert reward == sum(parts.values())
        seen_nonzero |= {k for k, v in parts.items() if v != 0}
        if terminated or truncated:
            env.reset()
    assert "player_to_ball" in seen_nonzero


def test_goal_terminates_and_time_limit_truncates(cfg):
    goal_env = RocketLeagueEnv(cfg.environment, cfg.rewards, state_mutator=BallIntoOrangeGoalMutator())
    goal_env.reset(seed=0)
    for _ in range(30):
        _, reward, terminated, truncated, info = goal_env.step(8)
        if terminated or truncated:
            break
    assert terminated and not truncated
    assert info["goal"] == 1
    assert info["reward_parts"]["goal"] == cfg.rewards["goal"]

    env_cfg = cfg.environment.model_copy(update=dict(episode_seconds=1.0))
    timed = RocketLeagueEnv(env_cfg, cfg.rewards)
    timed.reset(seed=0)
    steps = 0
    while True:
        steps += 1
        _, _, terminated, truncated, _ = timed.step(8)  # idle: no goal, no touch
        if terminated or truncated:
            break
    assert truncated and not terminated
    assert steps == 15  # 1 s at 15 decisions per second


def test_workers_are_single_threaded_with_distinct_seeds(cfg):
    venv = make_subproc_vec_env(cfg.environment, cfg.rewards, num_envs=2, seed=7)
    try:
        infos = venv.env_method("process_info")
        assert len({i["pid"] for i in infos}) == 2
        for info in infos:
            assert info["OMP_NUM_THREADS"] == "1"
            assert info["torch_threads"] == 1
        assert venv.get_attr("np_random_seed") == [7, 8]
    finally:
        venv.close()


def test_close_after_a_step_cut_short_by_ctrl_c_ends_workers(cfg):
    """Ctrl-C inside step_wait can leave some workers' results unread; closing must neither hang nor leak."""
    import threading

    venv = make_subproc_vec_env(cfg.environment, cfg.rewards, num_envs=2, seed=0)
    processes = list(venv.processes)
    venv.step_async(np.zeros(2, dtype=np.int64))
    venv.remotes[0].recv()  # step_wait interrupted after reading the first worker only
    closer = threading.Thread(target=close_vec_env, args=(venv,), daemon=True)
    closer.start()
    closer.join(timeout=30)
    assert not closer.is_alive(), "close_vec_env hung"
    assert not any(p.is_alive() for p in processes)


def test_truncation_bootstraps_and_termination_does_not(cfg):
    """Through a real SubprocVecEnv -> VecMonitor -> VecNormalize and SB3's own collect_rollouts."""
    import torch as th
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

    from training.setup import make_model

    env_cfg = cfg.environment.model_copy(update=dict(episode_seconds=1.0))
    factories = [EnvFactory(env_cfg, cfg.rewards, 0),
                 EnvFactory(env_cfg, cfg.rewards, 1, state_mutator=BallIntoOrangeGoalMutator())]
    with single_threaded_children():
        venv = VecNormalize(VecMonitor(SubprocVecEnv(factories)), gamma=cfg.training.gamma)
    model = make_model(cfg, venv, th.device("cpu"), seed=0)

    class Record(BaseCallback):
        def __init__(self):
            super().__init__()
            self.steps = []

        def _on_step(self):
            pos = self.model.rollout_buffer.pos
            self.steps.append((pos, self.locals["rewards"].copy(), self.locals["dones"].copy(),
                               [dict(i) for i in self.locals["infos"]]))
            return True

    try:
        _, callback = model._setup_learn(model.n_steps * 2, Record())
        callback.on_training_start(locals(), globals())
        model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=model.n_steps)
        truncated = terminated = 0
        for pos, rewards, dones, infos in callback.steps:
            for idx in range(2):
                stored = model.rollout_buffer.rewards[pos, idx]
                if not dones[idx]:
                    assert stored == pytest.approx(rewards[idx], abs=1e-6)
                    continue
                assert "terminal_observation" in infos[idx]
                if infos[idx]["TimeLimit.truncated"]:
                    truncated += 1
                    obs = model.policy.obs_to_tensor(infos[idx]["terminal_observation"])[0]
                    with th.no_grad():
                        value = model.policy.predict_values(obs)[0].item()
                    assert stored == pytest.approx(rewards[idx] + model.gamma * value, abs=1e-5)
                else:
                    terminated += 1
                    assert stored == pytest.approx(rewards[idx], abs=1e-6)
        assert truncated >= 2 and terminated >= 2
    finally:
        venv.close()


def test_speed_and_face_ball_parts_follow_the_car(cfg):
    """Kickoff: driving straight at the ball (row 18: throttle + boost, no steer) faces it and earns speed_to_ball;
    driving backwards (row 2: throttle -1) moves away: speed_to_ball stays 0 where player_to_ball goes negative."""
    weights = dict(cfg.rewards, speed_to_ball=1.0, face_ball=1.0, player_to_ball=1.0)
    env_cfg = cfg.environment.model_copy(update=dict(state_mutators=["kickoff"], random_start_share=0.0))
    for action, moving_toward in ((18, True), (2, False)):
        env = RocketLeagueEnv(env_cfg, weights)
        env.reset(seed=0)
        parts = [env.step(action)[4]["reward_parts"] for _ in range(10)][-1]
        dt = cfg.environment.tick_skip / 120
        if moving_toward:
            assert parts["speed_to_ball"] > 0 and parts["speed_to_ball"] == pytest.approx(parts["player_to_ball"])
        else:
            assert parts["player_to_ball"] < 0 and parts["speed_to_ball"] == 0.0
        # Kickoff spots face the ball, and neither straight-line action turns the car.
        assert parts["face_ball"] == pytest.approx(dt, rel=0.05)
        env.close()


def test_scripted_chaser_reaches_the_ball_and_scores_on_an_idle_car(cfg):
    from play.match import lookup_table, make_driver, play_episodes, summarize_episodes

    env_cfg = cfg.environment.model_copy(update=dict(no_touch_timeout_seconds=10.0, state_mutators=["kickoff"]))
    table = lookup_table(env_cfg)
    chaser, idle = make_driver("chaser", table, 0), make_driver("idle", table, 0)
    games = play_episodes(chaser, idle, env_cfg, cfg.rewards, 1, 4, seed=1)
    summary = summarize_episodes(games)
    assert summary["touch_rate"]["blue"] == 1.0 and summary["touch_rate"]["orange"] == 0.0
    assert summary["goals_for_per_episode"] > 0 and summary["goals_against_per_episode"] == 0
    # Each game's start is one of blue's five kickoff spots, and the spot counts follow from them.
    kickoff_spots = {(-2048, -2560), (2048, -2560), (-256, -3840), (256, -3840), (0, -4608)}
    assert {game.blue_start for game in games} <= kickoff_spots
    assert summary["start_spots"] == summary["start_spots_touched"] == len({game.blue_start for game in games})


def test_a_model_with_other_spaces_is_refused_naming_it_and_the_fix():
    from types import SimpleNamespace

    import gymnasium as gym

    from training.setup import check_spaces

    env = SimpleNamespace(observation_space=gym.spaces.Box(-np.inf, np.inf, (172,), np.float32),
                          action_space=gym.spaces.Discrete(90))
    check_spaces(env, env, "model 'same.zip'")  # the same spaces pass
    other = SimpleNamespace(observation_space=gym.spaces.Box(-np.inf, np.inf, (174,), np.float32),
                            action_space=env.action_space)
    with pytest.raises(ValueError, match=r"model 'm.zip' does not fit the configured env \(Observation spaces do not "
                                         r"match.*\); use the config the model was trained with"):
        check_spaces(other, env, "model 'm.zip'")
