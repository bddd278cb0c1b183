"""A configuration's full state graph as compact JSON, for the stepper's JavaScript player.

The graph is the one :class:`kvmlab.engine.Explorer` explores without
reduction (``record=True`` keeps it), so the stepper's "show me" plays the
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

from typing import Any

from ..engine import KvmlabError, System, Variant
from ..engine.graph import Edge, StateGraph, _choice_label, explore  # noqa: F401 - moved to the engine
from ..engine.model import _fmt

FORMAT_VERSION = 1


def make_system(model, variant=None, config=None, params=None) -> System:
    from ..api import load
    if isinstance(model, System):
        return model
    return load(model, variant, config, params)


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
