"""Reference solution of lab 2 (notebooks/lab2-handshake.ipynb): the schedule-based wait loop.

The loop of kvm_async_pf_task_wait_schedule() (seed 001): set the task state
first, then test whether the waker has already unhashed the node, and only
then sleep. A wake-up that comes after prepare_to_swait_exclusive() finds the
task on the queue (swake_up_one() makes it runnable, so schedule() returns);
one that comes before it has already unhashed the node, which the test sees.
"""

from __future__ import annotations

import kvmlab
from kvmlab.engine import DONE, line
from kvmlab.models.apf_handshake import FaultQueue

FN = "kvm_async_pf_task_wait_schedule"

# the configurations the lab grades: "page ready" on the other CPU, either event first
LAB_PARAMS = [{"same_cpu": 0, "ready_first": 0}, {"same_cpu": 0, "ready_first": 1}]
MUST_HOLD = ["no_lost_wakeup", "no_leak"]


class MyWait(FaultQueue):
    @line("prepare_to_swait_exclusive(&n.wq, &wait, TASK_UNINTERRUPTIBLE);", fn=FN)
    def prepare(self, w, t):
        w.prepare_to_swait_exclusive(self.wq)

    @line("if (hlist_unhashed(&n.link)) break;", fn=FN)
    def check(self, w, t):
        if w.hlist_unhashed(self.node):
            return "finish"

    @line("local_irq_enable();", fn=FN)
    def irq_on(self, w, t):
        w.local_irq_enable()

    @line("schedule();", fn=FN)
    def sleep(self, w, t):
        w.schedule()

    @line("local_irq_disable();", fn=FN)
    def irq_off(self, w, t):
        w.local_irq_disable()
        return "prepare"

    @line("finish_swait(&n.wq, &wait);", fn=FN)
    def finish(self, w, t):
        w.finish_swait(self.wq)
        return DONE


def variant():
    """The learner's variant: the model's schedule_wait with this wait loop."""
    base = kvmlab.model("apf_handshake").variant("schedule_wait")
    return base.derive("mine", "lab 2 reference wait loop", programs={"fault": MyWait})
