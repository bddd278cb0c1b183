# expect: error ZeroDivisionError
class MyInc(Program):
    fn = "worker"
    locals = {"tmp": 0, "i": 0}

    @line("counter++;")
    def inc(self, w, t):
        w["counter"] = w["counter"] + 1 // t.tmp
