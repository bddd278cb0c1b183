# expect: fail terminates
# Each CPU waits until the counter is 0 before it increments: the second one waits forever.
class MyInc(Program):
    fn = "worker"
    locals = {"tmp": 0, "i": 0}

    @line("while (READ_ONCE(counter) != 0) cpu_relax();")
    def wait(self, w, t):
        if w["counter"] != 0:
            return "wait"

    @line("atomic_inc(&counter);")
    def inc(self, w, t):
        w.atomic_inc("counter")
        t.i += 1
        if t.i < self.loops:
            return "wait"
