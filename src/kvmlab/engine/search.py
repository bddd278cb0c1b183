"""What a search produces and the graph algorithms that judge it, shared by both engines.

:class:`Findings` (the first counterexample of each property), :class:`Search`
(the BFS tree and edges), and the search for a fair cycle (``terminates``)
over strongly connected components. :mod:`.explorer` (pure Python) and
:mod:`.ccore` (the compiled core) both build on these.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Callable


class Findings:
    """The first (shortest) counterexample found for each property, in the order found."""

    def __init__(self):
        self.found: dict[str, tuple] = {}  # property -> (message, splat, state, extra move, kind)
        self.order: list[str] = []

    def note(self, prop, msg, splat, path_end, extra_move, kind) -> None:
        if prop in self.found:
            return
        self.found[prop] = (msg, splat, path_end, extra_move, kind)
        self.order.append(prop)


class Search:
    """What a search produced: the BFS tree (parent, move, depth per state) and the edges."""

    def __init__(self, engine: str):
        self.engine = engine  # "python" or "c"
        self.parent = array("q", [-1])
        self.pmove = array("H", [0])
        self.move_names: list[str] = [""]
        self.depth = array("l", [0])
        self.nstates = 1
        self.transitions = 0
        self.complete = True
        self.stopped: str | None = None
        self.crash = None
        self.rows: dict | None = None
        self.masks: dict | None = None

    def max_depth(self) -> int:
        return max(self.depth)

    def lasso(self, fairness: str):
        """A reachable cycle breaking ``terminates`` under ``fairness``, or None (see find_fair_cycle)."""
        rows, masks = self.rows, self.masks
        succ = [[(j, t, mv) for j, t, mv, _ in rows.get(v, ())] for v in range(self.nstates)]
        return find_fair_cycle(succ, [masks.get(v, 0) for v in range(self.nstates)], fairness)


def _sccs(n: int, succ: list[list[int]], allowed: Callable[[int], bool]) -> list[list[int]]:
    """Tarjan's strongly connected components (iterative) over allowed nodes."""
    index = [-1] * n
    low = [0] * n
    onstack = [False] * n
    stack: list[int] = []
    out: list[list[int]] = []
    counter = 0
    for root in range(n):
        if index[root] != -1 or not allowed(root):
            continue
        work = [(root, 0)]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        onstack[root] = True
        while work:
            v, pi = work[-1]
            nbrs = succ[v]
            if pi < len(nbrs):
                work[-1] = (v, pi + 1)
                u = nbrs[pi]
                if not allowed(u):
                    continue
                if index[u] == -1:
                    index[u] = low[u] = counter
                    counter += 1
                    stack.append(u)
                    onstack[u] = True
                    work.append((u, 0))
                elif onstack[u]:
                    low[v] = min(low[v], index[u])
            else:
                work.pop()
                if work:
                    p = work[-1][0]
                    low[p] = min(low[p], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        u = stack.pop()
                        onstack[u] = False
                        comp.append(u)
                        if u == v:
                            break
                    out.append(comp)
    return out


def find_fair_cycle(succ, enabled_mask, fairness: str, comps=None, n: int | None = None):
    """A reachable cycle with an unfinished thread that the fairness allows.

    ``succ[v]`` lists ``(u, tid, move)`` edges. Returns ``(entry, moves)``
    (the cycle as schedule items from state ``entry``) or None. Strong
    fairness uses the Emerson-Lei refinement: drop the states where a thread
    that never moves inside the component is enabled, and recurse.
    ``comps`` (with ``n`` states): the strongly connected components with a
    cycle, in the order :func:`_sccs` finds them over the whole graph; then
    ``succ`` and ``enabled_mask`` need only their states (dicts will do).
    """
    if comps is None:
        n = len(succ)
        plain = [[u for u, _, _ in row] for row in succ]
    else:
        plain = {v: [u for u, _, _ in row] for v, row in succ.items()}

    def fair_component(nodes, top=None):
        for comp in (top if top is not None else _sccs(n, plain, nodes.__contains__)):
            cs = set(comp)
            taken = 0
            for v in comp:
                for u, t, _ in succ[v]:
                    if u in cs:
                        taken |= 1 << t
            if taken == 0:
                continue  # a single state without a self-loop: no cycle
            if fairness == "none":
                return cs, taken
            if fairness == "weak":
                always = -1
                for v in comp:
                    always &= enabled_mask[v]
                if always & ~taken == 0:
                    return cs, taken
                continue
            bad = 0
            for v in comp:
                bad |= enabled_mask[v]
            bad &= ~taken
            if bad == 0:
                return cs, taken
            rest = {v for v in comp if enabled_mask[v] & bad == 0}
            if rest:
                r = fair_component(rest)
                if r is not None:
                    return r
        return None

    found = fair_component(None, comps) if comps is not None else fair_component(set(range(n)))
    if found is None:
        return None
    cs, taken = found
    entry = min(cs)  # lowest BFS number: reached by the shortest prefix

    def path(src, pred):
        prev = {src: None}
        dq = deque([src])
        while dq:
            v = dq.popleft()
            if pred(v):
                out = []
                while prev[v] is not None:
                    pv, mv = prev[v]
                    out.append(mv)
                    v = pv
                return out[::-1]
            for u, _, mv in succ[v]:
                if u in cs and u not in prev:
                    prev[u] = (v, mv)
                    dq.append(u)
        raise AssertionError("state not reachable inside its component")

    moves: list[str] = []
    cur = entry
    for t in range(taken.bit_length()):
        if not taken >> t & 1:
            continue
        has_t = lambda v, t=t: any(tt == t and u in cs for u, tt, _ in succ[v])  # noqa: E731
        seg = path(cur, has_t)
        moves += seg
        cur = _walk(succ, cur, seg)
        u, mv = next((u, mv) for u, tt, mv in succ[cur] if tt == t and u in cs)
        moves.append(mv)
        cur = u
    seg = path(cur, lambda v: v == entry)
    moves += seg
    return entry, moves


def _walk(succ, v, moves):
    for mv in moves:
        v = next(u for u, _, m in succ[v] if m == mv)
    return v
