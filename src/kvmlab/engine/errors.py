"""Exceptions shared by the engine, the kernel library and the CLI."""


class KvmlabError(Exception):
    """Bad input from a user: unknown model, bad config, illegal schedule. CLI exit 2."""


class ModelError(KvmlabError):
    """A model definition is inconsistent (undeclared local, unknown label, ...)."""


class Blocked(Exception):
    """Raised by a step that cannot run in the current state; carries the reason.

    The reason is what the stepper shows on the disabled button, e.g.
    ``spinning on b->lock (held by CPU0)`` or ``asleep in schedule()``.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Stay(Exception):
    """Raised by a step whose effects stand but whose C line is not finished.

    The thread stays on the same line: e.g. ``spin_lock()`` on PREEMPT_RT
    that found the lock taken has queued the task as a waiter and gone to
    sleep; it acquires the lock when it runs again.
    """
