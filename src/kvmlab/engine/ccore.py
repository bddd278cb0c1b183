"""The explorer's search driven by the optional compiled core (``kvmlab._core``, built by cffi).

C keeps the states, the BFS queue, the seen set, the successor memo on
(thread, global id, own id) and the edges. On a memo miss C walks its copy
of the read-set trees (:class:`~kvmlab.engine.packed.Packed` hands each path
over once Python has re-used that tree, with the value of every location in
every global and thread part it interns): a leaf becomes a memo entry
without Python, unless it writes a global part not seen yet (C then asks for
all such parts the next few thousand states need, in one batch). Python runs
the step only when no leaf matches, and judges what C logs: reports,
invariants on new global parts, terminal states. The log is kept in the
order the pure-Python search meets the same things, so both find the same
states, transitions, verdicts and counterexamples (``tests/test_core.py``
runs both on every model). Used when the module imports and
``KVMLAB_PURE`` is not set; never in Pyodide.
"""

from __future__ import annotations

import os

from .errors import StepTimeout, ToolError
from .model import Model
from .packed import ABSENT, BITS, MASK, Packed
from .search import Findings, Search, find_fair_cycle
from .world import ALL_OBJECTS, ALL_SHARED, oids_in

try:  # the compiled module is optional: without it the pure-Python search runs
    from .._core import ffi, lib
except ImportError:  # pragma: no cover - depends on the build
    ffi = lib = None

KC_DONE, KC_BUDGET, KC_NEED, KC_FULL, KC_NOMEM = range(5)
CHECK_TABLES = bool(os.environ.get("KVMLAB_CHECK_TABLES"))  # tests: recompute C's value tables at the end
L_GLOBAL, L_THREAD, L_TPART, L_PYTHON = range(4)  # kinds of read-set locations C can (or cannot) read
UNCH = 0xFFFFFFFF
BUDGET = 256  # states expanded between checks of the time limit and Ctrl-C


def available() -> bool:
    """Is the compiled core importable?"""
    return lib is not None


class CView:
    """Items of an array C keeps for a search (holding the search's memory alive)."""

    __slots__ = ("p", "owner")

    def __init__(self, p, owner):
        self.p, self.owner = p, owner

    def __getitem__(self, i: int) -> int:
        return self.p[i]


class CSearch(Search):
    """A :class:`Search` whose tree and edges live in C."""

    def __init__(self, ctx, n: int):
        super().__init__("c")
        self.ctx = ctx
        self.n = n

    def max_depth(self) -> int:
        return lib.kc_max_depth(self.ctx)

    def finish(self) -> None:
        """The BFS tree, read where C keeps it (for the counterexamples)."""
        self.parent = CView(lib.kc_parent(self.ctx), self.ctx)
        self.pmove = CView(lib.kc_pmove(self.ctx), self.ctx)

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

    def put(kind: str, args) -> int:
        fn = {"memo": lib.kc_memo_put, "dep": lib.kc_memo_dep_put, "oneshot": lib.kc_oneshot}[kind]
        rc = fn(ctx, *args)
        if rc == -1:
            raise ToolError("out of memory in the search")
        return rc

    # -- the read-set trees, mirrored in C -----------------------------------------------------
    # Every location a tree reads gets a C index; C reads a location of the global part or of a
    # thread's part from a table of value ids, filled here for every part Packed interns (sync).
    locs: dict = {}  # Packed location -> C index
    tables: list[list] = []  # [C index, kind, Packed location, thread, parts pushed]
    vids: dict = {}  # value -> value id
    dids: dict = {(): 0}  # (shared writes, object writes) -> delta id; 0: none
    dlist: list = [((), ())]
    python_locs: set = set()  # C indices of the locations C cannot read

    def vid(v) -> int:
        k = vids.get(v)
        if k is None:
            k = vids[v] = len(vids)
        return k

    synced = [None]  # the sizes of the tables at the last sync
    gl = pk.gl
    shared_index = sys._shared_index

    oid_cache: dict[int, tuple] = {}  # id(value) -> (value, its object ids): values are shared between parts

    def oids_of(v) -> frozenset:
        hit = oid_cache.get(id(v))
        if hit is not None and hit[0] is v:
            return hit[1]
        r = oids_in(v)
        oid_cache[id(v)] = (v, r)
        return r

    def global_values(g: int, want: list) -> list:
        """The value id of each location in ``want`` (global-part locations) in global part ``g``."""
        sh, ot = gl[g]
        od = None
        fds: dict = {}
        out = []
        for loc in want:
            if loc.__class__ is int:
                v = sh[loc]
            elif loc is ALL_SHARED:
                v = sh
            elif loc is ALL_OBJECTS:
                v = ot
            elif loc[0] == "sho":
                v = oids_of(sh[shared_index[loc[1]]])
            else:
                if od is None:
                    od = dict(ot)
                tag, oid = loc[0], loc[1]
                if tag == "of":
                    fd = fds.get(oid)
                    if fd is None:
                        f = od.get(oid)
                        fd = fds[oid] = dict(f) if f is not None else {}
                    v = fd.get(loc[2], ABSENT)
                elif tag == "o?":
                    v = oid in od
                elif tag == "oo":
                    v = oids_of(od.get(oid))
                else:
                    v = od.get(oid)
            k = vids.get(v)
            if k is None:
                k = vids[v] = len(vids)
            out.append(k)
        return out

    # The value tables: a location of a thread part gets its column filled for every part, as parts
    # come; a location of the global part gets its column filled once (every part so far), and each
    # new global part gets its row: copied from the part it was made from by a delta, with the
    # locations that delta changes recomputed (by_shared/by_object/all_*), or else computed whole.
    rows_done = 0  # global parts below this have their rows (so do those in copied)
    copied: set[int] = set()  # parts at or above it whose rows were copied
    fresh: list = []  # global tables whose columns are not filled yet
    by_shared: dict[int, list] = {}  # shared field index -> its locations (the field, its object ids)
    by_object: dict[int, list] = {}  # object id -> its locations
    all_shared: list = []
    all_objects: list = []
    gtables: list = []  # (C index, location) of every global table with its column filled

    def push_row(g: int, tabs: list) -> None:
        if tabs and lib.kc_row_set(ctx, g, len(tabs), [li for li, _ in tabs],
                                   global_values(g, [loc for _, loc in tabs])):
            raise ToolError("out of memory in the search")

    def sync() -> None:
        """Push the value ids of every location for the parts interned since the last sync."""
        nonlocal rows_done
        sizes = (len(gl), len(tables), len(fresh), *map(len, pk.tl))
        if sizes == synced[0]:
            return
        total = len(gl)
        for g in range(rows_done, total):
            if g not in copied:
                push_row(g, gtables)
        rows_done = total
        copied.clear()
        for li, loc in fresh:
            col = [global_values(g, [loc])[0] for g in range(total)]
            if lib.kc_loc_vals(ctx, li, 0, total, col):
                raise ToolError("out of memory in the search")
            gtables.append((li, loc))
            if loc.__class__ is int:
                by_shared.setdefault(loc, []).append((li, loc))
            elif loc is ALL_SHARED:
                all_shared.append((li, loc))
            elif loc is ALL_OBJECTS:
                all_objects.append((li, loc))
            elif loc[0] == "sho":
                by_shared.setdefault(shared_index[loc[1]], []).append((li, loc))
            else:
                by_object.setdefault(loc[1], []).append((li, loc))
        fresh.clear()
        for t in tables:
            li, kind, loc, j, done = t
            total = len(pk.tl[j])
            if done < total:
                sh = BITS * (j + 1)
                vals = [vid(pk._value(o << sh, loc)) for o in range(done, total)]
                if lib.kc_loc_vals(ctx, li, done, total - done, vals):
                    raise ToolError("out of memory in the search")
                t[4] = total
        synced[0] = (len(gl), len(tables), len(fresh), *map(len, pk.tl))

    def check_tables() -> None:
        """Every value C holds for a global part equals the one computed from the part itself."""
        sync()
        for li, loc in gtables:
            for g in range(len(gl)):
                if lib.kc_loc_get(ctx, li, g) != global_values(g, [loc])[0]:
                    raise AssertionError(f"C's value of {loc!r} in global part {g} is wrong")

    def new_row(g: int, ng: int, shd: tuple, obd: tuple) -> None:
        """Global part ``ng`` was just made from ``g`` by writing ``shd``/``obd``: its row from g's."""
        if ng < rows_done or ng in copied or not (g < rows_done or g in copied):
            return
        if lib.kc_row_copy(ctx, ng, g):
            raise ToolError("out of memory in the search")
        changed = []
        if shd:
            changed += all_shared
            for i, _ in shd:
                changed += by_shared.get(i, ())
        if obd:
            changed += all_objects
            for o, _ in obd:
                changed += by_object.get(o, ())
        push_row(ng, changed)
        copied.add(ng)

    def loc_index(loc) -> int:
        li = locs.get(loc)
        if li is not None:
            return li
        j = 0
        if loc.__class__ is int:
            kind, j = (L_GLOBAL, 0) if loc >= 0 else (L_THREAD, -loc - 1)
        elif loc is ALL_SHARED or loc is ALL_OBJECTS or loc[0] in ("o", "o?", "of", "sho", "oo"):
            kind = L_GLOBAL
        elif loc[0] == "oids":
            kind, j = L_TPART, loc[1]
        else:  # ALL_THREADS: every thread's part at once; Python walks that
            kind = L_PYTHON
        li = lib.kc_loc_new(ctx, kind, j)
        if li < 0:
            raise ToolError("out of memory in the search")
        locs[loc] = li
        if kind == L_PYTHON:
            python_locs.add(li)
        if kind == L_TPART:
            tables.append([li, kind, loc, j, 0])
        elif kind == L_GLOBAL:
            fresh.append((li, loc))
        return li

    # A tree is copied to C once Python has answered a step from it (until then it is kept in
    # ``pending``): the trees of steps that never repeat what they read cost C nothing.
    pending: dict[tuple[int, int], list] = {}
    mirrored: set[tuple[int, int]] = set()

    def on_path(tid: int, own: int, path: list, values: list, entry) -> bool:
        """Packed added a path to its tree of (tid, own) (or gives it to C, if C keeps that tree)."""
        if (tid, own) in mirrored:
            return mirror(tid, own, path, values, entry)
        pending.setdefault((tid, own), []).append((path, values, entry))
        return True

    def on_hit(tid: int, own: int) -> None:
        """Python answered a step from the tree of (tid, own): from now on C has that tree, and
        Python drops its copy unless a path reads something C cannot."""
        if (tid, own) not in mirrored:
            mirrored.add((tid, own))
            whole = all([mirror(tid, own, *p) for p in pending.pop((tid, own), ())])
            if whole:
                pk.l2.pop((tid, own), None)
                pk.l2_moved.add((tid, own))

    def mirror(tid: int, own: int, path: list, values: list, entry) -> bool:
        """Add a path of the tree of (tid, own) to C's copy; False if C cannot read it."""
        why, kind, deps, branches = entry
        ckind = {"own": 0, "dep": 1}.get(kind, 2)
        if ckind == 2:  # not memoisable on (thread, parts), but the leaf holds: every thread may change
            deps = tuple(j for j in range(n) if j != tid)
        nd = len(deps) if ckind else 0
        if why is not None:
            leaf = lib.kc_leaf_new(ctx, ckind, nd, list(deps[:nd]), -1, ffi.NULL, ffi.NULL, ffi.NULL, ffi.NULL,
                                   ffi.NULL, ffi.NULL)
        else:
            moves, deltas, owns, others, evs, fatal = [], [], [], [], [], []
            for move, shd, obd, own2, oth, es in branches:
                moves.append(mid(move))
                d = dids.get((shd, obd))
                if d is None:
                    d = dids[(shd, obd)] = len(dlist)
                    dlist.append((shd, obd))
                deltas.append(d)
                owns.append(pk._t(tid, own2))
                fin = dict(oth)
                others += [pk._t(j, fin[j]) if j in fin else UNCH for j in deps[:nd]]
                evs.append(evid(es))
                fatal.append(any(e.fatal for e in es))
            leaf = lib.kc_leaf_new(ctx, ckind, nd, list(deps[:nd]), len(branches), moves, deltas, owns,
                                   others if nd else ffi.NULL, evs, fatal)
        if leaf < 0:
            raise ToolError("out of memory in the search")
        cl, keys = [], []
        for loc, v in zip(path, values):
            li = loc_index(loc)
            if li in python_locs:  # C would stop there: leave the path to Python
                return False
            cl.append(li)
            keys.append(v if (loc.__class__ is int and loc < 0) else vid(v))
        sync()  # the tables of a location seen for the first time
        rc = lib.kc_tree_put(ctx, tid, own, len(cl), cl, keys, leaf)
        if rc == -1:
            raise ToolError("out of memory in the search")
        if rc == -2:  # the same values read, another step: something escaped the recorder; never re-use
            pk.l2_conflicts += 1
        return True

    def on_delta(gid: int, shd: tuple, obd: tuple, ng: int) -> None:
        new_row(gid, ng, shd, obd)
        d = dids.get((shd, obd))
        if d is not None and lib.kc_delta_put(ctx, gid, d, ng):
            raise ToolError("out of memory in the search")

    def resolve(i: int) -> bool:
        """Give C the successors of every thread of state ``i`` it cannot find; False after a crash."""
        s = unwords(lib.kc_state(ctx, i))
        gid = s & MASK
        for tid in range(n):
            own = (s >> (BITS * (tid + 1))) & MASK
            if not own:
                continue
            rc = lib.kc_try(ctx, i, tid)
            while rc == 2:  # C found a read-set leaf but not the global part it writes
                g, d = lib.kc_want_g(ctx), lib.kc_want_d(ctx)
                pk.apply_delta(g, *dlist[d])  # pushes (g, d) -> new part through on_delta
                sync()
                rc = lib.kc_try(ctx, i, tid)
            if rc == 0:
                continue
            if rc < 0:
                raise ToolError("out of memory in the search")
            try:
                r = pk.raw(s, tid)
            except (Exception, StepTimeout) as e:  # a step raised or never returned
                sr.crash = (i, s, tid, e)
                return False
            finally:
                sync()
            mk = (((gid << BITS) | own) << 6) | tid
            e = pk.memo.get(mk)
            if e.__class__ is tuple:  # memoised on other threads' parts too
                deps = e[1]
                ids = [(s >> (BITS * (j + 1))) & MASK for j in deps]
                r2 = pk.memo2.get((mk,) + tuple(ids))
                if r2 is not None and put_dep(tid, gid, own, deps, ids, r2):
                    continue
            if r.__class__ is str:
                if e is r:
                    put("memo", (tid, gid, own, -1, ffi.NULL, ffi.NULL, ffi.NULL, ffi.NULL, ffi.NULL))
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
        return True

    def put_dep(tid: int, gid: int, own: int, deps: tuple, ids: list, r2) -> bool:
        """Copy a second-level (other threads') memo entry to C; False if C keeps other deps there."""
        k = len(deps)
        if r2.__class__ is str:
            rc = put("dep", (tid, gid, own, k, list(deps), ids, -1, ffi.NULL, ffi.NULL, ffi.NULL, ffi.NULL,
                             ffi.NULL, ffi.NULL))
        else:
            newdeps: list[int] = []
            for _, _, _, others, _ in r2:
                if tuple(j for j, _ in others) != deps:
                    return False
                newdeps += [nj for _, nj in others]
            rc = put("dep", (tid, gid, own, k, list(deps), ids, len(r2), [mid(mv) for mv, *_ in r2],
                             [x[1] for x in r2], [x[2] for x in r2], newdeps, [evid(x[4]) for x in r2],
                             [any(e.fatal for e in x[4]) for x in r2]))
        return rc == 0

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
                        r = pk._compute(s, tid, "none")[0]  # C has this thread's answer: just the reason
                        if r.__class__ is str:
                            blocked[tid] = r
                ex._terminal(pk, found, s, a, blocked or None)

    if lib.kc_init(ctx, words(init)) < 0:
        raise ToolError("out of memory starting the search")
    pk.l2_hook, pk.delta_hook, pk.l2_hit_hook = on_path, on_delta, on_hit
    try:
        stop = ex._limits(sr, 1, 0, t0)  # progress is reported from the first state on, as in Python
        last = 0
        while not stop:
            rc = lib.kc_run(ctx, BUDGET)
            judge()
            if rc == KC_DONE:
                break
            if rc == KC_NEED:
                cnt = ffi.new("int64_t *")
                wl = lib.kc_wants(ctx, cnt)
                if cnt[0]:  # new global parts the next states' read-set leaves write
                    pairs = ffi.unpack(wl, 2 * cnt[0])
                    for g, d in {(pairs[k], pairs[k + 1]) for k in range(0, len(pairs), 2)}:
                        pk.apply_delta(g, *dlist[d])  # on_delta gives each to C
                    sync()
                elif not resolve(lib.kc_need(ctx)):
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
        if CHECK_TABLES:
            check_tables()
    except KeyboardInterrupt:
        sr.complete, sr.stopped = False, "interrupted"
    finally:
        pk.l2_hook = pk.delta_hook = pk.l2_hit_hook = None
        pk.l2_moved.clear()  # C's trees go with the search
    sr.nstates = lib.kc_nstates(ctx)
    sr.transitions = lib.kc_transitions(ctx)
    sr.finish()
    return sr
