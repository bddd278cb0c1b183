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

from .errors import ConfigError, KvmlabError, ModelError

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
        appended: list[str] = []  # new steps placed at the end because nothing said where
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
                appended.append(name)
        for name in cls.__dict__.get("drop", ()):
            if name not in order:
                raise ModelError(f"{cls.__name__}: cannot drop unknown step {name!r}")
            order.remove(name)
        cls._order = tuple(order)
        cls._specs = specs
        _check_reachable(cls, appended)

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


def _codes(code):
    """A code object and the code objects nested in it."""
    yield code
    for c in code.co_consts:
        if hasattr(c, "co_code"):
            yield from _codes(c)


def _names_used(code) -> set[str]:
    """Names a function's code mentions (globals, attributes, string constants)."""
    out: set[str] = set()
    for c in _codes(code):
        out.update(c.co_names)
        out.update(x for x in c.co_consts if isinstance(x, str))
    return out


def _may_raise_blocked(func) -> bool:
    """Can a step stop without moving? It names ``Blocked``/``Stay`` or calls ``block``/``wait_until``.

    Read from the step's compiled code (and one level of the program's own
    helpers it calls through ``self``), so it works for code without a source
    file; the kernel primitives that may block also say so at run time.
    """
    code = getattr(func, "__code__", None)
    if code is None:
        return True
    names = _names_used(code)
    if names & {"Blocked", "Stay", "block", "wait_until"}:
        return True
    owner = getattr(func, "__self__", None)
    for n in names:
        helper = getattr(type(owner), n, None) if owner is not None else None
        hc = getattr(helper, "__code__", None)
        if hc is not None and hc is not code and _names_used(hc) & {"Blocked", "Stay", "block", "wait_until"}:
            return True
    return False


def _jump_names(code) -> set[str]:
    """Strings a function returns or stores (possible jump targets), not those it only passes on."""
    import dis
    out: set[str] = set()
    keep = ("RETURN_VALUE", "BUILD_TUPLE", "BUILD_LIST", "BUILD_SET", "BUILD_MAP", "BUILD_CONST_KEY_MAP",
            "LIST_APPEND", "SET_ADD", "MAP_ADD", "COMPARE_OP")
    for c in _codes(code):
        ins = list(dis.get_instructions(c))
        for i, x in enumerate(ins):
            if x.opname == "RETURN_CONST" and isinstance(x.argval, str):
                out.add(x.argval)
            elif x.opname == "LOAD_CONST" and isinstance(x.argval, str):
                nxt = ins[i + 1].opname if i + 1 < len(ins) else ""
                # returned, compared, put in a table, or stored (t.ret = "label": a store a few ops on)
                if nxt in keep or any(y.opname.startswith("STORE_") for y in ins[i + 1:i + 4]):
                    out.add(x.argval)
            elif x.opname == "LOAD_CONST" and isinstance(x.argval, tuple | frozenset):
                out.update(v for v in x.argval if isinstance(v, str))
    return out


def _may_return_none(func, cls=None, depth: int = 0) -> bool:
    """Can a step fall through to the next line (return None, explicitly or at its end)?

    A value returned from a call counts as possibly None, unless the call is to one of the
    program's own methods (``self.helper(...)``, ``super().step(...)``), which are then read too.
    """
    import dis
    code = getattr(func, "__code__", None)
    if code is None or depth > 3:
        return True
    prev = None
    calls = False
    for ins in dis.get_instructions(code):
        if ins.opname == "RETURN_CONST" and ins.argval is None:
            return True
        if ins.opname == "RETURN_VALUE" and prev is not None:
            if prev.opname == "LOAD_CONST" and prev.argval is None:
                return True
            if prev.opname.startswith("CALL"):
                calls = True
        prev = ins
    if not calls:
        return False
    if cls is None:
        return True
    helpers = []
    for n in code.co_names:
        if n == code.co_name and "super" in code.co_names:  # super().same_step(...)
            for base in cls.__mro__[1:]:
                f = vars(base).get(n)
                if f is not None and getattr(f, "__code__", None) is not code:
                    helpers.append(f)
                    break
        elif n != code.co_name:
            f = getattr(cls, n, None)
            if callable(f) and hasattr(getattr(f, "__func__", f), "__code__"):
                helpers.append(getattr(f, "__func__", f))
    if not helpers:
        return True
    return any(_may_return_none(h, cls, depth + 1) for h in helpers)


def _returned_names(code) -> set[str]:
    """String constants a function returns (its jump targets)."""
    import dis
    out: set[str] = set()
    for c in _codes(code):
        prev = None
        for ins in dis.get_instructions(c):
            if ins.opname == "RETURN_CONST" and isinstance(ins.argval, str):
                out.add(ins.argval)
            elif ins.opname == "RETURN_VALUE" and prev is not None and prev.opname == "LOAD_CONST" \
                    and isinstance(prev.argval, str):
                out.add(prev.argval)
            prev = ins
    return out


_LOADS = ("LOAD_ATTR", "LOAD_FAST", "LOAD_DEREF", "LOAD_NAME", "LOAD_GLOBAL", "BINARY_SUBSCR", "LOAD_METHOD")


def _computed_return(code) -> bool:
    """Does a function return a value it did not write down (``return t.ret``): a jump we cannot follow?"""
    import dis
    for c in _codes(code):
        prev = None
        for ins in dis.get_instructions(c):
            if ins.opname == "RETURN_VALUE" and prev is not None and prev.opname in _LOADS \
                    and prev.argval != "DONE":
                return True
            prev = ins
    return False


def _check_reachable(cls, appended) -> None:
    """A new step appended at the end, after a step that never falls through, that no code names, can never run.

    Only judged when every jump of the program is written down (no ``return t.ret``).
    """
    order = cls._order
    if len(order) < 2:
        return
    named: set[str] = set()
    for klass in cls.__mro__:
        for v in vars(klass).values():
            code = getattr(getattr(v, "__func__", v), "__code__", None)
            if code is None:
                continue
            step = getattr(getattr(v, "__func__", v), "_kvmlab_line", None) is not None
            if (step and _computed_return(code)) or _returned_names(code) - set(order) - {DONE}:
                return  # a computed jump, or a jump to a step composed in later: not judged here
    for klass in cls.__mro__:
        for k, v in vars(klass).items():
            if k.startswith("_") and not hasattr(v, "__code__") or k in ("drop", "locals"):
                continue
            f = getattr(v, "__func__", v)
            code = getattr(f, "__code__", None)
            if code is not None:
                named |= _jump_names(code)
            elif isinstance(v, str):
                named.add(v)
            elif isinstance(v, tuple | list):
                named.update(x for x in v if isinstance(x, str))
    for i in range(1, len(order)):
        name = order[i]
        if name in named or name not in appended:
            continue
        prev = getattr(cls, order[i - 1])
        if not _may_return_none(prev, cls):
            spec = cls._specs[name]
            raise ModelError(
                f"{cls.__name__}.{name} ({' '.join(spec.c)}) can never run: it comes after step "
                f"{order[i - 1]!r}, which always jumps or finishes, and no step jumps to it. A new step in "
                f"a subclass goes at the end unless you place it: @line(..., after=\"step\") or before=")


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
                raise ConfigError(f"param {name}={raw!r}: must be one of {', '.join(self.choices)}")
            return raw
        if isinstance(raw, bool) or isinstance(raw, float) and not raw.is_integer():
            raise ConfigError(f"param {name}={raw!r}: not an integer")
        if isinstance(raw, str):
            s = raw.strip()
            if not (s.isascii() and (s.isdigit() or (s[:1] == "-" and s[1:].isdigit()))):
                raise ConfigError(f"param {name}={raw[:40]!r}: not an integer")
        try:
            v = int(raw)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"param {name}={str(raw)[:40]!r}: not an integer") from None
        if not self.lo <= v <= self.hi:
            raise ConfigError(f"param {name}={v}: must be between {self.lo} and {self.hi}")
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
    raise ConfigError(f"config {name}={str(raw)[:40]!r}: use y or n")


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
