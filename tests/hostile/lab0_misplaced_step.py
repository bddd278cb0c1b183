# expect: submission can never run
# A subclass adds the lock and unlock without saying where: they go after the last step, which
# always jumps or finishes, so they could never run.
from kvmlab.models.lost_update import PlainInc


class MyInc(PlainInc):
    @line("spin_lock(&lock);")
    def lock(self, w, t):
        w.spin_lock("lock")

    @line("counter++;    /* store: add $1, %eax; mov %eax, counter */")
    def store(self, w, t):
        w["counter"] = t.tmp + 1
        t.i += 1
        return "unlock"

    @line("spin_unlock(&lock);")
    def unlock(self, w, t):
        w.spin_unlock("lock")
        return "load" if t.i < self.loops else DONE
