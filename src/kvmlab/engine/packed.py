"""A tight state encoding and memoised steps, for the explorer's inner loop.

A state ``(shared, objects, thread_0, ..., thread_n)`` is packed into one
Python int: the pair ``(shared, objects)`` and each thread's tuple are
interned as small integers (0 stands for a finished thread), and the ids
are laid side by side, ``BITS`` bits each.

A step of thread ``t`` sees the global part and ``t``'s own part; unless
it looked at another thread (the World records that), its outcome depends
on nothing else. So outcomes are memoised on ``(t, global id, own id)``:
the same step from the same global state and the same thread state is run
once, whatever the other threads are doing. This changes no verdict: the
graph explored is exactly the same.

On a miss there is a second memo, on what the step read: while a step runs,
the World records every shared field, object field, object and other thread
it reads (:class:`~kvmlab.engine.world.Shared`, :class:`~kvmlab.engine.world.ObjVars`,
:class:`~kvmlab.engine.world.Threads`), and its outcome is stored as the values
it wrote (for an object that stays, the fields written), keyed on the thread's own
part and the values of those reads only. A later miss that agrees on them
would run the same code on the same values, so it re-uses the writes
instead of running the step. ``memo="state"`` keeps only the first memo,
``memo="off"`` runs every step every time (the reference the tests compare
with).
"""

from __future__ import annotations

from .errors import KvmlabError
from .world import ALL_OBJECTS, ALL_SHARED, ALL_THREADS, FINISHED, ReadLog, System, World, oids_in

MEMOS = ("readset", "state", "off")

ABSENT = object()  # the value of a field that is not there, in the read-set memo
# An object write in the read-set memo is (id, None): freed, (id, fields): created, or
# (id, (WRITES, ((field, value), ...))): these fields written (ABSENT: removed), the others kept.
WRITES = "fields written"
BITS = 24
MASK = (1 << BITS) - 1


def _write_fields(fields: tuple, writes) -> tuple:
    """An object's fields tuple with ``writes`` applied, in dict order."""
    d = dict(fields)
    for f, v in writes:
        if v is ABSENT:
            d.pop(f, None)
        else:
            d[f] = v
    return tuple(d.items())


class Packed:
    """Interning tables, packing, and memoised successors of a System."""

    def __init__(self, sys: System, merge: bool = False, memo: str = "readset"):
        if memo not in MEMOS:
            raise KvmlabError(f"memo {memo!r}: use one of {', '.join(MEMOS)}")
        self.sys = sys
        self.merge = merge
        self.memo_kind = memo
        self.l2: dict[tuple[int, int], object] = {}  # (tid, own id) -> decision tree over what it read
        self.l2_hits = 0
        self.l2_conflicts = 0  # read sequences that disagreed with the tree (must stay 0)
        self.step_runs = 0  # outcomes computed by running the step
        self._objd: dict[int, dict] = {}  # global id -> {object id: fields}
        self._objf: dict[tuple[int, int], dict] = {}  # (global id, object id) -> {field: value}
        self._oids: dict[tuple[int, int], frozenset] = {}  # (thread, own id) -> object ids it holds
        self.n = sys.nthreads
        self.gid: dict[tuple, int] = {}
        self.gl: list[tuple] = []
        self.tidx: list[dict] = [{FINISHED: 0} for _ in range(self.n)]
        self.tl: list[list] = [[FINISHED] for _ in range(self.n)]
        self.memo: dict[int, object] = {}
        self.memo2: dict[tuple, object] = {}
        self.inv_memo: dict[int, list] = {}
        self.memo_misses = 0
        self.l2_hook = None  # called with (tid, own id, locations, values, entry) for each path added to l2
        self.l2_hit_hook = None  # called with (tid, own id) when a step is answered from l2
        # (tid, own id) whose tree l2_hook keeps (it returns False for a path it cannot take)
        self.l2_moved: set[tuple[int, int]] = set()
        self.delta_hook = None  # called with (global id, shared writes, object writes, new global id)
        if self.n >= 64:
            raise KvmlabError("at most 63 threads")

    # -- interning ------------------------------------------------------------
    def _g(self, g: tuple) -> int:
        i = self.gid.get(g)
        if i is None:
            i = len(self.gl)
            if i > MASK:
                raise KvmlabError("state space too large for the packed encoding (global part)")
            self.gid[g] = i
            self.gl.append(g)
        return i

    def _t(self, tid: int, t) -> int:
        tab = self.tidx[tid]
        i = tab.get(t)
        if i is None:
            lst = self.tl[tid]
            i = len(lst)
            if i > MASK:
                raise KvmlabError(f"state space too large for the packed encoding (thread {tid})")
            tab[t] = i
            lst.append(t)
        return i

    def pack(self, key: tuple) -> int:
        s = self._g((key[0], key[1]))
        for tid in range(self.n):
            s |= self._t(tid, key[2 + tid]) << (BITS * (tid + 1))
        return s

    def unpack(self, s: int) -> tuple:
        g = self.gl[s & MASK]
        out = [g[0], g[1]]
        for tid in range(self.n):
            out.append(self.tl[tid][(s >> (BITS * (tid + 1))) & MASK])
        return tuple(out)

    # -- steps ------------------------------------------------------------------
    def raw(self, s: int, tid: int):
        """``tid``'s outcome from ``s``: None (finished), a blocked reason, a memoised
        ``[(move, global id, own id, events)]`` list, or ``("full", [(move, successor, events)])``.
        """
        shift = BITS * (tid + 1)
        own = (s >> shift) & MASK
        if own == 0:
            return None
        if self.memo_kind == "off":
            self.memo_misses += 1
            r, kind, _ = self._compute(s, tid, "none")
            return r if r.__class__ is str else ("full", r)
        mk = ((((s & MASK) << BITS) | own) << 6) | tid
        r = self.memo.get(mk)
        if r is not None and r.__class__ is not tuple:
            return r
        if r is not None:  # ("dep", threads): memoised on those threads' parts too
            deps = r[1]
            mk2 = (mk,) + tuple((s >> (BITS * (j + 1))) & MASK for j in deps)
            r2 = self.memo2.get(mk2)
            if r2 is None:
                self.memo_misses += 1
                r2, kind, touched = self._compute(s, tid)
                if kind == "none" or touched != deps:
                    return r2 if r2.__class__ is str else ("full", self._expand(s, tid, r2, kind))
                self.memo2[mk2] = r2
            return r2 if r2.__class__ is str else ("full", self._expand(s, tid, r2, "dep"))
        self.memo_misses += 1
        r, kind, touched = self._compute(s, tid)
        if kind == "own":
            self.memo[mk] = r
            return r
        if kind == "dep":
            self.memo[mk] = ("dep", touched)
            self.memo2[(mk,) + tuple((s >> (BITS * (j + 1))) & MASK for j in touched)] = r
        return r if r.__class__ is str else ("full", self._expand(s, tid, r, kind))

    def _expand(self, s: int, tid: int, r, kind: str):
        if kind == "none":
            return r
        shift = BITS * (tid + 1)
        out = []
        for move, ng, nt, others, evs in r:
            s2 = (s & ~(MASK | (MASK << shift))) | ng | (nt << shift)
            for j, nj in others:
                sj = BITS * (j + 1)
                s2 = (s2 & ~(MASK << sj)) | (nj << sj)
            out.append((move, s2, evs))
        return out

    def _compute(self, s: int, tid: int, force: str | None = None):
        """Run ``tid``'s step from ``s`` (or re-use a read-set memo entry); returns (outcome, kind, touched).

        kind ``"own"``: the step looked at no other thread, the outcome is
        ``[(move, global id, own id, events)]`` (or the blocked reason);
        ``"dep"``: it looked at the threads in ``touched`` (and nothing in an
        invariant did), the outcome is ``[(move, global id, own id, ((j, id),
        ...), events)]``; ``"none"``: not memoisable, ``[(move, successor,
        events)]``.
        """
        use_l2 = self.memo_kind == "readset" and force is None
        if use_l2:
            hit = self._l2_get(s, tid)
            if hit is not None:
                self.l2_hits += 1
                if self.l2_hit_hook is not None:
                    self.l2_hit_hook(tid, (s >> (BITS * (tid + 1))) & MASK)
                return self._outcome(s, tid, *hit)
        self.step_runs += 1
        key = self.unpack(s)
        rec = ReadLog()
        sys = self.sys
        sys._rec = rec
        try:
            worlds, why = sys.attempts(key, tid, self.merge)
        finally:
            sys._rec = None
        touched: set[int] = set()
        kind = "own"
        for item in worlds:
            w = item if why is not None else item[1]
            if w.inv_other:
                kind = "none"
            elif w._other and kind == "own":
                kind = "dep"
            touched |= w.touched
        # reads of other threads outside thread()/done() (kernel hooks, the reduction) count too
        if ALL_THREADS in rec:
            touched |= set(range(self.n))
        touched |= {x for x in rec if x.__class__ is int}
        touched |= {x[1] for x in rec if x.__class__ is tuple and x[0] == "oids"}
        touched.discard(tid)
        if touched and kind == "own":
            kind = "dep"
        if force is not None:
            kind = force
        deps = tuple(sorted(touched))
        if why is not None:
            if use_l2:
                self._l2_put(s, tid, rec, (why, kind, deps, None))
            return why, kind, deps
        if use_l2:
            branches = self._deltas(key, tid, worlds)
            if branches is not None:
                self._l2_put(s, tid, rec, (None, kind, deps, branches))
        out = []
        for move, w in worlds:
            k = w.key()
            evs = tuple(w.events)
            if kind == "own":
                out.append((move, self._g((k[0], k[1])), self._t(tid, k[2 + tid]), evs))
            elif kind == "dep":
                out.append((move, self._g((k[0], k[1])), self._t(tid, k[2 + tid]),
                            tuple((j, self._t(j, k[2 + j])) for j in deps), evs))
            else:
                out.append((move, self.pack(k), evs))
        return out, kind, deps

    # -- the read-set memo ---------------------------------------------------------
    # For each (thread, own part), a decision tree: a node is ``[location, {value: child}]``,
    # a leaf is the outcome. The first location a step reads depends only on its own part;
    # each next one only on the values read before it; so walking the tree from a state
    # reads exactly what the step would, and a leaf is the step's outcome from that state.
    # Locations: a shared field's index (>= 0), another thread ``j`` as ``-(j + 1)``,
    # ``("o", id)`` an object (None if absent), ``("o?", id)`` whether it exists, ``("of", id,
    # name)`` one of its fields (``ABSENT`` if not there), ``("oids", j)`` the object ids thread j holds,
    # ``("sho", name)``/``("oo", id)`` the object ids in a shared field / in an object's fields,
    # ``ALL_SHARED``/``ALL_OBJECTS``/``ALL_THREADS``.
    def _objects(self, gid: int) -> dict:
        d = self._objd.get(gid)
        if d is None:
            d = self._objd[gid] = dict(self.gl[gid][1])
        return d

    def _value(self, s: int, loc):
        if loc.__class__ is int:
            if loc >= 0:
                return self.gl[s & MASK][0][loc]
            return (s >> (BITS * -loc)) & MASK
        if loc is ALL_SHARED:
            return self.gl[s & MASK][0]
        if loc is ALL_OBJECTS:
            return self.gl[s & MASK][1]
        if loc is ALL_THREADS:
            return s >> BITS
        if loc[0] == "oids":  # the object ids thread j holds (what the reduction's reachability reads)
            j = loc[1]
            tj = (s >> (BITS * (j + 1))) & MASK
            r = self._oids.get((j, tj))
            if r is None:
                r = self._oids[(j, tj)] = oids_in(self.tl[j][tj])
            return r
        if loc[0] == "of":  # one field of an object
            return self._fields(s & MASK, loc[1]).get(loc[2], ABSENT)
        if loc[0] == "o?":  # whether an object exists
            return loc[1] in self._objects(s & MASK)
        if loc[0] == "sho":  # the object ids in a shared field
            return oids_in(self.gl[s & MASK][0][self.sys._shared_index[loc[1]]])
        if loc[0] == "oo":  # the object ids in an object's fields
            return oids_in(self._objects(s & MASK).get(loc[1]))
        return self._objects(s & MASK).get(loc[1])

    def _fields(self, gid: int, oid: int) -> dict:
        """The fields of object ``oid`` in global part ``gid`` (empty if it does not exist)."""
        d = self._objf.get((gid, oid))
        if d is None:
            f = self._objects(gid).get(oid)
            d = self._objf[(gid, oid)] = dict(f) if f is not None else {}
        return d

    def _locations(self, tid: int, rec) -> list:
        idx = self.sys._shared_index
        out = []
        for k in rec:
            c = k.__class__
            if c is str:
                i = idx.get(k)
                if i is not None:  # an undeclared name reads as absent in every state
                    out.append(i)
            elif c is int:
                if k != tid:
                    out.append(-(k + 1))
            elif k == ALL_SHARED:
                out.append(ALL_SHARED)
            elif k == ALL_OBJECTS:
                out.append(ALL_OBJECTS)
            elif k == ALL_THREADS:
                out.append(ALL_THREADS)
            else:
                out.append(k)
        return out

    def _l2_get(self, s: int, tid: int):
        node = self.l2.get((tid, (s >> (BITS * (tid + 1))) & MASK))
        value = self._value
        while node is not None:
            if node.__class__ is tuple:
                return node
            node = node[1].get(value(s, node[0]))
        return None

    def _l2_put(self, s: int, tid: int, rec, entry) -> None:
        locs = self._locations(tid, rec)
        own = (s >> (BITS * (tid + 1))) & MASK
        key = (tid, own)
        if key in self.l2_moved:  # the tree is kept elsewhere (the compiled core), not here
            if self.l2_hook(tid, own, locs, [self._value(s, loc) for loc in locs], entry) is not False:
                return
            self.l2_moved.discard(key)  # it could not take this path: keep this one (and later ones) here
        if not locs:
            if key in self.l2:
                self.l2_conflicts += 1
                return
            self.l2[key] = entry
            if self.l2_hook is not None:
                self.l2_hook(tid, own, locs, [], entry)
            return
        node = self.l2.get(key)
        if node is None:
            node = self.l2[key] = [locs[0], {}]
        values = []
        for n, loc in enumerate(locs):
            if node.__class__ is tuple or node[0] != loc:
                # the same values were read but the step went elsewhere: something it depends
                # on escaped the recorder (or it is not deterministic); never memoise that
                self.l2_conflicts += 1
                return
            v = self._value(s, loc)
            values.append(v)
            nxt = node[1].get(v)
            if nxt is None:
                nxt = entry if n + 1 == len(locs) else [locs[n + 1], {}]
                node[1][v] = nxt
            node = nxt
        if node is not entry:
            self.l2_conflicts += 1
        elif self.l2_hook is not None:
            self.l2_hook(tid, own, locs, values, entry)

    def _deltas(self, key: tuple, tid: int, worlds):
        """Each outcome as what it wrote: (move, shared writes, object writes, own part, other threads, events).

        None if an outcome cannot be described so (its shared fields are not the declared ones).
        """
        sys = self.sys
        nsh = len(sys.shared_names)
        idx = sys._shared_index
        out = []
        for move, w in worlds:
            k = w.key()
            if len(k[0]) != nsh:
                return None
            sh0, sh1 = key[0], k[0]
            shd = tuple((i, sh1[i]) for i in sorted({idx[f] for f in w.sh.wlog if f in idx}
                                                     | {i for i in range(nsh) if sh0[i] != sh1[i]}))
            if k[1] is key[1] or k[1] == key[1]:
                obd = ()
            else:
                o0, o1 = dict(key[1]), dict(k[1])
                obd = []
                for o in sorted(set(o0) | set(o1)):
                    a, b = o0.get(o), o1.get(o)
                    if a == b:
                        continue
                    if a is None or b is None:  # created (the step saw it absent) or freed: all of it
                        obd.append((o, b))
                        continue
                    # changed: only the fields written, since a step may have read only some fields
                    fa, fb = dict(a), dict(b)
                    fw = tuple((f, fb.get(f, ABSENT)) for f in (*fa, *(f for f in fb if f not in fa))
                               if fa.get(f, ABSENT) != fb.get(f, ABSENT))
                    if _write_fields(a, fw) != b:  # field order changed (a field removed and re-added)
                        return None
                    obd.append((o, (WRITES, fw)))
                obd = tuple(obd)
            others = tuple((j, k[2 + j]) for j in range(self.n)
                           if j != tid and (k[2 + j] != key[2 + j] or j in w.touched))
            out.append((move, shd, obd, k[2 + tid], others, tuple(w.events)))
        return out

    def _outcome(self, s: int, tid: int, why, kind: str, deps: tuple, branches):
        """An outcome in :meth:`_compute`'s form, from a read-set memo entry applied to ``s``."""
        if why is not None:
            return why, kind, deps
        gid = s & MASK
        out = []
        for move, shd, obd, own, others, evs in branches:
            ng = self.apply_delta(gid, shd, obd) if (shd or obd) else gid
            if kind == "own":
                out.append((move, ng, self._t(tid, own), evs))
                continue
            fin = dict(others)
            if kind == "dep":
                # a dep thread the step did not look into (only at the objects it holds) is unchanged
                out.append((move, ng, self._t(tid, own),
                            tuple((j, self._t(j, fin[j]) if j in fin else (s >> (BITS * (j + 1))) & MASK)
                                  for j in deps), evs))
            else:
                k = list(self.unpack(s))
                k[0], k[1] = self.gl[ng]
                k[2 + tid] = own
                for j, v in others:
                    k[2 + j] = v
                out.append((move, self.pack(tuple(k)), evs))
        return out, kind, deps

    def apply_delta(self, gid: int, shd: tuple, obd: tuple) -> int:
        """The global part ``gid`` with the shared fields ``shd`` and the objects ``obd`` written."""
        g = self.gl[gid]
        if shd:
            sh = list(g[0])
            for i, v in shd:
                sh[i] = v
            sh = tuple(sh)
        else:
            sh = g[0]
        if obd:
            od = dict(self._objects(gid))
            for o, v in obd:
                if v is None:
                    od.pop(o, None)
                elif len(v) == 2 and v[0] is WRITES:
                    od[o] = _write_fields(od[o], v[1])
                else:
                    od[o] = v
            ot = tuple(sorted(od.items()))
        else:
            ot = g[1]
        ng = self._g((sh, ot))
        if self.delta_hook is not None:
            self.delta_hook(gid, shd, obd, ng)
        return ng

    def world(self, s: int) -> World:
        return self.sys.load(self.unpack(s))

    def invariants(self, s: int, model) -> list:
        """The model's invariant violations in ``s``, memoised on the global part when possible."""
        gid = s & MASK
        r = self.inv_memo.get(gid)
        if r is not None:
            return r
        w = self.world(s)
        r = list(model.invariants(w))
        if not w._other:
            self.inv_memo[gid] = r
        return r
