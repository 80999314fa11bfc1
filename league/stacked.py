"""The pool's past versions acting in one batched call per step, whichever versions are in play.

Why: the league asked every past version in play for its cars' actions in its own forward pass, so a step cost up
to ``pool_size`` small passes (each paying torch's per-call overhead, and on CUDA a transfer and a sync). On a
16-core machine, where the trainer process is the bottleneck, that made league training 0.63 of pure self-play.
Here the actor networks of all versions (SB3's MLP: linear layers and activations) are stacked layer by layer and
evaluated with ``torch.baddbmm``: one batched matrix product per layer for all versions. (``torch.func``'s model
ensembling, ``stack_module_state`` + ``vmap``, does the same but measured 0.69 ms per call against ~0.1 ms here.)
"""

from __future__ import annotations

from typing import Optional, Sequence, cast

import numpy as np
import torch as th
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.common.vec_env import VecNormalize

from training.flat_obs import obs_stats


def actor_net(policy: ActorCriticPolicy) -> th.nn.Sequential:
    """Observation (normalized, flat) -> action logits: the actor half of SB3's ``ActorCriticPolicy`` (its
    ``mlp_extractor.policy_net`` then ``action_net``; the modules themselves, not copies)."""
    return th.nn.Sequential(policy.mlp_extractor.policy_net, policy.action_net)


def _layers(policy: ActorCriticPolicy) -> list[th.nn.Module]:
    """The actor's modules in order, nested ``Sequential``s flattened."""
    out: list[th.nn.Module] = []
    for module in actor_net(policy).modules():
        if not isinstance(module, th.nn.Sequential):
            out.append(module)
    return out


def can_stack(policies: Sequence[ActorCriticPolicy]) -> bool:
    """Whether these policies' actors can be evaluated together: flat features, only linear layers and
    parameter-free activations, the same shapes."""
    if not policies or not all(isinstance(p, ActorCriticPolicy) for p in policies):
        return False
    if not all(isinstance(p.pi_features_extractor, FlattenExtractor) for p in policies):
        return False
    for layer in _layers(policies[0]):
        if not isinstance(layer, th.nn.Linear) and any(True for _ in layer.parameters()):
            return False
    shapes = [[(type(m), tuple(m.weight.shape) if isinstance(m, th.nn.Linear) else ()) for m in _layers(p)]
              for p in policies]
    return all(shape == shapes[0] for shape in shapes)


class StackedActors:
    """Frozen actor networks of several versions, each with its own observation normalizer, as one network.

    :param policies: the versions' policies (same architecture: :func:`can_stack`), on one device.
    :param normalizers: each version's ``VecNormalize`` (statistics frozen), or None (no normalization).
    """

    def __init__(self, policies: Sequence[ActorCriticPolicy], normalizers: Sequence[Optional[VecNormalize]]):
        self.device = policies[0].device
        per_version = [_layers(policy) for policy in policies]
        #: Per layer: (weights [P, in, out], biases [P, 1, out]) of a linear layer, or the activation module.
        self.layers: list = []
        with th.no_grad():
            for depth, layer in enumerate(per_version[0]):
                if isinstance(layer, th.nn.Linear):
                    # can_stack: every version has a linear layer at this depth
                    linears = [cast(th.nn.Linear, layers[depth]) for layers in per_version]
                    weights = th.stack([linear.weight.detach().T for linear in linears]).contiguous()
                    biases = th.stack([linear.bias.detach()[None] for linear in linears]).contiguous()
                    self.layers.append((weights, biases))
                else:
                    self.layers.append(layer)
        obs_shape = policies[0].observation_space.shape
        assert obs_shape is not None, "flat observations (a Box space)"
        obs_size = obs_shape[0]
        self.mean = np.zeros((len(policies), obs_size))
        self.scale = np.ones((len(policies), obs_size))  # sqrt(var + epsilon)
        self.clip = np.full(len(policies), np.inf)
        for i, norm in enumerate(normalizers):
            if norm is not None and norm.norm_obs:
                stats = obs_stats(norm)
                self.mean[i] = stats.mean
                self.scale[i] = np.sqrt(stats.var + norm.epsilon)
                self.clip[i] = norm.clip_obs

    def normalize(self, obs: np.ndarray, version: np.ndarray) -> np.ndarray:
        """Each row normalized by its version's statistics, as ``VecNormalize.normalize_obs`` does; [n, obs] float32."""
        clip = self.clip[version][:, None]
        return np.clip((obs - self.mean[version]) / self.scale[version], -clip, clip).astype(np.float32)

    def logits(self, obs: np.ndarray, version: np.ndarray) -> th.Tensor:
        """Action logits [n, n_actions] of row ``i`` of ``obs`` (raw, [n, obs_size]) under version ``version[i]``."""
        normalized = self.normalize(obs, version)
        counts = np.bincount(version, minlength=len(self.clip))
        position = np.zeros(len(version), dtype=np.int64)  # the row's place among its version's rows
        order = np.argsort(version, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        position[order] = np.arange(len(version)) - np.repeat(starts, counts)
        batch = np.zeros((len(counts), max(1, int(counts.max())), normalized.shape[1]), dtype=np.float32)
        batch[version, position] = normalized
        with th.no_grad():
            out = th.as_tensor(batch, device=self.device)
            for layer in self.layers:
                out = th.baddbmm(layer[1], out, layer[0]) if isinstance(layer, tuple) else layer(out)
            return out[th.as_tensor(version, device=self.device), th.as_tensor(position, device=self.device)]

    def act(self, obs: np.ndarray, version: np.ndarray) -> np.ndarray:
        """Sampled lookup-table actions [n] (one categorical draw per row)."""
        logits = self.logits(obs, version)
        return th.multinomial(th.softmax(logits, dim=-1), 1).reshape(-1).cpu().numpy()
