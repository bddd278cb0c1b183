# expect: submission can never run
# The unlock and relock are written in place in a subclass, without after=/before=: they go after
# the last step, ret, which always returns or jumps, so they could never run.
class MyWaker(WakerOriginal):
    @line("raw_spin_unlock(&b->lock);")
    def unlock_for_alloc(self, w, t):
        w.raw_spin_unlock(B_LOCK)

    @line("n = kzalloc(sizeof(*n), GFP_KERNEL);")
    def alloc(self, w, t):
        t.n = w.kzalloc(GFP_KERNEL, "node", may_fail=self.may_fail(t), token=0, cpu=0, wq=(), link=None)

    @line("raw_spin_lock(&b->lock);")
    def relock(self, w, t):
        w.raw_spin_lock(B_LOCK)
