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
"""

from __future__ import annotations

from .errors import KvmlabError
from .world import FINISHED, System, World

BITS = 24
MASK = (1 << BITS) - 1


class Packed:
    """Interning tables, packing, and memoised successors of a System."""

    def __init__(self, sys: System, merge: bool = False):
        self.sys = sys
        self.merge = merge
        self.n = sys.nthreads
        self.gid: dict[tuple, int] = {}
        self.gl: list[tuple] = []
        self.tidx: list[dict] = [{FINISHED: 0} for _ in range(self.n)]
        self.tl: list[list] = [[FINISHED] for _ in range(self.n)]
        self.memo: dict[int, object] = {}
        self.memo2: dict[tuple, object] = {}
        self.inv_memo: dict[int, list] = {}
        self.memo_misses = 0
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

    def _compute(self, s: int, tid: int):
        """Run ``tid``'s step from ``s``; returns (outcome, kind, touched).

        kind ``"own"``: the step looked at no other thread, the outcome is
        ``[(move, global id, own id, events)]`` (or the blocked reason);
        ``"dep"``: it looked at the threads in ``touched`` (and nothing in an
        invariant did), the outcome is ``[(move, global id, own id, ((j, id),
        ...), events)]``; ``"none"``: not memoisable, ``[(move, successor,
        events)]``.
        """
        worlds, why = self.sys.attempts(self.unpack(s), tid, self.merge)
        touched: set[int] = set()
        kind = "own"
        for item in worlds:
            w = item if why is not None else item[1]
            if w.inv_other:
                kind = "none"
            elif w._other and kind == "own":
                kind = "dep"
            touched |= w.touched
        if why is not None:
            return why, kind, tuple(sorted(touched))
        deps = tuple(sorted(touched))
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
