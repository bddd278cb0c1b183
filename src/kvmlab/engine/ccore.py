"""The explorer's search driven by the optional compiled core (``kvmlab._core``, built by cffi).

C keeps the states, the BFS queue, the seen set, the successor memo on
(thread, global id, own id) and the edges; Python runs the steps (through
:class:`~kvmlab.engine.packed.Packed`, both memos) when C meets a state
whose successors it does not know, and judges what C logs: reports,
invariants on new global parts, terminal states. The log is kept in the
order the pure-Python search meets the same things, so both find the same
states, transitions, verdicts and counterexamples (``tests/test_core.py``
runs both on every model). Used when the module imports and
``KVMLAB_PURE`` is not set; never in Pyodide.
"""

from __future__ import annotations

from array import array

from .errors import StepTimeout, ToolError
from .explorer import Findings, Search, find_fair_cycle
from .model import Model
from .packed import BITS, MASK, Packed

try:  # the compiled module is optional: without it the pure-Python search runs
    from .._core import ffi, lib
except ImportError:  # pragma: no cover - depends on the build
    ffi = lib = None

KC_DONE, KC_BUDGET, KC_NEED, KC_FULL, KC_NOMEM = range(5)
BUDGET = 256  # states expanded between checks of the time limit and Ctrl-C


def available() -> bool:
    """Is the compiled core importable?"""
    return lib is not None


class CSearch(Search):
    """A :class:`Search` whose tree and edges live in C."""

    def __init__(self, ctx, n: int):
        super().__init__("c")
        self.ctx = ctx
        self.n = n

    def max_depth(self) -> int:
        d = lib.kc_depth(self.ctx)
        return max(ffi.unpack(d, self.nstates)) if self.nstates else 0

    def finish(self) -> None:
        """Copy the BFS tree out of C (for the counterexamples)."""
        c, n = self.ctx, self.nstates
        self.parent = array("q", bytes(ffi.buffer(lib.kc_parent(c), 8 * n)))
        self.pmove = array("I", bytes(ffi.buffer(lib.kc_pmove(c), 4 * n)))

    def lasso(self, fairness: str):
        c = self.ctx
        if lib.kc_scc(c):
            raise ToolError("out of memory in the termination check")
        ncomps = lib.kc_ncomps(c)
        if not ncomps:
            return None
        comp = lib.kc_comp(c)
        cstart = lib.kc_cstart(c)
        comps = [ffi.unpack(comp + cstart[k], cstart[k + 1] - cstart[k]) for k in range(ncomps)]
        succ: dict[int, list] = {}
        masks: dict[int, int] = {}
        end = ffi.new("int64_t *")
        names = self.move_names
        for cp in comps:
            for v in cp:
                b = lib.kc_edges(c, v, end)
                succ[v] = [(lib.kc_edge_dst(c, q), lib.kc_edge_tid(c, q), names[lib.kc_edge_move(c, q)])
                           for q in range(b, end[0])]
                masks[v] = lib.kc_mask(c, v)
        return find_fair_cycle(succ, masks, fairness, comps=comps, n=self.nstates)


def search(ex, pk: Packed, found: Findings, init: int, t0: float) -> CSearch:
    """Explore like :meth:`Explorer._search`, with the loop in C."""
    sys = ex.sys
    model = ex.model
    n = sys.nthreads
    keep_rows = ex.liveness
    has_inv = type(model).invariants is not Model.invariants
    ctx = ffi.gc(lib.kc_new(n, int(keep_rows), int(has_inv), ex.max_states), lib.kc_free)
    if ctx == ffi.NULL:
        raise ToolError("out of memory starting the search")
    sr = CSearch(ctx, n)
    move_ids: dict[str, int] = {"": 0}
    move_names = sr.move_names
    evlist: list[tuple] = [()]  # event id -> the events of a transition
    evids: dict[tuple, int] = {}
    cmemo: set[int] = set()  # memo keys C has
    W = n + 1

    def mid(mv: str) -> int:
        m = move_ids.get(mv)
        if m is None:
            m = move_ids[mv] = len(move_names)
            move_names.append(mv)
        return m

    def evid(evs) -> int:
        if not evs:
            return -1
        k = evids.get(evs)
        if k is None:
            k = evids[evs] = len(evlist)
            evlist.append(evs)
        return k

    def words(s: int) -> list[int]:
        return [(s >> (BITS * k)) & MASK for k in range(W)]

    def unwords(p) -> int:
        s = 0
        for k in range(W):
            s |= p[k] << (BITS * k)
        return s

    def put(kind: str, args) -> None:
        fn = {"memo": lib.kc_memo_put, "dep": lib.kc_memo_dep_put, "oneshot": lib.kc_oneshot}[kind]
        rc = fn(ctx, *args)
        if rc == -2:
            raise AssertionError("the C memo disagrees with Packed.memo on what a step depends on")
        if rc:
            raise ToolError("out of memory in the search")

    def put_dep(tid: int, gid: int, own: int, s: int, deps: tuple) -> bool:
        """Copy a second-level (other threads') memo entry to C, if Packed has one for ``s``."""
        ids = [(s >> (BITS * (j + 1))) & MASK for j in deps]
        mk2 = (((((gid << BITS) | own) << 6) | tid),) + tuple(ids)
        r2 = pk.memo2.get(mk2)
        if r2 is None:
            return False
        k = len(deps)
        if r2.__class__ is str:
            put("dep", (tid, gid, own, k, list(deps), ids, -1, ffi.NULL, ffi.NULL, ffi.NULL, ffi.NULL, ffi.NULL,
                        ffi.NULL))
        else:
            newdeps: list[int] = []
            for _, _, _, others, _ in r2:
                if tuple(j for j, _ in others) != deps:
                    return False
                newdeps += [nj for _, nj in others]
            put("dep", (tid, gid, own, k, list(deps), ids, len(r2), [mid(mv) for mv, *_ in r2],
                        [x[1] for x in r2], [x[2] for x in r2], newdeps, [evid(x[4]) for x in r2],
                        [any(e.fatal for e in x[4]) for x in r2]))
        cmemo.add(mk2)
        return True

    def resolve(i: int) -> bool:
        """Give C the successors of every thread of state ``i`` it lacks; False after a crash."""
        s = unwords(lib.kc_state(ctx, i))
        gid = s & MASK
        for tid in range(n):
            own = (s >> (BITS * (tid + 1))) & MASK
            if not own:
                continue
            mk = (((gid << BITS) | own) << 6) | tid
            if mk in cmemo:
                continue
            e = pk.memo.get(mk)
            if e.__class__ is tuple and (mk,) + tuple((s >> (BITS * (j + 1))) & MASK for j in e[1]) in cmemo:
                continue
            try:
                r = pk.raw(s, tid)
            except (Exception, StepTimeout) as e:  # a step raised or never returned
                sr.crash = (i, s, tid, e)
                return False
            e = pk.memo.get(mk)
            if e.__class__ is tuple and put_dep(tid, gid, own, s, e[1]):
                continue
            memoised = e is r
            if r.__class__ is str:
                if memoised:
                    put("memo", (tid, gid, own, -1, ffi.NULL, ffi.NULL, ffi.NULL, ffi.NULL, ffi.NULL))
                    cmemo.add(mk)
                else:
                    put("oneshot", (i, tid, -1, ffi.NULL, ffi.NULL, ffi.NULL, ffi.NULL))
                continue
            if r.__class__ is tuple:  # ("full", [(move, successor, events)])
                items = r[1]
                ws: list[int] = []
                for _, s2, _ in items:
                    ws += words(s2)
                put("oneshot", (i, tid, len(items), [mid(mv) for mv, _, _ in items], ws,
                                [evid(evs) for _, _, evs in items],
                                [any(e.fatal for e in evs) for _, _, evs in items]))
                continue
            put("memo", (tid, gid, own, len(r), [mid(mv) for mv, _, _, _ in r], [ng for _, ng, _, _ in r],
                         [nt for _, _, nt, _ in r], [evid(evs) for _, _, _, evs in r],
                         [any(e.fatal for e in evs) for _, _, _, evs in r]))
            cmemo.add(mk)
        return True

    def judge() -> None:
        """Python's part of what C logged, in order: reports, invariants of new states, terminal states."""
        cnt = ffi.new("int64_t *")
        log = lib.kc_log(ctx, cnt)
        if not cnt[0]:
            return
        entries = ffi.unpack(log, 4 * cnt[0])
        for k in range(0, len(entries), 4):
            kind, a, b, d = entries[k:k + 4]
            if kind == 1:
                mv = move_names[d]
                for ev in evlist[b]:
                    found.note(ev.prop, ev.title, ev.text, a, mv, "splat")
            elif kind == 2:
                s2 = unwords(lib.kc_state(ctx, a))
                for prop, msg in pk.invariants(s2, model):
                    found.note(prop, msg, None, a, None, "invariant")
                if pk.inv_memo.get(s2 & MASK) == [] and lib.kc_inv_clean(ctx, s2 & MASK):
                    raise ToolError("out of memory in the search")
            else:
                s = unwords(lib.kc_state(ctx, a))
                blocked = {}
                for tid in range(n):
                    if (s >> (BITS * (tid + 1))) & MASK:
                        r = pk.raw(s, tid)
                        if r.__class__ is str:
                            blocked[tid] = r
                ex._terminal(pk, found, s, a, blocked or None)

    if lib.kc_init(ctx, words(init)) < 0:
        raise ToolError("out of memory starting the search")
    try:
        stop = ex._limits(sr, 1, 0, t0)  # progress is reported from the first state on, as in Python
        last = 0
        while not stop:
            rc = lib.kc_run(ctx, BUDGET)
            judge()
            if rc == KC_DONE:
                break
            if rc == KC_NEED:
                if not resolve(lib.kc_need(ctx)):
                    break
            elif rc == KC_FULL:
                sr.complete, sr.stopped = False, f"max states ({ex.max_states})"
                break
            elif rc == KC_NOMEM:
                raise ToolError(f"out of memory after {lib.kc_nstates(ctx)} states")
            cur = lib.kc_cursor(ctx)
            if cur - last >= BUDGET:  # every BUDGET states expanded, however the loop stopped
                last = cur
                stop = ex._limits(sr, lib.kc_nstates(ctx), lib.kc_transitions(ctx), t0)
    except KeyboardInterrupt:
        sr.complete, sr.stopped = False, "interrupted"
    sr.nstates = lib.kc_nstates(ctx)
    sr.transitions = lib.kc_transitions(ctx)
    sr.finish()
    return sr
