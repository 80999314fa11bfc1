"""Log ``train/grad_norm``: the gradient norm before clipping, averaged over an update.

SB3's PPO clips gradients with ``clip_grad_norm_`` and discards the norm it returns. Rather than copy
``PPO.train``, this callback hooks the policy: every parameter adds its squared gradient norm once its
gradient is accumulated (before clipping), and the optimizer's step pre-hook closes each minibatch.
"""

from __future__ import annotations

import torch as th
from stable_baselines3.common.callbacks import BaseCallback


class GradNormCallback(BaseCallback):
    """Records the mean pre-clipping L2 norm of the full gradient over the previous ``train()`` call."""

    def __init__(self) -> None:
        super().__init__()
        self._handles: list = []
        self._sq_sum: th.Tensor | None = None
        self._norms: list[th.Tensor] = []

    def _on_training_start(self) -> None:
        params = [p for p in self.model.policy.parameters() if p.requires_grad]
        for param in params:
            self._handles.append(param.register_post_accumulate_grad_hook(self._add_param))
        self._handles.append(self.model.policy.optimizer.register_step_pre_hook(self._close_minibatch))

    def _add_param(self, param: th.Tensor) -> None:
        assert param.grad is not None  # the hook runs once the gradient is accumulated
        sq = param.grad.detach().pow(2).sum()
        self._sq_sum = sq if self._sq_sum is None else self._sq_sum + sq

    def _close_minibatch(self, optimizer, args, kwargs) -> None:
        if self._sq_sum is not None:
            self._norms.append(self._sq_sum.sqrt())
            self._sq_sum = None

    def _on_rollout_start(self) -> None:
        # train() of the previous iteration has just finished: its metrics are dumped with this iteration's.
        if self._norms:
            self.logger.record("train/grad_norm", th.stack(self._norms).mean().item())
            self._norms.clear()

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
