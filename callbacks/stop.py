"""Raise a stop signal again at the next step when the code it landed in swallowed it."""

from __future__ import annotations

from stable_baselines3.common.callbacks import BaseCallback

from training.signals import pending_stop


class PendingStopCallback(BaseCallback):
    """Raises the recorded stop signal (:func:`training.signals.pending_stop`) at the next step.

    SB3 has no such callback: Python raises a signal handler's exception wherever the main thread is, and when
    that is a finalizer (``__del__``, a weakref callback), the exception is printed and dropped. Seen once in a
    test: the first Ctrl-C was lost that way, the later ones only printed "saving the model, please wait", and
    training went on. Normally ``learn`` has already ended when a stop is recorded, and this costs one check.
    """

    def _on_step(self) -> bool:
        stop = pending_stop()
        if stop is not None:
            raise stop
        return True


class StopAtStepsCallback(BaseCallback):
    """Ends ``learn`` once the model has ``steps`` environment steps, keeping the schedules over the run's whole
    ``total_timesteps`` (``learn(total_timesteps=...)`` would rescale them). SB3's stop callbacks count episodes or
    evaluations, not steps. Used by ``train_sb3.py --stop-at-steps`` (the learning benchmark's step budgets)."""

    def __init__(self, steps: int):
        super().__init__()
        self.steps = steps

    def _on_step(self) -> bool:
        return self.num_timesteps < self.steps
