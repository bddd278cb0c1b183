# expect: error did not return
class MyInc(Program):
    fn = "worker"
    locals = {"tmp": 0, "i": 0}

    @line("counter++;")
    def inc(self, w, t):
        while True:
            pass
