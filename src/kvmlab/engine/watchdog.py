"""A watchdog that stops a step which does not return (a ``while True:`` in a learner's step).

Steps run in the explorer's thread. Where POSIX interval timers are
available and we are on the main thread, a SIGALRM ticks every
``PERIOD`` seconds; if the same step has been running through ticks that
add up to the limit, the handler raises :class:`StepTimeout` inside it.
Elsewhere (Pyodide, a worker thread) there is no watchdog: the browser
terminates its Web Worker, and ``kvmlab grade --timeout`` kills its child
process. The cost on the explorer's path is one counter per step.
"""

from __future__ import annotations

import math
import signal
import threading

from .errors import KvmlabError, StepTimeout

PERIOD = 0.25

# ACTIVE[0]: the sequence number of the step running now (0 between steps).
ACTIVE = [0]
_SEQ = [0]


def enter_step() -> int:
    """Mark the start of a step; returns the value to pass to :func:`leave_step`."""
    _SEQ[0] += 1
    prev = ACTIVE[0]
    ACTIVE[0] = _SEQ[0]
    return prev


def leave_step(prev: int) -> None:
    ACTIVE[0] = prev


def check_limit(seconds: float | None, what: str = "step_timeout") -> float | None:
    """Validate a time limit: None, or a positive finite number of seconds."""
    if seconds is None:
        return None
    try:
        v = float(seconds)
    except (TypeError, ValueError):
        raise KvmlabError(f"{what}={seconds!r}: not a number of seconds") from None
    if isinstance(seconds, bool) or not math.isfinite(v) or v <= 0:
        raise KvmlabError(f"{what}={seconds!r}: must be a positive number of seconds")
    return v


class Watchdog:
    """Context manager: raise StepTimeout in a step that runs longer than ``limit`` seconds."""

    def __init__(self, limit: float | None):
        self.limit = limit
        self.armed = False
        self._last = 0
        self._stalled = 0.0

    @staticmethod
    def available() -> bool:
        return (hasattr(signal, "setitimer") and hasattr(signal, "SIGALRM")
                and threading.current_thread() is threading.main_thread())

    def _tick(self, signum, frame):
        a = ACTIVE[0]
        if a and a == self._last:
            self._stalled += PERIOD
            if self._stalled >= self.limit:
                self._stalled = 0.0
                raise StepTimeout(f"no return within {self.limit:g} s")
        else:
            self._stalled = 0.0
        self._last = a

    def __enter__(self):
        if self.limit is None or not self.available():
            return self
        try:
            old_timer = signal.getitimer(signal.ITIMER_REAL)
            if old_timer[0] > 0:  # someone else's timer is running: leave it alone
                return self
            self._old = signal.signal(signal.SIGALRM, self._tick)
            signal.setitimer(signal.ITIMER_REAL, PERIOD, PERIOD)
            self.armed = True
        except (ValueError, OSError):  # not the main thread after all, or no timers here
            self.armed = False
        return self

    def __exit__(self, *exc):
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0, 0)
            signal.signal(signal.SIGALRM, self._old)
            self.armed = False
        return False
