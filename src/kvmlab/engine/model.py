"""How a model is written: programs of C lines, variants, configs, params, properties.

A *program* is the code one CPU or task runs. It is a class whose methods,
decorated with :func:`line`, are its steps, in the order of the C code. Each
step carries the C line(s) it stands for and the C function it is in. A step
method is called as ``step(self, w, t)``: ``w`` is the world being changed
(shared state and kernel primitives), ``t`` the running thread's own state
(program counter, kernel context, declared locals). It returns ``None`` to
fall through to the next line, the name of another step to jump there, or
:data:`DONE` to finish the thread. A step that cannot run raises
:class:`~kvmlab.engine.errors.Blocked` (kernel primitives do this for you).

A variant that changes one step subclasses the program and overrides that
method: the override keeps the step's place. New steps go at the end, or
where ``after=``/``before=`` say; ``drop = ("name", ...)`` removes steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import KvmlabError, ModelError

DONE = "__done__"


@dataclass(frozen=True)
class LineSpec:
    c: tuple[str, ...]
    fn: str | None
    after: str | None
    before: str | None
    local: bool
    under: str | None


def line(c: str | Iterable[str], *, fn: str | None = None, after: str | None = None,
         before: str | None = None, local: bool = False, under: str | None = None):
    """Mark a method as one atomic step standing for C line ``c``.

    ``c`` may be a list when several lines touch only the thread's private
    data and are therefore grouped into one step (say so in the model).
    ``local=True`` promises the step reads and writes nothing another thread
    can see (its locals, its own context with no interrupt handler on its
    CPU, objects it has not published); the explorer's reduction may then
    run it without interleaving (checked for shared writes).
    ``under="lock"`` promises the step touches only data protected by that
    lock (which the thread must hold: checked) and its own data; right after
    the thread takes the lock, the reduction runs such steps in the same
    transition (a Lipton transaction: the acquire moves right, protected
    steps commute with every other thread's steps).
    """
    lines = (c,) if isinstance(c, str) else tuple(c)
    if not lines:
        raise ModelError("a step needs at least one C line")

    def deco(f):
        f._kvmlab_line = LineSpec(lines, fn, after, before, local, under)
        return f

    return deco


@dataclass(frozen=True)
class StepInfo:
    """Static description of one step: its index, name, C line(s), C function."""

    index: int
    name: str
    c: tuple[str, ...]
    fn: str
    local: bool = False
    under: str | None = None
    can_block: bool = True

    @property
    def text(self) -> str:
        return " ".join(s.strip() for s in self.c)


class Program:
    """Code run by one thread; subclass and add :func:`line` methods.

    Class attributes: ``fn`` (default C function name), ``locals`` (declared
    local variables and initial values), ``kind`` (``"task"`` or
    ``"hardirq"``), ``drop`` (names of inherited steps to remove).
    """

    fn: str = "?"
    locals: dict[str, Any] = {}
    kind: str = "task"
    drop: tuple[str, ...] = ()
    _order: tuple[str, ...] = ()
    _specs: dict[str, LineSpec] = {}

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        order = list(cls._order)
        specs = dict(cls._specs)
        merged_locals = {}
        for base in reversed(cls.__mro__[1:]):
            merged_locals.update(getattr(base, "locals", {}) or {})
        merged_locals.update(cls.__dict__.get("locals", {}) or {})
        cls.locals = merged_locals
        for name, obj in cls.__dict__.items():
            spec = getattr(obj, "_kvmlab_line", None)
            if spec is None:
                continue
            specs[name] = spec
            if name in order and spec.after is None and spec.before is None:
                continue
            if name in order:
                order.remove(name)
            if spec.after is not None:
                if spec.after not in order:
                    raise ModelError(f"{cls.__name__}.{name}: after={spec.after!r} is not a step")
                order.insert(order.index(spec.after) + 1, name)
            elif spec.before is not None:
                if spec.before not in order:
                    raise ModelError(f"{cls.__name__}.{name}: before={spec.before!r} is not a step")
                order.insert(order.index(spec.before), name)
            else:
                order.append(name)
        for name in cls.__dict__.get("drop", ()):
            if name not in order:
                raise ModelError(f"{cls.__name__}: cannot drop unknown step {name!r}")
            order.remove(name)
        cls._order = tuple(order)
        cls._specs = specs

    def __init__(self, name: str, *, cpu: int = 0, comm: str | None = None, pid: int | None = None,
                 label: str | None = None, title: str | None = None, **params):
        self.name = name
        self.cpu = cpu
        self.comm = comm or name
        self.pid = pid
        self.label = label or f"CPU{cpu}"
        self.title = title or name
        for k, v in params.items():
            setattr(self, k, v)
        self.steps: list[StepInfo] = []
        self.funcs: list[Callable] = []
        self.index: dict[str, int] = {}
        for i, nm in enumerate(self._order):
            spec = self._specs[nm]
            self.steps.append(StepInfo(i, nm, spec.c, spec.fn or self.fn, spec.local, spec.under,
                                       _may_raise_blocked(getattr(type(self), nm))))
            self.funcs.append(getattr(self, nm))
            self.index[nm] = i
        if not self.steps:
            raise ModelError(f"program {type(self).__name__} has no steps")

    def __repr__(self):
        return f"<{type(self).__name__} {self.name}>"


def _may_raise_blocked(func) -> bool:
    """Does a step's own code raise Blocked or call ``block()``/``Stay``? (source scan)."""
    import inspect
    try:
        src = inspect.getsource(func)
    except (OSError, TypeError):
        return True
    return any(x in src for x in ("Blocked", "block(", "Stay"))


@dataclass(frozen=True)
class Variant:
    """A historical version of the code: name, commit id, one-line description.

    ``programs`` maps a role (e.g. ``"waker"``) to the Program class this
    variant uses for it; ``flags`` carries other switches the model reads.
    """

    name: str
    desc: str
    commit: str | None = None
    programs: dict[str, type] = field(default_factory=dict)
    flags: dict[str, Any] = field(default_factory=dict)
    buggy: bool = False

    def derive(self, name: str, desc: str, *, commit: str | None = None,
               programs: dict[str, type] | None = None, flags: dict | None = None,
               buggy: bool | None = None) -> Variant:
        """A new variant that changes only what is given (e.g. one program)."""
        return Variant(name, desc, commit,
                       {**self.programs, **(programs or {})},
                       {**self.flags, **(flags or {})},
                       self.buggy if buggy is None else buggy)


@dataclass(frozen=True)
class Param:
    """An integer parameter of a model, with its default and allowed range."""

    default: int
    lo: int = 0
    hi: int = 16
    help: str = ""
    choices: tuple[str, ...] | None = None

    def parse(self, name: str, raw: Any) -> Any:
        if self.choices is not None:
            if raw not in self.choices:
                raise KvmlabError(f"param {name}={raw!r}: must be one of {', '.join(self.choices)}")
            return raw
        try:
            v = int(raw)
        except (TypeError, ValueError):
            raise KvmlabError(f"param {name}={raw!r}: not an integer") from None
        if not self.lo <= v <= self.hi:
            raise KvmlabError(f"param {name}={v}: must be between {self.lo} and {self.hi}")
        return v


@dataclass(frozen=True)
class Config:
    """A kernel config switch (``PREEMPT_RT`` ...) with its default and meaning."""

    default: bool
    help: str = ""


def parse_bool(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    s = str(raw).strip().lower()
    if s in ("y", "yes", "1", "true", "on"):
        return True
    if s in ("n", "no", "0", "false", "off"):
        return False
    raise KvmlabError(f"config {name}={raw!r}: use y or n")


class Model:
    """Base class of every model. Subclasses set the class attributes and ``setup``.

    Class attributes: ``name``, ``title``, ``source`` (seed / commits),
    ``variants`` (list; the first is the default), ``configs``
    (name -> :class:`Config`), ``params`` (name -> :class:`Param`),
    ``properties`` (name -> description), ``fairness`` (default assumption for
    ``terminates``), ``world`` (the World class giving the primitives).
    """

    name: str = "?"
    title: str = ""
    source: str = ""
    variants: list[Variant] = []
    configs: dict[str, Config] = {}
    params: dict[str, Param] = {}
    properties: dict[str, str] = {}
    fairness: str = "none"
    world: type | None = None
    stuck_property: str = "no_deadlock"
    goals: dict[str, str] = {}

    def setup(self, w, variant: Variant, config: dict, params: dict) -> None:
        """Declare shared state with ``w.declare`` and threads with ``w.spawn``."""
        raise NotImplementedError

    def invariants(self, w) -> Iterable[tuple[str, str]]:
        """Yield (property, message) for each invariant broken in state ``w``."""
        return ()

    def end_checks(self, w) -> Iterable[tuple[str, str]]:
        """Yield (property, message) for what is wrong when no thread can move."""
        return ()

    def stuck_message(self, w, reasons: dict[int, str]) -> tuple[str, str]:
        """(property, message) when some thread can never move again."""
        who = "; ".join(f"{w.programs[i].label} {r} forever" for i, r in sorted(reasons.items()))
        return self.stuck_property, who

    def describe_state(self, w) -> dict[str, str]:
        """Shared state as name -> short text, for the stepper and traces."""
        return {k: _fmt(v) for k, v in w.shared_items() if not k.startswith("@")}

    # -- lookup helpers -------------------------------------------------
    @classmethod
    def variant(cls, name: str | None) -> Variant:
        if name is None:
            return cls.variants[0]
        for v in cls.variants:
            if v.name == name:
                return v
        raise KvmlabError(f"model {cls.name}: unknown variant {name!r} "
                          f"(known: {', '.join(v.name for v in cls.variants)})")


def _fmt(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, tuple):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)
