#!/usr/bin/env python3
"""Mutation testing of the engine, the kernel library and the stepper export.

Each mutant is ``(id, file, exact old text, new text, description)``: the old
text must occur exactly once in the file (text, not line numbers, so the list
survives unrelated edits). For each mutant the script copies ``src/`` to a
temporary directory, applies the one change there, and runs a fast subset of
the tests against the copy (``PYTHONPATH``), ``-x``, with a time limit. A
mutant is *killed* when the tests fail (or time out), *survived* when they
pass. The unmutated copy must pass first.

    .venv/bin/python tools/mutants.py                 # all mutants, prints the table and the score
    .venv/bin/python tools/mutants.py --list          # the mutants, without running anything
    .venv/bin/python tools/mutants.py --only M5 F3    # some of them
    .venv/bin/python tools/mutants.py --min-score 90  # exit 1 below 90 % killed

Exit codes: 0 done (and the score reached ``--min-score``), 1 below it, 2 bad
input (an unknown id, a mutant whose old text is missing or not unique, a
failing baseline). Documentation: tools/MUTANTS.md.
"""

# ruff: noqa: E501  (the mutant table quotes source lines verbatim)
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"

# The tests the mutants must fail: fast files first, so that -x stops early.
TESTS = [
    "tests/test_kernel.py", "tests/test_engine.py", "tests/test_reduction.py", "tests/test_widgets.py",
    "tests/test_lab.py", "tests/test_cli.py", "tests/test_oracle.py", "tests/test_core.py",
]
PYTEST_ARGS = ["-x", "-q", "-p", "no:cacheprovider", "-m", "not slow and not browser and not book and not wide"]

EX = "kvmlab/engine/explorer.py"
PK = "kvmlab/engine/packed.py"
WO = "kvmlab/engine/world.py"
K = "kvmlab/kernel/"
XP = "kvmlab/export.py"
GR = "kvmlab/engine/graph.py"
SE = "kvmlab/engine/search.py"
CC = "kvmlab/engine/ccore.py"

MUTANTS: list[tuple[str, str, str, str, str]] = [
    # -- the review's eight (quality.md 1.1) ------------------------------------------------------
    ("M1", K + "locks.py",
     "        self._spin_or_take(name)\n        self.preempt_disable()\n\n    def raw_spin_unlock(self, name: str) -> None:\n"
     "        if self._release(name):\n            self.preempt_enable()\n",
     "        self._spin_or_take(name)\n\n    def raw_spin_unlock(self, name: str) -> None:\n"
     "        self._release(name)\n",
     "raw_spin_lock()/raw_spin_unlock() leave preemption alone"),
    ("M2", EX, "                for mv, s2, evs in items:", "                for mv, s2, evs in items[:1]:",
     "the explorer follows only the first outcome of a step with a choice"),
    ("M3", XP, "    props = dict(type(model).properties)\n", "    props = {}\n",
     "the stepper export lists only the properties some run violates"),
    ("M4", K + "__init__.py", '                        if th is not None and th["_irq"]:',
     "                        if False:", "a hardirq handler may start while its CPU has IRQs off"),
    ("M5", K + "rcu.py",
     '        if t["_rcu"] == 0 and "@rcu_cbs" in self.sh:\n            self._rcu_cbs_quiescent(self.tid)\n', "",
     "rcu_read_unlock() no longer reports a quiescent state to queued call_rcu() callbacks"),
    ("M6", SE, "                if always & ~taken == 0:", "                if True:",
     "weak fairness behaves like no fairness"),
    ("M7", WO, "            if has_inv and self._inv_broken(w):\n                return\n            snap",
     "            snap", "the reduction keeps merging after an invariant broke mid-transaction"),
    ("M8", PK, "        if not w._other:\n            self.inv_memo[gid] = r", "        self.inv_memo[gid] = r",
     "invariant results memoised on the global part even when they read thread state"),
    # -- explorer: BFS, parents, depth, counts, terminal states, bounds ----------------------------
    ("E1", EX, "                        parent.append(i)", "                        parent.append(i // 2)",
     "wrong parent pointers (counterexample paths)"),
    ("E2", EX, "                        depth.append(d1)", "                        depth.append(d1 - 1)",
     "depth of a new state off by one"),
    ("E3", EX, "            transitions += nouts", "            transitions += min(nouts, 1)",
     "transitions counted per state, not per outcome"),
    ("E4", EX, "                        if fatal:\n                            terminal.add(j)\n"
     "                        else:\n                            q.append((s2, j))",
     "                        if fatal:\n                            terminal.add(j)\n"
     "                        q.append((s2, j))", "the run goes on after a fatal report"),
    ("E5", EX, "                if blocked:\n                    prop, msg = model.stuck_message(w, blocked)",
     "                if blocked and len(blocked) > 1:\n                    prop, msg = model.stuck_message(w, blocked)",
     "a stuck state with one blocked thread is not reported"),
    ("E6", EX, "                for prop, msg in model.end_checks(w):",
     "                for prop, msg in (model.end_checks(w) if blocked else ()):",
     "end checks only where some thread is blocked (not when all finished)"),
    ("E7", SE, "        if prop in self.found:\n            return\n",
     "        if prop in self.found:\n            del self.found[prop]\n            self.order.remove(prop)\n",
     "keeps the last counterexample found instead of the first (shortest)"),
    ("E8", EX, 'sr.complete, sr.stopped = False, f"max states ({self.max_states})"',
     'sr.complete, sr.stopped = True, f"max states ({self.max_states})"',
     "a search stopped at max_states claims to be complete"),
    ("E9", EX, "        return self.complete and not self.violations",
     "        return not self.violations", "an incomplete search is ok"),
    ("E10", EX, "        return 0 if self.complete else 3", "        return 0",
     "exit code 0 for an incomplete search"),
    ("E11", EX, "                            for prop, msg in invariants(s2, model):",
     "                            for prop, msg in (invariants(s2, model) if d1 > 1 else ()):",
     "invariants not checked on the states one step from the start"),
    # -- fairness, SCCs, lassos, the terminates check -----------------------------------------------
    ("F1", SE, "            bad = 0\n            for v in comp:\n                bad |= enabled_mask[v]",
     "            bad = -1\n            for v in comp:\n                bad &= enabled_mask[v]",
     "strong fairness behaves like weak fairness"),
    ("F2", SE, "            rest = {v for v in comp if enabled_mask[v] & bad == 0}", "            rest = set()",
     "strong fairness: no Emerson-Lei refinement into sub-components"),
    ("F3", SE, "            if taken == 0:\n                continue", "            if taken == 0:\n                pass",
     "a single state without a self-loop counts as a cycle"),
    ("F4", SE, "                elif onstack[u]:", "                elif index[u] != -1:",
     "Tarjan: edges into finished components lower the low-link"),
    ("F5", SE, "    seg = path(cur, lambda v: v == entry)\n    moves += seg\n", "",
     "the lasso's loop does not return to its entry"),
    ("F6", EX, 'fairness=self.fairness if live else "none",', 'fairness="none",',
     "the verdict does not print the fairness it assumed"),
    ("F7", EX, "        self.liveness = True if liveness is None else liveness",
     "        self.liveness = bool(liveness)", "terminates not checked by default"),
    ("F8", SE, "                if always & ~taken == 0:\n                    return cs, taken",
     "                if always & taken == 0:\n                    return cs, taken",
     "weak fairness tests the wrong threads"),
    # -- packing and memo keys ------------------------------------------------------------------------
    ("P1", PK, "        mk = ((((s & MASK) << BITS) | own) << 6) | tid",
     "        mk = ((((s & MASK) << BITS) | own) << 6) | min(tid, 1)",
     "memo key: threads 1, 2, ... share their memo entries"),
    ("P2", PK, '        if touched and kind == "own":\n            kind = "dep"',
     '        if kind == "dep":\n            kind = "own"',
     "a step that read another thread is memoised as if it had not"),
    ("P3", PK, "            s |= self._t(tid, key[2 + tid]) << (BITS * (tid + 1))",
     "            s |= self._t(tid, key[2 + tid]) << (BITS * (tid + 1) - 2)", "packed thread parts overlap"),
    ("P4", PK, "            mk2 = (mk,) + tuple((s >> (BITS * (j + 1))) & MASK for j in deps)",
     "            mk2 = (mk,)", "dependent memo entries ignore the other threads' parts"),
    ("P5", EX, "                    items = [(mv, base | ng | (nt << shift), evs) for mv, ng, nt, evs in r]",
     "                    items = [(mv, base | ng | (nt << shift), evs) for mv, ng, nt, evs in r[:1]]",
     "a memoised step keeps only its first outcome"),
    ("P6", PK, "                if k != tid:\n                    out.append(-(k + 1))", "                pass",
     "read-set memo: reading another thread is not part of the key"),
    ("P7", PK, "                i = idx.get(k)\n                if i is not None:", "                i = idx.get(k)\n                if False:",
     "read-set memo: the shared fields a step read are not part of the key"),
    ("P8", PK, "            return self._fields(s & MASK, loc[1]).get(loc[2], ABSENT)", "            return ABSENT",
     "read-set memo: the object fields a step read are not part of the key"),
    ("P9", WO, '    def __getitem__(self, k):\n        self._rec_.add(("of", self._oid_, k))\n        return dict.__getitem__(self, k)',
     '    def __getitem__(self, k):\n        return dict.__getitem__(self, k)',
     "read-set memo: a read of one field of an object is not recorded"),
    ("P10", PK, "                    obd.append((o, (WRITES, fw)))", "                    obd.append((o, b))",
     "read-set memo: an object write is stored whole, with fields the step never read"),
    ("P11", WO, "        if rec is not None:\n            for loc in locs:\n                rec.add(loc)\n        return seen",
     "        return seen", "read-set memo: the reachability check of a private step records none of its reads"),
    ("C1", CC, "            if loc.__class__ is int:\n                v = sh[loc]", "            if loc.__class__ is int:\n                v = sh[0]",
     "compiled core: the value of a shared field in a global part is the first field's"),
    ("C2", CC, "        push_row(ng, changed)", "        pass",
     "compiled core: a global part made by a delta keeps its parent's values where the delta wrote"),
    # -- world: reduction promises, choices, encoding -----------------------------------------------------
    ("W1", WO, '            if kind == "local" and not broken:', "            if False:",
     "a local step's promise is not checked (shared fields, published objects, context, reports)"),
    ("W2", WO, "        if merge and not stayed and not w.may_be_interrupted(tid):", "        if merge and not stayed:",
     "steps are merged although a same-CPU handler may interrupt between them"),
    ("W12", WO, "                          or (w._seen_objs and w._seen_objs & self._reachable_in(snap[0], tid)))",
     "                          )",
     "a local step may write an object another thread can reach"),
    ("W13", WO, "w._th[tid] is None or self._visible(w, tid) != vis0",
     "w._th[tid] is None", "a local step may change what other threads see of its context"),
    ("W3", WO, '                kind = "other"\n                other_used = True',
     '                kind = "other"\n                other_used = False',
     "a transaction merges any number of non-mover steps"),
    ("W4", WO, "        if w.events:\n            return\n        prog",
     "        prog",
     "the reduction merges steps after a transition that reported"),
    ("W5", WO, "        if merge and not stayed and not w.may_be_interrupted(tid):",
     "        if merge and stayed and not w.may_be_interrupted(tid):",
     "the reduction never merges anything (no reduction at all)"),
    ("W6", WO, "                for alt in range(len(log[j][1]) - 1, 0, -1):",
     "                for alt in range(len(log[j][1]) - 1, 1, -1):",
     "a two-way choice explores only its first option"),
    ("W7", WO, "    if all(c[2] == 0 for c in log):", "    if True:",
     "the outcomes of a choice get the same schedule item"),
    ("W8", WO, "            ot = tuple(sorted((oid, tuple(dict.items(v))) for oid, v in self._od.items()))",
     "            ot = tuple((oid, tuple(dict.items(v))) for oid, v in self._od.items())",
     "the heap is encoded in insertion order (equal heaps differ)"),
    ("W9", WO, "        oid = OBJ_RANGE * (self.tid + 1) if self.tid >= 0 else 0", "        oid = 0",
     "object ids depend on which thread allocated first"),
    ("W10", WO, "        if k not in self:\n            raise ModelError(f\"assignment to undeclared local {k!r}\")",
     "        if False:\n            raise ModelError(f\"assignment to undeclared local {k!r}\")",
     "assignment to an undeclared local is accepted"),
    ("W11", WO, "        why = w.gate(tid)\n        if why is not None:\n            return w, why",
     "        why = None", "the world's gate (interrupts, handlers) is ignored"),
    # -- kernel primitives ----------------------------------------------------------------------------------
    ("K1", K + "__init__.py", '                if th is not None and th["_pc"] > 0:\n                    return f"interrupted by',
     '                if False:\n                    return f"interrupted by',
     "a task runs while a handler that interrupted it is in progress"),
    ("K2", K + "context.py", "        if not atomic and not irqs:", "        if not atomic:",
     "might_sleep() ignores disabled interrupts"),
    ("K3", K + "context.py",
     '        return self.rt or self.cfg("PREEMPTION") or self.cfg("PREEMPT_COUNT", True)', "        return True",
     "preempt count visible without CONFIG_PREEMPT_COUNT"),
    ("K4", K + "context.py", "        t[\"_pre\"] += HARDIRQ_OFFSET\n        t[\"_irq\"] = True",
     "        t[\"_pre\"] += 1\n        t[\"_irq\"] = True", "hardirq_enter() counts like preempt_disable()"),
    ("K5", K + "locks.py", "    def spin_lock(self, name: str, *, where: str = splat.WHERE_RT_SPINLOCK) -> None:\n        if self.rt:",
     "    def spin_lock(self, name: str, *, where: str = splat.WHERE_RT_SPINLOCK) -> None:\n        if False:",
     "spinlock_t spins on PREEMPT_RT (no sleeping lock)"),
    ("K6", K + "locks.py", "        if not nesting and wt >= _WAIT[SPIN]:\n            wt -= 1",
     "        if False:\n            wt -= 1", "lockdep: wait types do not close up without PROVE_RAW_LOCK_NESTING"),
    ("K7", K + "locks.py", "        if wt > ctx:", "        if wt >= ctx:", "lockdep: equal wait types reported"),
    ("K8", K + "locks.py", "        if self.in_hardirq():\n            return _WAIT[RAW]",
     "        if False:\n            return _WAIT[RAW]", "lockdep: a hard interrupt has the task's wait context"),
    ("K9", K + "locks.py", "        owner = self.sh[name]\n        if owner != self.tid:\n",
     "        owner = self.sh[name]\n        if owner is None:\n", "unlocking another CPU's lock is not reported"),
    ("K10", K + "locks.py", "    def on_finish(self, tid, t) -> None:\n        if t[\"_held\"]:",
     "    def on_finish(self, tid, t) -> None:\n        if False:", "a lock held at exit is not reported"),
    ("K11", K + "locks.py", "    def mutex_lock(self, name: str) -> None:\n        self._sleeping_lock(name, splat.WHERE_MUTEX)",
     "    def mutex_lock(self, name: str) -> None:\n        self._spin_or_take(name)", "mutex_lock() never sleeps"),
    ("K12", K + "rcu.py", "        left = [(i, n) for i, n in t[waiting_local] if qs.get(i, 0) == n]", "        left = []",
     "synchronize_rcu() does not wait for pre-existing readers"),
    ("K13", K + "rcu.py", "        waits = tuple(i for i in range(self.nthreads) if self._reader_watched(i))",
     "        waits = ()", "call_rcu() callbacks wait for no reader"),
    ("K14", K + "rcu.py", "        return th is not None and th[\"_rcu\"] > 0 and th[\"_watch\"] > 0",
     "        return th is not None and th[\"_rcu\"] > 0", "a reader in an extended quiescent state is waited for"),
    ("K15", K + "rcu.py", "            if all(self.thread(i) is None for i in waits):",
     "            if all(self.thread(i) is None for i in waits[:1]):",
     "a callback waits only for the first of its readers"),
    ("K16", K + "refcount.py", "        self.report(\"refcount_ok\", text, title=text.splitlines()[1])\n        self.put(ref, SATURATED)",
     "        self.report(\"refcount_ok\", text, title=text.splitlines()[1])", "refcount_t warnings do not saturate"),
    ("K17", K + "refcount.py", "        v = self.get(ref)\n        if v == SATURATED:\n            return False\n        if v <= 0:",
     "        v = self.get(ref)\n        if v <= 0:", "refcount_dec_and_test() on a saturated count warns again"),
    ("K18", K + "refcount.py", "        if v == 0:\n            self._refwarn(ref, \"addition_on_0\")\n            return",
     "        if v == 0:\n            self.put(ref, 1)\n            return", "refcount_inc() on 0 revives the object silently"),
    ("K19", K + "alloc.py", "self.choose(\"kmalloc\", (\"ok\", \"fail\")) == \"fail\"", "self.choose(\"kmalloc\", (\"ok\",)) == \"fail\"",
     "kmalloc(may_fail=True) never fails"),
    ("K20", K + "alloc.py", "        elif self.rt and self.truly_atomic():", "        elif False:",
     "GFP_ATOMIC in atomic context on PREEMPT_RT is not reported"),
    ("K21", K + "alloc.py", "        if gfp == GFP_KERNEL:\n            self.might_sleep(where or splat.WHERE_ALLOC)",
     "        if gfp == GFP_KERNEL:\n            pass", "GFP_KERNEL allocations never call might_sleep()"),
    ("K22", K + "context.py", "splat.kasan(\"uaf\", f\"object #{oid}\", self.site(), p.comm, p.pid), fatal=True,",
     "splat.kasan(\"uaf\", f\"object #{oid}\", self.site(), p.comm, p.pid), fatal=False,",
     "a KASAN use-after-free does not end the run"),
    ("K23", K + "alloc.py", "            return\n        self.del_obj(oid)", "            return",
     "kfree() frees nothing"),
    ("K24", K + "hlist.py", "        self._unlink(oid)\n        self.deref(oid)[\"link\"] = POISON",
     "        self._unlink(oid)\n        self.deref(oid)[\"link\"] = None", "hlist_del() does not poison (acts as hlist_del_init)"),
    ("K25", K + "hlist.py", "        self.put(head, (oid,) + self.get(head))", "        self.put(head, self.get(head) + (oid,))",
     "hlist_add_head() adds at the tail"),
    ("K26", K + "hlist.py", "        self.put(head, tuple(x for x in self.get(head) if x != oid))",
     "        self.put(head, self.get(head))", "unlinking leaves the node on its list"),
    ("K27", K + "sched.py", "        self.put(wq, q[1:])\n        self.wake_up_process(q[0])",
     "        self.put(wq, q[1:])", "swake_up_one() dequeues but does not wake"),
    ("K28", K + "sched.py", "        if self.t[\"_irq\"]:\n            raise Blocked(\"halted with interrupts disabled\")\n",
     "", "HLT with interrupts disabled can be woken"),
    ("K29", K + "sched.py", "        if self.sh.get(h) == 1:\n            self.sh[h] = 2\n        self.deliver_irqs(cpu, exclude=tid)",
     "        self.deliver_irqs(cpu, exclude=tid)", "IRET from a handler does not end the HLT it interrupted"),
    ("K30", K + "context.py", "        t[\"_pre\"] -= 1\n        if t[\"_pre\"] == 0:\n            t[\"_pdis\"] = None",
     "        if t[\"_pre\"] == 0:\n            t[\"_pdis\"] = None", "preempt_enable() does not decrement"),
    # -- the stepper export ------------------------------------------------------------------------------------
    ("X1", XP, "    bad = {str(i): [[S(p), S(m), k] for p, m, k in row] for i, row in g.bad.items()}", "    bad = {}",
     "the export drops the bad states (invariants, stuck, end)"),
    ("X2", XP, '        "counterexamples": cex,', '        "counterexamples": {},', "the export drops the counterexamples"),
    ("X3", XP, '        "fatal": sorted(g.fatal),', '        "fatal": [],', "the export drops the fatal states"),
    ("X4", XP, '                reason = g.blocked[i].get(tid, "")', '                reason = ""',
     "the export drops why a CPU cannot move"),
    ("X5", XP, "            mv += [e.tid, S(e.move), S(e.choice), e.target, sp]",
     "            mv += [e.tid, S(e.move), S(e.choice), max(e.target - 1, 0), sp]", "edges point at the wrong state"),
    ("X6", XP, "            sp = -1\n            if e.events:", "            sp = -1\n            if False:",
     "edges lose their kernel reports"),
    ("X7", GR, "    ex = Explorer(sys, max_states=max_states, reduction=False, record=True)",
     "    ex = Explorer(sys, max_states=max_states, reduction=True, record=True)",
     "the stepper steps the reduced graph, not one C line at a time"),
    ("X8", GR, "        if \":\" not in mv and sum(1 for e in row if e[1] == tid) < 2:\n            return None",
     "        if True:\n            return None", "choices lose their labels (\"kmalloc: fail\")"),
]


class StaleMutant(Exception):
    """A mutant's old text is not (exactly once) in its file."""


def _shift(text: str, k: int) -> str:
    """``text`` with every non-empty line indented ``k`` spaces more (or less)."""
    out = []
    for ln in text.split("\n"):
        if ln.strip():
            ln = " " * k + ln if k >= 0 else (ln[-k:] if ln[:-k].strip() == "" else None)
            if ln is None:
                return "\0"  # cannot dedent this far
        out.append(ln)
    return "\n".join(out)


def _locate(text: str, old: str, new: str) -> tuple[str, str] | None:
    """The (old, new) pair to use: verbatim, or re-indented as a block when the code moved."""
    if text.count(old) == 1:
        return old, new
    if text.count(old) > 1:
        return None
    # re-indented: the block must start at the beginning of a line
    hits = [(_shift(old, k), _shift(new, k)) for k in range(-16, 17, 4) if k]
    hits = [("\n" + o, "\n" + n) for o, n in hits if ("\n" + text).count("\n" + o) == 1]
    return hits[0] if len(hits) == 1 else None


def _apply(root: Path, mutant) -> None:
    mid, rel, old, new, _ = mutant
    p = root / rel
    if not p.is_file():
        raise StaleMutant(f"{mid}: no file src/{rel}")
    text = p.read_text()
    found = _locate(text, old, new)
    if found is None:
        raise StaleMutant(f"{mid}: old text found {text.count(old)} times in src/{rel} (must be exactly once, "
                          "at any indentation); update the mutant")
    mutated = text.replace(*found)
    try:
        compile(mutated, str(p), "exec")
    except SyntaxError as e:
        raise StaleMutant(f"{mid}: the mutated src/{rel} is not valid Python ({e.msg}, line {e.lineno})") from None
    p.write_text(mutated)


def _run_tests(src: Path, tests: list[str], timeout: float) -> tuple[str, float, str]:
    # KVMLAB_PURE: the mutants change the pure-Python search, the reference (not the compiled core)
    env = dict(os.environ, PYTHONPATH=str(src), PYTHONDONTWRITEBYTECODE="1", KVMLAB_ORACLE="quick",
               KVMLAB_PURE="1")
    t0 = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-m", "pytest", *PYTEST_ARGS, *tests], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - t0, ""
    dt = time.perf_counter() - t0
    first = next((ln for ln in p.stdout.splitlines() if ln.startswith(("FAILED", "ERROR"))), "")
    if p.returncode == 0:
        return "survived", dt, ""
    if p.returncode == 1:  # a test failed
        return "killed", dt, first.split(" - ")[0]
    # 2: an error while collecting (e.g. the mutant broke an import), 3: pytest internal error
    return "killed", dt, f"pytest exit {p.returncode}: {first or (p.stdout + p.stderr).strip().splitlines()[-1:]}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="tools/mutants.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--only", nargs="+", metavar="ID", help="run only these mutants")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant (a timeout counts as killed)")
    ap.add_argument("--tests", nargs="+", default=TESTS, help="test files to run (default: %(default)s)")
    ap.add_argument("--min-score", type=float, default=0.0, help="exit 1 if fewer than this %% are killed")
    ap.add_argument("--jobs", "-j", type=int, default=1, help="mutants tested at once (each in its own copy)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the check that unmutated code passes")
    a = ap.parse_args(argv)
    if a.timeout <= 0 or a.timeout != a.timeout:
        ap.error("--timeout must be a positive number of seconds")
    if a.jobs < 1:
        ap.error("--jobs must be at least 1")
    chosen = MUTANTS
    if a.only:
        ids = {m[0] for m in MUTANTS}
        bad = [x for x in a.only if x not in ids]
        if bad:
            ap.error(f"unknown mutant(s) {', '.join(bad)} (known: {', '.join(sorted(ids))})")
        chosen = [m for m in MUTANTS if m[0] in a.only]
    if a.list:
        for mid, rel, old, _, desc in chosen:
            ok = "" if (SRC / rel).is_file() and _locate((SRC / rel).read_text(), old, "") else "  [STALE]"
            print(f"{mid:4} src/{rel:28} {desc}{ok}")
        return 0
    with tempfile.TemporaryDirectory(prefix="kvmlab-mutants-") as tmp:
        work = Path(tmp) / "src"
        shutil.copytree(SRC, work, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        try:
            for m in chosen:  # every mutant must still apply to the current code
                original = (work / m[1]).read_text()
                _apply(work, m)
                (work / m[1]).write_text(original)
        except StaleMutant as e:
            print(f"mutants: {e}", file=sys.stderr)
            return 2
        if not a.no_baseline:
            status, dt, info = _run_tests(work, a.tests, a.timeout * 2)
            if status != "survived":
                print(f"mutants: the unmutated code does not pass the tests ({status}: {info})", file=sys.stderr)
                return 2
            print(f"baseline: tests pass on unmutated code in {dt:.1f} s", flush=True)
        jobs = max(1, min(a.jobs, len(chosen)))
        copies = [work] + [Path(tmp) / f"src{j}" for j in range(1, jobs)]
        for c in copies[1:]:
            shutil.copytree(work, c)
        free = list(copies)
        lock = threading.Lock()

        def one(m):
            with lock:
                src = free.pop()
            mid, rel, _, _, desc = m
            original = (src / rel).read_text()
            _apply(src, m)
            try:
                status, dt, info = _run_tests(src, a.tests, a.timeout)
            finally:
                (src / rel).write_text(original)
                with lock:
                    free.append(src)
            with lock:
                print(f"{mid:4} {status:8} {dt:6.1f}s  {desc}" + (f"  [{info}]" if info else ""), flush=True)
            return mid, status, dt, desc, info

        with ThreadPoolExecutor(jobs) as pool:
            rows = list(pool.map(one, chosen))
    killed = sum(1 for r in rows if r[1] in ("killed", "timeout"))
    score = 100.0 * killed / len(rows) if rows else 0.0
    print("\n| id | result | seconds | mutant |\n|---|---|---|---|")
    for mid, status, dt, desc, _ in rows:
        print(f"| {mid} | {status} | {dt:.0f} | {desc} |")
    print(f"\nkilled {killed} of {len(rows)} mutants: {score:.1f} %")
    survivors = [r[0] for r in rows if r[1] == "survived"]
    if survivors:
        print("survived: " + ", ".join(survivors))
    return 0 if score >= a.min_score else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("mutants: interrupted", file=sys.stderr)
        sys.exit(130)
