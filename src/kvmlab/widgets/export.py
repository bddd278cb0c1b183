"""A configuration's full state graph as compact JSON, for the stepper's JavaScript player.

The graph is explored without reduction, breadth first, in exactly the
order :class:`kvmlab.engine.Explorer` uses (threads in id order, outcomes
in ``System.expand`` order), so the first path found to a violation is the
explorer's shortest counterexample, move for move.

JSON layout (version 1), chosen to stay small:

* ``strings``: a string table; most texts below are indices into it;
* ``threads``: id, label, title, and the code listing (per step: C function
  index, C line indices, step name);
* ``states[i] = [threads, shared, moves]`` where ``threads`` is a flat list
  ``pc, status, ctx`` per thread (pc -1 once done; status "" when the thread
  can move, else why not), ``shared`` is ``[shape, v0, v1, ...]`` (shape:
  index into ``shapes``, the list of shared-field names), ``moves`` a flat
  list ``tid, move, choice, target, splat`` per outcome (move: schedule item
  such as "1" or "1:fail"; choice: "kmalloc: fail" or -1; splat: index into
  ``splats`` or -1);
* ``bad``: state index -> list of ``[property, message, kind]`` broken in
  that state (invariants, stuck, end checks);
* ``fatal``: states where the run ended (a fatal report such as KASAN);
* ``counterexamples``: property -> shortest schedule, message, kind, splat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..engine import Blocked, Explorer, KvmlabError, System, Variant
from ..engine.explorer import find_fair_cycle
from ..engine.model import _fmt

FORMAT_VERSION = 1


@dataclass
class Edge:
    tid: int
    move: str
    choice: str | None
    target: int
    events: list  # list of kvmlab.engine.world.Event


@dataclass
class StateGraph:
    """The explored graph, kept in Python for the stepper export and the diagrams."""

    sys: System
    keys: list[tuple]
    edges: list[list[Edge]]
    blocked: list[dict[int, str]]
    fatal: set[int]
    bad: dict[int, list[tuple[str, str, str]]]
    parent: list[int]
    pmove: list[str | None]
    found: dict[str, tuple] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    lasso: tuple | None = None
    transitions: int = 0

    def path_to(self, j: int) -> list[str]:
        out = []
        while j > 0:
            out.append(self.pmove[j])
            j = self.parent[j]
        out.reverse()
        return out

    def counterexamples(self) -> dict[str, dict[str, Any]]:
        """Property -> shortest counterexample (same as the explorer's, reduction off)."""
        out = {}
        for prop in self.order:
            msg, splat, end, extra, kind = self.found[prop]
            sched = self.path_to(end)
            if extra is not None:
                sched.append(extra)
            loop_start = None
            if kind == "lasso":
                _, cycle = self.lasso
                loop_start = len(sched)
                sched = sched + cycle
                msg = Explorer(self.sys)._lasso_message(sched, loop_start)
            out[prop] = {"property": prop, "message": msg, "splat": splat, "schedule": sched,
                         "kind": kind, "loop_start": loop_start}
        return out

    def path_nodes(self, schedule: list[str]) -> list[int]:
        """State indices visited by ``schedule`` from the initial state."""
        cur, out = 0, [0]
        for mv in schedule:
            nxt = next((e.target for e in self.edges[cur] if e.move == str(mv)), None)
            if nxt is None:
                break
            cur = nxt
            out.append(cur)
        return out


def _choice_label(w) -> str | None:
    if not w.choices:
        return None
    return ", ".join(f"{name}: {opts[idx]}" for name, opts, idx in w.choices)


def make_system(model, variant=None, config=None, params=None) -> System:
    from ..api import load
    if isinstance(model, System):
        return model
    return load(model, variant, config, params)


def explore(sys: System, max_states: int = 20000,
            on_edge: Callable[[tuple, int, str, Any], None] | None = None) -> StateGraph:
    """Explore ``sys``'s full state graph, mirroring the explorer's BFS order exactly.

    Raises :class:`KvmlabError` when the graph has more than ``max_states`` states.
    """
    model = sys.model
    init = sys.initial
    seen = {init: 0}
    keys = [init]
    parent = [-1]
    pmove: list[str | None] = [None]
    edges: list[list[Edge]] = []
    blocked: list[dict[int, str]] = []
    fatal: set[int] = set()
    bad: dict[int, list] = {}
    found: dict[str, tuple] = {}
    order: list[str] = []
    props = type(model).properties
    live = "terminates" in props
    enabled_mask: list[int] = []
    transitions = 0

    def note(prop, msg, splat, end, extra, kind):
        if prop not in found:
            found[prop] = (msg, splat, end, extra, kind)
            order.append(prop)

    def check_invariants(j, w):
        for prop, msg in model.invariants(w):
            bad.setdefault(j, []).append((prop, msg, "invariant"))
            note(prop, msg, None, j, None, "invariant")

    check_invariants(0, sys.load(init))
    nthreads = sys.nthreads
    # every state is expanded in index order (fatal ones get an empty row)
    i = 0
    while i < len(keys):
        if i in fatal:
            edges.append([])
            blocked.append({})
            enabled_mask.append(0)
            i += 1
            continue
        key = keys[i]
        row: list[Edge] = []
        why: dict[int, str] = {}
        mask = 0
        for tid in range(nthreads):
            if key[2 + tid] is None:
                continue
            try:
                outs = sys.expand(key, tid)
            except Blocked as b:
                why[tid] = b.reason
                continue
            mask |= 1 << tid
            for mv, w in outs:
                transitions += 1
                nk = w.key()
                j = seen.get(nk)
                is_fatal = False
                for ev in w.events:
                    note(ev.prop, ev.title, ev.text, i, mv, "splat")
                    is_fatal = is_fatal or ev.fatal
                if j is None:
                    j = len(keys)
                    if j >= max_states:
                        raise KvmlabError(
                            f"{type(model).name} ({sys.variant.name}): more than {max_states} states; "
                            "a stepper needs a smaller configuration (fewer CPUs, waiters or loops) "
                            "or a larger max_states")
                    seen[nk] = j
                    keys.append(nk)
                    parent.append(i)
                    pmove.append(mv)
                    check_invariants(j, w)
                    if is_fatal:
                        fatal.add(j)
                if on_edge is not None:
                    on_edge(key, tid, mv, w)
                row.append(Edge(tid, mv, _choice_label(w), j, list(w.events)))
        edges.append(row)
        blocked.append(why)
        enabled_mask.append(mask)
        if not row:
            w = sys.load(key)
            if why:
                prop, msg = model.stuck_message(w, why)
                bad.setdefault(i, []).append((prop, msg, "stuck"))
                note(prop, msg, None, i, None, "stuck")
            for prop, msg in model.end_checks(w):
                bad.setdefault(i, []).append((prop, msg, "end"))
                note(prop, msg, None, i, None, "end")
        i += 1
    g = StateGraph(sys, keys, edges, blocked, fatal, bad, parent, pmove, found, order,
                   transitions=transitions)
    if live and "terminates" not in found:
        succ = [[(e.target, e.tid, e.move) for e in row] for row in edges]
        lasso = find_fair_cycle(succ, enabled_mask, type(model).fairness)
        if lasso is not None:
            g.lasso = lasso
            note("terminates", "", None, lasso[0], None, "lasso")
    return g


class _Strings:
    def __init__(self):
        self.index: dict[str, int] = {}
        self.items: list[str] = []

    def __call__(self, s: str | None) -> int:
        if s is None:
            return -1
        i = self.index.get(s)
        if i is None:
            i = self.index[s] = len(self.items)
            self.items.append(s)
        return i


def _ctx_text(w, tid: int) -> str:
    t = w.thread(tid)
    if t is None:
        return ""
    parts = [f"{k} = {_fmt(v)}" for k, v in t.items() if not k.startswith("_")]
    summ = getattr(w, "context_summary", None)
    if summ is not None:
        parts += [f"{k}: {v}" for k, v in summ(tid).items()]
    return " · ".join(parts)


def graph_json(g: StateGraph, *, goal: str | None = None, goal_property: str | None = None,
               title: str | None = None, stepper_id: str | None = None) -> dict[str, Any]:
    """The JSON the JavaScript player reads (see the module docstring)."""
    sys = g.sys
    model = sys.model
    S = _Strings()
    threads = []
    for tid, p in enumerate(sys.programs):
        code = [[S(st.fn), [S(c) for c in st.c], st.name] for st in p.steps]
        threads.append({"id": tid, "label": p.label, "title": p.title, "name": p.name, "code": code})
    shapes: dict[tuple, int] = {}
    splats: list[list] = []
    splat_ix: dict[tuple, int] = {}
    states = []
    for i, key in enumerate(g.keys):
        w = sys.load(key)
        tv = []
        for tid in range(sys.nthreads):
            if key[2 + tid] is None:
                tv += [-1, S("done"), -1]
                continue
            pc = w.thread(tid)["_pc"]
            if i in g.fatal:
                reason = "the run ended at the kernel's report"
            else:
                reason = g.blocked[i].get(tid, "")
            tv += [pc, S(reason), S(_ctx_text(w, tid))]
        desc = model.describe_state(w)
        names = tuple(desc)
        shape = shapes.setdefault(names, len(shapes))
        sh = [shape] + [S(v) for v in desc.values()]
        mv = []
        for e in g.edges[i]:
            sp = -1
            if e.events:
                # one splat entry per edge: join several reports in order
                k = tuple((ev.prop, ev.title, ev.text, ev.fatal) for ev in e.events)
                sp = splat_ix.get(k)
                if sp is None:
                    sp = splat_ix[k] = len(splats)
                    splats.append([[S(p), S(t), S(x), int(f)] for p, t, x, f in k])
            mv += [e.tid, S(e.move), S(e.choice), e.target, sp]
        states.append([tv, sh, mv])
    props = dict(type(model).properties)
    for prop in g.order:
        props.setdefault(prop, "")
    for row in g.bad.values():
        for prop, _, _ in row:
            props.setdefault(prop, "")
    for sp in splats:
        for p, _, _, _ in sp:
            props.setdefault(S.items[p], "")
    bad = {str(i): [[S(p), S(m), k] for p, m, k in row] for i, row in g.bad.items()}
    cex = g.counterexamples()
    variant = sys.variant
    if goal is None:
        goal = type(model).goals.get(variant.name)
    if goal_property is not None and goal_property not in props:
        raise KvmlabError(f"goal_property {goal_property!r}: not a property of {type(model).name} "
                          f"(known: {', '.join(props)})")
    return {
        "v": FORMAT_VERSION,
        "id": stepper_id,
        "model": type(model).name,
        "variant": variant.name,
        "variant_desc": variant.desc,
        "commit": variant.commit,
        "title": title or f"{type(model).title} — {variant.name}",
        "config": {k: bool(v) for k, v in sys.config.items()},
        "params": dict(sys.params),
        "goal": goal,
        "goal_property": goal_property,
        "properties": props,
        "strings": S.items,
        "threads": threads,
        "shapes": [list(s) for s in sorted(shapes, key=shapes.get)],
        "splats": splats,
        "states": states,
        "bad": bad,
        "fatal": sorted(g.fatal),
        "transitions": g.transitions,
        "counterexamples": cex,
    }


def export_graph(model, variant: str | Variant | None = None, config: dict | None = None,
                 params: dict | None = None, max_states: int = 20000, **display) -> dict[str, Any]:
    """Explore the configuration's full state graph and return the player's JSON.

    ``display`` passes ``goal``, ``goal_property``, ``title``, ``stepper_id``
    to :func:`graph_json`. Raises :class:`KvmlabError` above ``max_states``.
    """
    sys = make_system(model, variant, config, params)
    return graph_json(explore(sys, max_states), **display)
