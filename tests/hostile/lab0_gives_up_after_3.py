# expect: fail no_lost_update
# A cmpxchg loop that gives up after 3 failed tries and falls back to a plain store.
class MyInc(Program):
    fn = "worker"
    locals = {"old": 0, "i": 0, "tries": 0}

    @line("old = READ_ONCE(counter);")
    def load(self, w, t):
        t.old = w["counter"]

    @line("if (cmpxchg(&counter, old, old + 1) != old && ++tries < 3) goto load;")
    def cas(self, w, t):
        if w["counter"] == t.old:
            w["counter"] = t.old + 1
        else:
            t.tries += 1
            if t.tries < 3:
                return "load"
            w["counter"] = t.old + 1   # give up: plain store
        t.tries = 0
        t.i += 1
        if t.i < self.loops:
            return "load"
