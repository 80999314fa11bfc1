"""Signals a long training run answers, the Unix way.

==========  ===================================================================================
SIGINT      Ctrl-C: save the interrupted pair, close the workers, exit 130
SIGTERM     ``kill PID``, ``timeout``, systemd, Docker, schedulers: the same, exit 143
SIGHUP      the terminal closed: the same, exit 129 (output that can no longer be printed is dropped)
SIGUSR1     ``kill -USR1 PID``: save a snapshot pair (never pruned) at the next step, training goes on
==========  ===================================================================================

Python only turns SIGINT into ``KeyboardInterrupt``; SIGTERM and SIGHUP would end the process without
saving. Here the first of them raises :class:`StopRequested` (a ``KeyboardInterrupt``, so code that already
cleans up on Ctrl-C does the same for them) and, in the same handler, turns further stop signals into a
notice (:func:`hold_stop_signals`), so a second signal cannot cut the save short. The stop is also recorded
(:func:`pending_stop`), so that one swallowed where it was raised is raised again at the next training step.

A stop signal that lands in the middle of a periodic save (checkpoint, best model, league snapshot) waits
for the end of that save (:func:`stop_signals_deferred`): an exception raised inside ``torch.save`` would
leave its zip writer half-written and come out as an unrelated ``RuntimeError`` instead of a clean stop.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager
from types import FrameType
from typing import Callable, Iterator, Optional

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
SNAPSHOT_SIGNAL = getattr(signal, "SIGUSR1", None)


class StopRequested(KeyboardInterrupt):
    """A stop signal arrived. ``exit_code`` is the shell convention 128 + signal number."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.name = signal.Signals(signum).name
        self.exit_code = 128 + signum


def stop_behind(exc: BaseException | None) -> "StopRequested | None":
    """The stop signal that ``exc`` was raised while handling, if any: library code that catches an
    exception and raises its own (``torch.save`` closing a zip file, for one) hides the stop request in
    ``__context__``."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc if isinstance(exc, StopRequested) else StopRequested()
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


#: The first stop signal of this process, once it arrived (see :func:`pending_stop`).
_requested: "StopRequested | None" = None


def _raise_stop(signum: int, frame: Optional[FrameType]) -> None:
    global _requested
    _requested = _requested or StopRequested(signum)
    hold_stop_signals()  # before raising: a second signal must not interrupt the handling of the first
    raise StopRequested(signum)


def pending_stop() -> "StopRequested | None":
    """The stop signal that arrived, if any. Its handler raises :class:`StopRequested` wherever the main thread
    is; when that code swallows it (an exception raised inside a finalizer or a weakref callback is only printed
    as "Exception ignored"), training would go on deaf, since further signals only print a notice. Training
    checks this at every step (:class:`callbacks.stop.PendingStopCallback`) and raises it again there."""
    return _requested


def install_stop_handlers() -> None:
    """SIGINT, SIGTERM and SIGHUP raise :class:`StopRequested` in the main thread (also when a shell started
    us with SIGINT ignored)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, _raise_stop)


def hold_stop_signals() -> None:
    """From here on, stop signals only print a notice: a second Ctrl-C, a SIGINT sent both to us and to our
    process group (``timeout -s INT`` does that), or a repeated SIGTERM must not cut a save short."""

    def notice(signum: int, frame: Optional[FrameType]) -> None:
        say(f"\n{signal.Signals(signum).name}: saving the model, please wait (ignored until it is saved).", error=True)

    for signum in STOP_SIGNALS:
        signal.signal(signum, notice)


@contextmanager
def stop_signals_deferred() -> Iterator[None]:
    """Inside the block, stop signals are only recorded; when it ends, the first one recorded goes to the
    handler that was in place before (raise :class:`StopRequested`, print the notice, or the default action).

    Outside the main thread Python cannot set handlers (and signals are only delivered to the main thread),
    so there the block runs as is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if pending:
            handler = previous[pending[0]]
            if callable(handler):
                handler(pending[0], None)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), pending[0])


def install_snapshot_handler(request_save: Callable[[], None]) -> None:
    """SIGUSR1 calls ``request_save`` (which only sets a flag: the save happens at the next training step,
    outside the signal handler)."""
    if SNAPSHOT_SIGNAL is not None:
        signal.signal(SNAPSHOT_SIGNAL, lambda signum, frame: request_save())


def say(text: str, error: bool = False) -> None:
    """Print and flush; if the terminal is gone (SIGHUP, closed pipe), drop this and all later output
    instead of failing the save that follows."""
    stream = sys.stderr if error else sys.stdout
    try:
        print(text, file=stream, flush=True)
    except (OSError, ValueError):
        devnull = open(os.devnull, "w")
        sys.stdout = sys.stderr = devnull
