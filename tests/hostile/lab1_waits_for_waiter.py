# expect: fail terminates
# No dummy at all: the waker spins until the waiter's node appears (it may never come first).
class MyWaker(WakerOriginal):
    @line("again: raw_spin_lock(&b->lock);")
    def lock(self, w, t):
        w.raw_spin_lock(B_LOCK)

    @line("n = _find_apf_task(b, token);")
    def find(self, w, t):
        t.n = find_apf_task(w, self.token(t))

    @line("if (!n) { raw_spin_unlock(&b->lock); cpu_relax(); goto again; }")
    def if_not_n(self, w, t):
        if not t.n:
            w.raw_spin_unlock(B_LOCK)
            return "lock"
        return "wake_one"
