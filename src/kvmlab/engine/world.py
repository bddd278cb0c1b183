"""Explicit, hashable state and the mutable World a step works on.

A state is a flat tuple ``(shared, objects, thread_0, ..., thread_n)``:
``shared`` holds the declared shared fields in declaration order,
``objects`` the dynamically created objects (sorted by id; ids are the
lowest free ones, so equal heaps encode equally), and each thread entry is
the tuple of its fields (program counter, kernel context, locals) or
``None`` once the thread has finished (finished threads carry no state).

A :class:`World` is loaded from a state, changed by one step, and turned
back into a state with :meth:`World.key`. Threads and objects are decoded
lazily, so a step pays only for what it touches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from . import watchdog
from .errors import Blocked, ConfigError, KvmlabError, ModelError, Oops, Stay
from .model import DONE, Model, Program, Variant, parse_bool

FINISHED = None
OBJ_RANGE = 1000
MERGE_WATCH = 64  # merged steps after which the reduction watches for a private loop


class Oid(int):
    """An object id (from :meth:`World.new_obj`): an int that says it refers to an object."""

    __slots__ = ()

    # shown as the number it is (states, traces, the stepper): only the type says it is an object
    __repr__ = __str__ = int.__repr__


class _WholeReads(dict):
    """A dict whose whole-dict reads (iterating, comparing, copying, printing, ``|``) call
    ``_all()``, which records them; subclasses record single-key reads themselves."""

    __slots__ = ()

    def _all(self):
        raise NotImplementedError

    def __iter__(self):
        self._all()
        return dict.__iter__(self)

    def keys(self):
        self._all()
        return dict.keys(self)

    def values(self):
        self._all()
        return dict.values(self)

    def items(self):
        self._all()
        return dict.items(self)

    def copy(self):
        self._all()
        return dict(dict.items(self))

    def __eq__(self, other):
        self._all()
        return dict.__eq__(self, other)

    def __ne__(self, other):
        self._all()
        return dict.__ne__(self, other)

    def __or__(self, other):
        self._all()
        return dict.__or__(dict(dict.items(self)), other)

    def __ror__(self, other):
        self._all()
        return dict.__or__(dict(other), dict(dict.items(self)))

    def __reversed__(self):
        self._all()
        return dict.__reversed__(self)

    def __repr__(self):
        self._all()
        return dict.__repr__(self)

    __hash__ = None


class Shared(_WholeReads):
    """The shared fields of a World: a dict that logs what a step reads and writes.

    ``rec`` (a set, while the explorer records a step's read set, else None)
    gets the name of every field read, or ``ALL_SHARED`` when the whole dict
    is read; ``wlog`` gets the name of every field written. Every way of
    reading a dict goes through these methods, so no read escapes.
    """

    __slots__ = ("rec", "wlog")

    def __init__(self, *a):
        super().__init__(*a)
        self.rec = None
        self.wlog = set()

    def __getitem__(self, k):
        if self.rec is not None:
            self.rec.add(k)
        return dict.__getitem__(self, k)

    def get(self, k, default=None):
        if self.rec is not None:
            self.rec.add(k)
        return dict.get(self, k, default)

    def _all(self):
        if self.rec is not None:
            self.rec.add(ALL_SHARED)

    def __setitem__(self, k, v):
        self.wlog.add(k)
        dict.__setitem__(self, k, v)

    def setdefault(self, k, default=None):
        if self.rec is not None:
            self.rec.add(k)
        self.wlog.add(k)
        return dict.setdefault(self, k, default)

    def pop(self, k, *default):
        raise ModelError(f"shared field {k!r} cannot be removed")

    def __delitem__(self, k):
        raise ModelError(f"shared field {k!r} cannot be removed")

    def update(self, *a, **kw):
        for k, v in dict(*a, **kw).items():
            self[k] = v

    def popitem(self):
        raise ModelError("shared fields cannot be removed")

    def clear(self):
        raise ModelError("shared fields cannot be removed")


class Threads(list):
    """The raw thread tuples of a World: a list that logs which threads a step reads.

    ``rec`` is as in :class:`Shared` (thread ids, or ``ALL_THREADS``).
    """

    __slots__ = ("rec",)

    def __init__(self, *a):
        super().__init__(*a)
        self.rec = None

    def __getitem__(self, i):
        if self.rec is not None:
            self.rec.add(ALL_THREADS if isinstance(i, slice) else i % len(self))
        return list.__getitem__(self, i)

    def __iter__(self):
        if self.rec is not None:
            self.rec.add(ALL_THREADS)
        return list.__iter__(self)

    def copy(self):
        if self.rec is not None:
            self.rec.add(ALL_THREADS)
        return list(list.__iter__(self))


class ReadLog(dict):
    """The locations a step read, in the order of their first read (``add`` records one)."""

    __slots__ = ()
    add = dict.setdefault


ALL_SHARED = ("S*",)  # read-set entries: every shared field, every object, every thread
ALL_OBJECTS = ("O*",)
ALL_THREADS = ("T*",)


class Vars(dict):
    """A dict whose items are also attributes: ``t.n`` is ``t["n"]``."""

    __slots__ = ()

    def __getattr__(self, k):
        try:
            return self[k]
        except KeyError:
            raise AttributeError(k) from None

    def __setattr__(self, k, v):
        if k not in self:
            raise ModelError(f"assignment to undeclared local {k!r}")
        self[k] = v


class ObjVars(_WholeReads, Vars):
    """An object's fields while a step's reads are recorded: a :class:`Vars` that logs
    each field read as ``("of", id, name)`` and a read of the whole object (iterating,
    comparing, copying, printing it) as ``("o", id)``. Every way of reading a dict
    goes through these methods, so no read escapes.
    """

    __slots__ = ("_rec_", "_oid_")

    def __init__(self, fields, rec, oid):
        dict.__init__(self, fields)
        object.__setattr__(self, "_rec_", rec)
        object.__setattr__(self, "_oid_", oid)

    def __getitem__(self, k):
        self._rec_.add(("of", self._oid_, k))
        return dict.__getitem__(self, k)

    def get(self, k, default=None):
        self._rec_.add(("of", self._oid_, k))
        return dict.get(self, k, default)

    def __contains__(self, k):
        self._rec_.add(("of", self._oid_, k))
        return dict.__contains__(self, k)

    def setdefault(self, k, default=None):
        self._rec_.add(("of", self._oid_, k))
        return dict.setdefault(self, k, default)

    def pop(self, k, *default):
        self._rec_.add(("of", self._oid_, k))
        return dict.pop(self, k, *default)

    def _all(self):
        self._rec_.add(("o", self._oid_))

    def __len__(self):
        self._all()
        return dict.__len__(self)

    def popitem(self):
        self._all()
        return dict.popitem(self)

    def __reduce_ex__(self, protocol):
        self._all()
        return (Vars, (dict(dict.items(self)),))


class Event:
    """Something a step reported: a kernel splat, warning or panic.

    ``prop`` is the property it violates; ``fatal`` events (panic, BUG,
    use-after-free) end the run in that state.
    """

    __slots__ = ("prop", "text", "fatal", "title")

    def __init__(self, prop: str, text: str, fatal: bool = False, title: str | None = None):
        self.prop = prop
        self.text = text
        self.fatal = fatal
        self.title = title or text.splitlines()[0]

    def __repr__(self):
        return f"Event({self.prop!r}, {self.title!r})"


class World:
    """Working copy of one state during a step; subclasses add primitives.

    ``thread_fields`` are the per-thread fields every thread has (the kernel
    world adds preempt count, irq state, ...). Shared fields are read and
    written as ``w["name"]``.
    """

    thread_fields: dict[str, Any] = {"_pc": 0}

    def __init__(self, system: System):
        self.sys = system
        self.programs = system.programs
        self.config = system.config
        self.params = system.params
        self.variant = system.variant
        self.sh: Shared = Shared()
        self._rec: ReadLog | None = system._rec  # the reads being recorded (see Shared)
        self._ot: tuple = ()
        self._od: dict[int, Vars] | None = None
        self._tt: Threads = Threads()
        self._th: list = []
        self.tid = -1
        self.t: Vars | None = None
        self.events: list[Event] = []
        self._script: tuple = ()
        self._pos = 0
        self.choices: list[tuple[str, tuple[str, ...], int]] = []
        self._other = False  # did this step look at another thread?
        self.touched: set[int] = set()  # which other threads it looked at
        self.merged = 0  # local steps run after the step (reduction)
        self.inv_other = False  # an invariant checked mid-transaction read thread state
        self.may_block = False  # the step called a primitive that can block
        self._watch = False  # record reads (while the reduction tries a local step)
        self._seen_shared = False  # a watched step read a shared field
        self._seen_objs: set[int] = set()  # objects a watched step read or wrote

    # -- shared state ----------------------------------------------------
    def __getitem__(self, k: str):
        if self._watch:
            self._seen_shared = True
        return self.sh[k]

    def __setitem__(self, k: str, v):
        if k not in self.sh and not self.sys._setting_up:
            raise ModelError(f"assignment to undeclared shared field {k!r}")
        self.sh[k] = v

    def declare(self, name: str, value: Any) -> None:
        """Declare a shared field (only in ``Model.setup``)."""
        if not self.sys._setting_up:
            raise ModelError("declare() is only allowed in setup()")
        if name in self.sh:
            raise ModelError(f"shared field {name!r} declared twice")
        _check_hashable(name, value)
        self.sh[name] = value

    def shared_items(self) -> Iterator[tuple[str, Any]]:
        return iter(self.sh.items())

    # -- objects -----------------------------------------------------------
    def _objs(self) -> dict[int, Vars]:
        if self._od is None:
            rec = self._rec
            if rec is None:
                self._od = {oid: Vars(fields) for oid, fields in self._ot}
            else:  # each field read is recorded on its own
                self._od = {oid: ObjVars(fields, rec, oid) for oid, fields in self._ot}
        return self._od

    def new_obj(self, kind: str, **fields) -> int:
        """Create an object; returns its id.

        Ids are canonical: thread ``t`` takes the lowest free id in its own
        range (``1000 * (t + 1)`` on; setup uses 1..999), so two heaps that
        differ only in which thread allocated first encode the same way.
        """
        objs = self._objs()
        oid = OBJ_RANGE * (self.tid + 1) if self.tid >= 0 else 0
        oid += 1
        rec = self._rec
        while oid in objs:
            if rec is not None:
                rec.add(("o?", oid))
            oid += 1
        if rec is not None:
            rec.add(("o?", oid))
        objs[oid] = Vars(_kind=kind, **fields)
        return Oid(oid)

    def obj(self, oid: int) -> Vars:
        if self._watch:
            self._seen_objs.add(oid)
        if self._rec is not None:
            self._rec.add(("o?", oid))
        try:
            return self._objs()[oid]
        except KeyError:
            raise ModelError(f"no object with id {oid}") from None

    def has_obj(self, oid: int) -> bool:
        if self._watch:
            self._seen_objs.add(oid)
        if self._rec is not None:
            self._rec.add(("o?", oid))
        return oid in self._objs()

    def del_obj(self, oid: int) -> None:
        if self._watch:
            self._seen_objs.add(oid)
        if self._rec is not None:
            self._rec.add(("o?", oid))
        del self._objs()[oid]

    def objects(self) -> dict[int, Vars]:
        if self._watch:
            self._seen_shared = True
        if self._rec is not None:
            self._rec.add(ALL_OBJECTS)
        return self._objs()

    # -- threads -------------------------------------------------------------
    def thread(self, i: int) -> Vars | None:
        """Thread ``i``'s fields (``None`` if it has finished)."""
        if i != self.tid:
            self._other = True
            self.touched.add(i)
            if self._rec is not None:
                self._rec.add(i)
        th = self._th[i]
        if th is None:
            raw = list.__getitem__(self._tt, i)
            if raw is FINISHED:
                return None
            th = Vars(zip(self.sys.thread_names[i], raw))
            self._th[i] = th
        return th

    def done(self, i: int) -> bool:
        if i != self.tid:
            self._other = True
            self.touched.add(i)
            if self._rec is not None:
                self._rec.add(i)
        return list.__getitem__(self._tt, i) is FINISHED if self._th[i] is None else False

    @property
    def nthreads(self) -> int:
        return len(self._tt)

    # -- nondeterminism -----------------------------------------------------
    def choose(self, name: str, options: tuple[str, ...] | list[str]) -> str:
        """Branch the exploration: every option is explored; returns the one taken."""
        options = tuple(options)
        pos = self._pos
        self._pos += 1
        script = self._script
        if pos < len(script):
            pick = script[pos]
            if isinstance(pick, str):
                if pick not in options:
                    raise KvmlabError(f"choice {name}: no option {pick!r} (options: {', '.join(options)})")
                idx = options.index(pick)
            else:
                idx = pick
        else:
            idx = 0
        self.choices.append((name, options, idx))
        return options[idx]

    # -- reports ----------------------------------------------------------
    def report(self, prop: str, text: str, *, fatal: bool = False, title: str | None = None) -> None:
        """Record a violation of ``prop`` with kernel-format ``text``."""
        self.events.append(Event(prop, text, fatal, title))

    def block(self, reason: str):
        self.may_block = True
        raise Blocked(reason)

    # -- hooks for subclasses -------------------------------------------------
    def gate(self, tid: int) -> str | None:
        """Reason thread ``tid`` may not run now regardless of its step, or None."""
        return None

    def locks_held(self, tid: int) -> tuple:
        """Names of the locks thread ``tid`` holds (the kernel world knows)."""
        return ()

    def may_be_interrupted(self, tid: int) -> bool:
        """Can another thread preempt ``tid`` in mid-flight (e.g. a hardirq handler on its CPU)?

        The reduction never merges steps of such a thread: the handler may run
        between any two of them, and may observe (or block on) what they hold.
        """
        return False

    def observed_fields(self, tid: int) -> tuple[str, ...]:
        """The fields of thread ``tid`` that other threads' steps may read (kernel context)."""
        return tuple(k for k in self.sys.thread_names[tid] if k[0] == "_" and k != "_pc")

    def peek_thread(self, i: int):
        """Thread ``i``'s fields without marking the step as having looked at it (the read is recorded)."""
        if self._rec is not None and i != self.tid:
            self._rec.add(i)
        th = self._th[i]
        if th is not None:
            return th
        raw = list.__getitem__(self._tt, i)
        return None if raw is FINISHED else dict(zip(self.sys.thread_names[i], raw))

    def on_finish(self, tid: int, t: Vars) -> None:
        """Called when thread ``tid`` finishes (e.g. to check it holds no lock)."""

    def thread_status(self, tid: int) -> str:
        """Short text describing where thread ``tid`` is, for displays."""
        t = self.thread(tid)
        if t is None:
            return "done"
        return "running"

    # -- encoding -----------------------------------------------------------
    def key(self) -> tuple:
        sh = tuple(dict.values(self.sh))
        if self._od is None:
            ot = self._ot
        else:
            ot = tuple(sorted((oid, tuple(dict.items(v))) for oid, v in self._od.items()))
        ths = self._th
        tt = self._tt
        out = [sh, ot]
        for i, raw in enumerate(list.__iter__(tt)):
            th = ths[i]
            out.append(raw if th is None else tuple(th.values()))
        return tuple(out)

    def finish_current(self) -> None:
        self._tt[self.tid] = FINISHED
        self._th[self.tid] = None


_NO_OIDS: frozenset = frozenset()


def oids_in(value) -> frozenset:
    """The object ids in ``value`` (a thread's tuple), looking inside tuples and frozensets."""
    c = value.__class__
    if c is Oid:
        return frozenset((value,))
    if c is not tuple and c is not frozenset and not isinstance(value, tuple | frozenset | Oid):
        return _NO_OIDS
    out = set()
    todo = [value]
    while todo:
        v = todo.pop()
        if isinstance(v, Oid):
            out.add(v)
        elif isinstance(v, tuple | frozenset):
            todo.extend(v)
    return frozenset(out)


def _any(it) -> bool:
    for _ in it:
        return True
    return False


def _check_hashable(name: str, value: Any) -> None:
    try:
        hash(value)
    except TypeError:
        raise ModelError(f"shared field {name!r}: value {value!r} is not hashable "
                         "(use tuples and frozensets)") from None


class System:
    """A model bound to one variant, config and params: initial state and steps."""

    def __init__(self, model_cls: type[Model], variant: str | Variant | None = None,
                 config: dict | None = None, params: dict | None = None):
        self.model_cls = model_cls
        self.model = model_cls()
        self.variant = variant if isinstance(variant, Variant) else model_cls.variant(variant)
        self.config = self._parse_config(config or {})
        self.params = self._parse_params(params or {})
        self.world_cls = model_cls.world or World
        self.programs: list[Program] = []
        self._rec: ReadLog | None = None  # set while the explorer records what a step reads
        self._setting_up = True
        w = self.world_cls(self)
        w._ot = ()
        self._spawned: list[Vars] = []
        w.spawn = self._spawn  # type: ignore[attr-defined]
        self.model.setup(w, self.variant, self.config, self.params)
        self._setting_up = False
        if not self.programs:
            raise ModelError(f"model {model_cls.name}: setup spawned no thread")
        self.shared_names = tuple(dict.keys(w.sh))
        self._shared_index = {k: i for i, k in enumerate(self.shared_names)}
        self.thread_names = [tuple(t) for t in self._spawned]
        w._tt = Threads(tuple(t.values()) for t in self._spawned)
        w._th = [None] * len(w._tt)
        self.initial = w.key()
        del w.spawn
        self.nthreads = len(self.programs)
        self.has_invariants = type(self.model).invariants is not Model.invariants

    # -- construction ------------------------------------------------------
    def _parse_config(self, raw: dict) -> dict:
        known = self.model_cls.configs
        out = {k: c.default for k, c in known.items()}
        if not isinstance(raw, dict):
            raise ConfigError(f"config must be a dict such as {{'PREEMPT_RT': True}}, not {type(raw).__name__}")
        for k, v in raw.items():
            if k not in known:
                raise ConfigError(f"model {self.model_cls.name}: unknown config {k!r} "
                                  f"(known: {', '.join(known) or 'none'})")
            out[k] = parse_bool(k, v)
        return out

    def _parse_params(self, raw: dict) -> dict:
        known = self.model_cls.params
        out = {k: p.default for k, p in known.items()}
        if not isinstance(raw, dict):
            raise ConfigError(f"params must be a dict such as {{'cpus': 2}}, not {type(raw).__name__}")
        for k, v in raw.items():
            if k not in known:
                raise ConfigError(f"model {self.model_cls.name}: unknown param {k!r} "
                                  f"(known: {', '.join(known) or 'none'})")
            out[k] = known[k].parse(k, v)
        return out

    def _spawn(self, program: Program, **local_overrides) -> int:
        if not isinstance(program, Program):
            raise ModelError("spawn() takes a Program instance")
        fields = dict(self.world_cls.thread_fields)
        for k, v in program.locals.items():
            if k in fields:
                raise ModelError(f"{program}: local {k!r} clashes with a thread field")
            fields[k] = v
        for k, v in local_overrides.items():
            if k not in fields:
                raise ModelError(f"{program}: spawn sets undeclared field {k!r}")
            fields[k] = v
        for k, v in fields.items():
            _check_hashable(k, v)
        tid = len(self.programs)
        program.tid = tid
        if program.pid is None:
            program.pid = 100 + tid
        self.programs.append(program)
        self._spawned.append(Vars(fields))
        return tid

    # -- decoding ------------------------------------------------------------
    def load(self, key: tuple) -> World:
        w = self.world_cls(self)
        w.sh = sh = Shared(zip(self.shared_names, key[0]))
        w._ot = key[1]
        w._tt = tt = Threads(key[2:])
        w._th = [None] * (len(key) - 2)
        sh.rec = tt.rec = w._rec
        return w

    # -- running one step ------------------------------------------------------
    def _attempt(self, key: tuple, tid: int, script: tuple = (), merge: bool = False):
        """Run thread ``tid``'s next step (and, with ``merge``, the steps the reduction joins to it).

        Returns ``(world, None)`` or ``(world, reason)`` when the thread cannot move.
        """
        w = self.load(key)
        w.tid = tid
        if w._tt[tid] is FINISHED:
            return w, "done"
        why = w.gate(tid)
        if why is not None:
            return w, why
        t = w.thread(tid)
        w.t = t
        w._script = script
        held0 = w.locks_held(tid) if merge else ()
        try:
            stayed = self._exec(w, tid, t)
        except Blocked as b:
            return w, b.reason
        except Oops:
            return w, None  # a fatal report ended the step: the run ends in this state
        if merge and not stayed and not w.may_be_interrupted(tid):
            acquired = ()
            if merge != "local" and w._th[tid] is not None:
                acquired = tuple(x for x in w.locks_held(tid) if x not in held0)
            self._merge_local(w, tid, acquired)
        return w, None

    def _exec(self, w: World, tid: int, t) -> bool:
        """Execute one step of thread ``tid``; True if it stayed on its line."""
        prog = self.programs[tid]
        pc = t["_pc"]
        stayed = False
        prev = watchdog.enter_step()
        try:
            r = prog.funcs[pc](w, t)
        except Stay:
            r = prog.steps[pc].name
            stayed = True
        finally:
            watchdog.leave_step(prev)
        if r is None:
            npc = pc + 1
            if npc >= len(prog.steps):
                r = DONE
        elif r != DONE:
            try:
                npc = prog.index[r]
            except (KeyError, TypeError):
                known = ", ".join(st.name for st in prog.steps)
                raise ModelError(f"{prog}: step {prog.steps[pc].name} returned {r!r}, which is not a step "
                                 f"of {type(prog).__name__} (steps: {known}; or DONE)") from None
        if r == DONE:
            w.on_finish(tid, t)
            w.finish_current()
            return True
        t["_pc"] = npc
        if len(t) != len(self.thread_names[tid]):
            extra = set(t) - set(self.thread_names[tid])
            raise ModelError(f"{prog}: step {prog.steps[pc].name} created undeclared locals {sorted(extra)}")
        return stayed

    def _visible(self, w: World, tid: int):
        """What other threads can see of this state besides the shared fields and objects
        they reach: the fields of this thread's context they may read (task state, RCU, ...)."""
        t = w._th[tid]
        return tuple(t[k] for k in w.observed_fields(tid))

    def _merge_local(self, w: World, tid: int, acquired: tuple = ()) -> None:
        """The reduction: extend this transition with the thread's next steps.

        A transition that began by taking a lock is a Lipton transaction:
        acquire (moves right), then steps ``under`` that lock or ``local``
        (they commute with every other thread), at most one other step while
        the lock is still held -- never one that could block (it calls a
        blocking primitive, or its code can raise Blocked), since a transaction
        must not stop half way in any interleaving --, and the unlock (moves left,
        when marked ``under`` the lock) and what follows it while ``under``/``local``.
        Any transition also runs the ``local`` steps that follow it.

        Every promise is checked as the step runs, and a step that breaks one is
        undone and left to the search (the reduction does not apply there): a
        ``local`` step may not read or write a shared field or an object another
        thread can reach, change its kernel context (which other threads and
        handlers see), look at another thread, make a choice, block or report; an
        ``under`` step must hold its lock and may not look at another thread, make
        a choice or block. Merging stops at once when a step reports something or
        an invariant breaks, so that state is kept and counterexamples stay exact,
        and when a private loop comes back to a state it had (the search then sees
        the loop).
        """
        has_inv = self.has_invariants
        if w.events:
            return
        prog = self.programs[tid]
        steps = prog.steps
        other_used = not acquired  # the one non-mover of a transaction
        looped: set | None = None
        while True:
            t = w._th[tid]
            if t is None:
                return
            if w.merged >= MERGE_WATCH:
                looped = looped if looped is not None else set()
                own = tuple(t.values())
                if own in looped:
                    return
                looped.add(own)
            st = steps[t["_pc"]]
            held = w.locks_held(tid) if (st.under is not None or not other_used) else ()
            if st.local:
                kind = "local"
            elif st.under is not None and st.under in acquired and st.under in held:
                kind = "under"
            elif not other_used and not st.can_block and any(x in held for x in acquired):
                kind = "other"
                other_used = True
            else:
                return
            # a broken invariant ends the transition here (looked at only when there is a step to
            # merge: otherwise the outcome does not depend on it)
            if has_inv and self._inv_broken(w):
                return
            snap = (w.key(), w._other, set(w.touched), len(w.choices), len(w.events), w.merged, set(w.sh.wlog))
            if kind == "local":
                vis0 = self._visible(w, tid)
                wlog0, w.sh.wlog = w.sh.wlog, set()
                w._watch, w._seen_shared, w._seen_objs = True, False, set()
                # every read of a shared field, also the kernel library's direct ones (w.sh[...])
                outer_rec, w.sh.rec = w.sh.rec, ReadLog()
            other0, nch = w._other, len(w.choices)
            w.may_block = False
            try:
                try:
                    stayed = self._exec(w, tid, t)
                finally:
                    w._watch = False
                    if kind == "local":
                        local_reads, w.sh.rec = w.sh.rec, outer_rec
                        if local_reads:
                            w._seen_shared = True
                            if outer_rec is not None:
                                for k in local_reads:  # in the order read, after the outer ones
                                    outer_rec.add(k)
            except (Blocked, Oops):
                self._restore(w, tid, snap)
                return
            broken = (w._other != other0 or len(w.choices) != nch or w.may_block)
            if kind == "local" and not broken:
                broken = (w.events or w._seen_shared or w._th[tid] is None or self._visible(w, tid) != vis0
                          or self._shared_changed(w, snap[0][0])
                          or (w._seen_objs and w._seen_objs & self._reachable_in(snap[0], tid)))
                w.sh.wlog |= wlog0
            if broken:
                self._restore(w, tid, snap)
                return
            w.merged += 1
            if stayed or w.events:
                return

    def _shared_changed(self, w: World, before: tuple) -> bool:
        """Did the step just run change a shared field (from its values ``before``)?"""
        idx = self._shared_index
        for k in w.sh.wlog:
            if w._rec is not None:
                w._rec.add(k)  # the answer depends on the field's old value
            i = idx.get(k)
            if i is None or dict.__getitem__(w.sh, k) != before[i]:
                return True
        return False

    def _reachable_in(self, key: tuple, tid: int) -> set[int]:
        """The objects reachable in state ``key`` from the shared fields and from every
        thread but ``tid`` (following object ids inside tuples, frozensets and objects).

        Recorded as reads of exactly what the answer depends on, in an order fixed by the
        values read before: the object ids in each shared field (``("sho", name)``) and
        those each other thread holds (``("oids", j)``), then, breadth first in id order,
        for each object id met whether it exists (``("o?", id)``) and the ids in its
        fields (``("oo", id)``). See :func:`oids_in`.
        """
        locs: list = []
        frontier: set = set()
        for name, v in zip(self.shared_names, key[0]):
            locs.append(("sho", name))
            frontier |= oids_in(v)
        for j in range(len(key) - 2):
            if j != tid:
                locs.append(("oids", j))
                frontier |= oids_in(key[2 + j])
        objs = dict(key[1])
        met: set = set()
        seen: set[int] = set()
        todo = sorted(frontier)
        while todo:
            nxt: set = set()
            for v in todo:
                met.add(v)
                locs.append(("o?", v))
                fields = objs.get(v)
                if fields is None:
                    continue
                seen.add(v)
                locs.append(("oo", v))
                nxt |= oids_in(fields)
            todo = sorted(nxt - met)
        rec = self._rec
        if rec is not None:
            for loc in locs:
                rec.add(loc)
        return seen

    def _inv_broken(self, w: World) -> bool:
        """Does an invariant break in ``w`` (mid-transaction)? Marks ``w`` if that looked at threads."""
        other = w._other
        w._other = False
        broken = _any(self.model.invariants(w))
        if w._other:
            w.inv_other = True
        w._other = other
        return broken

    def _restore(self, w: World, tid: int, snap) -> None:
        """Undo a step tried inside a transaction (it could not join it)."""
        key, other, touched, nch, nev, merged, wlog = snap
        w.sh = Shared(zip(self.shared_names, key[0]))
        w.sh.wlog = wlog
        w._ot, w._od = key[1], None
        w._tt, w._th = Threads(key[2:]), [None] * len(key[2:])
        w.sh.rec = w._tt.rec = w._rec
        w._other, w.touched, w.merged = other, touched, merged
        del w.choices[nch:]
        del w.events[nev:]
        w._pos = nch
        w.t = w.thread(tid)

    def run(self, key: tuple, tid: int, script: tuple = (), merge: bool = False):
        """Run thread ``tid``'s next step from ``key``; raises Blocked if it cannot move."""
        w, why = self._attempt(key, tid, script, merge)
        if why is not None:
            raise Blocked(why)
        return w

    def attempts(self, key: tuple, tid: int, merge=False):
        """Run every outcome of thread ``tid``'s next step (one per combination of choices).

        Returns ``(worlds, None)`` with ``worlds`` a list of ``(move, World)`` in
        choice order, or ``([world], reason)`` if the thread cannot move (the
        World shows what the attempt looked at). ``move`` is the schedule item
        naming the outcome: ``"1"``, or ``"1:fail"`` when a choice other than the
        first was taken.
        """
        out = []
        pending = [()]
        while pending:
            script = pending.pop()
            w, why = self._attempt(key, tid, script, merge)
            if why is not None:
                if script:
                    raise KvmlabError(f"thread {tid}: a step blocked after making a choice")
                return [w], why
            log = w.choices
            for j in range(len(script), len(log)):
                prefix = tuple(c[2] for c in log[:j])
                for alt in range(len(log[j][1]) - 1, 0, -1):
                    pending.append(prefix + (alt,))
            out.append((tuple(c[2] for c in log), move_name(tid, log), w))
        out.sort(key=lambda x: x[0])
        return [(m, w) for _, m, w in out], None

    def expand(self, key: tuple, tid: int, merge=False):
        """All outcomes of thread ``tid``'s next step: list of (move, World); raises Blocked."""
        worlds, why = self.attempts(key, tid, merge)
        if why is not None:
            raise Blocked(why)
        return worlds

    def enabled(self, key: tuple) -> tuple[list[int], dict[int, str]]:
        """Which threads can move in ``key`` and, for the others, why not."""
        ok, why = [], {}
        for tid in range(self.nthreads):
            try:
                self.run(key, tid)
                ok.append(tid)
            except Blocked as b:
                why[tid] = b.reason
        return ok, why

    def is_done(self, key: tuple, tid: int) -> bool:
        return key[2 + tid] is FINISHED

    def all_done(self, key: tuple) -> bool:
        return all(x is FINISHED for x in key[2:])


def move_name(tid: int, log) -> str:
    """Schedule item for a move: ``"1"``, or ``"1:fail"`` when a choice was not the first."""
    if all(c[2] == 0 for c in log):
        return str(tid)
    return f"{tid}:" + "+".join(c[1][c[2]] for c in log)


def parse_move(item) -> tuple[int, tuple[str, ...]]:
    """Inverse of :func:`move_name`: ``"1:fail"`` -> ``(1, ("fail",))``."""
    s = str(item).strip()
    tid_s, _, rest = s.partition(":")
    try:
        tid = int(tid_s)
    except ValueError:
        raise KvmlabError(f"schedule item {s!r}: expected a thread id like 1 or 1:fail") from None
    return tid, tuple(x for x in rest.split("+") if x) if rest else ()
