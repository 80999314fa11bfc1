"""PPO whose rollout collection keeps the simulator busy while the policy thinks.

Why: SB3's ``collect_rollouts`` alternates strictly: the trainer runs inference for every car while the env
workers wait, then the workers step while the trainer waits. :class:`PipelinedPPO` splits the vec env's matches
into ``pipeline_groups`` groups of workers (or Ray actors) and keeps them in flight: as soon as one group's step
is back, the trainer runs inference on it and sends its next step, then turns to the next group, which stepped
meanwhile. Every car still acts on its latest observation with the current policy, so the rollout is an
ordinary on-policy rollout (same buffer, same GAE, same update); the same seed gives the same rollout run after
run. With ``pipeline_groups: 1`` the same loop steps all workers at once and fills the buffer SB3's own loop
fills (tested: actions, values and log-probabilities bit for bit, rewards to float32 rounding). A vec env
without groups (``vec_env: subproc``) gets SB3's loop itself.

Two things make this loop cheaper than SB3's: actions are sampled by :func:`sample_actions` without building a
``torch.distributions.Categorical`` (same numbers), and truncated episodes are bootstrapped with one value call
for all of a step's truncated slots instead of one call per slot.

SB3 has no hook for this, so the loop below follows ``OnPolicyAlgorithm.collect_rollouts`` of the pinned
stable-baselines3 (2.9.2) step for step, per group, and applies the two wrappers the trainer uses
(``VecMonitor`` then ``VecNormalize``) to each group's slots as their ``step_wait`` does for all slots. Running
statistics are updated per group instead of once per step (the same samples, in two updates).
"""

from __future__ import annotations

import time
from typing import Any, Optional, Protocol, TypeGuard, runtime_checkable

import numpy as np
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv, VecMonitor, VecNormalize

from training.flat_obs import normalize_obs, obs_stats
from training.mirror import RolloutMirror


class GroupWrappers:
    """``VecMonitor`` and ``VecNormalize`` of the trainer's stack, applied to one group's slots at a time."""

    def __init__(self, env: VecNormalize):
        assert isinstance(env.venv, VecMonitor), "the trainer's stack (supports_groups)"
        self.norm, self.monitor = env, env.venv
        # VecNormalize keeps the last raw observations and rewards of every slot; here they are written per group.
        if getattr(env, "old_obs", None) is None or len(env.old_obs) != env.num_envs:
            obs_shape = env.observation_space.shape
            assert obs_shape is not None, "flat observations (a Box space)"
            env.old_obs = np.zeros((env.num_envs, *obs_shape), dtype=np.float32)
        if len(getattr(env, "old_reward", ())) != env.num_envs:
            env.old_reward = np.zeros(env.num_envs, dtype=np.float32)

    def apply(self, slots: slice, obs: np.ndarray, rewards: np.ndarray, dones: np.ndarray,
              infos: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
        m, n = self.monitor, self.norm
        # VecMonitor.step_wait
        m.episode_returns[slots] += rewards
        m.episode_lengths[slots] += 1
        for i in np.flatnonzero(dones):
            info = dict(infos[i])
            slot = slots.start + i
            info["episode"] = {"r": m.episode_returns[slot], "l": m.episode_lengths[slot],
                               "t": round(time.time() - m.t_start, 6)}
            m.episode_count += 1
            m.episode_returns[slot] = 0
            m.episode_lengths[slot] = 0
            infos[i] = info
        # VecNormalize.step_wait
        assert isinstance(n.old_obs, np.ndarray)  # __init__ made it one (SB3 also allows dict observations)
        n.old_obs[slots] = obs
        n.old_reward[slots] = rewards
        if n.training and n.norm_obs:
            obs_stats(n).update(obs)
        obs = normalize_obs(n, obs)
        if n.training:
            n.returns[slots] = n.returns[slots] * n.gamma + rewards
            n.ret_rms.update(n.returns[slots])
        rewards = n.normalize_reward(rewards)
        for i in np.flatnonzero(dones):
            if "terminal_observation" in infos[i]:
                infos[i]["terminal_observation"] = normalize_obs(n, infos[i]["terminal_observation"])
        returns = n.returns[slots]
        returns[dones] = 0
        n.returns[slots] = returns
        return obs, rewards, infos


@runtime_checkable
class StepGroups(Protocol):
    """A vec env whose slots step in groups (``vecenv/base.py``'s ``MatchesVecEnv``)."""

    def group_slices(self, n_groups: int) -> list[slice]: ...

    def step_group_async(self, group: int, actions: np.ndarray) -> None: ...

    def step_group_wait(self, group: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Observations, rewards, dones and infos of the group's slots."""


def supports_groups(env: VecEnv) -> TypeGuard[VecNormalize]:
    """The trainer's stack: VecNormalize(VecMonitor(a vec env with step groups))."""
    return (isinstance(env, VecNormalize) and isinstance(env.venv, VecMonitor)
            and hasattr(env.unwrapped, "group_slices"))


def sample_actions(policy: ActorCriticPolicy, obs: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
    """``policy(obs)`` (actions [n], values [n, 1], log-probabilities [n]) for a discrete action space, without
    building a ``torch.distributions.Categorical``.

    Why: at 128 observations per call, SB3's distribution objects (argument validation, lazy properties) cost
    ~0.5 ms, about as much as the two networks. The same operations in the same order: logits normalized by
    their logsumexp, softmax probabilities, one ``torch.multinomial`` draw per row (what ``Categorical.sample``
    does, so the same random stream gives the same actions), log-probability gathered from the normalized logits.
    """
    features = policy.extract_features(obs)
    if policy.share_features_extractor:
        latent_pi, latent_vf = policy.mlp_extractor(features)
    else:
        latent_pi = policy.mlp_extractor.forward_actor(features[0])
        latent_vf = policy.mlp_extractor.forward_critic(features[1])
    values = policy.value_net(latent_vf)
    logits = policy.action_net(latent_pi)
    logits = logits - logits.logsumexp(dim=-1, keepdim=True)
    actions = th.multinomial(F.softmax(logits, dim=-1), 1, True).T.reshape(-1)
    log_prob = logits.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    return actions, values, log_prob


class PipelinedPPO(PPO):
    """SB3's PPO with pipelined rollout collection (module docstring). ``pipeline_groups`` is set by the trainer
    from ``training.pipeline_groups`` and ``mirror`` from ``training.mirror`` (each update also learns from the
    rollout's mirrored twin, ``training/mirror.py``); a model saved by it loads with ``PPO.load`` as any PPO
    model."""

    pipeline_groups: int = 1
    mirror: Optional[RolloutMirror] = None

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "mirror"]

    def train(self) -> None:
        if self.mirror is None:
            return super().train()
        rollout = self.rollout_buffer
        self.rollout_buffer = self.mirror.augment(rollout, self.policy, self.get_vec_normalize_env())
        try:
            super().train()
        finally:
            self.rollout_buffer = rollout

    def collect_rollouts(self, env: VecEnv, callback: BaseCallback, rollout_buffer: RolloutBuffer,
                         n_rollout_steps: int) -> bool:
        if not supports_groups(env) or self.use_sde or not isinstance(self.action_space, spaces.Discrete):
            return super().collect_rollouts(env, callback, rollout_buffer, n_rollout_steps)
        assert self._last_obs is not None, "No previous observation was provided"
        base = env.unwrapped
        assert isinstance(base, StepGroups)
        groups = base.group_slices(max(1, self.pipeline_groups))
        wrappers = GroupWrappers(env)
        self.policy.set_training_mode(False)
        n_steps = 0
        rollout_buffer.reset()
        callback.on_rollout_start()

        num_envs = env.num_envs
        obs_now = np.array(self._last_obs)
        actions = np.zeros(num_envs, dtype=np.int64)
        values = th.zeros(num_envs)
        log_probs = th.zeros(num_envs)

        def act(slots: slice) -> None:
            with th.no_grad():
                a, v, lp = sample_actions(self.policy, th.as_tensor(obs_now[slots], device=self.device))
            actions[slots] = a.cpu().numpy().reshape(-1)
            values[slots] = v.cpu().reshape(-1)
            log_probs[slots] = lp.cpu().reshape(-1)

        for g, slots in enumerate(groups):
            act(slots)
            base.step_group_async(g, actions[slots])

        new_obs = np.zeros_like(obs_now)
        while n_steps < n_rollout_steps:
            rewards = np.zeros(num_envs, dtype=np.float32)
            dones = np.zeros(num_envs, dtype=bool)
            infos: list[dict[str, Any]] = [{} for _ in range(num_envs)]
            step_actions, step_values, step_log_probs = actions.copy(), values.clone(), log_probs.clone()
            last = n_steps + 1 >= n_rollout_steps
            for g, slots in enumerate(groups):
                g_obs, g_rewards, g_dones, g_infos = base.step_group_wait(g)
                g_obs, g_rewards, g_infos = wrappers.apply(slots, g_obs, g_rewards, g_dones, g_infos)
                new_obs[slots], rewards[slots], dones[slots] = g_obs, g_rewards, g_dones
                infos[slots] = g_infos
                if not last:  # this group's next step runs while the trainer turns to the next group
                    obs_now[slots] = g_obs
                    act(slots)
                    base.step_group_async(g, actions[slots])
            self.num_timesteps += num_envs
            clipped_actions = step_actions  # noqa: F841 (SB3's name, for callbacks reading self.locals)
            callback.update_locals({**locals(), "actions": step_actions, "values": step_values,
                                    "log_probs": step_log_probs, "new_obs": new_obs})
            if not callback.on_step():
                if not last:  # the groups sent ahead finish their step; it is not part of any rollout
                    ahead_dones = np.zeros(num_envs, dtype=bool)
                    for g, slots in enumerate(groups):
                        g_obs, g_rewards, g_dones, g_infos = base.step_group_wait(g)
                        new_obs[slots], _, _ = wrappers.apply(slots, g_obs, g_rewards, g_dones, g_infos)
                        ahead_dones[slots] = g_dones
                    self._last_obs, self._last_episode_starts = new_obs.copy(), ahead_dones
                return False
            self._update_info_buffer(infos, dones)
            n_steps += 1
            buffer_actions = step_actions.reshape(-1, 1) if isinstance(self.action_space, spaces.Discrete) \
                else step_actions
            # Bootstrap truncated episodes with the value of their last observation (SB3 asks once per slot; here
            # in one batch).
            cut = [idx for idx in np.flatnonzero(dones) if infos[idx].get("terminal_observation") is not None
                   and infos[idx].get("TimeLimit.truncated", False)]
            if cut:
                terminal_obs = self.policy.obs_to_tensor(np.stack([infos[idx]["terminal_observation"]
                                                                   for idx in cut]))[0]
                with th.no_grad():
                    terminal_values = self.policy.predict_values(terminal_obs)[:, 0].cpu().numpy()
                rewards[cut] += self.gamma * terminal_values
            assert isinstance(self._last_obs, np.ndarray) and self._last_episode_starts is not None
            rollout_buffer.add(self._last_obs, buffer_actions, rewards, self._last_episode_starts,
                               step_values, step_log_probs)
            self._last_obs = new_obs.copy()
            self._last_episode_starts = dones
        with th.no_grad():
            values = self.policy.predict_values(obs_as_tensor(self._last_obs, self.device))
        rollout_buffer.compute_returns_and_advantage(last_values=values, dones=dones)
        callback.update_locals(locals())
        callback.on_rollout_end()
        return True
