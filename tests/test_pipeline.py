"""Pipelined rollout collection (training.pipeline_groups > 1): groups of workers in flight, ordinary on-policy
rollouts (real workers, real SB3)."""

from __future__ import annotations

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecMonitor, VecNormalize

from vecenv.base import ScriptedOpponents
from vecenv.selfplay import SelfPlayVecEnv
from tests.helpers import fast_config, play
from training.pipeline import GroupWrappers, PipelinedPPO
from training.setup import make_model, make_training_env


class KeepRollout(BaseCallback):
    """Copies the rollout buffer at the end of the first rollout, before the update, and stops."""

    def __init__(self) -> None:
        super().__init__()
        self.buffer: dict[str, np.ndarray] = {}
        self.checks: dict[str, np.ndarray] = {}

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        if self.buffer:
            return
        buf = self.model.rollout_buffer
        self.buffer = {name: getattr(buf, name).copy() for name in ("observations", "actions", "rewards",
                                                                    "episode_starts", "values", "log_probs")}
        obs = th.as_tensor(buf.observations.reshape(-1, buf.observations.shape[-1]))
        acts = th.as_tensor(buf.actions.reshape(-1))
        with th.no_grad():
            values, log_prob, _ = self.model.policy.evaluate_actions(obs, acts)
        self.checks = {"values": values.numpy().reshape(buf.values.shape),
                       "log_probs": log_prob.numpy().reshape(buf.log_probs.shape)}


def collect(groups: int, seed: int = 4, plain_sb3: bool = False) -> tuple[KeepRollout, PipelinedPPO]:
    cfg = fast_config("environment.selfplay.matches.1v1=2", "environment.selfplay.num_workers=2",
                      "league.matches.1v1=2", f"training.pipeline_groups={groups}", "training.n_steps=48",
                      "training.batch_size=48")
    env = make_training_env(cfg, 6, seed)
    try:
        model = make_model(cfg, env, th.device("cpu"), seed)
        if plain_sb3:
            model.__class__ = PPO  # the same model with SB3's own collect_rollouts
        keep = KeepRollout()
        model.learn(total_timesteps=6 * 48, callback=keep)
        return keep, model
    finally:
        env.close()


def test_pipelined_rollout_is_on_policy_and_repeatable():
    first, model = collect(groups=2)
    assert isinstance(model, PipelinedPPO) and model.pipeline_groups == 2
    buf = first.buffer
    # every stored action, value and log-probability is the policy's on the stored observation
    np.testing.assert_allclose(first.checks["log_probs"], buf["log_probs"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(first.checks["values"], buf["values"], rtol=1e-4, atol=1e-5)
    assert buf["episode_starts"][1:].any(), "no episode ended: the test misses resets inside the rollout"
    assert len(model.ep_info_buffer) > 0  # VecMonitor's episode records reach SB3's logger
    second, _ = collect(groups=2)
    for name, values in buf.items():
        np.testing.assert_array_equal(values, second.buffer[name], err_msg=name)


def test_one_group_is_sb3s_loop():
    """pipeline_groups 1 fills the buffer SB3's own PPO fills with the same seed: the same actions, values and
    log-probabilities bit for bit (the sampler without torch.distributions draws the same random numbers), the same
    rewards up to float32 rounding (truncated episodes are bootstrapped in one batched value call, SB3 makes one
    call per slot)."""
    ours, model = collect(groups=1)
    assert isinstance(model, PipelinedPPO) and model.pipeline_groups == 1
    theirs, plain = collect(groups=1, plain_sb3=True)
    assert type(plain) is PPO
    for name, values in ours.buffer.items():
        if name == "rewards":
            np.testing.assert_allclose(values, theirs.buffer[name], rtol=1e-6, atol=1e-6, err_msg=name)
        else:
            np.testing.assert_array_equal(values, theirs.buffer[name], err_msg=name)
    assert ours.buffer["episode_starts"][1:].any()  # the rollout crosses episode ends (and bootstraps)


def test_stepping_groups_gives_what_a_whole_step_gives():
    """Groups of workers stepped in flight (league matches included) give the same results as whole steps."""
    cfg = fast_config("environment.selfplay.matches.1v1=3")
    results = []
    for groups in (0, 2):
        env = SelfPlayVecEnv(cfg.environment, cfg.rewards, seed=2, num_workers=3, league_sizes=[1],
                             opponents=ScriptedOpponents(seed=1))
        try:
            actions = np.random.default_rng(1).integers(0, 90, size=(40, env.num_envs))
            results.append(play(env, actions, groups))
        finally:
            env.close()
    assert any(step[2].any() for step in results[0][1:])
    for want, have in zip(*results):
        for a, b in zip(want, have):
            if isinstance(a, list):
                assert all((x is None and y is None) or np.array_equal(x, y) for x, y in zip(a, b))
            else:
                np.testing.assert_array_equal(a, b)


class Replay(VecEnv):
    """A vec env that gives back recorded steps (observations, rewards, dones with terminal observations): the same
    data for SB3's wrappers and for the pipeline's copy of them."""

    def __init__(self, first_obs: np.ndarray, steps: list[tuple]):
        super().__init__(len(first_obs), spaces.Box(-np.inf, np.inf, first_obs.shape[1:], np.float32),
                         spaces.Discrete(2))
        self.first_obs, self.steps, self.t = first_obs, steps, 0

    def reset(self):
        return self.first_obs.copy()

    def step_async(self, actions):
        pass

    def step_wait(self):
        obs, rewards, dones, infos = self.steps[self.t]
        self.t += 1
        return obs.copy(), rewards.copy(), dones.copy(), [dict(i) for i in infos]

    def close(self):
        pass

    def get_attr(self, attr_name, indices=None):
        return [None] * self.num_envs

    def set_attr(self, attr_name, value, indices=None):
        pass

    def env_method(self, method_name, *args, indices=None, **kwargs):
        return [None] * self.num_envs

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False] * self.num_envs


def test_group_wrappers_do_what_sb3s_vecmonitor_and_vecnormalize_do():
    """training/pipeline.py applies VecMonitor's and VecNormalize's step to one group's slots at a time, following
    the pinned SB3's code. On the same steps, for all slots at once, it must give exactly what SB3's own wrappers
    give (normalized observations and rewards, terminal observations, episode records, running statistics); in two
    groups, the same statistics up to float rounding. A new SB3 whose wrappers step differently fails here."""
    rng = np.random.default_rng(0)
    n, size = 6, 5
    steps = []
    for _ in range(30):
        dones = rng.random(n) < 0.2
        infos = [{"reward_parts": {"a": 1.0}} for _ in range(n)]
        for i in np.flatnonzero(dones):
            infos[i].update(terminal_observation=rng.normal(3, 2, size).astype(np.float32),
                            **{"TimeLimit.truncated": bool(rng.random() < 0.5)})
        steps.append((rng.normal(3, 2, (n, size)).astype(np.float32), rng.normal(1, 3, n).astype(np.float32), dones,
                      infos))
    first = rng.normal(3, 2, (n, size)).astype(np.float32)

    def stack() -> VecNormalize:
        env = VecNormalize(VecMonitor(Replay(first, steps)), gamma=0.97, clip_obs=5.0, clip_reward=4.0)
        env.reset()
        return env

    theirs, ours, halves = stack(), stack(), stack()
    whole, groups = GroupWrappers(ours), GroupWrappers(halves)
    for obs, rewards, dones, infos in steps:
        want = theirs.step(np.zeros(n))
        got = whole.apply(slice(0, n), obs.copy(), rewards.copy(), dones, [dict(i) for i in infos])
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        for have, expected in zip(got[2], want[3]):
            assert set(have) == set(expected)
            if "episode" in expected:
                assert (have["episode"]["r"], have["episode"]["l"]) == (expected["episode"]["r"],
                                                                        expected["episode"]["l"])
            if "terminal_observation" in expected:
                np.testing.assert_array_equal(have["terminal_observation"], expected["terminal_observation"])
        for part in (slice(0, n // 2), slice(n // 2, n)):
            groups.apply(part, obs[part].copy(), rewards[part].copy(), dones[part],
                         [dict(i) for i in infos[part]])
    for mine, how in ((ours, np.testing.assert_array_equal),
                      (halves, lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9))):
        for name in ("mean", "var", "count"):
            how(getattr(mine.obs_rms, name), getattr(theirs.obs_rms, name))
            how(getattr(mine.ret_rms, name), getattr(theirs.ret_rms, name))
        how(mine.returns, theirs.returns)
        how(mine.venv.episode_returns, theirs.venv.episode_returns)
        assert mine.venv.episode_count == theirs.venv.episode_count
