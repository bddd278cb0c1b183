"""Breadth-first exploration of every interleaving, with shortest counterexamples.

Every state is reached first along a shortest path, so the first violation
found for a property is a shortest counterexample for it. Properties:

* invariants (``Model.invariants``) on every reached state;
* events a step reports (kernel splats), each naming its property;
* terminal states: if every thread finished, ``Model.end_checks``; if some
  thread can never move again, the model's stuck property (who waits for
  what) and ``end_checks`` too;
* ``terminates``, checked by default for every model (``liveness=False``
  turns it off, and the result says so): a reachable cycle in which some
  thread never finishes, always on the full (unreduced) graph, under the
  model's declared fairness or the one asked for (``none``: any cycle;
  ``weak``: a thread enabled in every state of the cycle must move in it;
  ``strong``: a thread enabled anywhere in the cycle must move in it).

A step that raises, or does not return within ``step_timeout`` seconds, ends
the search with :class:`~kvmlab.engine.errors.StepCrash`, which names the
thread, the step, its C line and the shortest schedule reaching it. Ctrl-C
ends it with a partial result (``stopped_by="interrupted"``).

The search loop below is the reference, in pure Python (the one Pyodide
runs); when the optional compiled core is built, :mod:`.ccore` runs the
same search with the loop in C and finds the same states, transitions and
counterexamples. Steps run through :class:`~.packed.Packed`'s memos.
"""

from __future__ import annotations

import os
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from .errors import Blocked, KvmlabError, StepCrash, StepTimeout, ToolError
from .model import Model
from .packed import BITS, MASK, MEMOS, Packed
from .search import Findings, Search
from .trace import Trace, replay_moves
from .watchdog import Watchdog, check_limit
from .world import System, parse_move

FAIRNESS = ("none", "weak", "strong")
PROGRESS = "terminates"
STEP_TIMEOUT = 10.0  # seconds a single step may run before it is reported as not returning


@dataclass
class Violation:
    """One broken property with its shortest counterexample."""

    property: str
    message: str
    splat: str | None
    schedule: list[str]
    trace: list[dict]
    kind: str
    loop_start: int | None = None

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Result:
    """What an exhaustive check found."""

    model: str
    variant: str
    config: dict
    params: dict
    complete: bool
    states: int
    transitions: int
    depth: int
    seconds: float
    violations: list[Violation] = field(default_factory=list)
    stopped_by: str | None = None
    reduction: bool = True
    fairness: str = "none"
    properties: list[str] = field(default_factory=list)
    progress: bool = True
    reached: dict[int, set[int]] = field(default_factory=dict, repr=False)  # thread -> program counters

    @property
    def ok(self) -> bool:
        return self.complete and not self.violations

    def violation(self, prop: str) -> Violation | None:
        for v in self.violations:
            if v.property == prop:
                return v
        return None

    def holds(self, prop: str) -> bool:
        """True if ``prop`` held in every state of a complete search."""
        return self.complete and self.violation(prop) is None

    @property
    def exit_code(self) -> int:
        if self.violations:
            return 1
        return 0 if self.complete else 3

    @property
    def interrupted(self) -> bool:
        return self.stopped_by == "interrupted"

    def bounds(self) -> str:
        """The bounds this verdict holds within, in words (configs, params, progress assumption)."""
        cfg = " ".join(f"{k}={'y' if v else 'n'}" for k, v in self.config.items())
        prm = " ".join(f"{k}={v}" for k, v in self.params.items())
        prog = (f"progress checked under {self.fairness} fairness" if self.progress
                else "progress NOT checked")
        return ", ".join(x for x in (cfg, prm, prog) if x)

    def to_json(self) -> dict:
        return {
            "model": self.model, "variant": self.variant, "config": self.config,
            "params": self.params, "complete": self.complete, "states": self.states,
            "transitions": self.transitions, "depth": self.depth,
            "seconds": round(self.seconds, 4), "stopped_by": self.stopped_by,
            "reduction": self.reduction, "fairness": self.fairness, "progress": self.progress,
            "bounds": self.bounds(), "properties": self.properties,
            "violations": [v.to_json() for v in self.violations],
        }


class Explorer:
    """Breadth-first search over a :class:`System`'s state graph."""

    def __init__(self, system: System, *, max_states: int = 2_000_000, max_seconds: float | None = None,
                 reduction: bool = True, fairness: str | None = None, liveness: bool | None = None,
                 progress: Callable[[int, int], None] | None = None, record: bool = False,
                 step_timeout: float | None = STEP_TIMEOUT, memo: str = "readset"):
        self.sys = system
        self.model = system.model
        if isinstance(max_states, bool) or not isinstance(max_states, int) or max_states < 1:
            raise KvmlabError(f"max_states={max_states!r}: must be a whole number of states, at least 1")
        self.max_states = max_states
        self.max_seconds = check_limit(max_seconds, "max_seconds")
        self.step_timeout = check_limit(step_timeout, "step_timeout")
        if reduction not in (True, False, "local", "full", "none"):
            raise KvmlabError(f"reduction {reduction!r}: use True/'full', 'local' or False/'none'")
        self.reduction = {"full": True, "none": False}.get(reduction, reduction)
        self.fairness = fairness or type(self.model).fairness
        if self.fairness not in FAIRNESS:
            raise KvmlabError(f"fairness {self.fairness!r}: use one of {', '.join(FAIRNESS)}")
        if liveness not in (None, True, False):
            raise KvmlabError(f"liveness={liveness!r}: use True or False")
        self.liveness = True if liveness is None else liveness
        if self.liveness and self.reduction:
            # Lipton transactions change where a thread is enabled, which is what fairness is
            # about (e.g. a waiter that can take a lock only part of the time): the termination
            # check never uses them. Merging local steps keeps every lasso: they are always
            # enabled, deterministic and invisible to the other threads (checked as they run).
            self.reduction = "local"
        if memo not in MEMOS:
            raise KvmlabError(f"memo {memo!r}: use one of {', '.join(MEMOS)}")
        self.memo = memo
        self.progress = progress
        self.record = record
        self.graph: dict | None = None

    def run(self) -> Result:
        """Search, then judge progress, then spell out each counterexample."""
        t0 = time.perf_counter()
        pk = Packed(self.sys, merge=self.reduction, memo=self.memo)  # merge: True (full), "local" or False
        found = Findings()
        init = pk.pack(self.sys.initial)
        for prop, msg in pk.invariants(init, self.model):
            found.note(prop, msg, None, 0, None, "invariant")
        dog = Watchdog(self.step_timeout)
        dog.__enter__()
        try:
            if self.use_c():
                from . import ccore
                sr = ccore.search(self, pk, found, init, t0)
            else:
                sr = self._search(pk, found, init, t0)
        except MemoryError:
            raise ToolError("out of memory during the search") from None
        finally:
            dog.__exit__(None, None, None)
        self.engine = sr.engine
        if sr.crash is not None:
            raise self._crash(sr.crash, path_to_fn(sr.parent, sr.pmove, sr.move_names))
        self.stats = {"memo_entries": len(pk.memo) + len(pk.memo2), "memo_misses": pk.memo_misses,
                      "step_runs": pk.step_runs, "readset_hits": pk.l2_hits, "readset_conflicts": pk.l2_conflicts,
                      "global_parts": len(pk.gl), "thread_parts": sum(len(t) for t in pk.tl), "engine": sr.engine}
        lasso = None
        if self.liveness and sr.complete and PROGRESS not in found.found:
            lasso = sr.lasso(self.fairness)
            if lasso is not None:
                found.note(PROGRESS, "", None, lasso[0], None, "lasso")
        seconds = time.perf_counter() - t0
        return self._result(pk, sr, found, lasso, seconds)

    def use_c(self) -> bool:
        """Is the compiled core used for this search (not for record=True, memo="off" or KVMLAB_PURE=1)?"""
        if self.record or self.memo == "off" or os.environ.get("KVMLAB_PURE", "") not in ("", "0"):
            return False
        from . import ccore
        return ccore.available()

    def _search(self, pk: Packed, found: Findings, init: int, t0: float) -> Search:
        """The breadth-first search in pure Python (the reference; the one Pyodide runs)."""
        sys = self.sys
        model = self.model
        note = found.note
        seen: dict[int, int] = {init: 0}
        sr = Search("python")
        parent, pmove, move_names, depth = sr.parent, sr.pmove, sr.move_names, sr.depth
        move_ids: dict[str, int] = {}
        record = self.record
        # the termination check needs the edges and which threads could move where; record=True
        # keeps the whole graph (for the stepper and diagrams): states in index order, each expanded
        # state's edges with their reports, why threads could not move, and what each state breaks
        keep_rows = self.liveness or record
        rec_states = [init]
        rows: dict[int, list[tuple]] = {}  # state -> [(target, tid, move, reports)]
        masks: dict[int, int] = {}  # state -> bit set of the threads that could move
        rec_blocked: dict[int, dict[int, str]] = {}
        rec_bad: dict[int, list[tuple[str, str, str]]] = {}
        if record:
            for prop in found.order:
                if found.found[prop][2] == 0 and found.found[prop][4] == "invariant":
                    rec_bad.setdefault(0, []).append((prop, found.found[prop][0], "invariant"))
        terminal = set()
        transitions = 0
        q = deque([(init, 0)])
        check_every = 256
        invariants = pk.invariants
        has_inv = type(model).invariants is not Model.invariants
        nthreads = sys.nthreads
        raw = pk.raw
        memo_get = pk.memo.get
        shifts = [BITS * (t + 1) for t in range(nthreads)]
        try:
            while q:
                s, i = q.popleft()
                d1 = depth[i] + 1
                row: list[tuple] = [] if keep_rows else None
                mask = 0
                blocked = None
                nouts = 0
                gpart = (s & MASK) << BITS
                for tid in range(nthreads):
                    own = (s >> shifts[tid]) & MASK
                    if not own:
                        continue
                    r = memo_get(((gpart | own) << 6) | tid)
                    if r is None or r.__class__ is tuple:
                        try:
                            r = raw(s, tid)
                        except (Exception, StepTimeout) as e:  # a step raised or never returned
                            sr.crash = (i, s, tid, e)
                            break
                    if r.__class__ is str:
                        if blocked is None:
                            blocked = {}
                        blocked[tid] = r
                        continue
                    if r.__class__ is tuple:  # not memoised: full successors
                        items = r[1]
                    else:
                        shift = shifts[tid]
                        base = s & ~(MASK | (MASK << shift))
                        items = [(mv, base | ng | (nt << shift), evs) for mv, ng, nt, evs in r]
                    mask |= 1 << tid
                    for mv, s2, evs in items:
                        nouts += 1
                        j = seen.get(s2)
                        fatal = False
                        if evs:
                            for ev in evs:
                                note(ev.prop, ev.title, ev.text, i, mv, "splat")
                                fatal = fatal or ev.fatal
                        if j is None:
                            j = len(parent)
                            seen[s2] = j
                            parent.append(i)
                            mid = move_ids.get(mv)
                            if mid is None:
                                mid = move_ids[mv] = len(move_names)
                                move_names.append(mv)
                            pmove.append(mid)
                            depth.append(d1)
                            if record:
                                rec_states.append(s2)
                            if has_inv:
                                for prop, msg in invariants(s2, model):
                                    note(prop, msg, None, j, None, "invariant")
                                    if record:
                                        rec_bad.setdefault(j, []).append((prop, msg, "invariant"))
                            if fatal:
                                terminal.add(j)
                            else:
                                q.append((s2, j))
                        if keep_rows:
                            row.append((j, tid, mv, evs))
                transitions += nouts
                if keep_rows:
                    rows[i] = row
                    masks[i] = mask
                if record and blocked:
                    rec_blocked[i] = blocked
                if not nouts and sr.crash is None:
                    bad_here = self._terminal(pk, found, s, i, blocked)
                    if record and bad_here:
                        rec_bad.setdefault(i, []).extend(bad_here)
                if sr.crash is not None:
                    break
                if len(parent) >= self.max_states and q:
                    sr.complete, sr.stopped = False, f"max states ({self.max_states})"
                    break
                if (i & (check_every - 1)) == 0 and self._limits(sr, len(parent), transitions, t0):
                    break
        except KeyboardInterrupt:
            sr.complete, sr.stopped = False, "interrupted"
        except MemoryError:
            n = len(parent)
            seen = q = rows = masks = None  # noqa: F841 - free memory before reporting
            raise ToolError(f"out of memory after {n} states") from None
        del seen
        nstates = len(parent)
        sr.nstates, sr.transitions = nstates, transitions
        sr.rows, sr.masks = rows, masks
        if record:
            self.graph = {"keys": [pk.unpack(x) for x in rec_states],
                          "rows": [rows.get(i, []) for i in range(nstates)],
                          "blocked": [rec_blocked.get(i, {}) for i in range(nstates)],
                          "bad": rec_bad, "fatal": set(terminal),
                          "parent": list(parent), "pmove": [move_names[m] if k else None
                                                            for k, m in enumerate(pmove)]}
        return sr

    def _terminal(self, pk: Packed, found: Findings, s: int, i: int, blocked: dict | None) -> list:
        """Judge a state where no thread can move: stuck (who waits for what) and the end checks."""
        model = self.model
        w = pk.world(s)
        bad_here = []
        if blocked:
            prop, msg = model.stuck_message(w, blocked)
            found.note(prop, msg, None, i, None, "stuck")
            bad_here.append((prop, msg, "stuck"))
        for prop, msg in model.end_checks(w):
            found.note(prop, msg, None, i, None, "end")
            bad_here.append((prop, msg, "end"))
        return bad_here

    def _limits(self, sr: Search, nstates: int, transitions: int, t0: float) -> bool:
        """Report progress; True (and the reason in ``sr``) when the time limit has passed."""
        if self.progress:
            self.progress(nstates, transitions)
        if self.max_seconds is not None and time.perf_counter() - t0 > self.max_seconds:
            sr.complete, sr.stopped = False, f"time limit ({self.max_seconds:g} s)"
            return True
        return False

    def _result(self, pk: Packed, sr: Search, found: Findings, lasso, seconds: float) -> Result:
        """The Result: each counterexample spelled out C line by C line and replayed."""
        sys = self.sys
        nthreads = sys.nthreads
        reached = {tid: {tup[0] for tup in pk.tl[tid][1:]} for tid in range(nthreads)}
        path_to = path_to_fn(sr.parent, sr.pmove, sr.move_names)
        violations = []
        for prop in found.order:
            msg, splat, end, extra, kind = found.found[prop]
            sched = path_to(end)
            if extra is not None:
                sched.append(extra)
            loop_start = None
            if kind == "lasso":
                _, cycle = lasso
                loop_start = len(sched)
                sched = sched + cycle
            if self.reduction:
                sched, loop_start = unmerge(sys, sched, loop_start, self.reduction)
                if kind in ("splat", "invariant"):
                    sched = trim_trailing_locals(sys, sched, prop, kind)
            if kind == "lasso":
                msg = self._lasso_message(sched, loop_start)
            trace = replay_moves(sys, sched)
            violations.append(Violation(prop, msg, splat, sched, trace.to_json()["steps"], kind, loop_start))
        live = self.liveness
        return Result(
            model=type(self.model).name, variant=sys.variant.name, config=dict(sys.config),
            params=dict(sys.params), complete=sr.complete, states=sr.nstates, transitions=sr.transitions,
            depth=sr.max_depth(), seconds=seconds, violations=violations, stopped_by=sr.stopped,
            reduction=self.reduction, fairness=self.fairness if live else "none",
            properties=property_names(type(self.model), live), progress=live, reached=reached,
        )

    def _crash(self, crash, path_to) -> StepCrash:
        """Name the step that raised (from the traceback), the C line, and the schedule to it."""
        i, s, tid, exc = crash
        sys = self.sys
        prog = sys.programs[tid]
        codes = {getattr(f, "__func__", f).__code__: k for k, f in enumerate(prog.funcs)}
        step_ix = None
        tb = exc.__traceback__
        while tb is not None:
            k = codes.get(tb.tb_frame.f_code)
            if k is not None:
                step_ix = k
                break
            tb = tb.tb_next
        sched = path_to(i)
        try:
            if self.reduction:
                sched, _ = unmerge(sys, sched, None, self.reduction)
            key = sys.initial
            for item in sched:
                t_, script = parse_move(item)
                key = sys.run(key, t_, script).key()
            # the step may have run inside a reduced transition: replay the steps before it
            for _ in range(100_000):
                t = sys.load(key).thread(tid)
                if t is None or step_ix is None or t["_pc"] == step_ix:
                    break
                key = sys.run(key, tid).key()
                sched.append(str(tid))
            t = sys.load(key).thread(tid)
            if step_ix is None and t is not None:
                step_ix = t["_pc"]
        except (Exception, Blocked):  # the path itself could not be replayed: name what we know
            pass
        st = prog.steps[step_ix] if step_ix is not None else None
        frames = traceback.extract_tb(exc.__traceback__)
        mine = [fr for fr in frames if "/kvmlab/" not in fr.filename.replace("\\", "/")]
        fr = mine[-1] if mine else None
        where = f"at {fr.filename}, line {fr.lineno}: {fr.line}" if fr is not None and fr.line else ""
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return StepCrash(label=prog.label, step=st.name if st else "?", c_line=st.text if st else "?",
                         function=st.fn if st else prog.fn, cause=exc, schedule=sched, tid=tid, where=where,
                         learner_traceback="".join(traceback.format_list(mine)) + text)

    def _lasso_message(self, sched: list[str], loop_start: int) -> str:
        sys = self.sys
        tr = Trace(sys)
        for m in sched[:loop_start]:
            tr.step(m)
        stuck = [sys.programs[t].label for t in range(sys.nthreads) if not sys.is_done(tr.key, t)]
        moving = sorted({int(str(m).split(":")[0]) for m in sched[loop_start:]})
        who = ", ".join(sys.programs[t].label for t in moving)
        return (f"never terminates: {who} loop{'s' if len(moving) == 1 else ''} forever "
                f"({len(sched) - loop_start} steps repeat) while {', '.join(stuck)} never finish"
                f"{'es' if len(stuck) == 1 else ''} (fairness: {self.fairness})")


def property_names(model_cls, progress: bool = True) -> list[str]:
    """The properties a check of ``model_cls`` judges (``terminates`` when progress is checked)."""
    out = [p for p in model_cls.properties if p != PROGRESS]
    return out + [PROGRESS] if progress else out


def path_to_fn(parent, pmove, move_names):
    """A function giving the schedule (moves) from the initial state to state ``j``."""
    def path_to(j: int) -> list[str]:
        out = []
        while j > 0:
            out.append(move_names[pmove[j]])
            j = parent[j]
        out.reverse()
        return out
    return path_to


def unmerge(sys: System, sched: list[str], loop_start: int | None, merge=True):
    """Spell out the steps a reduced search ran inside each move.

    Returns the schedule as one item per C line (replayable without the
    reduction) and the loop start moved accordingly.
    """
    key = sys.initial
    out: list[str] = []
    new_loop = None
    for i, item in enumerate(sched):
        if i == loop_start:
            new_loop = len(out)
        tid, script = parse_move(item)
        w = sys.run(key, tid, script, merge=merge)
        out.append(item)
        out.extend([str(tid)] * w.merged)
        key = w.key()
    if loop_start is not None and new_loop is None:
        new_loop = len(out)
    return out, new_loop


def trim_trailing_locals(sys: System, sched: list[str], prop: str, kind: str) -> list[str]:
    """Drop each thread's ``local`` steps after its last other step, if still a counterexample.

    They change nothing another thread, a report or an invariant over shared
    state can see, so a counterexample ending in a report or a broken
    invariant usually does not need them (the reduction ran them eagerly).
    The trimmed schedule is replayed and kept only if ``prop`` still breaks
    at its end (an invariant may read thread-local state).
    """
    key = sys.initial
    is_local = []
    for item in sched:
        tid, script = parse_move(item)
        pc = sys.load(key).thread(tid)["_pc"]
        is_local.append(sys.programs[tid].steps[pc].local)
        key = sys.run(key, tid, script).key()
    last_other: dict[int, int] = {}
    for i, item in enumerate(sched):
        if not is_local[i]:
            last_other[parse_move(item)[0]] = i
    keep = [item for i, item in enumerate(sched)
            if not is_local[i] or i < last_other.get(parse_move(item)[0], -1)]
    if len(keep) == len(sched):
        return sched
    key = sys.initial
    w = None
    for item in keep:
        tid, script = parse_move(item)
        w = sys.run(key, tid, script)
        key = w.key()
    if kind == "splat":
        ok = w is not None and any(e.prop == prop for e in w.events)
    else:
        ok = any(p == prop for p, _ in sys.model.invariants(sys.load(key)))
    return keep if ok else sched
