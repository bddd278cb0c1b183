"""Per-CPU/task context: preempt count, interrupts, might_sleep(), config switches.

The preempt count follows the kernel's layout: bits 0-7 count
preempt_disable() (and spinlocks that disable preemption), bit 16 up is the
hardirq count (``HARDIRQ_OFFSET``). ``_pre`` always holds the true count;
``preempt_count()`` is what the kernel can see, which is only the hardirq
part when ``CONFIG_PREEMPT_COUNT`` is off (then spinlocks do not count and
might_sleep() cannot notice them).
"""

from __future__ import annotations

from ..engine.errors import ModelError, Oops
from . import splat

HARDIRQ_OFFSET = 1 << 16


class ContextMixin:
    """Kernel context of every thread, and the config switches the primitives read."""

    # _pre: true preempt count; _pdis: (fn, C line) that disabled preemption;
    # _irq: interrupts disabled; _held: locks held, in order; _rcu: RCU read
    # nesting; _watch: RCU watching nesting (0 = extended quiescent state);
    # _state: task state ("R" running, "D" TASK_UNINTERRUPTIBLE, "Ds" asleep
    # in schedule() after a report); _wait: the sleeping lock waited for.
    thread_fields = {"_pc": 0, "_pre": 0, "_pdis": None, "_irq": False, "_held": (),
                     "_rcu": 0, "_watch": 1, "_state": "R", "_wait": None}

    # -- config --------------------------------------------------------------
    def cfg(self, name: str, default: bool = False) -> bool:
        return bool(self.config.get(name, default))

    @property
    def rt(self) -> bool:
        return self.cfg("PREEMPT_RT")

    @property
    def preempt_count_visible(self) -> bool:
        return self.rt or self.cfg("PREEMPTION") or self.cfg("PREEMPT_COUNT", True)

    # -- where are we ------------------------------------------------------------
    def site(self, tid: int | None = None) -> tuple[str, str]:
        """(C function, C line) of thread ``tid``'s current step (default: the running one)."""
        tid = self.tid if tid is None else tid
        t = self.thread(tid)
        st = self.programs[tid].steps[t["_pc"]]
        return st.fn, st.text

    def label(self, tid: int) -> str:
        return self.programs[tid].label

    def me(self):
        return self.programs[self.tid]

    # -- refs: a shared field name, or (object id, field) ---------------------------
    def get(self, ref):
        if isinstance(ref, str):
            return self.sh[ref]
        oid, f = ref
        return self.deref(oid)[f]

    def put(self, ref, value) -> None:
        if isinstance(ref, str):
            if ref not in self.sh:
                raise ModelError(f"assignment to undeclared shared field {ref!r}")
            self.sh[ref] = value
        else:
            oid, f = ref
            o = self.deref(oid)
            if f not in o:
                raise ModelError(f"object {oid} has no field {f!r}")
            o[f] = value

    def deref(self, oid: int):
        """The object ``oid``; a freed one is a KASAN use-after-free (fatal)."""
        if oid is None:
            self.report("no_null_deref", "BUG: kernel NULL pointer dereference, address: 0000000000000000\n"
                        f"RIP: {splat.where_line(*self.site())}", fatal=True,
                        title="BUG: kernel NULL pointer dereference")
            raise Oops()
        if not self.has_obj(oid):
            p = self.me()
            self.report("no_use_after_free",
                        splat.kasan("uaf", f"object #{oid}", self.site(), p.comm, p.pid), fatal=True,
                        title=f"BUG: KASAN: use-after-free in {self.site()[0]}")
            return _Poison()
        return self.obj(oid)

    # -- preemption and interrupts -------------------------------------------------
    def preempt_count(self, tid: int | None = None) -> int:
        t = self.t if tid is None else self.thread(tid)
        pre = t["_pre"]
        return pre if self.preempt_count_visible else pre & ~0xFFFF

    def in_atomic(self) -> bool:
        return self.preempt_count() != 0

    def irqs_disabled(self) -> bool:
        return self.t["_irq"]

    def preempt_disable(self) -> None:
        t = self.t
        if t["_pre"] == 0:
            t["_pdis"] = self.site()
        t["_pre"] += 1

    def preempt_enable(self) -> None:
        t = self.t
        if t["_pre"] & 0xFF == 0:
            raise ModelError(f"{self.me()}: preempt_enable() without preempt_disable()")
        t["_pre"] -= 1
        if t["_pre"] == 0:
            t["_pdis"] = None

    def hardirq_enter(self) -> None:
        t = self.t
        if t["_pre"] == 0:
            t["_pdis"] = self.site()
        t["_pre"] += HARDIRQ_OFFSET
        t["_irq"] = True

    def hardirq_exit(self) -> None:
        t = self.t
        t["_pre"] -= HARDIRQ_OFFSET
        if t["_pre"] == 0:
            t["_pdis"] = None
        t["_irq"] = False

    def in_hardirq(self) -> bool:
        return bool(self.t["_pre"] & ~0xFFFF)

    def local_irq_disable(self) -> None:
        self.t["_irq"] = True

    def local_irq_enable(self) -> None:
        self.t["_irq"] = False
        if self.programs[self.tid].kind == "task" and hasattr(self, "deliver_irqs"):
            self.deliver_irqs(self.programs[self.tid].cpu)  # a latched interrupt is taken now

    def local_irq_save(self) -> bool:
        old = self.t["_irq"]
        self.t["_irq"] = True
        return old

    def local_irq_restore(self, flags: bool) -> None:
        self.t["_irq"] = flags

    # -- might_sleep ------------------------------------------------------------------
    def might_sleep(self, where: str = splat.WHERE_SCHEDULE, prop: str = "no_sleep_in_atomic") -> bool:
        """The kernel's might_sleep() check; reports and returns True if it fires."""
        t = self.t
        atomic = self.preempt_count() != 0
        irqs = t["_irq"]
        if not atomic and not irqs:
            return False
        p = self.me()
        text = splat.might_sleep(where, int(atomic), int(irqs), p.pid, p.comm,
                                 t["_pdis"] if atomic else None, self.preempt_count(),
                                 self.rcu_nest_depth_shown())
        self.report(prop, text, title="BUG: sleeping function called from invalid context")
        return True

    def rcu_nest_depth_shown(self) -> int | None:
        """The "RCU nest depth" of a might_sleep() report; None without PREEMPT_RCU (no such line)."""
        if self.rt or self.cfg("PREEMPT_RCU", True):
            return self.t["_rcu"]
        return None

    def truly_atomic(self) -> bool:
        """True if this context must not sleep, whether or not the kernel can tell."""
        return self.t["_pre"] != 0 or self.t["_irq"]

    def panic(self, msg: str) -> None:
        self.report("no_panic", splat.panic(msg), fatal=True)

    # -- display ------------------------------------------------------------------------
    def context_summary(self, tid: int) -> dict[str, str]:
        t = self.thread(tid)
        if t is None:
            return {}
        out = {}
        if t["_pre"]:
            out["preempt_count"] = hex(t["_pre"])
        if t["_irq"]:
            out["irqs"] = "off"
        if t["_held"]:
            out["held"] = ", ".join(h for h, _ in t["_held"])
        if t["_rcu"]:
            out["rcu_read_lock"] = str(t["_rcu"])
        if t["_watch"] == 0:
            out["rcu"] = "not watching"
        if t["_state"] != "R":
            out["state"] = "TASK_UNINTERRUPTIBLE"
        return out


class _Poison(dict):
    """What a use-after-free reads: anything, here nothing useful."""

    def __getitem__(self, k):
        return None

    def __setitem__(self, k, v):
        pass

    def __contains__(self, k):
        return True
