"""Reference solution of lab 3 (notebooks/lab3-rcu.ipynb): the can_schedule rule.

Seed 001, commit 6bca69ada4bc "x86/kvm: Sanitize kvm_async_pf_task_wait()":

    if (IS_ENABLED(CONFIG_PREEMPTION))
            can_schedule = preempt_count() + rcu_preempt_depth() == 0;
    else
            can_schedule = usermode;

Graded by ``kvmlab.models.apf_wait.grade_rule(can_schedule)``.
"""

from __future__ import annotations


def can_schedule(w, usermode: bool) -> bool:
    """May the task that took the async #PF sleep in schedule() instead of halting the vCPU?"""
    if w.cfg("PREEMPTION"):
        # preemptible kernel: preempt_count() is 0 only where preemption could happen anyway
        # (user mode included); voluntary scheduling inside an RCU reader is not allowed
        return w.preempt_count() + w.rcu_preempt_depth() == 0
    # without CONFIG_PREEMPTION nothing says whether kernel code could schedule: user mode only
    return usermode


if __name__ == "__main__":
    from kvmlab.models.apf_wait import grade_rule

    print(grade_rule(can_schedule))
