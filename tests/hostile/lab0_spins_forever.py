# expect: fail terminates
# A worker that never finishes: it reloads the counter forever and never stores.
class MyInc(Program):
    fn = "worker"
    locals = {"tmp": 0, "i": 0}

    @line("counter++;    /* load:  mov counter, %eax */")
    def load(self, w, t):
        t.tmp = w["counter"]
        return "load"
