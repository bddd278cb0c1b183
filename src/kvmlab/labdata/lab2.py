# kvmlab lab2: the preamble (run before the answer), then the answer cell's starter.
# ruff: noqa: F401
import kvmlab
from kvmlab.engine import DONE, line
from kvmlab.models.apf_handshake import FaultQueue

FN = "kvm_async_pf_task_wait_schedule"

# --- answer ---
class MyWait(FaultQueue):
    """The wait loop of kvm_async_pf_task_wait_schedule(), after the node is queued."""

    @line("if (hlist_unhashed(&n.link)) break;", fn=FN)
    def check(self, w, t):
        if w.hlist_unhashed(self.node):
            return "finish"

    @line("prepare_to_swait_exclusive(&n.wq, &wait, TASK_UNINTERRUPTIBLE);", fn=FN)
    def prepare(self, w, t):
        w.prepare_to_swait_exclusive(self.wq)

    @line("local_irq_enable();", fn=FN)
    def irq_on(self, w, t):
        w.local_irq_enable()

    @line("schedule();", fn=FN)
    def sleep(self, w, t):
        w.schedule()

    @line("local_irq_disable();", fn=FN)
    def irq_off(self, w, t):
        w.local_irq_disable()
        return "check"

    @line("finish_swait(&n.wq, &wait);", fn=FN)
    def finish(self, w, t):
        w.finish_swait(self.wq)
        return DONE
