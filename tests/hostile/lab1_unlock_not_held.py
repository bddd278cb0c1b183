# expect: fail no_bad_unlock
# After allocating, it jumps back to the lookup without retaking b->lock, then unlocks it.
class MyWaker(WakerOriginal):
    @line("raw_spin_unlock(&b->lock);", before="alloc")
    def unlock_for_alloc(self, w, t):
        w.raw_spin_unlock(B_LOCK)

    @line("n = kzalloc(sizeof(*n), GFP_ATOMIC);")
    def alloc(self, w, t):
        t.n = w.kzalloc(GFP_ATOMIC, "node", may_fail=False, token=0, cpu=0, wq=(), link=None)
        return "init_dummy"
