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
notice (:func:`hold_stop_signals`), so a second signal cannot cut the save short.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any, Callable

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
SNAPSHOT_SIGNAL = getattr(signal, "SIGUSR1", None)


class StopRequested(KeyboardInterrupt):
    """A stop signal arrived. ``exit_code`` is the shell convention 128 + signal number."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.name = signal.Signals(signum).name
        self.exit_code = 128 + signum


def _raise_stop(signum: int, frame: Any) -> None:
    hold_stop_signals()  # before raising: a second signal must not interrupt the handling of the first
    raise StopRequested(signum)


def install_stop_handlers() -> None:
    """SIGINT, SIGTERM and SIGHUP raise :class:`StopRequested` in the main thread (also when a shell started
    us with SIGINT ignored)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, _raise_stop)


def hold_stop_signals() -> None:
    """From here on, stop signals only print a notice: a second Ctrl-C, a SIGINT sent both to us and to our
    process group (``timeout -s INT`` does that), or a repeated SIGTERM must not cut a save short."""

    def notice(signum: int, frame: Any) -> None:
        say(f"\n{signal.Signals(signum).name}: saving the model, please wait (ignored until it is saved).", error=True)

    for signum in STOP_SIGNALS:
        signal.signal(signum, notice)


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
