"""The actor half of an SB3 ``ActorCriticPolicy``: observations to action logits, once for every user of it.

Why: SB3 has no public call for the logits alone (``policy.get_distribution`` also builds a distribution
object); league opponents sample from them and the RLBot export checks its numpy policy against them.
"""

from __future__ import annotations

import torch as th
from stable_baselines3.common.policies import ActorCriticPolicy


def actor_logits(policy: ActorCriticPolicy, obs: th.Tensor) -> th.Tensor:
    """Action logits ``[n, n_actions]`` for (already normalized) observations ``[n, obs_size]``: features (the
    actor's extractor), the actor MLP, ``action_net``. No value, no gradient bookkeeping beyond the caller's."""
    features = policy.extract_features(obs, policy.pi_features_extractor)
    # One tensor with a shared features extractor (every policy this trainer builds); a policy with separate actor
    # and critic extractors returns the pair, which the actor MLP cannot take.
    assert isinstance(features, th.Tensor), "a policy whose actor and critic share the features extractor"
    return policy.action_net(policy.mlp_extractor.forward_actor(features))
