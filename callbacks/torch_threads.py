"""Give the PPO update more torch threads than rollout collection."""

from __future__ import annotations


import torch as th
from stable_baselines3.common.callbacks import BaseCallback

from config.schema import TrainingConfig
from config.sizing import available_cores


class UpdateThreadsCallback(BaseCallback):
    """Torch uses ``collect_threads`` while the rollout is collected and ``update_threads`` during ``train()``.

    Why: collection alternates between the env workers and the trainer's tiny inference batches, so one torch
    thread is best there (spare threads spin on cores the workers need). During the PPO update the workers sit
    idle, so the update can use every core: on 2 cores a 4096-sample, 4-epoch update of the 256x256 networks
    took 380 ms with 1 thread and 238 ms with 2. SB3 calls ``on_rollout_end`` right before ``train()`` and
    ``on_rollout_start`` right after it.

    :param collect_threads: torch threads during collection (``training.torch_threads``).
    :param update_threads: torch threads during the update (``training.update_threads``).
    """

    def __init__(self, collect_threads: int, update_threads: int):
        super().__init__()
        self.collect_threads = collect_threads
        self.update_threads = update_threads

    def _on_rollout_start(self) -> None:
        th.set_num_threads(self.collect_threads)

    def _on_rollout_end(self) -> None:
        th.set_num_threads(self.update_threads)

    def _on_training_end(self) -> None:
        th.set_num_threads(self.collect_threads)

    def _on_step(self) -> bool:
        return True


def make_threads_callback(train_cfg: TrainingConfig) -> UpdateThreadsCallback:
    """Torch threads for collection (``torch_threads``) and for the update (``update_threads``, 0 = all cores)."""
    collect = train_cfg.torch_threads or th.get_num_threads()
    return UpdateThreadsCallback(collect, train_cfg.update_threads or available_cores())
