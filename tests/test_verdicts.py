"""Verdicts a reader can trust: progress judged by default, learner code contained, sound reductions,
clear errors and exit codes (issue: trustworthy verdicts)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import kvmlab
from kvmlab import cli
from kvmlab.engine import KvmlabError, Model, ModelError, Program, StepCrash, Variant, line
from kvmlab.kernel import KernelWorld
from kvmlab.lab import grade


def one_model(*programs, shared=None, setup=None, world=KernelWorld, invariants=None, name="toy"):
    """A model whose threads run ``programs`` (classes), one per CPU."""
    class M(Model):
        variants = [Variant("v", "v")]

        def setup(self, w, variant, config, params):
            for k, v in (shared or {}).items():
                w.declare(k, v)
            if setup is not None:
                setup(w)
            for i, p in enumerate(programs):
                w.spawn(p(f"p{i}", cpu=getattr(p, "cpu", i)))

        def invariants(self, w):
            if invariants is not None:
                yield from invariants(w)
    M.name = name
    M.world = world
    return M


# -- progress is a property of every model ---------------------------------------------------------

class Spinner(Program):
    @line("while (1) cpu_relax();")
    def spin(self, w, t):
        return "spin"


class Finisher(Program):
    @line("x = 1;")
    def s(self, w, t):
        w["x"] = 1


def test_a_thread_that_never_finishes_fails_by_default():
    r = kvmlab.check(one_model(Spinner, Finisher, shared={"x": 0}))
    v = r.violation("terminates")
    assert r.progress and v is not None and v.kind == "lasso" and v.loop_start is not None
    assert "CPU0 loops forever" in v.message and "fairness: none" in v.message
    assert "terminates" in r.properties and "progress checked under none fairness" in r.bounds()
    off = kvmlab.check(one_model(Spinner, Finisher, shared={"x": 0}), liveness=False)
    assert off.ok and not off.progress and "progress NOT checked" in off.bounds()


def test_check_prints_fairness_and_list_shows_it(capsys):
    assert cli.main(["check", "lost_update", "--variant", "atomic"]) == 0
    out = capsys.readouterr().out
    assert "progress (terminates) judged under none fairness" in out and "within these bounds" in out
    assert cli.main(["list"]) == 0
    assert "judged under weak fairness" in capsys.readouterr().out  # tdp_root_put declares weak


def test_apf_wake_unbounded_failures_loops_without_fairness(capsys):
    code = cli.main(["check", "apf_wake", "--variant", "recheck", "--param", "alloc_failures=-1",
                     "--fairness", "none"])
    out = capsys.readouterr().out
    assert code == 1 and "VIOLATED terminates" in out and "loop:" in out


# -- learner code is contained ---------------------------------------------------------------------

class Forever(Program):
    @line("for (;;);")
    def s(self, w, t):
        while True:
            pass


class Crasher(Program):
    locals = {"n": 0}

    @line("n = 1;")
    def a(self, w, t):
        t.n = 1

    @line("x = 1 / (n - 1);")
    def b(self, w, t):
        w["x"] = 1 // (t.n - 1)


def test_a_step_that_never_returns_is_stopped():
    with pytest.raises(StepCrash, match=r"step 's' \(for \(;;\);\) did not return") as e:
        kvmlab.check(one_model(Forever), step_timeout=0.5)
    assert e.value.timeout and e.value.schedule == []


def test_a_crashing_step_names_step_line_and_schedule():
    with pytest.raises(StepCrash) as e:
        kvmlab.check(one_model(Crasher, shared={"x": 0}))
    c = e.value
    assert (c.label, c.step, c.c_line, c.exception) == ("CPU0", "b", "x = 1 / (n - 1);", "ZeroDivisionError")
    assert c.schedule == ["0"] and "test_verdicts.py" in c.where


def test_ctrl_c_gives_the_partial_result():
    calls = []

    def progress(states, transitions):
        calls.append(states)
        if len(calls) > 1:
            raise KeyboardInterrupt

    r = kvmlab.check("apf_wake", "recheck", params={"waiters": 2, "wakers": 2}, progress=progress)
    assert r.interrupted and not r.complete and r.exit_code == 3 and r.states > 0


class Unlocker(Program):
    @line("spin_unlock(&l);")
    def u(self, w, t):
        w.spin_unlock("l")


class NullDeref(Program):
    locals = {"p": None}

    @line("p->x = 1;")
    def s(self, w, t):
        w.deref(t.p)["x"] = 1


def test_kernel_misuse_is_a_kernel_report():
    m = one_model(Unlocker, setup=lambda w: w.spinlock("l"))
    v = kvmlab.check(m).violation("no_bad_unlock")
    assert v is not None and "bad unlock balance" in v.splat
    v = kvmlab.check(one_model(NullDeref)).violation("no_null_deref")
    assert v is not None and "NULL pointer dereference" in v.splat and v.schedule == ["0"]


def test_a_step_that_can_never_run_is_an_error_at_class_creation():
    from kvmlab.models.apf_wake import WakerOriginal
    with pytest.raises(ModelError, match=r"relock .* can never run: it comes after step 'ret'"):
        class Trap(WakerOriginal):
            @line("raw_spin_lock(&b->lock);")
            def relock(self, w, t):
                w.raw_spin_lock("b->lock")


class LongLocal(Program):
    locals = {"i": 0}

    @line("for (i = 0; i < 1000; i++);", local=True)
    def loop(self, w, t):
        t.i += 1
        if t.i < 1000:
            return "loop"

    @line("x = 1;")
    def s(self, w, t):
        w["x"] = 1


@pytest.mark.parametrize("reduction", [True, "local"])
def test_a_long_private_loop_works_reduced(reduction):
    r = kvmlab.check(one_model(LongLocal, shared={"x": 0}), reduction=reduction, liveness=False)
    assert r.ok and r.states < 10


# -- the reductions keep their promises ------------------------------------------------------------

class Publisher(Program):
    """CPU0: x = 1; then a step marked local that writes p->f on an object shared p points to."""

    @line("x = 1;")
    def a(self, w, t):
        w["x"] = 1

    @line("p->f = 1;", local=True)
    def b(self, w, t):
        w.obj(w["p"])["f"] = 1


class Watcher(Program):
    @line("WARN_ON(x == 1 && !p->f);")
    def c(self, w, t):
        if w["x"] == 1 and not w.obj(w["p"])["f"]:
            w.report("window", "WARNING: saw x == 1 before p->f")


def _published(w):
    w.declare("x", 0)
    w.declare("p", w.new_obj("o", f=0))


@pytest.mark.parametrize("reduction", [False, "local", True])
def test_a_local_step_may_not_write_a_published_object(reduction):
    m = one_model(Publisher, Watcher, setup=_published)
    assert kvmlab.check(m, reduction=reduction, liveness=False).violation("window") is not None


class IrqTask(Program):
    cpu = 0

    @line("local_irq_disable();", local=True)
    def off(self, w, t):
        w.local_irq_disable()

    @line("x = 1;")
    def a(self, w, t):
        w["x"] = 1

    @line("local_irq_enable();")
    def on(self, w, t):
        w.local_irq_enable()


class Handler(Program):
    kind = "hardirq"
    cpu = 0

    @line("WARN_ON(x == 0);")
    def h(self, w, t):
        if w["x"] == 0:
            w.report("early", "WARNING: the handler ran before x was set")


@pytest.mark.parametrize("reduction", [False, "local", True])
def test_a_local_irq_disable_does_not_hide_a_same_cpu_handler(reduction):
    m = one_model(IrqTask, Handler, shared={"x": 0})
    assert kvmlab.check(m, reduction=reduction, liveness=False).violation("early") is not None


# -- grading arguments ---------------------------------------------------------------------------

def test_grade_rejects_unknown_properties_and_bad_arguments():
    with pytest.raises(KvmlabError, match="unknown property no_lost_wakup"):
        grade("apf_wake", "original", must_hold=["no_lost_wakup"])
    with pytest.raises(KvmlabError, match="params must be a dict"):
        grade("lost_update", "atomic", params="cpus=2")
    with pytest.raises(KvmlabError, match="must_hold must be property names"):
        grade("lost_update", "atomic", must_hold=5)
    with pytest.raises(KvmlabError, match="no configuration to check"):
        grade("lost_update", "atomic", params=[])
    with pytest.raises(KvmlabError, match="not an integer"):
        kvmlab.check("lost_update", params={"cpus": 2.9})
    with pytest.raises(KvmlabError, match="liveness"):
        kvmlab.check("lost_update", liveness="no")
    with pytest.raises(KvmlabError, match="schedule must be a list"):
        kvmlab.replay("lost_update", schedule="01")


def test_sealed_lab_cannot_be_weakened():
    from kvmlab import labs
    starter = labs.get("lab1").starter
    rep = labs.grade_source("lab1", starter)
    assert not rep.passed and any(r.config == {"PREEMPT_RT": True} for r in rep.runs)
    assert "PREEMPT_RT=y" in rep.bounds()


# -- exit codes --------------------------------------------------------------------------------------

def _kvmlab(*args, **kw):
    return subprocess.run([sys.executable, "-m", "kvmlab.cli", *args], capture_output=True, text=True, **kw)


def test_exit_codes_for_bad_bounds_full_disk_and_bench():
    for bad in (["--max-states", "0"], ["--max-seconds", "nan"], ["--max-seconds", "-1"]):
        p = _kvmlab("check", "lost_update", *bad)
        assert p.returncode == 2 and "Traceback" not in p.stderr and p.stderr.count("\n") == 1
    with open("/dev/full", "w") as full:
        p = subprocess.run([sys.executable, "-m", "kvmlab.cli", "list"], stdout=full, stderr=subprocess.PIPE,
                           text=True)
    assert p.returncode == 4 and "Traceback" not in p.stderr and "No space left" in p.stderr
    p = _kvmlab("bench", "--quick", "--spin-dir", "/nonexistent/spin")
    assert p.returncode == 2 and "no such folder" in p.stderr


def test_out_of_memory_is_a_tool_failure():
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (200 << 20, 200 << 20)); "
            "from kvmlab.cli import main; sys.exit(main(['check', 'apf_wake', '--variant', 'unlock_alloc', "
            "'--param', 'waiters=3', '--param', 'wakers=3', '--no-progress']))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert p.returncode == 4 and "out of memory" in p.stderr and "Traceback" not in p.stderr


