# kvmlab lab0: the preamble (run before the answer), then the answer cell's starter.
# ruff: noqa: F401
import kvmlab
from kvmlab.engine import DONE, Program, line

# --- answer ---
class MyInc(Program):
    """counter++ on one CPU, self.loops times."""

    fn = "worker"
    locals = {"tmp": 0, "i": 0}

    @line("counter++;    /* load:  mov counter, %eax */")
    def load(self, w, t):
        t.tmp = w["counter"]

    @line("counter++;    /* store: add $1, %eax; mov %eax, counter */")
    def store(self, w, t):
        w["counter"] = t.tmp + 1
        t.i += 1
        if t.i < self.loops:
            return "load"
