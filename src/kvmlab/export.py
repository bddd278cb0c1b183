"""A configuration's full state graph as compact JSON, for the stepper's JavaScript player.

The graph is the one :class:`kvmlab.engine.Explorer` explores without
reduction (``record=True`` keeps it), so the stepper's "show me" plays the
explorer's shortest counterexample, move for move.

JSON layout (version 2, ``v``), chosen to stay small:

* ``strings``: a string table; most texts below are indices into it;
* ``threads``: id, label, title, and the code listing (per step: C function
  index, C line indices, step name, indent per C line);
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
* ``counterexamples``: property -> shortest schedule, message, kind, splat,
  ``loop_start`` (lassos);
* ``fairness``: the fairness the termination check assumed;
* ``goal``, ``goal_property`` (the goal's property, or the first of several:
  ``goal_properties`` lists them all, and breaking any one reaches the goal),
  ``goal_kind`` (how the first reachable one shows: "splat", "invariant",
  "stuck", "end", "lasso", or null when no schedule reaches the goal),
  ``par`` (``{"steps", "switches"}`` of the best solution, or null) and, for a
  ``terminates`` goal, ``loops``: the states on a cycle the fairness allows.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any

from .api import make_system
from .engine import KvmlabError, Variant
from .engine.graph import StateGraph, explore
from .engine.model import _fmt
from .engine.search import _sccs

FORMAT_VERSION = 2


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


_COMMENT = re.compile(r"\s*/\*.*?\*/\s*$")
_BARE = re.compile(r"^(?:\}\s*)?(?:if|else\s+if|while|for|\w+_for_each\w*)\s*\(.*\)$|^(?:\}\s*)?else$")
_CONT = re.compile(r"(?:&&|\|\||,|\()$")
_EXIT = re.compile(r"^(?:return\b|goto\s|break;|continue;)")


def c_indents(steps, succ: dict[int, set[int]]) -> list[list[int]]:
    """Indent level of every C line of a listing (``steps``: objects with ``fn`` and ``c``).

    The models' C lines carry no closing braces, so a block's extent comes from
    the graph: the steps between a condition's step and the step the explored
    runs jump to when it is false (``succ``: step -> observed next steps).
    Without such a jump, a ``{`` block ends after its ``return``/``goto``/
    ``break`` or where the function changes, and an unbraced ``if (...)`` or
    ``else`` indents the one line after it (at a step's end: only when the
    graph shows the jump over that line). Lines of a called function are not
    indented by the caller's blocks. The player drops a line's own leading
    spaces, except on the second line of a condition (after ``&&``, ``||``,
    ``,`` or ``(``), which keeps the previous line's level and its spaces.
    """
    out: list[list[int]] = []
    fn = None
    stack: list[list] = []  # open blocks: [step where it ends or None, function]
    single = False
    prev, prev_ind = "", 0
    for k, st in enumerate(steps):
        if st.fn != fn:
            fn = st.fn
            stack = [b for b in stack if b[0] is not None]
            single = False
        stack = [b for b in stack if b[0] is None or k < b[0]]
        jumps = [j for j in succ.get(k, ()) if j > k + 1]
        end = min(jumps) if jumps else None
        row = []
        for i, text in enumerate(st.c):
            t = _COMMENT.sub("", text.strip()).rstrip()
            mine = [b for b in stack if b[1] == fn]
            if t.startswith("}") and mine:
                stack.remove(mine[-1])
                mine.pop()
            if _CONT.search(prev):
                row.append(prev_ind)  # a condition's second line: its own spaces align it
            else:
                row.append(len(mine) + (1 if single else 0))
                single = False
            prev, prev_ind = t, row[-1]
            last = i == len(st.c) - 1
            if t.endswith("{"):
                stack.append([end if last else None, fn])
            elif _BARE.match(t):
                single = not last or end is not None
            elif _EXIT.match(t) and mine and mine[-1][0] is None:
                stack.remove(mine[-1])
        out.append(row)
    return out


def _fair_states(g: StateGraph) -> set[int]:
    """States on some cycle that the graph's fairness allows (what a ``terminates`` goal wins on)."""
    n = len(g.keys)
    succ = [[e.target for e in row] for row in g.edges]
    enabled = [0] * n
    for i, row in enumerate(g.edges):
        for e in row:
            enabled[i] |= 1 << e.tid
    out: set[int] = set()

    def visit(nodes: set[int]) -> None:
        for comp in _sccs(n, succ, nodes.__contains__):
            cs = set(comp)
            taken = 0
            for v in comp:
                for e in g.edges[v]:
                    if e.target in cs:
                        taken |= 1 << e.tid
            if not taken:
                continue
            if g.fairness == "none":
                out.update(cs)
            elif g.fairness == "weak":
                always = -1
                for v in comp:
                    always &= enabled[v]
                if not always & ~taken:
                    out.update(cs)
            else:
                bad = 0
                for v in comp:
                    bad |= enabled[v]
                bad &= ~taken
                if not bad:
                    out.update(cs)
                else:
                    rest = {v for v in comp if not enabled[v] & bad}
                    if rest:
                        visit(rest)

    visit(set(range(n)))
    return out


def _switches(schedule: list[str]) -> int:
    tids = [str(m).split(":")[0] for m in schedule]
    return sum(1 for a, b in zip(tids, tids[1:]) if a != b)


def min_switches(g: StateGraph, prop: str | set[str]) -> int | None:
    """Fewest context switches of any schedule that breaks ``prop`` (one or a set; 0-1 BFS), None if none does.

    Termination (lassos) is not searched here: a goal of ``terminates`` alone has no fewest count.
    """
    props = {prop} if isinstance(prop, str) else set(prop)
    bad = {i for i, row in g.bad.items() if any(p in props for p, _, _ in row)}
    if 0 in bad:
        return 0
    nt = g.sys.nthreads
    start = (0, nt)  # (state, thread that ran last; nt: none yet)
    goal = (-1, -1)
    best = {start: 0}
    dq = deque([(0, start)])
    while dq:
        d, node = dq.popleft()
        if node == goal:
            return d  # popped in cost order: the cheapest way in
        if best.get(node, d) < d:
            continue
        v, last = node
        for e in g.edges[v]:
            c = d + (1 if last != nt and e.tid != last else 0)
            hit = e.target in bad or any(ev.prop in props for ev in e.events)
            key = goal if hit else (e.target, e.tid)
            if c < best.get(key, 1 << 30):
                best[key] = c
                (dq.appendleft if c == d else dq.append)((c, key))
    return None


def graph_json(g: StateGraph, *, goal: str | None = None, goal_property: str | list[str] | None = None,
               title: str | None = None, stepper_id: str | None = None) -> dict[str, Any]:
    """The JSON the JavaScript player reads (see the module docstring).

    ``goal_property``: a property, or a list of them (the goal is reached when
    any one breaks). Raises :class:`KvmlabError` for a goal the player could
    not detect: a goal text with no ``goal_property`` while some schedule
    breaks a property. ``goal=None`` takes the model's goal text for the
    variant, and leaves it out in that case (free play).
    """
    sys = g.sys
    model = sys.model
    S = _Strings()
    pcs: list[list[int]] = []
    worlds = []
    for key in g.keys:
        w = sys.load(key)
        worlds.append(w)
        pcs.append([-1 if key[2 + tid] is None else w.thread(tid)["_pc"] for tid in range(sys.nthreads)])
    succ: list[dict[int, set[int]]] = [{} for _ in range(sys.nthreads)]
    for i, row in enumerate(g.edges):
        for e in row:
            succ[e.tid].setdefault(pcs[i][e.tid], set()).add(pcs[e.target][e.tid])
    threads = []
    for tid, p in enumerate(sys.programs):
        ind = c_indents(p.steps, succ[tid])
        code = [[S(st.fn), [S(c) for c in st.c], st.name, ind[k]] for k, st in enumerate(p.steps)]
        threads.append({"id": tid, "label": p.label, "title": p.title, "name": p.name, "code": code})
    shapes: dict[tuple, int] = {}
    splats: list[list] = []
    splat_ix: dict[tuple, int] = {}
    states = []
    for i, key in enumerate(g.keys):
        w = worlds[i]
        tv = []
        for tid in range(sys.nthreads):
            if key[2 + tid] is None:
                tv += [-1, S("done"), -1]
                continue
            if i in g.fatal:
                reason = "the run ended at the kernel's report"
            else:
                reason = g.blocked[i].get(tid, "")
            tv += [pcs[i][tid], S(reason), S(_ctx_text(w, tid))]
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
    mname = type(model).name
    explicit = goal is not None
    goals = [goal_property] if isinstance(goal_property, str) else list(goal_property or [])
    if goal_property is not None and not goals:
        raise KvmlabError("goal_property: name at least one property")
    for gp in goals:
        if gp not in props:
            raise KvmlabError(f"goal_property {gp!r}: not a property of {mname} (known: {', '.join(props)})")
    if not explicit:
        # the model's own goal text for the variant, when the player can tell it is reached
        goal = type(model).goals.get(variant.name)
        if goal and not goals and cex:
            goal = None
    if goal and not goals and cex:
        raise KvmlabError(
            f"{mname} ({variant.name}): the goal {goal!r} names no goal_property, but schedules break "
            f"{', '.join(cex)}: pass goal_property= (one of {', '.join(props)}) so that the stepper "
            "can tell when the reader reached the goal")
    goal_kind = par = loops = None
    reached = [gp for gp in goals if gp in cex]
    if reached:
        goal_kind = cex[reached[0]]["kind"]
        steps = min(len(cex[gp]["schedule"]) for gp in reached)
        others = {gp for gp in reached if cex[gp]["kind"] != "lasso"}
        if others:
            switches, fewest = min_switches(g, others), len(others) == len(reached)
            if not fewest:  # a lasso may still need fewer switches: count the explorer's own
                switches = min(switches, _switches(cex["terminates"]["schedule"]))
        else:
            switches, fewest = _switches(cex["terminates"]["schedule"]), False
        par = {"steps": steps, "switches": switches, "fewest": fewest}
    if "terminates" in goals:
        loops = sorted(_fair_states(g))
    return {
        "v": FORMAT_VERSION,
        "id": stepper_id,
        "model": mname,
        "variant": variant.name,
        "variant_desc": variant.desc,
        "commit": variant.commit,
        "title": title or f"{type(model).title} — {variant.name}",
        "config": {k: bool(v) for k, v in sys.config.items()},
        "params": dict(sys.params),
        "fairness": g.fairness,
        "goal": goal,
        "goal_property": goals[0] if goals else None,
        "goal_properties": goals,
        "goal_kind": goal_kind,
        "par": par,
        "loops": loops,
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
