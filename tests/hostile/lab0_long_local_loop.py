# expect: pass
# A private delay loop of 300 local steps, then a correct atomic increment.
class MyInc(Program):
    fn = "worker"
    locals = {"i": 0, "spin": 0}

    @line("for (spin = 0; spin < 300; spin++) cpu_relax();", local=True)
    def delay(self, w, t):
        t.spin += 1
        if t.spin < 300:
            return "delay"
        t.spin = 0

    @line("atomic_inc(&counter);")
    def inc(self, w, t):
        w.atomic_inc("counter")
        t.i += 1
        if t.i < self.loops:
            return "delay"
