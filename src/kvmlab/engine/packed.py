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
        self.memo: dict[tuple, object] = {}
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

    def done(self, s: int, tid: int) -> bool:
        return (s >> (BITS * (tid + 1))) & MASK == 0

    def all_done(self, s: int) -> bool:
        return s >> BITS == 0

    # -- steps ------------------------------------------------------------------
    def successors(self, s: int):
        """(moves, blocked): moves are ``(tid, move, successor, events)``."""
        out = []
        blocked = {}
        for tid in range(self.n):
            r = self.outcomes(s, tid)
            if r is None:
                continue
            if r.__class__ is str:
                blocked[tid] = r
                continue
            for move, s2, evs in r:
                out.append((tid, move, s2, evs))
        return out, blocked

    def outcomes(self, s: int, tid: int):
        """None if ``tid`` finished, its blocked reason, or [(move, successor, events)]."""
        shift = BITS * (tid + 1)
        own = (s >> shift) & MASK
        if own == 0:
            return None
        gid = s & MASK
        mk = (((gid << BITS) | own) << 6) | tid
        r = self.memo.get(mk)
        if r is None:
            self.memo_misses += 1
            r, cacheable = self._compute(s, tid)
            if not cacheable:
                return r
            self.memo[mk] = r
        if r.__class__ is str:
            return r
        base = s & ~(MASK | (MASK << shift))
        return [(move, base | ng | (nt << shift), evs) for move, ng, nt, evs in r]

    def _compute(self, s: int, tid: int):
        sys = self.sys
        key = self.unpack(s)
        pending = [()]
        results = []
        cacheable = True
        while pending:
            script = pending.pop()
            w, why = sys._attempt(key, tid, script, self.merge)
            if w._other or w.inv_other:
                cacheable = False
            if why is not None:
                if script:
                    raise KvmlabError(f"thread {tid}: a step blocked after making a choice")
                return why, cacheable
            log = w.choices
            for j in range(len(script), len(log)):
                prefix = tuple(c[2] for c in log[:j])
                for alt in range(len(log[j][1]) - 1, 0, -1):
                    pending.append(prefix + (alt,))
            idx = tuple(c[2] for c in log)
            results.append((idx, _move_name(tid, log), w))
        results.sort(key=lambda x: x[0])
        out = []
        for _, move, w in results:
            k = w.key()
            evs = tuple(w.events)
            if cacheable:
                out.append((move, self._g((k[0], k[1])), self._t(tid, k[2 + tid]), evs))
            else:
                out.append((move, self.pack(k), evs))
        return out, cacheable

    def raw(self, s: int, tid: int):
        """Like :meth:`outcomes` but memo entries come back unexpanded (for the explorer's loop)."""
        own = (s >> (BITS * (tid + 1))) & MASK
        if own == 0:
            return None
        mk = ((((s & MASK) << BITS) | own) << 6) | tid
        r = self.memo.get(mk)
        if r is None:
            self.memo_misses += 1
            r, cacheable = self._compute(s, tid)
            if not cacheable:
                return r if r.__class__ is str else ("full", r)  # a blocked reason stays a str
            self.memo[mk] = r
        return r

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


def _move_name(tid: int, log) -> str:
    if all(c[2] == 0 for c in log):
        return str(tid)
    return f"{tid}:" + "+".join(c[1][c[2]] for c in log)
