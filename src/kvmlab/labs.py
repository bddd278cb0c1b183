"""The book's labs, sealed: what each grades, in which configurations, under which assumptions.

::

    from kvmlab.labs import grade
    grade("lab1", MyWaker)            # the class the lab names (or globals(), or a module)
    grade_source("lab1", text)        # the answer cell's source (run after the lab's preamble)
    grade_file("lab1", "lab1.ipynb")  # a notebook (its cells tagged "answer") or a .py file

A lab's settings live here, not in the notebook: the configurations (more
CPUs, more allocation failures, more wake-ups than the notebook's examples,
chosen so that every plausible wrong fix fails), the properties that grade
(``terminates`` included: code that never finishes fails) and the fairness.
A notebook cannot weaken them. The report's PASS says in which configurations
and under which assumptions no violation exists.
"""

from __future__ import annotations

import functools
import json
import linecache
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .engine import KvmlabError, Variant
from .engine.errors import StepTimeout
from .engine.explorer import STEP_TIMEOUT
from .engine.model import Model
from .engine.watchdog import Watchdog, enter_step, leave_step
from .lab import GradeReport, RunSpec
from .lab import grade as _grade

__all__ = ["LABS", "Lab", "SubmissionError", "get", "grade", "grade_file", "grade_source", "reference_path"]

ANSWER_TAG = "answer"
MARK = "# --- answer ---"
IMPORT_TIMEOUT = 10.0  # seconds the answer's top-level code may run before it is stopped


class SubmissionError(KvmlabError):
    """The submission cannot be graded: a syntax error, a missing class, code that fails at import."""


@dataclass(frozen=True)
class Lab:
    """One lab: the model, the names the answer defines, and the sealed grading settings."""

    id: str
    title: str
    model: str
    notebook: str
    solution: str
    names: tuple[str, ...]
    build: Callable[[dict], Variant]
    runs: tuple[RunSpec, ...]
    must_hold: tuple[str, ...] | None = None
    fairness: str | None = None
    model_cls: Callable[[], type[Model]] | None = None  # a lab-specific model (extra properties)
    extra: Callable[[dict, Variant], str | None] | None = None  # a check outside the explorer
    max_states: int = 200_000
    note: str = ""
    _text: dict = field(default_factory=dict, compare=False, repr=False)

    def _split(self) -> tuple[str, str]:
        if not self._text:
            src = resources.files("kvmlab").joinpath("labdata", f"{self.id}.py").read_text(encoding="utf-8")
            pre, _, ans = src.partition(MARK)
            pre = "\n".join(ln for ln in pre.splitlines() if not ln.startswith("# ")).strip() + "\n"
            self._text.update(preamble=pre, starter=ans.strip() + "\n")
        return self._text["preamble"], self._text["starter"]

    @property
    def preamble(self) -> str:
        """The imports (and constants) the answer needs: the notebook's cell before the answer."""
        return self._split()[0]

    @property
    def starter(self) -> str:
        """The exact text of the notebook's answer cell as handed out."""
        return self._split()[1]

    def model_class(self) -> type[Model]:
        if self.model_cls is not None:
            return self.model_cls()
        from .api import model
        return model(self.model)

    def bounds(self) -> list[str]:
        """The sealed configurations, one line each."""
        out = []
        for r in self.runs:
            parts = [f"{k}={'y' if v else 'n'}" for k, v in r.config.items()]
            parts += [f"{k}={v}" for k, v in r.params.items()]
            out.append(" ".join(parts) + ("" if r.progress else "  (safety only: " + (r.note or "no progress")
                                          + ")"))
        return out


# -- lab-specific builders and models ----------------------------------------------------------------

def _derive(model: str, base: str, role: str, name: str):
    def build(ns: dict) -> Variant:
        from .api import model as get
        cls = ns[name]
        _need_program(cls, name)
        return get(model).variant(base).derive("yours", f"your {name}", programs={role: cls}, buggy=False)
    return build


def _need_program(cls, name: str, base: type | None = None) -> None:
    from .engine import Program
    if not (isinstance(cls, type) and issubclass(cls, base or Program)):
        what = base.__name__ if base is not None else "Program"
        raise SubmissionError(f"{name} must be a class derived from {what}, not {cls!r:.60}")


@functools.cache  # one class per process: every grade of lab 2 uses the same model
def _lab2_model():
    """apf_handshake with one more wake-up and the rules a wait loop must keep when it returns."""
    from .engine import Param, Program, line
    from .kernel import KernelWorld
    from .models.apf_handshake import FAULT, ApfHandshake

    class OtherWaker(Program):
        fn = "wake_up_process"

        @line("wake_up_process(task0);  /* any other wake-up of the sleeping task */")
        def wake(self, w, t):
            th = w.thread(FAULT)
            if th is not None and th["_state"] != "R":
                w.wake_up_process(FAULT)

    class Lab2World(KernelWorld):
        def on_finish(self, tid, t):
            super().on_finish(tid, t)
            if tid == FAULT:
                node = self.programs[FAULT].node
                queued = tid in self.obj(node)["wq"]
                hashed = self.obj(node)["link"] is not None
                self.sh["@fault_exit"] = (t["_state"], queued, hashed)

    class Lab2Handshake(ApfHandshake):
        world = Lab2World
        params = {**ApfHandshake.params,
                  "other_wake": Param(0, 0, 1, "1: another CPU also wakes the sleeping task once "
                                               "(a wait loop must re-check its condition)")}
        properties = {**ApfHandshake.properties,
                      "returns_after_ready": "kvm_async_pf_task_wait_schedule() returns only once 'page ready' "
                                             "unhashed n (n is on its stack)",
                      "returns_dequeued": "it returns in TASK_RUNNING with its wait entry off n.wq "
                                          "(finish_swait())"}

        def setup(self, w, variant, config, params):
            super().setup(w, variant, config, params)
            w.declare("@fault_exit", None)
            if params.get("other_wake"):
                w.spawn(OtherWaker("other", cpu=2, label="CPU2", comm="task2", title="another waker of task0"))

        def invariants(self, w):
            yield from super().invariants(w)
            ex = w["@fault_exit"]
            if ex is not None:
                state, queued, hashed = ex
                if hashed:
                    yield "returns_after_ready", ("the fault path returned while n is still in the bucket: "
                                                  "'page ready' will write to a dead stack frame")
                if state != "R" or queued:
                    yield "returns_dequeued", ("the fault path returned in TASK_UNINTERRUPTIBLE or with its wait "
                                               "entry still on n.wq: finish_swait() is missing")

    Lab2Handshake.__name__ = Lab2Handshake.__qualname__ = "Lab2Handshake"
    return Lab2Handshake


@functools.cache
def _lab5_model():
    """fast_pf with the clear's own post-condition: the SPTE ends cleared."""
    from .models.fast_pf import SPTE, FastPF

    class Lab5FastPF(FastPF):
        properties = {**FastPF.properties,
                      "spte_cleared": "mmu_spte_clear_track_bits() leaves the SPTE cleared (0)"}

        def end_checks(self, w):
            yield from super().end_checks(w)
            if w.thread(1) is None and w[SPTE] is not None:
                yield "spte_cleared", "the host's clear returned and the SPTE is still present"

    return Lab5FastPF


def _lab3_build(ns: dict) -> Variant:
    from .models.apf_wait import rule_variant
    fn = ns["can_schedule"]
    if not callable(fn):
        raise SubmissionError("can_schedule must be a function can_schedule(w, usermode) -> bool")

    def can_schedule(w, usermode):
        r = fn(w, usermode)
        if not isinstance(r, bool):
            raise TypeError(f"can_schedule() returned {r!r} ({type(r).__name__}); it must return True or False")
        return r

    can_schedule.__wrapped__ = fn
    return rule_variant(can_schedule, "yours")


def _lab3_runs() -> tuple[RunSpec, ...]:
    from .models.apf_wait import configs, contexts
    return tuple(RunSpec(cfg, ctx) for cfg in configs(only_possible=True) for ctx in contexts()
                 if ctx["context"] != "host")


def _lab3_extra(ns: dict, variant: Variant) -> str | None:
    """The rule must decide like the 2020 rule: halting where it could sleep stops the whole vCPU."""
    from .models.apf_wait import MISMATCH, _case_text, configs, contexts, decide, seed_case
    for cfg in configs(only_possible=True):
        for ctx in contexts():
            if ctx["context"] == "host":
                continue
            expected = decide("split_wait", ctx, cfg)
            with Watchdog(IMPORT_TIMEOUT):
                got = decide(variant, ctx, cfg)
            if got != expected:
                row = {**ctx, **cfg, "case": seed_case(ctx, cfg)}
                return f"in {_case_text(row)}: your rule {MISMATCH[got]}"
    return None


def _lab4_build(ns: dict) -> Variant:
    from .models import zone_device as zd
    _need_program(ns["MyRelease"], "MyRelease", zd.FaultPathFixed)
    return zd.lab_variant(ns["MyRelease"], "yours", "your release rule")


def _lab6_build(ns: dict) -> Variant:
    from .models.tdp_root_put import PutRoot, learner_variant
    _need_program(ns["MyPut"], "MyPut", PutRoot)
    return learner_variant("yours", ns["MyPut"])


def _lab4_runs():
    from .models import zone_device as zd
    return tuple(RunSpec({}, dict(p)) for p in zd.LAB_PARAMS)


def _lab4_must():
    from .models import zone_device as zd
    return (*zd.LAB_MUST_HOLD, "terminates")


def _lab6_runs():
    from .models import tdp_root_put as tr
    return tuple(RunSpec({}, dict(p)) for p in tr.LAB_PARAMS)


def _lab6_must():
    from .models import tdp_root_put as tr
    return tuple(tr.LAB_MUST_HOLD)


RT = ({"PREEMPT_RT": True}, {"PREEMPT_RT": False})


def _labs() -> dict[str, Lab]:
    labs = [
        Lab("lab0", "counter++ on several CPUs", "lost_update", "notebooks/lab0-lost-update.ipynb",
            "solutions/lab0_lost_update.py", ("MyInc",), _derive("lost_update", "plain", "worker", "MyInc"),
            tuple(RunSpec(dict(c), p) for c in ({"PREEMPT_RT": False}, {"PREEMPT_RT": True})
                  for p in ({"cpus": 2, "loops": 2}, {"cpus": 3, "loops": 2}, {"cpus": 2, "loops": 3}))),
        Lab("lab1", "allocate outside the raw lock", "apf_wake", "notebooks/lab1-raw-locks.ipynb",
            "solutions/lab1_raw_locks.py", ("MyWaker",), _derive("apf_wake", "original", "waker", "MyWaker"),
            tuple(RunSpec(dict(c), p) for c in RT for p in (
                {"waiters": 1, "wakers": 1, "alloc_failures": 1}, {"waiters": 2, "wakers": 1, "alloc_failures": 2},
                {"waiters": 2, "wakers": 2, "alloc_failures": 1}))
            + tuple(RunSpec(dict(c), {"waiters": 2, "wakers": 1, "alloc_failures": -1}, progress=False,
                            note="kzalloc() may fail any number of times; a waker whose allocation always fails "
                                 "retries forever, as the kernel's does") for c in RT),
            must_hold=("no_sleep_in_atomic", "no_duplicate_token", "no_lost_wakeup", "no_leak", "terminates",
                       "no_bad_unlock", "no_lock_leak", "no_null_deref", "no_use_after_free", "no_double_free",
                       "no_invalid_wait_context")),
        Lab("lab2", "the async #PF wait loop", "apf_handshake", "notebooks/lab2-handshake.ipynb",
            "solutions/lab2_handshake.py", ("MyWait",), _derive("apf_handshake", "schedule_wait", "fault", "MyWait"),
            tuple(RunSpec({}, {"same_cpu": 0, "ready_first": rf, "other_wake": ow}) for ow in (0, 1)
                  for rf in (0, 1)),
            model_cls=_lab2_model),
        Lab("lab3", "can_schedule: when may the faulting task sleep?", "apf_wait", "notebooks/lab3-rcu.ipynb",
            "solutions/lab3_rcu.py", ("can_schedule",), _lab3_build, (), extra=_lab3_extra),
        Lab("lab4", "the release rule for ZONE_DEVICE pages", "zone_device", "notebooks/lab4-zone-device.ipynb",
            "solutions/lab4_zone_device.py", ("MyRelease",), _lab4_build, ()),
        Lab("lab5", "mmu_spte_clear_track_bits()", "fast_pf", "notebooks/lab5-fast-pf.ipynb",
            "solutions/lab5_fast_pf.py", ("MyClear",), _derive("fast_pf", "clear_plain", "host", "MyClear"),
            tuple(RunSpec({"AD_BITS": ad}, {}) for ad in (True, False)), model_cls=_lab5_model),
        Lab("lab6", "kvm_tdp_mmu_put_root()", "tdp_root_put", "notebooks/lab6-tdp-root.ipynb",
            "solutions/lab6_tdp_root.py", ("MyPut",), _lab6_build, ()),
    ]
    return {lab.id: lab for lab in labs}


LABS: dict[str, Lab] = _labs()
_LAZY = {"lab3": (_lab3_runs, None), "lab4": (_lab4_runs, _lab4_must), "lab6": (_lab6_runs, _lab6_must)}


def get(lab_id: str) -> Lab:
    """The lab ``lab_id`` (``lab0`` .. ``lab6``, or its notebook's name)."""
    key = str(lab_id).strip()
    for lab in LABS.values():
        if key in (lab.id, Path(lab.notebook).stem, Path(lab.notebook).name):
            key = lab.id
            break
    lab = LABS.get(key)
    if lab is None:
        raise KvmlabError(f"unknown lab {str(lab_id)[:60]!r} (labs: {', '.join(LABS)})")
    if key in _LAZY and not lab.runs:  # settings that live in the model modules
        runs_fn, must_fn = _LAZY[key]
        object.__setattr__(lab, "runs", runs_fn())
        if must_fn is not None:
            object.__setattr__(lab, "must_hold", must_fn())
    return lab


# -- submissions ----------------------------------------------------------------------------------------

def _namespace(lab: Lab, submission) -> dict:
    if isinstance(submission, dict):
        return submission
    if hasattr(submission, "__dict__") and type(submission).__name__ == "module":
        return vars(submission)
    if isinstance(submission, type) or callable(submission):
        if len(lab.names) != 1:
            raise SubmissionError(f"{lab.id}: pass a namespace defining {', '.join(lab.names)}")
        return {lab.names[0]: submission}
    raise SubmissionError(f"{lab.id}: cannot grade {submission!r:.60}: pass the class or function the lab "
                          f"names ({', '.join(lab.names)}), globals() or a module")


def _learner_classes(ns: dict, lab: Lab) -> tuple:
    return tuple(ns[n] for n in lab.names if isinstance(ns.get(n), type))


def grade(lab_id: str, submission, *, max_seconds: float | None = 120.0,
          step_timeout: float | None = STEP_TIMEOUT) -> GradeReport:
    """Grade ``submission`` with the lab's sealed settings; returns a :class:`~kvmlab.lab.GradeReport`."""
    lab = get(lab_id)
    ns = _namespace(lab, submission)
    missing = [n for n in lab.names if n not in ns]
    if missing:
        raise SubmissionError(f"{lab.id}: the answer must define {', '.join(missing)} "
                              f"(found: {', '.join(sorted(k for k in ns if not k.startswith('_')))[:200]})")
    try:
        variant = lab.build(ns)
    except SubmissionError:
        raise
    except KvmlabError as e:
        raise SubmissionError(f"{lab.id}: {e}") from None
    report = _grade(lab.model_class(), variant, runs=list(lab.runs), must_hold=list(lab.must_hold)
                    if lab.must_hold else None, fairness=lab.fairness, max_states=lab.max_states,
                    max_seconds=max_seconds, step_timeout=step_timeout, learner_classes=_learner_classes(ns, lab),
                    lab=lab.id)
    if report.passed and lab.extra is not None:
        try:
            report.problem = lab.extra(ns, variant)
        except (Exception, StepTimeout) as e:
            report.problem = f"your code raised {type(e).__name__}: {e}"
    return report


def _exec(source: str, ns: dict, filename: str) -> None:
    try:
        code = compile(source, filename, "exec")
    except SyntaxError as e:
        raise SubmissionError(f"syntax error in your answer, line {e.lineno}: {e.msg}"
                              + (f"\n    {e.text.rstrip()}" if e.text else "")) from None
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    prev = enter_step()
    try:
        with Watchdog(IMPORT_TIMEOUT):
            exec(code, ns)
    except StepTimeout:
        raise SubmissionError(f"your answer's top-level code did not finish within {IMPORT_TIMEOUT:g} s") from None
    except SubmissionError:
        raise
    except Exception as e:
        import traceback
        tb = [fr for fr in traceback.extract_tb(e.__traceback__) if fr.filename == filename]
        where = f" (line {tb[-1].lineno}: {tb[-1].line})" if tb else ""
        raise SubmissionError(f"your answer raised {type(e).__name__} when it ran: {e}{where}") from None
    finally:
        leave_step(prev)


def namespace_of(lab_id: str, source: str, filename: str = "<answer>") -> dict:
    """Run the lab's preamble, then ``source``; returns the namespace."""
    lab = get(lab_id)
    ns: dict = {"__name__": "kvmlab_answer"}
    _exec(lab.preamble, ns, "<preamble>")
    _exec(source, ns, filename)
    return ns


def grade_source(lab_id: str, source: str, *, max_seconds: float | None = 120.0,
                 step_timeout: float | None = STEP_TIMEOUT) -> GradeReport:
    """Grade an answer given as source text (the answer cell, or a .py file)."""
    if not isinstance(source, str):
        raise SubmissionError("grade_source: the answer must be text")
    return grade(lab_id, namespace_of(lab_id, source), max_seconds=max_seconds, step_timeout=step_timeout)


def answer_cells(path: str | os.PathLike) -> str:
    """The source of a notebook's cells tagged ``answer``, joined."""
    try:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
        cells = nb["cells"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SubmissionError(f"{path}: not a readable notebook ({e})") from None
    out = []
    for c in cells:
        tags = (c.get("metadata") or {}).get("tags") or []
        if c.get("cell_type") == "code" and ANSWER_TAG in tags:
            src = c.get("source", "")
            out.append("".join(src) if isinstance(src, list) else str(src))
    if not out:
        raise SubmissionError(f"{path}: no code cell is tagged {ANSWER_TAG!r}")
    return "\n\n".join(out)


def read_submission(path: str | os.PathLike) -> str:
    """The answer's source from a ``.ipynb`` (cells tagged ``answer``) or a ``.py`` file."""
    p = Path(path)
    if p.suffix == ".ipynb":
        return answer_cells(p)
    try:
        return p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SubmissionError(f"{path}: cannot read the submission ({e})") from None


def grade_file(lab_id: str, path: str | os.PathLike, *, max_seconds: float | None = 120.0,
               step_timeout: float | None = STEP_TIMEOUT) -> GradeReport:
    """Grade a submitted notebook (its ``answer`` cells) or ``.py`` file."""
    return grade(lab_id, namespace_of(lab_id, read_submission(path), str(path)), max_seconds=max_seconds,
                 step_timeout=step_timeout)


def reference_path(lab_id: str) -> Path:
    """The lab's reference solution: ``$KVMLAB_SOLUTIONS/<file>`` or the checkout's ``solutions/``."""
    lab = get(lab_id)
    name = Path(lab.solution).name
    roots = []
    if os.environ.get("KVMLAB_SOLUTIONS"):
        roots.append(Path(os.environ["KVMLAB_SOLUTIONS"]))
    roots.append(Path(__file__).resolve().parents[2] / "solutions")
    for r in roots:
        if (r / name).is_file():
            return r / name
    raise KvmlabError(f"{lab.id}: reference solution {name} not found (set KVMLAB_SOLUTIONS to the folder "
                      "holding the solutions, or run from a checkout of the book)")
