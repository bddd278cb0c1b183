"""refcount_t and atomic operations, with the kernel's refcount_t warnings.

The refcount helpers follow include/linux/refcount.h: on misuse the kernel
WARNs ("refcount_t: underflow; use-after-free." ...) and saturates the
counter so the object leaks rather than being freed; the model does the
same (saturated value: -1). cmpxchg and xchg are sequentially consistent
atomic steps (the model has no weak memory).
"""

from __future__ import annotations

from . import splat

SATURATED = -1


class RefcountMixin:
    def _refwarn(self, ref, kind: str) -> None:
        text = splat.refcount(kind, self.site())
        self.report("refcount_ok", text, title=text.splitlines()[1])
        self.put(ref, SATURATED)

    def refcount_read(self, ref) -> int:
        return self.get(ref)

    def refcount_set(self, ref, n: int) -> None:
        self.put(ref, n)

    def refcount_inc(self, ref) -> None:
        v = self.get(ref)
        if v == SATURATED:
            return
        if v == 0:
            self._refwarn(ref, "addition_on_0")
            return
        self.put(ref, v + 1)

    def refcount_inc_not_zero(self, ref) -> bool:
        v = self.get(ref)
        if v == 0:
            return False
        if v != SATURATED:
            self.put(ref, v + 1)
        return True

    def refcount_dec_and_test(self, ref) -> bool:
        v = self.get(ref)
        if v == SATURATED:
            return False
        if v <= 0:
            self._refwarn(ref, "underflow")
            return False
        self.put(ref, v - 1)
        return v - 1 == 0

    def refcount_dec(self, ref) -> None:
        """At 1 or below the kernel warns "decrement hit 0; leaking memory." and saturates
        (include/linux/refcount.h: ``if (unlikely(old <= 1)) refcount_warn_saturate(r,
        REFCOUNT_DEC_LEAK);``)."""
        v = self.get(ref)
        if v == SATURATED:
            return
        if v <= 1:
            self._refwarn(ref, "decrement_hit_0")
            return
        self.put(ref, v - 1)

    def refcount_dec_not_one(self, ref) -> bool:
        """Decrement unless the count is 1; true if it decremented.

        At 0 the kernel WARNs "refcount_t: underflow; use-after-free." and
        returns true without changing or saturating the count
        (lib/refcount.c: ``WARN_ONCE(new > val, ...); return true;``).
        """
        v = self.get(ref)
        if v == SATURATED:
            return True
        if v == 1:
            return False
        if v <= 0:
            text = splat.refcount("underflow", self.site(), func="refcount_dec_not_one")
            self.report("refcount_ok", text, title=text.splitlines()[1])
            return True
        self.put(ref, v - 1)
        return True


class AtomicMixin:
    def cmpxchg(self, ref, old, new):
        """Atomically: if *ref == old, *ref = new. Returns the value found."""
        cur = self.get(ref)
        if cur == old:
            self.put(ref, new)
        return cur

    def xchg(self, ref, new):
        cur = self.get(ref)
        self.put(ref, new)
        return cur

    def atomic_inc(self, ref) -> None:
        self.put(ref, self.get(ref) + 1)
