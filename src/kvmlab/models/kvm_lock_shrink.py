"""mmu_shrink() walking vm_list under kvm_lock: a raw lock around a sleeping lock on RT.

Source: commit 2f303b74a6 (its message quotes the 3.4-rt splat from kswapd0
reported by Paul Gortmaker) and the lock table of KVM's locking document of
that era. Commit
e935b8372cf8 ("KVM: Convert kvm_lock to raw_spinlock"), named in the seed,
made kvm_lock a raw_spinlock_t; 2f303b74a6 made it a spinlock_t again.
Code: arch/x86/kvm/mmu.c (``mmu_shrink()``, ``tdp_page_fault()``).

Threads:

* CPU0, ``kswapd0`` (pid 55, as in the seed's splat) runs the shrinker
  ``mmu_shrink()``: take ``kvm_lock``, walk ``vm_list``, skip a VM without
  shadow pages, and for the first VM that has some take the VM's SRCU read
  lock and ``kvm->mmu_lock``, zap a page, unlock, move the VM to the tail
  of the list and stop.
* CPU1, a vCPU thread of the VM with shadow pages (param ``vcpus``), handles
  a guest page fault in ``tdp_page_fault()`` inside the SRCU read-side
  section every vCPU holds while it runs (``vcpu->srcu_idx``), holding
  ``kvm->mmu_lock`` while it maps the page. So on PREEMPT_RT the shrinker
  may really have to sleep on ``kvm->mmu_lock``.

What the model abstracts away (the verdicts hold within these bounds):

* the ``mmu_shrink()`` body is a later one than the 3.4 kernel's of the
  splat (it skips a VM without shadow pages and zaps with
  ``prepare_zap_oldest_mmu_page()``; the release of each line was not
  verified); the 3.4 body took ``kvm->mmu_lock`` for every VM and zapped
  with ``kvm_mmu_remove_some_alloc_mmu_pages()``. Both nest
  ``spin_lock(&kvm->mmu_lock)`` inside ``raw_spin_lock(&kvm_lock)``, which
  is what the splat shows. Its ``nr_to_scan`` bookkeeping (assumed large
  enough to reach every VM), its ``zapped_obsolete_pages`` branch and its
  return value are left out;
* ``prepare_zap_oldest_mmu_page()`` and ``kvm_mmu_commit_zap_page()`` are one
  step (both run under ``mmu_lock``; the page count drops by one); in the
  vCPU thread the lines between ``spin_lock()`` and ``spin_unlock()`` of
  ``tdp_page_fault()`` are one step, ``__direct_map()`` (the count rises);
* the unlocked read of ``n_used_mmu_pages`` is the kernel's own (its comment
  accepts skipping a VM by mistake) and is one step;
* params: ``vms`` (1 or 2 VMs on ``vm_list``; with 2 the first one has no
  shadow pages and is skipped with ``continue``), ``vcpus`` (0 or 1 vCPU
  thread faulting on the VM with shadow pages);
* the might_sleep() report of the RT sleeping lock names
  ``kernel/rtmutex.c:659`` and uses the report format of the seed's 3.4-rt
  kernel; the report's call trace is not modelled, "Preemption disabled at:"
  names the step (C function and line) instead of a code address.

The module also holds the one-thread probe behind chapter 1's nesting
checker (:func:`nesting_verdict`, :func:`nesting_table`): enter a context
(task, interrupts disabled, hard interrupt), take some of a mutex, a
``spinlock_t`` and a ``raw_spinlock_t`` in that order, then take one more
lock or allocate; what is reported is decided by the kernel library's own
rules, with and without PREEMPT_RT and PROVE_RAW_LOCK_NESTING.
"""

from __future__ import annotations

from ..engine import DONE, Config, Model, Param, Program, System, Variant, line, replay_moves
from ..kernel import GFP_ATOMIC, GFP_KERNEL, KernelWorld
from ..kernel.splat import WHERE_RT_SPINLOCK_34

KVM_LOCK = "kvm_lock"
VM_LIST = "vm_list"


def mmu_lock(vm: str) -> str:
    return f"{vm}->mmu_lock"


def srcu(vm: str) -> str:
    return f"{vm}->srcu"


def pages(vm: str) -> str:
    return f"{vm}->arch.n_used_mmu_pages"


class Shrinker(Program):
    """mmu_shrink() with kvm_lock a raw_spinlock_t (after e935b8372cf8)."""

    fn = "mmu_shrink"
    locals = {"kvm": None, "pos": 0, "idx": None}

    @line("raw_spin_lock(&kvm_lock);")
    def lock(self, w, t):
        w.raw_spin_lock(KVM_LOCK)

    @line("list_for_each_entry(kvm, &vm_list, vm_list) {")
    def next_vm(self, w, t):
        vms = w[VM_LIST]
        if t.pos >= len(vms):
            t.kvm = None
            return "unlock"
        t.kvm = vms[t.pos]

    @line("if (!kvm->arch.n_used_mmu_pages) continue;")
    def if_empty(self, w, t):
        if w[pages(t.kvm)] == 0:
            t.pos += 1
            return "next_vm"

    @line("idx = srcu_read_lock(&kvm->srcu);")
    def srcu_lock(self, w, t):
        t.idx = w.srcu_read_lock(srcu(t.kvm))

    @line("spin_lock(&kvm->mmu_lock);")
    def mmu_lock(self, w, t):
        w.spin_lock(mmu_lock(t.kvm), where=WHERE_RT_SPINLOCK_34)

    @line(["prepare_zap_oldest_mmu_page(kvm, &invalid_list);",
           "kvm_mmu_commit_zap_page(kvm, &invalid_list);"])
    def zap(self, w, t):
        w[pages(t.kvm)] = w[pages(t.kvm)] - 1

    @line("spin_unlock(&kvm->mmu_lock);")
    def mmu_unlock(self, w, t):
        w.spin_unlock(mmu_lock(t.kvm))

    @line("srcu_read_unlock(&kvm->srcu, idx);")
    def srcu_unlock(self, w, t):
        w.srcu_read_unlock(srcu(t.kvm), t.idx)
        t.idx = None

    @line(["list_move_tail(&kvm->vm_list, &vm_list);", "break;"])
    def move_tail(self, w, t):
        vms = tuple(v for v in w[VM_LIST] if v != t.kvm)
        w[VM_LIST] = vms + (t.kvm,)
        t.kvm = None

    @line("raw_spin_unlock(&kvm_lock);")
    def unlock(self, w, t):
        w.raw_spin_unlock(KVM_LOCK)
        return DONE


class ShrinkerSpinlock(Shrinker):
    """mmu_shrink() after 2f303b74a6: kvm_lock is a spinlock_t again."""

    @line("spin_lock(&kvm_lock);")
    def lock(self, w, t):
        w.spin_lock(KVM_LOCK, where=WHERE_RT_SPINLOCK_34)

    @line("spin_unlock(&kvm_lock);")
    def unlock(self, w, t):
        w.spin_unlock(KVM_LOCK)
        return DONE


class VcpuFault(Program):
    """A vCPU thread handling a guest page fault: tdp_page_fault() under kvm->mmu_lock."""

    fn = "tdp_page_fault"
    locals = {"idx": None}

    @line("vcpu->srcu_idx = srcu_read_lock(&kvm->srcu);", fn="__vcpu_run")
    def srcu_lock(self, w, t):
        t.idx = w.srcu_read_lock(srcu(self.vm))

    @line("spin_lock(&vcpu->kvm->mmu_lock);")
    def lock(self, w, t):
        w.spin_lock(mmu_lock(self.vm), where=WHERE_RT_SPINLOCK_34)

    @line("r = __direct_map(vcpu, gpa, write, map_writable, level, gfn, pfn, prefault);")
    def direct_map(self, w, t):
        w[pages(self.vm)] = w[pages(self.vm)] + 1

    @line("spin_unlock(&vcpu->kvm->mmu_lock);")
    def unlock(self, w, t):
        w.spin_unlock(mmu_lock(self.vm))

    @line("srcu_read_unlock(&kvm->srcu, vcpu->srcu_idx);", fn="__vcpu_run")
    def srcu_unlock(self, w, t):
        w.srcu_read_unlock(srcu(self.vm), t.idx)
        t.idx = None


class KvmLockShrink(Model):
    name = "kvm_lock_shrink"
    title = "mmu_shrink(): kvm->mmu_lock taken under kvm_lock, raw or not"
    source = ("commit 2f303b74a6, which made kvm_lock a non-raw spinlock again (its message quotes "
              "the 3.4-rt kswapd0 splat; commit e935b8372cf8 had made kvm_lock raw)")
    variants = [
        Variant("raw_kvm_lock", "kvm_lock is a raw_spinlock_t: mmu_shrink() takes the sleeping "
                "(on RT) kvm->mmu_lock with preemption disabled",
                commit="e935b8372cf8", programs={"shrinker": Shrinker, "vcpu": VcpuFault},
                flags={"kvm_lock": "raw"}, buggy=True),
        Variant("spinlock_kvm_lock", "kvm_lock is a spinlock_t again (a sleeping lock on RT)",
                commit="2f303b74a6", programs={"shrinker": ShrinkerSpinlock, "vcpu": VcpuFault},
                flags={"kvm_lock": "spin"}),
    ]
    configs = {
        "PREEMPT_RT": Config(True, "spinlock_t is a sleeping rt_mutex-based lock"),
        "PROVE_RAW_LOCK_NESTING": Config(False, "lockdep checks raw_spinlock_t -> spinlock_t nesting"),
    }
    params = {
        "vms": Param(1, 1, 2, "VMs on vm_list (with 2, the first has no shadow pages)"),
        "vcpus": Param(1, 0, 1, "vCPU threads faulting under kvm->mmu_lock"),
    }
    properties = {
        "no_sleep_in_atomic": "nothing that may sleep runs in atomic context",
        "no_invalid_wait_context": "lockdep's wait-type check: no spinlock_t inside a raw_spinlock_t",
    }
    world = KernelWorld
    goals = {
        "raw_kvm_lock": "With PREEMPT_RT=y, make kswapd0 take kvm->mmu_lock while it holds the raw kvm_lock.",
        "spinlock_kvm_lock": "Try to get a report: kswapd0 may now sleep on kvm->mmu_lock.",
    }

    def setup(self, w, variant, config, params):
        if variant.flags.get("kvm_lock", "raw") == "raw":
            w.raw_spinlock(KVM_LOCK)
        else:
            w.spinlock(KVM_LOCK)
        vms = ("idle_kvm", "kvm") if params["vms"] == 2 else ("kvm",)
        w.declare(VM_LIST, vms)
        for vm in vms:
            w.spinlock(mmu_lock(vm))
            w.srcu_struct(srcu(vm))
            w.declare(pages(vm), 0 if vm == "idle_kvm" else 1)
        w.spawn(variant.programs["shrinker"]("kswapd0", cpu=0, comm="kswapd0", pid=55,
                                             title="kswapd0: mmu_shrink()"))
        if params["vcpus"]:
            w.spawn(variant.programs["vcpu"]("vcpu0", cpu=1, comm="vcpu0", vm="kvm",
                                             title="vCPU thread: guest page fault"))

    def describe_state(self, w):
        def owner(name):
            o = w[name]
            return "unlocked" if o is None else f"held by {w.label(o)}"

        out = {
            f"kvm_lock ({'raw_spinlock_t' if w.lock_type(KVM_LOCK) == 'raw_spinlock_t' else 'spinlock_t'})":
                owner(KVM_LOCK),
            "vm_list": "[" + ", ".join(w[VM_LIST]) + "]",
        }
        for vm in sorted(w[VM_LIST], key=lambda v: v != "kvm"):
            out[mmu_lock(vm)] = owner(mmu_lock(vm))
            readers = w[srcu(vm)]
            out[f"{srcu(vm)} readers"] = ", ".join(w.label(r) for r in readers) if readers else "none"
            out[pages(vm)] = str(w[pages(vm)])
        return out


# -- the nesting checker of chapter 1 ----------------------------------------------------------
# A one-thread probe: enter a context, take some locks, then do one more thing; the kernel
# library's own rules (kvmlab.kernel.locks / alloc / context) decide what is reported.

NEST_CONTEXTS = ("task", "irqs_off", "hardirq")
NEST_LOCKS = ("mutex", "spin", "raw")  # taken in this order (each legal inside the previous)
NEST_ACTIONS = ("raw_spin_lock", "spin_lock", "mutex_lock", "kmalloc_atomic", "kmalloc_kernel")
NEST_C = {
    "task": "/* task context */", "irqs_off": "local_irq_disable();", "hardirq": "irq_enter();",
    "mutex": "mutex_lock(&m1);", "spin": "spin_lock(&s1);", "raw": "raw_spin_lock(&r1);",
    "raw_spin_lock": "raw_spin_lock(&r2);", "spin_lock": "spin_lock(&s2);",
    "mutex_lock": "mutex_lock(&m2);", "kmalloc_atomic": "p = kmalloc(size, GFP_ATOMIC);",
    "kmalloc_kernel": "p = kmalloc(size, GFP_KERNEL);",
}


class _NestProbe(Program):
    """Enter the context, take the held locks, then the next operation (steps that do not
    apply to the chosen combination do nothing, so reports name only the real lines)."""

    fn = "probe"

    @line("local_irq_disable();")
    def ctx_irqs_off(self, w, t):
        if self.ctx == "irqs_off":
            w.local_irq_disable()

    @line("irq_enter();")
    def ctx_hardirq(self, w, t):
        if self.ctx == "hardirq":
            w.hardirq_enter()

    @line("mutex_lock(&m1);")
    def take_mutex(self, w, t):
        if "mutex" in self.held:
            w.mutex_lock("m1")

    @line("spin_lock(&s1);")
    def take_spin(self, w, t):
        if "spin" in self.held:
            w.spin_lock("s1")

    @line("raw_spin_lock(&r1);")
    def take_raw(self, w, t):
        if "raw" in self.held:
            w.raw_spin_lock("r1")
        return self.action

    @line("raw_spin_lock(&r2);")
    def raw_spin_lock(self, w, t):
        w.raw_spin_lock("r2")
        return DONE

    @line("spin_lock(&s2);")
    def spin_lock(self, w, t):
        w.spin_lock("s2")
        return DONE

    @line("mutex_lock(&m2);")
    def mutex_lock(self, w, t):
        w.mutex_lock("m2")
        return DONE

    @line("p = kmalloc(size, GFP_ATOMIC);")
    def kmalloc_atomic(self, w, t):
        w.kmalloc(GFP_ATOMIC, "obj")
        return DONE

    @line("p = kmalloc(size, GFP_KERNEL);")
    def kmalloc_kernel(self, w, t):
        w.kmalloc(GFP_KERNEL, "obj")
        return DONE


class _NestModel(Model):
    name = "nesting_probe"
    variants = [Variant("probe", "one thread: context, held locks, next operation",
                        programs={"probe": _NestProbe})]
    configs = dict(KvmLockShrink.configs)
    params = {
        "ctx": Param("task", choices=NEST_CONTEXTS),
        "held": Param(0, 0, 7, "bit set over NEST_LOCKS"),
        "action": Param("spin_lock", choices=NEST_ACTIONS),
    }
    properties = {"no_sleep_in_atomic": "", "no_invalid_wait_context": ""}
    world = KernelWorld

    def setup(self, w, variant, config, params):
        for name, kind in (("m1", "mutex"), ("s1", "spin"), ("r1", "raw"), ("m2", "mutex"),
                           ("s2", "spin"), ("r2", "raw")):
            getattr(w, {"mutex": "mutex", "spin": "spinlock", "raw": "raw_spinlock"}[kind])(name)
        held = tuple(k for i, k in enumerate(NEST_LOCKS) if params["held"] >> i & 1)
        w.spawn(_NestProbe("probe", cpu=0, comm="probe", pid=1, ctx=params["ctx"], held=held,
                           action=params["action"]))


def nesting_verdict(held, ctx: str, action: str, *, rt: bool, prove: bool = False) -> dict:
    """What the kernel library reports for ``action`` in ``ctx`` with ``held`` locks taken.

    ``held`` is a collection of ``"mutex"``, ``"spin"``, ``"raw"`` (taken in
    that order after entering the context). Returns ``{"setup": [...],
    "reports": [...]}``: reports fired while setting up the held locks, and
    the reports of the action itself (each ``{"property", "title", "text"}``).
    """
    bits = sum(1 << i for i, k in enumerate(NEST_LOCKS) if k in held)
    tr = replay_moves(System(_NestModel, "probe", {"PREEMPT_RT": rt, "PROVE_RAW_LOCK_NESTING": prove},
                             {"ctx": ctx, "held": bits, "action": action}), [0] * 6)

    def evs(step):
        # the probe ends holding its locks on purpose: the lock-leak warning is not the point
        return [{"property": e["property"], "title": e["title"], "text": e["text"]} for e in step["splats"]
                if e["property"] != "no_lock_leak"]

    setup = [e for st in tr.steps[:-1] for e in evs(st)]
    return {"setup": setup, "reports": evs(tr.steps[-1])}


def nesting_table() -> dict:
    """Every combination for the chapter's nesting checker, as JSON-ready data."""
    rows = []
    for ctx in NEST_CONTEXTS:
        for bits in range(1 << len(NEST_LOCKS)):
            held = tuple(k for i, k in enumerate(NEST_LOCKS) if bits >> i & 1)
            for action in NEST_ACTIONS:
                for rt in (False, True):
                    for prove in (False, True):
                        v = nesting_verdict(held, ctx, action, rt=rt, prove=prove)
                        rows.append({"ctx": ctx, "held": bits, "action": action, "rt": rt,
                                     "prove": prove, **v})
    return {"contexts": list(NEST_CONTEXTS), "locks": list(NEST_LOCKS), "actions": list(NEST_ACTIONS),
            "c": NEST_C, "rows": rows}
