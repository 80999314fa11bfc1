"""Pipelined rollout collection (training.pipeline_groups > 1): groups of workers in flight, ordinary on-policy
rollouts (real workers, real SB3)."""

from __future__ import annotations

import numpy as np
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

from envs.selfplay_vec_env import ScriptedOpponents, SelfPlayVecEnv
from tests.helpers import fast_config, play
from training.pipeline import PipelinedPPO
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
