"""The full state graph of a configuration, as the explorer explores it without reduction.

The stepper export, the diagrams and the labs' counterexample players use
it: :func:`explore` runs :class:`~kvmlab.engine.explorer.Explorer` with
``record=True`` and keeps every state, edge, blocked reason and broken
property, so a player replays the explorer's own shortest counterexamples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import KvmlabError
from .explorer import Explorer
from .world import System


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
    violations: list = field(default_factory=list)  # the explorer's, reduction off
    transitions: int = 0

    @property
    def order(self) -> list[str]:
        return [v.property for v in self.violations]

    def counterexamples(self) -> dict[str, dict[str, Any]]:
        """Property -> shortest counterexample (the explorer's, reduction off)."""
        return {v.property: {"property": v.property, "message": v.message, "splat": v.splat,
                             "schedule": v.schedule, "kind": v.kind, "loop_start": v.loop_start}
                for v in self.violations}

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


def explore(sys: System, max_states: int = 20000) -> StateGraph:
    """``sys``'s full state graph, as :class:`kvmlab.engine.Explorer` explores it without reduction.

    Raises :class:`KvmlabError` when the graph has more than ``max_states`` states.
    """
    ex = Explorer(sys, max_states=max_states, reduction=False, record=True)
    r = ex.run()
    if not r.complete:
        raise KvmlabError(
            f"{type(sys.model).name} ({sys.variant.name}): more than {max_states} states; "
            "a stepper needs a smaller configuration (fewer CPUs, waiters or loops) or a larger max_states")
    rec = ex.graph
    keys = rec["keys"]
    labels: dict[tuple[int, int], dict[str, str | None]] = {}

    def choice(i: int, tid: int, mv: str, row) -> str | None:
        # a step that made a choice has several outcomes (or names a non-default one)
        if ":" not in mv and sum(1 for e in row if e[1] == tid) < 2:
            return None
        if (i, tid) not in labels:  # choice names are not kept in the search: ask the step again
            worlds, _ = sys.attempts(keys[i], tid)
            labels[i, tid] = {m: _choice_label(w) for m, w in worlds}
        return labels[i, tid][mv]

    edges = [[Edge(tid, mv, choice(i, tid, mv, row), j, list(evs)) for j, tid, mv, evs in row]
             for i, row in enumerate(rec["rows"])]
    return StateGraph(sys, keys, edges, rec["blocked"], rec["fatal"], rec["bad"], rec["parent"], rec["pmove"],
                      violations=r.violations, transitions=r.transitions)
