# expect: fail no_null_deref
# kzalloc() outside the lock, but the result is used without checking it for NULL.
class MyWaker(WakerOriginal):
    @line("raw_spin_unlock(&b->lock);", before="alloc")
    def unlock_for_alloc(self, w, t):
        w.raw_spin_unlock(B_LOCK)

    @line("n = kzalloc(sizeof(*n), GFP_ATOMIC);")
    def alloc(self, w, t):
        t.n = w.kzalloc(GFP_ATOMIC, "node", may_fail=self.may_fail(t), token=0, cpu=0, wq=(), link=None)

    @line("raw_spin_lock(&b->lock);", after="alloc")
    def relock(self, w, t):
        w.raw_spin_lock(B_LOCK)
        return "init_dummy"   # forgot: if (!n) ...
