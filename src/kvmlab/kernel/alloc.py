"""kmalloc/kzalloc/kfree with GFP meaning, failures, leaks, use-after-free, double free.

* ``GFP_KERNEL`` may sleep: might_sleep() fires in atomic context.
* ``GFP_ATOMIC`` does not sleep on !PREEMPT_RT. On PREEMPT_RT the allocator
  takes sleeping locks (locktypes.rst: "the memory allocator is fully
  preemptible"), so any allocation in a truly atomic context (preemption
  or interrupts disabled) is reported.
* ``kfree()`` while holding a ``raw_spinlock_t`` on PREEMPT_RT is reported
  as ``no_free_under_raw_lock``. This is the book's conservative reading,
  not a kernel check: locktypes.rst says the allocator "cannot be invoked
  from truly atomic contexts" on RT and names allocation only; Sean
  Christopherson wrote (lore 20220519090218.2230653-1-yajun.deng@linux.dev
  thread) that kfree() looked safe under a raw lock. The merged fix
  0547758a6de3 frees after unlocking, as the 2020 waiter does.
* Failure is a nondeterministic choice, explored only where the model says
  it may fail (``may_fail=True``); models bound how often.
* Objects are kept in the world's object store: freed objects disappear, a
  later access is a KASAN use-after-free, a second kfree a double free.
  ``leaked()`` lists heap objects still allocated.

Simplification: the allocator's own locks are not modelled as locks, so
lockdep's wait-type check does not look inside kmalloc().
"""

from __future__ import annotations

from . import splat

GFP_KERNEL = "GFP_KERNEL"
GFP_ATOMIC = "GFP_ATOMIC"
GFP_NOWAIT = "GFP_NOWAIT"


class AllocMixin:
    def kmalloc(self, gfp: str, kind: str = "obj", *, may_fail: bool = False,
                where: str | None = None, **fields):
        """Allocate an object with ``fields``; returns its id, or None on failure."""
        if gfp == GFP_KERNEL:
            self.might_sleep(where or splat.WHERE_ALLOC)
        elif self.rt and self.truly_atomic():
            # On RT the allocator may sleep even for GFP_ATOMIC; report it as the
            # kernel's might_sleep() in the allocator's sleeping lock would.
            t = self.t
            p = self.me()
            text = splat.might_sleep(where or splat.WHERE_RT_SPINLOCK, int(t["_pre"] != 0),
                                     int(t["_irq"]), p.pid, p.comm, t["_pdis"], t["_pre"],
                                     self.rcu_nest_depth_shown())
            self.report("no_sleep_in_atomic", text, title="BUG: sleeping function called from invalid context")
        if may_fail and self.choose("kmalloc", ("ok", "fail")) == "fail":
            return None
        return self.new_obj(kind, _heap=True, **fields)

    kzalloc = kmalloc

    def kfree(self, oid) -> None:
        if oid is None:
            return
        if not self.has_obj(oid):
            p = self.me()
            self.report("no_double_free", splat.kasan("double", f"object #{oid}", self.site(), p.comm, p.pid),
                        fatal=True)
            return
        if self.rt and any(self.lock_type(h) == "raw_spinlock_t" for h, _ in self.t["_held"]):
            p = self.me()
            held = ", ".join(h for h, _ in self.t["_held"])
            self.report("no_free_under_raw_lock",
                        f"kfree() with raw spinlock(s) held on PREEMPT_RT: {held}\n"
                        f"{p.comm}/{p.pid} at: {splat.where_line(*self.site())}",
                        title="kfree() under a raw spinlock on PREEMPT_RT")
        if not self.obj(oid).get("_heap"):
            p = self.me()
            self.report("no_invalid_free", splat.kasan("invalid", f"object #{oid}", self.site(), p.comm, p.pid),
                        fatal=True)
            return
        self.del_obj(oid)

    def leaked(self) -> list[int]:
        return [oid for oid, o in self.objects().items() if o.get("_heap")]
