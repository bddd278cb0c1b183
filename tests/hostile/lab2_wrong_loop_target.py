# expect: fail terminates
# The loop goes back to the check, not to prepare_to_swait_exclusive(): after a wake-up the task
# stays TASK_RUNNING, and schedule() returns at once, again and again.
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
        return "check"

    @line("finish_swait(&n.wq, &wait);", fn=FN)
    def finish(self, w, t):
        w.finish_swait(self.wq)
        return DONE
