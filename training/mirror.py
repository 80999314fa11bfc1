"""Mirror augmentation of PPO rollouts (``training.mirror``).

Every rollout sample gets its left-right mirrored twin (``envs/mirror.py``): the mirrored observation, the
mirrored action, the same advantage and return (the field is symmetric, so the mirrored state-action pair is
worth the same). The policy's log-probability of the twin is computed before the update, so PPO's ratio is
measured against the same old policy for both. The update then sees twice the samples per rollout and the policy
learns to act alike on both sides of the field (a bot that takes the right-hand kickoff but misses the
left-hand one is the failure this fixes; README "Learning").

SB3 has no data augmentation for on-policy algorithms, hence this module. The augmented buffer is a plain SB3
``RolloutBuffer`` holding both halves, handed to SB3's own ``PPO.train``.
"""

from __future__ import annotations

import copy
from typing import Optional

import numpy as np
import torch as th
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import VecNormalize

from envs.mirror import ObsMirror, action_mirror
from training.flat_obs import normalize_obs, unnormalize_obs


class RolloutMirror:
    """Builds the augmented buffer: the rollout, then its mirrored twin (``2 x n_steps x n_envs`` samples).

    :param zero_padding: ``environment.obs_zero_padding`` (sets the observation layout).
    :param table: the action lookup table, ``[n_actions, 8]``.
    """

    def __init__(self, zero_padding: int, table: np.ndarray):
        self.obs_mirror = ObsMirror(zero_padding)
        self.action_perm = action_mirror(table)

    def mirror_obs(self, obs: np.ndarray, normalizer: Optional[VecNormalize]) -> np.ndarray:
        """Mirror observations as the buffer holds them: normalized by ``normalizer`` when it normalizes them
        (undone, mirrored, normalized again with the same statistics)."""
        if normalizer is None or not normalizer.norm_obs:
            return self.obs_mirror(obs)
        raw = unnormalize_obs(normalizer, obs)
        return normalize_obs(normalizer, self.obs_mirror(raw)).astype(obs.dtype, copy=False)

    @th.no_grad()
    def augment(self, buffer: RolloutBuffer, policy: ActorCriticPolicy,
                normalizer: Optional[VecNormalize]) -> RolloutBuffer:
        """A filled, not yet read ``buffer`` plus its mirrored twin, as a new ready-to-read ``RolloutBuffer``."""
        flat = {name: buffer.swap_and_flatten(getattr(buffer, name))
                for name in ("observations", "actions", "values", "log_probs", "advantages", "returns")}
        obs_m = self.mirror_obs(flat["observations"], normalizer)
        actions_m = self.action_perm[flat["actions"].astype(np.int64)].astype(flat["actions"].dtype)
        policy.set_training_mode(False)
        values_m, log_probs_m, _ = policy.evaluate_actions(
            th.as_tensor(obs_m, device=policy.device), th.as_tensor(actions_m.reshape(-1), device=policy.device))
        out = copy.copy(buffer)
        out.observations = np.concatenate([flat["observations"], obs_m])
        out.actions = np.concatenate([flat["actions"], actions_m])
        out.values = np.concatenate([flat["values"], values_m.cpu().numpy().reshape(flat["values"].shape)])
        out.log_probs = np.concatenate([flat["log_probs"],
                                        log_probs_m.cpu().numpy().reshape(flat["log_probs"].shape)])
        out.advantages = np.concatenate([flat["advantages"], flat["advantages"]])
        out.returns = np.concatenate([flat["returns"], flat["returns"]])
        out.n_envs = 2 * buffer.n_envs  # get() draws from buffer_size * n_envs samples
        out.generator_ready = True
        return out
