"""Kernel report texts, in the kernel's own format.

Addresses (``[<ffffffff...>] func+0x5c/0x1b0``) are not modelled: where the
kernel prints a code address the model prints the C function and the C line
of the step instead. Otherwise the texts follow the kernel's format strings
(``__might_resched()``, lockdep's ``print_lock_invalid_wait_context()``,
``refcount_warn_saturate()``, ``lockdep_rcu_suspicious()``), trimmed to
their first lines: no report prints the call trace or the held locks.

The might_sleep() report has two formats. The 3.4-rt one of commit
2f303b74a6 (two lines, no ``non_block``), and the one of
``__might_resched()`` in kernel/sched/core.c since the 2021 rework
(50e081b96e35 "sched: Make RCU nest depth distinct in __might_resched()"):
``in_atomic(): ..., non_block: 0, pid: ..., name: ...``, then
``preempt_count: %x, expected: %x`` and, with PREEMPT_RCU (always on
PREEMPT_RT), ``RCU nest depth: %d, expected: %u``.
"""

from __future__ import annotations

# Where might_sleep() fires, the "at FILE:LINE" of the report. Line numbers
# change between releases; each is taken from a real report of that era:
# kernel/rtmutex.c:659 from the 3.4-rt splat quoted by commit 2f303b74a6;
# spinlock_rt.c:46 (rt_spin_lock()) from 5.17-rt and 5.19-rt reports;
# include/linux/sched/mm.h:274 (might_alloc(), reached by every GFP_KERNEL
# allocation) from 2022-2023 reports (e.g. the one in upstream 87b93b678e95);
# mutex.c and sched/core.c are given without a line (not checked).
WHERE_RT_SPINLOCK_34 = "kernel/rtmutex.c:659"
WHERE_RT_SPINLOCK = "kernel/locking/spinlock_rt.c:46"
WHERE_MUTEX = "kernel/locking/mutex.c"
WHERE_ALLOC = "include/linux/sched/mm.h:274"
WHERE_SCHEDULE = "kernel/sched/core.c"

# Older kernels printed no "non_block" field and no preempt_count line
# (3.4-rt: "in_atomic(): 1, irqs_disabled(): 0, pid: 55, name: kswapd0").
# A report located at a site of that era uses that format.
LEGACY_FORMAT_WHERE = frozenset({WHERE_RT_SPINLOCK_34})


def where_line(fn: str, c: str) -> str:
    """The model's stand-in for a code address: ``func: C line``."""
    return f"[<{fn}>] {c.strip()}"


def might_sleep(where: str, in_atomic: int, irqs_disabled: int, pid: int, comm: str,
                pdis: tuple[str, str] | None, preempt_count: int = 0,
                rcu_depth: int | None = None) -> str:
    """The might_sleep() report; ``rcu_depth`` None leaves out the RCU line (!PREEMPT_RCU)."""
    legacy = where in LEGACY_FORMAT_WHERE
    lines = [
        f"BUG: sleeping function called from invalid context at {where}",
        f"in_atomic(): {in_atomic}, irqs_disabled(): {irqs_disabled}, "
        + ("" if legacy else "non_block: 0, ") + f"pid: {pid}, name: {comm}",
    ]
    if not legacy:
        lines.append(f"preempt_count: {preempt_count:x}, expected: 0")
        if rcu_depth is not None:
            lines.append(f"RCU nest depth: {rcu_depth}, expected: 0")
    if pdis is not None:
        lines += ["Preemption disabled at:", where_line(*pdis)]
    return "\n".join(lines)


def invalid_wait_context(comm: str, pid: int, lock: str, lock_wt: int, at: tuple[str, str],
                         ctx_wt: int, held: list[tuple[str, int, tuple[str, str]]]) -> str:
    bar = "=" * 29
    lines = [
        bar,
        "[ BUG: Invalid wait context ]",
        "-" * 29,
        f"{comm}/{pid} is trying to lock:",
        f"({lock}){{....}}-{{{lock_wt}:{lock_wt}}}, at: {where_line(*at)}",
        "other info that might help us debug this:",
        f"context-{{{ctx_wt}:{ctx_wt}}}",
        f"{len(held)} lock{'s' if len(held) != 1 else ''} held by {comm}/{pid}:",
    ]
    for i, (name, wt, site) in enumerate(held):
        lines.append(f" #{i}: ({name}){{....}}-{{{wt}:{wt}}}, at: {where_line(*site)}")
    return "\n".join(lines)


def scheduling_while_atomic(comm: str, pid: int, count: int) -> str:
    return f"BUG: scheduling while atomic: {comm}/{pid}/0x{count:08x}"


def rcu_voluntary_switch(comm: str, pid: int, site: tuple[str, str], cpu: int = 0) -> str:
    # WARN_ONCE() in rcu_note_context_switch() (PREEMPT_RCU). Before the 2021 patch
    # "rcu: Print human-readable message for schedule() in RCU reader" (lore
    # 20210721202127.2129660-18-paulmck@kernel.org) it was a bare WARN_ON_ONCE().
    return "\n".join([
        "------------[ cut here ]------------",
        "Voluntary context switch within RCU read-side critical section!",
        f"WARNING: CPU: {cpu} PID: {pid} at kernel/rcu/tree_plugin.h rcu_note_context_switch",
        f"CPU: {cpu} PID: {pid} Comm: {comm}",
        f"Call Trace: {where_line(*site)}",
    ])


def rcu_suspicious(what: str, comm: str, pid: int, site: tuple[str, str]) -> str:
    return "\n".join([
        "=============================",
        "WARNING: suspicious RCU usage",
        "-----------------------------",
        f"{what}",
        "other info that might help us debug this:",
        "RCU used illegally from extended quiescent state!",
        f"rcu_scheduler_active = 2, debug_locks = 1, task {comm}/{pid}",
        f"at: {where_line(*site)}",
    ])


def refcount(kind: str, site: tuple[str, str], func: str = "refcount_warn_saturate") -> str:
    """A refcount_t WARN; ``func`` is the function holding the WARN (lib/refcount.c)."""
    texts = {
        "underflow": "refcount_t: underflow; use-after-free.",
        "addition_on_0": "refcount_t: addition on 0; use-after-free.",
        "saturated": "refcount_t: saturated; leaking memory.",
        "decrement_hit_0": "refcount_t: decrement hit 0; leaking memory.",
    }
    return "\n".join([
        "------------[ cut here ]------------",
        texts[kind],
        f"WARNING: CPU: 0 PID: 0 at lib/refcount.c {func}",
        f"Call Trace: {where_line(*site)}",
    ])


def kasan(kind: str, obj: str, site: tuple[str, str], comm: str, pid: int) -> str:
    head = {"uaf": "use-after-free", "double": "double-free", "invalid": "invalid-free"}[kind]
    return "\n".join([
        "=" * 66,
        f"BUG: KASAN: {head} in {site[0]}",
        f"{'Read' if kind == 'uaf' else 'Free'} of {obj} by task {comm}/{pid}:",
        f" {where_line(*site)}",
        "=" * 66,
    ])


def unlock_non_owner(lock: str, comm: str, pid: int, owner: str, site: tuple[str, str]) -> str:
    return "\n".join([
        "=====================================",
        "WARNING: bad unlock balance detected!",
        "-------------------------------------",
        f"{comm}/{pid} is trying to release lock ({lock}) at:",
        where_line(*site),
        f"but the lock is held by {owner}.",
    ])


def lock_held_at_exit(comm: str, pid: int, locks: list[str]) -> str:
    return "\n".join([
        "================================================",
        "WARNING: lock held when returning to user space!",
        "------------------------------------------------",
        f"{comm}/{pid} is leaving the kernel with locks still held!",
    ] + [f" #{i}: ({n})" for i, n in enumerate(locks)])


def panic(msg: str) -> str:
    return f"Kernel panic - not syncing: {msg}"
