# expect: fail no_null_deref
class MyInc(Program):
    fn = "worker"
    locals = {"p": None, "i": 0}

    @line("p->count++;")
    def inc(self, w, t):
        w.deref(t.p)["count"] += 1
