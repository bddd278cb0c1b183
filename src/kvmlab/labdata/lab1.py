# kvmlab lab1: the preamble (run before the answer), then the answer cell's starter.
# ruff: noqa: F401
import kvmlab
from kvmlab.engine import DONE, line
from kvmlab.kernel import GFP_ATOMIC, GFP_KERNEL
from kvmlab.models.apf_wake import B_LIST, B_LOCK, WakerOriginal, find_apf_task

# --- answer ---
class MyWaker(WakerOriginal):
    """kvm_async_pf_task_wake(token): wake the waiter, or leave a dummy node for it."""

    @line("again: raw_spin_lock(&b->lock);")
    def lock(self, w, t):
        w.raw_spin_lock(B_LOCK)

    @line("n = _find_apf_task(b, token);")
    def find(self, w, t):
        t.n = find_apf_task(w, self.token(t))

    @line("if (!n) {", local=True)
    def if_not_n(self, w, t):
        if t.n:
            return "wake_one"

    @line("n = kzalloc(sizeof(*n), GFP_ATOMIC);")
    def alloc(self, w, t):
        t.n = w.kzalloc(GFP_ATOMIC, "node", may_fail=self.may_fail(t), token=0, cpu=0, wq=(),
                        link=None)

    @line("if (!n) {", local=True)
    def if_alloc_failed(self, w, t):
        if t.n:
            return "init_dummy"
        self.failed(t)

    @line("raw_spin_unlock(&b->lock);")
    def unlock_retry(self, w, t):
        w.raw_spin_unlock(B_LOCK)

    @line(["cpu_relax();", "goto again;"], local=True)
    def retry(self, w, t):
        return "lock"

    @line(["n->token = token;", "n->cpu = smp_processor_id();", "init_swait_queue_head(&n->wq);"],
          local=True)
    def init_dummy(self, w, t):
        n = w.deref(t.n)
        n["token"] = self.token(t)
        n["cpu"] = self.cpu

    @line("hlist_add_head(&n->link, &b->list);")
    def add_dummy(self, w, t):
        w.hlist_add_head(B_LIST, t.n)
        return "unlock"

    # apf_task_wake_one(n) (steps wake_one and swake) and the final
    # raw_spin_unlock(&b->lock) (step unlock) are inherited unchanged.

    @line("return;")
    def ret(self, w, t):
        return self.next_call(w, t)
