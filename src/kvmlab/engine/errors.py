"""Exceptions shared by the engine, the kernel library and the CLI.

Exit codes of the CLI follow the classes: :class:`KvmlabError` (bad input,
a broken model, a step that raised) is 2, :class:`ToolError` (the tool
itself failed: out of memory, an I/O error) is 4.
"""


class KvmlabError(Exception):
    """Bad input from a user: unknown model, bad config, illegal schedule. CLI exit 2."""


class ConfigError(KvmlabError):
    """An unknown or out-of-range config switch or param (the caller's input, never a learner's code)."""


class ModelError(KvmlabError):
    """A model definition is inconsistent (undeclared local, unknown label, ...)."""


class ToolError(Exception):
    """The tool itself failed (out of memory, a write error): CLI exit 4."""


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


class Oops(Exception):
    """Raised by a primitive right after a fatal kernel report (a NULL dereference).

    The step ends there: what it did before stands, the report is kept, and
    the run ends in that state, as the kernel's oops ends the task.
    """


class StepTimeout(BaseException):
    """A step ran longer than the step time limit (raised inside it by the watchdog).

    A BaseException, so that a learner's ``except Exception`` cannot swallow it.
    """


class StepCrash(ModelError):
    """A step raised (or never returned): where, after which schedule, and why.

    ``schedule`` is the shortest interleaving that reaches the step, one item
    per C line; ``cause`` the original exception.
    """

    def __init__(self, *, label: str, step: str, c_line: str, function: str, cause: BaseException,
                 schedule: list[str], tid: int, where: str = "", learner_traceback: str = ""):
        self.label, self.step, self.c_line, self.function = label, step, c_line, function
        self.cause, self.schedule, self.tid = cause, schedule, tid
        self.where, self.learner_traceback = where, learner_traceback
        self.timeout = isinstance(cause, StepTimeout)
        super().__init__(self.describe())

    @property
    def exception(self) -> str:
        return "StepTimeout" if self.timeout else type(self.cause).__name__

    def describe(self) -> str:
        sched = ",".join(self.schedule)
        after = f"after schedule [{sched}] ({len(self.schedule)} steps)" if self.schedule else "as its first step"
        if self.timeout:
            head = f"{self.label}: step '{self.step}' ({self.c_line}) did not return: {self.cause}"
        else:
            head = f"{self.label} raised {type(self.cause).__name__}: {self.cause}\n" \
                   f"    in step '{self.step}' ({self.c_line}) of {self.function}()"
        out = f"{head}\n    {after}"
        if self.where:
            out += f"\n    {self.where}"
        return out
