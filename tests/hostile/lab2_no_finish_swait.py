# expect: fail returns_dequeued
# Returns without finish_swait(): the task may leave in TASK_UNINTERRUPTIBLE, still on n.wq.
class MyWait(FaultQueue):
    @line("prepare_to_swait_exclusive(&n.wq, &wait, TASK_UNINTERRUPTIBLE);", fn=FN)
    def prepare(self, w, t):
        w.prepare_to_swait_exclusive(self.wq)

    @line("if (hlist_unhashed(&n.link)) return;", fn=FN)
    def check(self, w, t):
        if w.hlist_unhashed(self.node):
            return DONE

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
