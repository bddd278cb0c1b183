# expect: pass
class MyInc(Program):
    fn = "worker"
    locals = {"i": 0}

    @line("atomic_inc(&counter);")
    def inc(self, w, t):
        w.atomic_inc("counter")
        t.i += 1
        if t.i < self.loops:
            return "inc"
