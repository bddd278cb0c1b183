"""Deterministic replay of a schedule, and the per-step trace it produces."""

from __future__ import annotations

from typing import Any

from .errors import Blocked, KvmlabError
from .model import _fmt
from .world import System, World, parse_move


def describe(sys: System, w: World) -> dict[str, Any]:
    """A state as JSON-ready data: shared fields, threads, where each one is."""
    model = sys.model
    threads = []
    for tid, prog in enumerate(sys.programs):
        t = w.thread(tid)
        if t is None:
            threads.append({"id": tid, "name": prog.name, "label": prog.label, "done": True,
                            "pc": None, "line": None, "status": "done", "locals": {}})
            continue
        pc = t["_pc"]
        st = prog.steps[pc]
        threads.append({
            "id": tid, "name": prog.name, "label": prog.label, "done": False, "pc": pc,
            "line": st.text, "fn": st.fn, "status": w.thread_status(tid),
            "locals": {k: _fmt(v) for k, v in t.items() if not k.startswith("_")},
        })
    return {"shared": model.describe_state(w), "threads": threads}


class Trace:
    """A replay in progress: apply schedule items one by one, keep every step."""

    def __init__(self, sys: System):
        self.sys = sys
        self.key = sys.initial
        self.steps: list[dict] = []
        self.events: list[dict] = []

    def can_move(self, tid: int) -> str | None:
        """None if thread ``tid`` can move now, else the reason it cannot."""
        if not 0 <= tid < self.sys.nthreads:
            return f"no thread {tid} (threads are 0..{self.sys.nthreads - 1})"
        try:
            self.sys.run(self.key, tid)
            return None
        except Blocked as b:
            return b.reason

    def step(self, item) -> dict:
        sys = self.sys
        tid, script = parse_move(item)
        n = len(self.steps) + 1
        if not 0 <= tid < sys.nthreads:
            raise KvmlabError(f"schedule step {n}: no thread {tid} (threads are 0..{sys.nthreads - 1})")
        prog = sys.programs[tid]
        if sys.is_done(self.key, tid):
            raise KvmlabError(f"schedule step {n}: thread {tid} ({prog.label}) has finished")
        before = sys.load(self.key).thread(tid)
        pc = before["_pc"]
        try:
            w = sys.run(self.key, tid, script)
        except Blocked as b:
            raise KvmlabError(f"schedule step {n}: thread {tid} ({prog.label}) cannot move: {b.reason}") from None
        taken = [c[1][c[2]] for c in w.choices]
        if len(script) > len(w.choices):
            raise KvmlabError(f"schedule step {n}: item {item!r} names {len(script)} choices, "
                              f"the step makes {len(w.choices)}")
        st = prog.steps[pc]
        self.key = w.key()
        after = sys.load(self.key)
        rec = {
            "n": n, "move": str(item), "thread": tid, "label": prog.label, "step": st.name,
            "c": st.text, "fn": st.fn, "choices": taken,
            "splats": [{"property": e.prop, "title": e.title, "text": e.text, "fatal": e.fatal}
                       for e in w.events],
            "state": describe(sys, after),
        }
        if w.choices:
            rec["choice_names"] = [c[0] for c in w.choices]
        self.steps.append(rec)
        return rec

    def to_json(self) -> dict:
        return {"steps": self.steps}


def replay_moves(sys: System, schedule) -> Trace:
    """Replay ``schedule`` (items like ``0``, ``1``, ``1:fail``) from the initial state."""
    tr = Trace(sys)
    for item in schedule:
        tr.step(item)
    return tr
