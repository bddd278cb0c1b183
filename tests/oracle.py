"""An independent reference explorer for the tests: the simplest search that could work.

Plain breadth-first search over whole state tuples (``System.initial``,
``System.attempts(key, tid, merge=False)``, ``World.key()``): no packing, no
memo, no reduction, no recording. It computes the states, transitions and
depth, the shortest counterexample length of every safety property (step
reports, invariants on every state, stuck and end checks where no thread can
move) and, for ``terminates``, whether a reachable cycle exists under no,
weak or strong fairness (its own SCC code: Kosaraju, not the engine's
Tarjan). It also checks a counterexample schedule by replaying it, so the
tests can judge the explorer's schedules without trusting them.

One convention is shared with the explorer on purpose: a state first reached
by a step that made a fatal report (panic, KASAN) ends the run there and is
not expanded.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from kvmlab.engine.errors import Blocked
from kvmlab.engine.world import parse_move


@dataclass
class Reference:
    """What the reference search found."""

    states: int
    transitions: int
    depth: int
    shortest: dict[str, int]  # safety property -> length of its shortest counterexample
    complete: bool = True
    keys: list = field(default_factory=list)
    succ: list = field(default_factory=list)  # state -> [(target, tid, move)]
    enabled: list = field(default_factory=list)  # state -> frozenset of tids that can move
    blocked: dict = field(default_factory=dict)  # state -> {tid: why it cannot move}
    bad: dict = field(default_factory=dict)  # state -> {(property, kind)} broken there
    fatal: set = field(default_factory=set)  # states reached by a fatal report (not expanded)

    def fair_cycle(self, fairness: str) -> bool:
        """Is there a reachable cycle (every cycle has an unfinished thread) that ``fairness`` allows?"""
        nodes = [v for v in range(len(self.keys)) if self.succ[v]]
        return any(self._fair(comp, fairness) for comp in sccs(nodes, self.succ))

    def _fair(self, comp: set, fairness: str) -> bool:
        inner = [(v, u, t) for v in comp for u, t, _ in self.succ[v] if u in comp]
        if not inner:
            return False
        if fairness == "none":
            return True
        moved = {t for _, _, t in inner}
        if fairness == "weak":
            # a fair tour of the whole component exists iff every thread that never moves
            # inside it is disabled somewhere in it
            always = frozenset.intersection(*(self.enabled[v] for v in comp))
            return always <= moved
        if fairness != "strong":
            raise ValueError(fairness)
        # strong: a thread enabled anywhere on the cycle must move on it. Drop the states
        # where a thread that never moves here is enabled, and look again inside the rest.
        unfair = set().union(*(self.enabled[v] for v in comp)) - moved
        if not unfair:
            return True
        rest = [v for v in comp if not (self.enabled[v] & unfair)]
        sub = [[(u, t, m) for u, t, m in self.succ[v] if u in comp] if v in comp else []
               for v in range(len(self.succ))]
        return any(self._fair(c, fairness) for c in sccs(rest, sub))

    @property
    def violated(self) -> set[str]:
        return set(self.shortest)


def sccs(nodes, succ) -> list[set]:
    """Strongly connected components of the subgraph on ``nodes`` (Kosaraju, iterative)."""
    allowed = set(nodes)
    order: list[int] = []
    seen: set[int] = set()
    for root in nodes:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter([u for u, _, _ in succ[root] if u in allowed]))]
        while stack:
            v, it = stack[-1]
            for u in it:
                if u not in seen:
                    seen.add(u)
                    stack.append((u, iter([x for x, _, _ in succ[u] if x in allowed])))
                    break
            else:
                stack.pop()
                order.append(v)
    pred: dict[int, list[int]] = {v: [] for v in allowed}
    for v in allowed:
        for u, _, _ in succ[v]:
            if u in allowed:
                pred[u].append(v)
    out, done = [], set()
    for root in reversed(order):
        if root in done:
            continue
        comp, todo = set(), [root]
        done.add(root)
        while todo:
            v = todo.pop()
            comp.add(v)
            for u in pred[v]:
                if u not in done:
                    done.add(u)
                    todo.append(u)
        out.append(comp)
    return out


def explore(sys, max_states: int = 50_000) -> Reference:
    """Breadth-first search of ``sys``'s whole state graph, without any of the engine's shortcuts."""
    model = sys.model
    init = sys.initial
    index = {init: 0}
    keys, depth = [init], [0]
    succ: dict[int, list] = {}
    enabled: dict[int, frozenset] = {}
    shortest: dict[str, int] = {}
    blocked_at: dict[int, dict] = {}
    bad: dict[int, set] = {}
    fatal_states: set[int] = set()

    def hit(prop, n):
        if prop not in shortest or n < shortest[prop]:
            shortest[prop] = n

    for prop, _ in model.invariants(sys.load(init)):
        hit(prop, 0)
        bad.setdefault(0, set()).add((prop, "invariant"))
    q = deque([0])
    transitions = 0
    while q:
        i = q.popleft()
        key = keys[i]
        out, moving, blocked = [], set(), {}
        for tid in range(sys.nthreads):
            if key[2 + tid] is None:
                continue
            worlds, why = sys.attempts(key, tid, merge=False)
            if why is not None:
                blocked[tid] = why
                continue
            moving.add(tid)
            for move, w in worlds:
                k = w.key()
                fatal = False
                for ev in w.events:
                    hit(ev.prop, depth[i] + 1)
                    fatal = fatal or ev.fatal
                j = index.get(k)
                if j is None:
                    j = index[k] = len(keys)
                    keys.append(k)
                    depth.append(depth[i] + 1)
                    if len(keys) > max_states:
                        raise RuntimeError(f"reference search: more than {max_states} states")
                    for prop, _ in model.invariants(sys.load(k)):
                        hit(prop, depth[j])
                        bad.setdefault(j, set()).add((prop, "invariant"))
                    if fatal:
                        fatal_states.add(j)
                    else:
                        q.append(j)
                out.append((j, tid, move))
        transitions += len(out)
        succ[i] = out
        enabled[i] = frozenset(moving)
        if blocked:
            blocked_at[i] = blocked
        if not out:
            w = sys.load(key)
            if blocked:
                prop = model.stuck_message(w, blocked)[0]
                hit(prop, depth[i])
                bad.setdefault(i, set()).add((prop, "stuck"))
            for prop, _ in model.end_checks(w):
                hit(prop, depth[i])
                bad.setdefault(i, set()).add((prop, "end"))
    # states ended by a fatal report were never expanded: no successors
    return Reference(len(keys), transitions, max(depth), shortest, True, keys,
                     [succ.get(v, []) for v in range(len(keys))],
                     [enabled.get(v, frozenset()) for v in range(len(keys))], blocked_at, bad, fatal_states)


# -- judging a counterexample by replaying it -------------------------------------------------

def step(sys, key, item):
    """Run one schedule item from ``key`` without reduction: the World after it."""
    tid, script = parse_move(item)
    return sys.run(key, tid, script)


def can_move(sys, key) -> frozenset:
    out = set()
    for tid in range(sys.nthreads):
        if key[2 + tid] is None:
            continue
        try:
            sys.run(key, tid)
            out.add(tid)
        except Blocked:
            pass
    return frozenset(out)


def judge(sys, v, fairness: str = "none") -> str | None:
    """Why the explorer's violation ``v`` is not a real counterexample, or None if it is."""
    key, w, keys = sys.initial, None, [sys.initial]
    for item in v.schedule:
        try:
            w = step(sys, key, item)
        except Blocked as b:
            return f"schedule item {item} cannot run: {b.reason}"
        if any(e.fatal for e in w.events) and len(keys) < len(v.schedule):
            return "the run goes on after a fatal report"
        key = w.key()
        keys.append(key)
    model = sys.model
    end = sys.load(key)
    if v.kind == "splat":
        ok = w is not None and any(e.prop == v.property for e in w.events)
        return None if ok else f"the last step does not report {v.property}"
    if v.kind == "invariant":
        ok = any(p == v.property for p, _ in model.invariants(end))
        return None if ok else f"invariant {v.property} holds at the end"
    if v.kind in ("stuck", "end"):
        if can_move(sys, key):
            return "some thread can still move at the end"
        blocked = {}
        for tid in range(sys.nthreads):
            if key[2 + tid] is None:
                continue
            worlds, why = sys.attempts(key, tid)
            blocked[tid] = why
        props = {p for p, _ in model.end_checks(end)}
        if blocked:
            props.add(model.stuck_message(end, blocked)[0])
        return None if v.property in props else f"{v.property} is not broken at the end"
    if v.kind == "lasso":
        ls = v.loop_start
        if ls is None or not 0 <= ls < len(v.schedule):
            return f"bad loop start {ls}"
        if keys[ls] != keys[-1]:
            return "the loop does not come back to where it started"
        cycle = keys[ls:-1]
        movers = {parse_move(item)[0] for item in v.schedule[ls:]}
        en = [can_move(sys, k) for k in cycle]
        if fairness == "weak" and not frozenset.intersection(*en) <= movers:
            return "a thread enabled all along the loop never moves (not weakly fair)"
        if fairness == "strong" and not frozenset.union(*en) <= movers:
            return "a thread enabled on the loop never moves (not strongly fair)"
        return None
    return f"unknown kind {v.kind}"
