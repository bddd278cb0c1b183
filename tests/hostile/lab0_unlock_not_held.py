# expect: fail no_bad_unlock
# The lock is released twice.
class MyInc(Program):
    fn = "worker"
    locals = {"tmp": 0, "i": 0}

    @line("spin_lock(&lock);")
    def lock(self, w, t):
        w.spin_lock("lock")

    @line("counter++;")
    def inc(self, w, t):
        w["counter"] += 1

    @line("spin_unlock(&lock);")
    def unlock(self, w, t):
        w.spin_unlock("lock")

    @line("spin_unlock(&lock);  /* again */")
    def unlock2(self, w, t):
        w.spin_unlock("lock")
        t.i += 1
        if t.i < self.loops:
            return "lock"
