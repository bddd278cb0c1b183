# expect: fail no_lost_wakeup
# The accepted shape (allocate outside the lock, look up again), but it gives up after 3 failed
# allocations: the waiter then sleeps forever.
class MyWaker(WakerOriginal):
    locals = {"dummy": None, "tries": 0}

    @line("if (!dummy) {", after="if_not_n", local=True)
    def if_no_dummy(self, w, t):
        if t.dummy:
            return "init_dummy"

    @line("raw_spin_unlock(&b->lock);", before="alloc")
    def unlock_for_alloc(self, w, t):
        w.raw_spin_unlock(B_LOCK)

    @line("dummy = kzalloc(sizeof(*dummy), GFP_ATOMIC);")
    def alloc(self, w, t):
        t.dummy = w.kzalloc(GFP_ATOMIC, "node", may_fail=self.may_fail(t), token=0, cpu=0, wq=(), link=None)

    @line("if (!dummy && ++tries == 3) return;  /* give up */", local=True)
    def if_alloc_failed(self, w, t):
        if not t.dummy:
            self.failed(t)
            t.tries += 1
            if t.tries == 3:
                t.tries = 0
                return self.next_call(w, t)
        return "lock"

    drop = ("unlock_retry", "retry")

    @line(["dummy->token = token;", "dummy->cpu = smp_processor_id();"], local=True)
    def init_dummy(self, w, t):
        n = w.deref(t.dummy)
        n["token"] = self.token(t)
        n["cpu"] = self.cpu

    @line("hlist_add_head(&dummy->link, &b->list);")
    def add_dummy(self, w, t):
        w.hlist_add_head(B_LIST, t.dummy)
        t.dummy = None
        return "unlock"

    @line(["if (dummy)", "kfree(dummy);"])
    def ret(self, w, t):
        if t.dummy is not None:
            w.kfree(t.dummy)
            t.dummy = None
        t.tries = 0
        return self.next_call(w, t)
