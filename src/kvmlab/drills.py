"""Predict-the-verdict drills: named mutations of the real kernel code, checked by the explorer.

A *mutant* takes one historical variant of a chapter's model (the real code) and changes one
program the way a named mutation operator says (drop a lock, swap two lines, raw <-> sleeping
lock, GFP_ATOMIC <-> GFP_KERNEL, ...). The change is made programmatically: the mutant is a
subclass of the real Program whose steps wrap the originals, so every step keeps naming its
C line, and the C text changes with the code. The reader sees the diff against the real code,
predicts "holds" or "breaks, and which property", then sees the explorer's verdict and its
shortest counterexample in the stepper.

Each drill states the verdict its author expects (``expect``); :func:`verdict` computes the
explorer's, and the tests check that the two agree for every drill.
"""

from __future__ import annotations

import difflib
import html
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .engine import DONE, KvmlabError, Variant
from .engine.model import LineSpec, Program

# ---------------------------------------------------------------------------------------
# Steps as data: (name, function, LineSpec), in program order
# ---------------------------------------------------------------------------------------


@dataclass
class _Step:
    name: str
    func: Callable
    spec: LineSpec


def _steps_of(cls: type[Program]) -> list[_Step]:
    return [_Step(n, getattr(cls, n), cls._specs[n]) for n in cls._order]


def _steps_of_dict(steps: dict) -> list[_Step]:
    return [_Step(n, f, f._kvmlab_line) for n, f in steps.items()]


class _World:
    """A view of the world in which some primitives are replaced (the mutation's calls)."""

    __slots__ = ("_w", "_o")

    def __init__(self, w, overrides: dict[str, Callable]):
        object.__setattr__(self, "_w", w)
        object.__setattr__(self, "_o", overrides)

    def __getattr__(self, k):
        make = self._o.get(k)
        return make(self._w) if make is not None else getattr(self._w, k)

    def __setattr__(self, k, v):
        setattr(self._w, k, v)

    def __getitem__(self, k):
        return self._w[k]

    def __setitem__(self, k, v):
        self._w[k] = v

    def __contains__(self, k):
        return k in self._w


@dataclass
class Edit:
    """What a mutation operator does to a step list; see :data:`OPERATORS`."""

    op: str
    steps: tuple[str, ...]
    arg: Any = None


def _noop(_w):
    return lambda *a, **k: None


def _rename(new: str):
    def make(w):
        f = getattr(w, new)
        if new.startswith("raw_"):  # raw locks never sleep: they take no might_sleep() site
            return lambda *a, where=None, **k: f(*a, **k)
        return f
    return make


def _gfp(new: str):
    def make(w):
        def alloc(gfp, *a, **k):
            return w.kmalloc(new, *a, **k)
        return alloc
    return make


def _sub_c(spec: LineSpec, fn: Callable[[str], str]) -> LineSpec:
    return LineSpec(tuple(fn(c) for c in spec.c), spec.fn, None, None, False, None)


def _comment_call(call: str) -> Callable[[str], str]:
    def f(c: str) -> str:
        return f"/* {c.strip()}  <- dropped */" if f"{call}(" in c else c
    return f


SWAPS = {
    "raw_to_sleeping": {"raw_spin_lock": "spin_lock", "raw_spin_unlock": "spin_unlock"},
    "sleeping_to_raw": {"spin_lock": "raw_spin_lock", "spin_unlock": "raw_spin_unlock"},
}


def _apply(steps: list[_Step], edits: list[Edit]) -> list[_Step]:
    """The mutated step list; every step is re-wrapped (jump targets remapped, calls replaced)."""
    steps = list(steps)
    names = [s.name for s in steps]
    remap: dict[str, str] = {}
    calls: dict[str, dict[str, Callable]] = {}
    texts: dict[str, LineSpec] = {}
    for e in edits:
        for nm in e.steps:
            if nm not in names:
                raise KvmlabError(f"mutation {e.op}: no step {nm!r} (steps: {', '.join(names)})")
        if e.op in ("drop_lock", "drop_unlock", "drop_call"):
            (nm,) = e.steps
            calls.setdefault(nm, {})[e.arg] = _noop
            texts[nm] = _sub_c(texts.get(nm, steps[names.index(nm)].spec), _comment_call(e.arg))
        elif e.op in SWAPS:
            for nm in e.steps:
                spec = texts.get(nm, steps[names.index(nm)].spec)
                for old, new in SWAPS[e.op].items():
                    calls.setdefault(nm, {})[old] = _rename(new)
                    calls[nm].setdefault(old + "_irq", _rename(new + "_irq"))
                texts[nm] = _sub_c(spec, lambda c, m=SWAPS[e.op]: _swap_words(c, m))
        elif e.op == "gfp":
            (nm,) = e.steps
            new = e.arg
            old = "GFP_KERNEL" if new == "GFP_ATOMIC" else "GFP_ATOMIC"
            calls.setdefault(nm, {}).update({"kmalloc": _gfp(new), "kzalloc": _gfp(new)})
            texts[nm] = _sub_c(texts.get(nm, steps[names.index(nm)].spec), lambda c, o=old, n=new: c.replace(o, n))
        elif e.op == "swap_lines":
            a, b = e.steps
            i, j = names.index(a), names.index(b)
            if j != i + 1:
                raise KvmlabError(f"swap_lines: {a} and {b} are not adjacent")
            steps[i], steps[j] = steps[j], steps[i]
            names[i], names[j] = names[j], names[i]
            remap[a] = b  # a jump to the first of the two lines lands on the new first line
        elif e.op in ("drop_line", "drop_recheck"):
            (nm,) = e.steps
            i = names.index(nm)
            remap[nm] = names[i + 1] if i + 1 < len(names) else DONE
            del steps[i], names[i]
        elif e.op == "move_line":
            (nm,) = e.steps
            where, other = e.arg  # ("after"|"before", step)
            i = names.index(nm)  # jumps to the moved line follow it
            st = steps.pop(i)
            names.pop(i)
            k = names.index(other) + (1 if where == "after" else 0)
            steps.insert(k, st)
            names.insert(k, nm)
        elif e.op == "dup_line":
            (nm,) = e.steps
            i = names.index(nm)
            st = steps[i]
            steps.insert(i + 1, _Step(nm + "_again", st.func, st.spec))
            names.insert(i + 1, nm + "_again")
        else:
            raise KvmlabError(f"unknown mutation operator {e.op!r}")
    # a chain of remaps (dropped line -> dropped line) resolves to a surviving step
    for k in list(remap):
        seen = set()
        while remap[k] in remap and remap[k] not in seen and remap[k] != DONE:
            seen.add(remap[k])
            remap[k] = remap[remap[k]]
    out = []
    for s in steps:
        spec = texts.get(s.name, s.spec)
        # local/under promises are the real code's; a mutant makes none (the search stays sound)
        spec = LineSpec(spec.c, spec.fn, None, None, False, None)
        out.append(_Step(s.name, _wrap(s.func, remap, calls.get(s.name, {})), spec))
    return out


def _swap_words(c: str, m: dict[str, str]) -> str:
    import re
    return re.sub(r"\b(" + "|".join(sorted(m, key=len, reverse=True)) + r")(?=(_irq)?\()",
                  lambda x: m[x.group(1)], c)


def _wrap(func: Callable, remap: dict[str, str], calls: dict[str, Callable]) -> Callable:
    def step(self, w, t):
        # Blocked and Stay raised by the original step pass through unchanged
        r = func(self, _World(w, calls) if calls else w, t)
        return remap.get(r, r) if isinstance(r, str) else r
    return step


def _to_class(base: type[Program], steps: list[_Step], name: str) -> type[Program]:
    ns: dict[str, Any] = {"__doc__": f"{base.__name__}, mutated ({name})."}
    for s in steps:
        s.func._kvmlab_line = s.spec
        ns[s.name] = s.func
    cls = type(f"{base.__name__}_{name}", (base,), ns)
    cls._order = tuple(s.name for s in steps)
    cls._specs = {**base._specs, **{s.name: s.spec for s in steps}}
    return cls


def mutate_program(base: type[Program], edits: list[Edit], name: str = "mutant") -> type[Program]:
    """A subclass of ``base`` with ``edits`` applied (C lines changed accordingly)."""
    return _to_class(base, _apply(_steps_of(base), edits), name)


def mutate_steps(steps: dict, edits: list[Edit]) -> dict:
    """An ordered step dict (e.g. a tdp_root_put put_root) with ``edits`` applied."""
    out = {}
    for s in _apply(_steps_of_dict(steps), edits):
        s.func._kvmlab_line = s.spec
        out[s.name] = s.func
    return out


# ---------------------------------------------------------------------------------------
# Operators, drills
# ---------------------------------------------------------------------------------------

OPERATORS = {
    "drop_lock": "delete a lock acquisition",
    "drop_unlock": "delete a lock release",
    "drop_call": "delete one call (a free, a barrier-like ordering call, an RCU marker)",
    "drop_line": "delete a C line (jumps to it go to the next line)",
    "drop_recheck": "delete a re-check of a condition",
    "swap_lines": "swap two adjacent C lines",
    "move_line": "move a C line before or after another one (e.g. a free under or out of a lock)",
    "dup_line": "run a C line twice",
    "raw_to_sleeping": "make a raw_spinlock_t a spinlock_t (a sleeping lock on PREEMPT_RT)",
    "sleeping_to_raw": "make a spinlock_t a raw_spinlock_t (never sleeps)",
    "gfp": "swap GFP_ATOMIC and GFP_KERNEL in an allocation",
}


@dataclass(frozen=True)
class Drill:
    """One mutant: the real code (``model``/``base`` variant, program ``role``) plus edits."""

    id: str
    chapter: int
    model: str
    base: str
    role: str
    edits: tuple[Edit, ...]
    expect: tuple[str, ...]  # properties the explorer must find broken; () = every property holds
    config: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    @property
    def operator(self) -> str:
        return self.edits[0].op

    def variant(self) -> Variant:
        """The mutant as a variant of its model."""
        from . import api
        mcls = api.model(self.model)
        base = mcls.variant(self.base)
        if self.role.startswith("put:"):  # tdp_root_put: mutate the put_root subroutine
            from .models import tdp_root_put as tdp
            put = tdp.PUTS[self.role[4:]]
            edits = list(self.edits)
            flags = {"put": lambda shared: mutate_steps(put(shared), edits)}
            return base.derive(self.id, title(self), flags=flags, buggy=bool(self.expect))
        prog = base.programs[self.role]
        mut = mutate_program(prog, list(self.edits), self.id.replace("-", "_"))
        return base.derive(self.id, title(self), programs={self.role: mut}, buggy=bool(self.expect))

    def listings(self) -> tuple[list[str], list[str]]:
        """C lines of the real and the mutated code (one per line, with the C function)."""
        from . import api
        mcls = api.model(self.model)
        base = mcls.variant(self.base)
        if self.role.startswith("put:"):
            from .models import tdp_root_put as tdp
            steps = tdp.PUTS[self.role[4:]](False)
            real = _steps_of_dict(steps)
            mut = _apply(real, list(self.edits))
            fn = tdp.FN
        else:
            prog = base.programs[self.role]
            real = _steps_of(prog)
            mut = _apply(real, list(self.edits))
            fn = prog.fn
        return _listing(real, fn), _listing(mut, fn)

    def diff(self) -> list[str]:
        """A unified diff (without headers) of the real code against the mutant."""
        a, b = self.listings()
        out = list(difflib.unified_diff(a, b, lineterm="", n=2))
        return [x for x in out if not x.startswith(("---", "+++"))]


def _listing(steps: list[_Step], fn: str) -> list[str]:
    out, cur = [], None
    for s in steps:
        f = s.spec.fn or fn
        if f != cur:
            out.append(f"{f}():")
            cur = f
        out.extend("    " + c.strip() for c in s.spec.c)
    return out


@dataclass
class Verdict:
    """The explorer's verdict on a drill, with the bounds it depends on."""

    drill: str
    broken: tuple[str, ...]
    first: str | None
    states: int
    complete: bool
    fairness: str
    bounds: str
    schedule: list[str]
    message: str | None

    @property
    def holds(self) -> bool:
        return self.complete and not self.broken

    def to_json(self) -> dict:
        return {"drill": self.drill, "holds": self.holds, "broken": list(self.broken),
                "first": self.first, "states": self.states, "complete": self.complete,
                "fairness": self.fairness, "bounds": self.bounds, "schedule": self.schedule,
                "message": self.message}


def _bounds(d: Drill, sysobj) -> str:
    parts = [f"{k}={'y' if v else 'n'}" for k, v in sysobj.config.items()]
    parts += [f"{k}={v}" for k, v in sysobj.params.items()]
    return ", ".join(parts) or "defaults"


def verdict(d: Drill, max_states: int = 200_000) -> Verdict:
    """Explore every interleaving of the mutant (in the drill's configuration)."""
    from . import api
    from .engine import Explorer
    sysobj = api.load(d.model, d.variant(), d.config, d.params)
    r = Explorer(sysobj, max_states=max_states).run()
    broken = tuple(v.property for v in r.violations)
    first = _shortest(r.violations)
    return Verdict(d.id, broken, first.property if first else None, r.states, r.complete, r.fairness,
                   _bounds(d, sysobj), list(first.schedule) if first else [],
                   first.message if first else None)


def _shortest(violations):
    return min(violations, key=lambda v: len(v.schedule), default=None)


# ---------------------------------------------------------------------------------------
# The drills, chapter by chapter
# ---------------------------------------------------------------------------------------

def _d(chapter, id, model, base, role, edits, expect, config=None, params=None):
    return Drill(f"ch{chapter}-{id}", chapter, model, base, role, tuple(edits), tuple(expect),
                 config or {}, params or {})


E = Edit
LU = ("lost_update", "spinlock", "worker")
SHR = ("kvm_lock_shrink", "spinlock_kvm_lock", "shrinker")
WAKE = ("apf_wake", "recheck", "waker")
HS_F = ("apf_handshake", "schedule_wait", "fault")
HS_R = ("apf_handshake", "schedule_wait", "ready")
RCU_U = ("rcu_watch", "watching", "updater")
RCU_R = ("rcu_watch", "watching", "reader")
RCU_I = ("rcu_watch", "irq_enter", "reader")
ZD_V = ("zone_device", "refcounted", "vcpu")
ZD_T = ("zone_device", "refcounted", "teardown")
FP_C = ("fast_pf", "clear_xchg", "host")
FP_V = ("fast_pf", "clear_xchg", "vcpu")
FP_W = ("fast_pf", "flush_if_lockless_writable", "host")
TDP = ("tdp_root_put", "merged", "put:merged")
TDP_P = {"readers": 1, "writer": 0}

DRILLS: list[Drill] = [
    # chapter 0: counter++ under spin_lock(&lock)
    _d(0, "drop-lock", *LU, [E("drop_lock", ("lock",), "spin_lock")], ["no_lost_update"]),
    _d(0, "drop-unlock", *LU, [E("drop_unlock", ("unlock",), "spin_unlock")], ["no_deadlock"]),
    _d(0, "load-before-lock", *LU, [E("swap_lines", ("lock", "load"))], ["no_lost_update"]),
    _d(0, "store-before-load", *LU, [E("swap_lines", ("load", "store"))], ["no_lost_update"]),
    _d(0, "raw-lock-rt", *LU, [E("sleeping_to_raw", ("lock", "unlock"))], [],
       config={"PREEMPT_RT": True}),
    _d(0, "lock-twice", *LU, [E("dup_line", ("lock",))], ["no_deadlock"]),
    _d(0, "drop-load", *LU, [E("drop_line", ("load",))], ["no_lost_update"]),
    _d(0, "store-twice", *LU, [E("dup_line", ("store",))], []),
    # chapter 1: raw vs sleeping locks on PREEMPT_RT
    _d(1, "raw-kvm-lock", *SHR, [E("sleeping_to_raw", ("lock", "unlock"))], ["no_sleep_in_atomic"]),
    _d(1, "raw-mmu-lock", *SHR, [E("sleeping_to_raw", ("mmu_lock", "mmu_unlock"))], []),
    _d(1, "fix-by-sleeping-lock", "kvm_lock_shrink", "raw_kvm_lock", "shrinker",
       [E("raw_to_sleeping", ("lock", "unlock"))], []),
    _d(1, "drop-mmu-unlock", *SHR, [E("drop_unlock", ("mmu_unlock",), "spin_unlock")], ["no_deadlock"]),
    _d(1, "atomic-outside-lock", *WAKE, [E("gfp", ("alloc",), "GFP_ATOMIC")], []),
    _d(1, "alloc-under-lock", *WAKE, [E("drop_unlock", ("unlock_for_alloc",), "raw_spin_unlock")],
       ["no_sleep_in_atomic"]),
    _d(1, "kernel-alloc-original", "apf_wake", "original", "waker", [E("gfp", ("alloc",), "GFP_KERNEL")],
       ["no_sleep_in_atomic"]),
    _d(1, "wake-before-unhash", *WAKE, [E("swap_lines", ("wake_one", "swake"))], ["no_lost_wakeup"]),
    _d(1, "drop-kfree", *WAKE, [E("drop_call", ("ret",), "kfree")], ["no_leak"]),
    _d(1, "drop-recheck", *WAKE, [E("drop_recheck", ("retry",))], ["no_duplicate_token"]),
    # chapter 2: the wait/wake handshake
    _d(2, "check-then-prepare", *HS_F, [E("swap_lines", ("prepare", "check"))], ["no_lost_wakeup"]),
    _d(2, "drop-check", *HS_F, [E("drop_recheck", ("check",))], ["no_lost_wakeup"]),
    _d(2, "kick-before-unhash", *HS_R, [E("swap_lines", ("wake_one", "kick"))], ["no_lost_wakeup"]),
    _d(2, "ready-without-lock", *HS_R, [E("drop_lock", ("lock",), "raw_spin_lock")], ["no_bad_unlock"]),
    _d(2, "ready-gfp-kernel", *HS_R, [E("gfp", ("alloc",), "GFP_KERNEL")], ["no_sleep_in_atomic"],
       params={"ready_first": 1}),
    _d(2, "drop-dummy-kfree", *HS_F, [E("drop_call", ("kfree_dummy",), "kfree")], ["no_leak"],
       params={"ready_first": 1}),
    _d(2, "drop-add-dummy", *HS_R, [E("drop_line", ("add_dummy",))], ["no_lost_wakeup"],
       params={"ready_first": 1}),
    _d(2, "add-after-unlock", *HS_F, [E("swap_lines", ("add", "unlock"))], ["no_duplicate_token"]),
    # chapter 3: RCU
    _d(3, "drop-sync", *RCU_U, [E("drop_call", ("sync",), "synchronize_rcu")], ["no_use_after_free"]),
    _d(3, "free-before-sync", *RCU_U, [E("swap_lines", ("sync", "free"))], ["no_use_after_free"]),
    _d(3, "sync-before-publish", *RCU_U, [E("swap_lines", ("publish", "sync"))], ["no_use_after_free"]),
    _d(3, "sync-twice", *RCU_U, [E("dup_line", ("sync",))], []),
    _d(3, "deref-before-lock", *RCU_R, [E("swap_lines", ("lock", "deref"))], ["no_use_after_free"]),
    _d(3, "use-after-unlock", *RCU_R, [E("swap_lines", ("use", "unlock"))], ["no_use_after_free"]),
    _d(3, "drop-irq-enter", *RCU_I, [E("drop_call", ("irq_enter",), "rcu_irq_enter")],
       ["rcu_used_while_watching"]),
    _d(3, "lock-before-irq-enter", *RCU_I, [E("swap_lines", ("irq_enter", "lock"))],
       ["rcu_used_while_watching"]),
    _d(3, "irq-exit-before-unlock", *RCU_I, [E("swap_lines", ("unlock", "irq_exit"))],
       ["rcu_used_while_watching"]),
    # chapter 4: ZONE_DEVICE
    _d(4, "drop-release", *ZD_V, [E("drop_line", ("release",))], ["teardown_completes"]),
    _d(4, "release-twice", *ZD_V, [E("dup_line", ("release",))], ["no_unpinned_check"]),
    _d(4, "drop-retry", *ZD_V, [E("drop_recheck", ("retry",))], ["no_stale_spte"]),
    _d(4, "release-before-map", *ZD_V, [E("move_line", ("release",), ("before", "lock"))],
       []),
    _d(4, "fault-without-mmu-lock", *ZD_V, [E("drop_lock", ("lock",), "spin_lock")], ["no_bad_unlock"]),
    _d(4, "seq-after-ptl", *ZD_V, [E("swap_lines", ("read_seq", "ptl_lock"))], []),
    _d(4, "drop-wait", *ZD_T, [E("drop_line", ("wait",))], ["memmap_freed_after_drain"]),
    _d(4, "drop-kill", *ZD_T, [E("drop_line", ("kill",))], ["teardown_completes"]),
    # chapter 5: fast page faults
    _d(5, "always-fast-clear", *FP_C, [E("drop_line", ("if_volatile",))], ["no_lost_dirty_bit"]),
    _d(5, "drop-dirty", *FP_C, [E("drop_line", ("dirty",))], ["no_lost_dirty_bit"]),
    _d(5, "swap-accessed-dirty", *FP_C, [E("swap_lines", ("accessed", "dirty"))], []),
    _d(5, "mark-before-cmpxchg", *FP_V, [E("swap_lines", ("cmpxchg", "mark"))], []),
    _d(5, "drop-flush-check", *FP_W, [E("drop_line", ("upd_flush",))], ["no_stale_writable_tlb"]),
    _d(5, "wrprot-always-fast", *FP_W, [E("drop_line", ("upd_if_volatile",))], ["no_lost_dirty_bit"]),
    _d(5, "wrprot-drop-dirty", *FP_W, [E("drop_line", ("upd_dirty",))], ["no_lost_dirty_bit"]),
    _d(5, "dirty-twice", *FP_C, [E("dup_line", ("dirty",))], []),
    _d(5, "wrprot-swap-accessed-dirty", *FP_W, [E("swap_lines", ("upd_accessed", "upd_dirty"))], []),
    # chapter 6: TDP MMU root refcounting (kvm_tdp_mmu_put_root() as merged in 8351779ce65f)
    _d(6, "drop-mark-invalid", *TDP, [E("drop_line", ("put_xchg",))], ["zapped_at_most_once"],
       params=TDP_P),
    _d(6, "drop-set1", *TDP, [E("drop_line", ("put_set1",))], ["refcount_ok"], params=TDP_P),
    _d(6, "drop-dec2", *TDP, [E("drop_line", ("put_dec2",))], ["no_free_while_referenced"],
       params=TDP_P),
    _d(6, "drop-pages-lock", *TDP, [E("drop_lock", ("put_lock",), "spin_lock")], ["no_bad_unlock"],
       params=TDP_P),
    _d(6, "free-before-unlink", *TDP, [E("move_line", ("put_call_rcu",), ("before", "put_lock"))],
       ["no_use_after_free"], params=TDP_P),
    _d(6, "drop-list-del", *TDP, [E("drop_line", ("put_del",))], ["no_use_after_free"], params=TDP_P),
    _d(6, "dec-twice", *TDP, [E("dup_line", ("put_dec",))], ["refcount_ok"], params=TDP_P),
    _d(6, "v3-drop-invalid-check", "tdp_root_put", "v3", "put:v3", [E("drop_recheck", ("put_check",))],
       ["zapped_at_most_once", "terminates"], params=TDP_P),
    _d(6, "del-after-unlock", *TDP, [E("swap_lines", ("put_del", "put_unlock"))], [], params=TDP_P),
]


# ---------------------------------------------------------------------------------------
# Lookup, prediction options, quiz
# ---------------------------------------------------------------------------------------

KERNEL_PROPERTIES = {
    "no_deadlock": "no thread waits forever",
    "no_bad_unlock": "nobody releases a lock it does not hold (lockdep)",
    "no_lock_leak": "no lock is still held when a task finishes",
    "no_sleep_in_atomic": "nothing that may sleep runs in atomic context (might_sleep())",
    "no_use_after_free": "no access to freed memory (KASAN)",
    "refcount_ok": "no refcount_t: warning",
    "terminates": "every thread finishes (no endless loop)",
}


def chapter_of(raw) -> int:
    """0..6 from ``3``, ``"3"`` or ``"ch3"``; a clear error otherwise."""
    s = str(raw).strip().lower()
    s = s[2:] if s.startswith("ch") else s
    if not s.isdigit() or int(s) not in {d.chapter for d in DRILLS}:
        known = ", ".join(f"ch{c}" for c in chapters())
        raise KvmlabError(f"chapter {raw!r}: no drills (known: {known})")
    return int(s)


def chapters() -> list[int]:
    return sorted({d.chapter for d in DRILLS})


def for_chapter(chapter) -> list[Drill]:
    c = chapter_of(chapter)
    return [d for d in DRILLS if d.chapter == c]


def get(drill_id: str) -> Drill:
    for d in DRILLS:
        if d.id == drill_id:
            return d
    raise KvmlabError(f"unknown drill {drill_id!r}")


def options(d: Drill) -> dict[str, str]:
    """Property -> description: what a reader may predict breaks (the same for a whole chapter)."""
    from . import api
    out: dict[str, str] = {}
    for other in [x for x in DRILLS if x.chapter == d.chapter]:
        m = api.model(other.model)
        out.update(m.properties)
        out.setdefault(m.stuck_property, KERNEL_PROPERTIES.get(m.stuck_property, "no thread waits forever"))
        for p in other.expect:
            out.setdefault(p, KERNEL_PROPERTIES.get(p, p))
    for p in ("no_bad_unlock", "no_lock_leak", "terminates"):
        out.setdefault(p, KERNEL_PROPERTIES[p])
    return dict(sorted(out.items()))


def title(d: Drill) -> str:
    """One line: the operator and the lines it touches."""
    e = d.edits[0]
    what = {"drop_lock": "drop the lock", "drop_unlock": "drop the unlock", "drop_call": f"drop {e.arg}()",
            "drop_line": "drop a line", "drop_recheck": "drop a re-check", "swap_lines": "swap two lines",
            "move_line": "move a line", "dup_line": "run a line twice",
            "raw_to_sleeping": "raw_spinlock_t -> spinlock_t", "sleeping_to_raw": "spinlock_t -> raw_spinlock_t",
            "gfp": f"allocate with {e.arg}"}[e.op]
    return f"{what} ({e.op}: {', '.join(e.steps)})"


def describe(d: Drill) -> str:
    """Where the mutant lives: model, real variant, program, configuration."""
    from . import api
    mcls = api.model(d.model)
    base = mcls.variant(d.base)
    bits = [f"{k}={'y' if v else 'n'}" for k, v in d.config.items()] + [f"{k}={v}" for k, v in d.params.items()]
    where = f" with {', '.join(bits)}" if bits else ""
    role = d.role[4:] + " put_root" if d.role.startswith("put:") else d.role
    commit = f", {base.commit}" if base.commit else ""
    return f"{mcls.name} ({base.name}{commit}): {base.desc}. Mutated: the {role} program{where}."


def quiz(chapter, seed: int, n: int = 5) -> dict:
    """A per-student set of ``n`` drills of ``chapter`` (shuffled by ``seed``) with its answer key."""
    ds = for_chapter(chapter)
    if not 1 <= n <= len(ds):
        raise KvmlabError(f"--count {n}: chapter {chapter_of(chapter)} has {len(ds)} drills")
    pick = random.Random(seed).sample(ds, n)
    qs = []
    for i, d in enumerate(pick, 1):
        v = verdict(d)
        qs.append({"n": i, "drill": d.id, "title": title(d), "where": describe(d), "diff": d.diff(),
                   "options": ["holds"] + list(options(d)), "answer": v.to_json()})
    return {"chapter": chapter_of(chapter), "seed": seed, "questions": qs}


def quiz_markdown(q: dict) -> str:
    out = [f"# Predict the verdict: chapter {q['chapter']} (set {q['seed']})", "",
           "For each change to the real kernel code, predict: do all properties still hold, or does "
           "it break, and which property? (Any one broken property counts.)", ""]
    for x in q["questions"]:
        out += [f"## Question {x['n']}: {x['title']}", "", x["where"], "", "```diff", *x["diff"], "```", "",
                "Options: " + ", ".join(f"`{o}`" for o in x["options"]), ""]
    out += ["---", "", "## Answer key", ""]
    for x in q["questions"]:
        a = x["answer"]
        if a["holds"]:
            v = f"holds ({a['states']} states; bounds: {a['bounds']}; fairness {a['fairness']})"
        elif a["broken"]:
            v = (f"breaks {', '.join(a['broken'])}; shortest counterexample ({a['first']}): "
                 f"{len(a['schedule'])} steps, schedule {','.join(a['schedule'])} ({a['message']}); "
                 f"bounds: {a['bounds']}")
        else:
            v = f"search stopped at a bound after {a['states']} states: no verdict"
        out.append(f"{x['n']}. `{x['drill']}`: {v}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------
# HTML for the book: diff, prediction, reveal (verdict + stepper)
# ---------------------------------------------------------------------------------------

DRILL_JS = """
(function(){
  function setup(sec){
    if (sec.dataset.ready) return; sec.dataset.ready = "1";
    var ans = JSON.parse(sec.getAttribute("data-answer"));
    var btn = sec.querySelector(".kd-reveal"), out = sec.querySelector(".kd-answer");
    var fb = sec.querySelector(".kd-feedback");
    sec.querySelectorAll("input[type=radio]").forEach(function(r){
      r.addEventListener("change", function(){ btn.disabled = false; });
    });
    btn.addEventListener("click", function(){
      var pick = sec.querySelector("input[type=radio]:checked");
      if (!pick) return;
      var p = pick.value, right = p === "holds" ? ans.holds : ans.broken.indexOf(p) >= 0;
      fb.textContent = (right ? "Right: " : "Not this time: ") + (p === "holds" ? "you predicted it holds." :
        "you predicted it breaks " + p + ".");
      fb.className = "kd-feedback " + (right ? "kd-right" : "kd-wrong");
      out.hidden = false; btn.disabled = true;
      sec.querySelectorAll("input[type=radio]").forEach(function(r){ r.disabled = true; });
    });
  }
  document.querySelectorAll(".kvmlab-drill").forEach(setup);
})();
"""

DRILL_CSS = """
.kvmlab-drill{border:1px solid var(--pst-color-border,#ccc);border-radius:6px;padding:.6em 1em;margin:1.2em 0}
.kvmlab-drill pre.kd-diff{font-size:.85em;overflow-x:auto;padding:.5em;background:var(--pst-color-surface,#f6f8fa)}
.kvmlab-drill .kd-add{color:#116329;background:rgba(46,160,67,.15);display:block}
.kvmlab-drill .kd-del{color:#82071e;background:rgba(248,81,73,.15);display:block}
.kvmlab-drill .kd-hunk{color:#57606a;display:block}
.kvmlab-drill button.kd-reveal:disabled{opacity:1;color:#57606a;background:#eaeef2;cursor:not-allowed}
.kvmlab-drill fieldset{border:0;padding:0;margin:.4em 0}
.kvmlab-drill label{display:block;margin:.15em 0;cursor:pointer}
.kvmlab-drill label code{color:inherit;background:rgba(127,127,127,.18);padding:0 .2em;border-radius:3px}
.kvmlab-drill .kd-right{color:#116329;font-weight:bold}
.kvmlab-drill .kd-wrong{color:#b3261e;font-weight:bold}
html[data-theme=dark] .kvmlab-drill .kd-add{color:#7ee787}
html[data-theme=dark] .kvmlab-drill .kd-del{color:#ffa198}
html[data-theme=dark] .kvmlab-drill .kd-right{color:#7ee787}
html[data-theme=dark] .kvmlab-drill .kd-wrong{color:#ffa198}
html[data-theme=dark] .kvmlab-drill .kd-hunk{color:#9198a1}
html[data-theme=dark] .kvmlab-drill button.kd-reveal:disabled{color:#9198a1;background:#21262d}
"""


def _diff_html(lines: list[str]) -> str:
    out = []
    for x in lines:
        cls = {"+": "kd-add", "-": "kd-del", "@": "kd-hunk"}.get(x[:1])
        esc = html.escape(x)
        out.append(f'<span class="{cls}">{esc}</span>' if cls else esc + "\n")
    return "".join(out)


def verdict_text(v: Verdict) -> str:
    if v.holds:
        return (f"All properties hold: {v.states} states explored, every interleaving "
                f"(bounds: {v.bounds}; fairness {v.fairness}).")
    if v.broken:
        return (f"Breaks {', '.join(v.broken)} ({v.states} states; bounds: {v.bounds}; fairness {v.fairness}). "
                f"Shortest counterexample ({v.first}): {len(v.schedule)} steps.")
    return f"No verdict: the search stopped at a bound after {v.states} states ({v.bounds})."


def drill_html(d: Drill, n: int | None = None) -> str:
    """One drill as self-contained HTML (no network; the stepper is the book's player)."""
    from .widgets import Stepper
    v = verdict(d)
    if not v.complete:
        raise KvmlabError(f"drill {d.id}: the search did not finish; a drill needs a complete verdict")
    ok = set(d.expect) <= set(v.broken) if d.expect else v.holds
    if not ok:
        raise KvmlabError(f"drill {d.id}: states {list(d.expect) or 'holds'}, but the explorer found "
                          f"{list(v.broken) or 'holds'}")
    goal = (f"Reach the bad state: {v.first}." if v.first else "Try to break it: every property holds.")
    st = Stepper(d.model, d.variant(), config=d.config, params=d.params, goal=goal,
                 goal_property=v.first, id=f"drill-{d.id}")
    answer = {"holds": v.holds, "broken": list(v.broken)}
    opts = options(d)
    name = f"kd-{html.escape(d.id)}"
    radios = [f'<label><input type="radio" name="{name}" value="holds"> all properties hold</label>']
    radios += [f'<label title="{html.escape(desc)}"><input type="radio" name="{name}" value="{html.escape(p)}"> '
               f'breaks <code>{html.escape(p)}</code>: {html.escape(desc)}</label>' for p, desc in opts.items()]
    head = f"Drill {n}: " if n is not None else ""
    msg = f"<p>The explorer's shortest counterexample ends with: <em>{html.escape(v.message)}</em></p>" \
        if v.message else ""
    return (
        f'<section class="kvmlab-drill" id="drill-{html.escape(d.id)}" data-drill="{html.escape(d.id)}" '
        f"data-answer='{html.escape(json.dumps(answer), quote=True)}'>"
        f"<h3>{head}{html.escape(title(d))}</h3>"
        f"<p>{html.escape(describe(d))}</p>"
        f'<pre class="kd-diff">{_diff_html(d.diff())}</pre>'
        f'<fieldset><legend>Your prediction:</legend>{"".join(radios)}</fieldset>'
        f'<button type="button" class="kd-reveal" disabled>Reveal the explorer\'s verdict</button>'
        f'<div class="kd-answer" hidden><p class="kd-feedback"></p>'
        f'<p class="kd-verdict"><strong>{html.escape(verdict_text(v))}</strong></p>{msg}'
        f'{st.to_html()}</div></section>'
    )


class DrillSet:
    """A chapter's drills for a notebook or a book page (``text/html``)."""

    def __init__(self, chapter):
        self.drills = for_chapter(chapter)

    def _repr_html_(self) -> str:
        parts = [f"<style>{DRILL_CSS}</style>"]
        parts += [drill_html(d, i) for i, d in enumerate(self.drills, 1)]
        parts.append(f"<script>{DRILL_JS}</script>")
        return "\n".join(parts)


def show(chapter) -> DrillSet:
    """Display a chapter's drills: ``kvmlab.drills.show(2)``."""
    return DrillSet(chapter)
