"""Kernel report texts, in the kernel's own format.

Addresses (``[<ffffffff...>] func+0x5c/0x1b0``) are not modelled: where the
kernel prints a code address the model prints the C function and the C line
of the step instead. Otherwise the texts follow the kernel's format strings
(``__might_resched()``, lockdep's ``print_lock_invalid_wait_context()``,
``refcount_warn_saturate()``, ``lockdep_rcu_suspicious()``), trimmed to
their first lines: since 2021 the might_sleep() report also prints
``preempt_count: N, expected: M`` and ``RCU nest depth`` lines, which the
model leaves out, and no report prints the call trace.
"""

from __future__ import annotations

# Where might_sleep() fires, for the "at FILE:LINE" part of the report.
# kernel/rtmutex.c:659 is quoted from the 3.4-rt splat in seed 002. For the
# others the file is the one holding the check; line numbers vary between
# releases and are not modelled.
WHERE_RT_SPINLOCK_34 = "kernel/rtmutex.c:659"
WHERE_RT_SPINLOCK = "kernel/locking/spinlock_rt.c"
WHERE_MUTEX = "kernel/locking/mutex.c"
WHERE_ALLOC = "mm/slab_common.c"
WHERE_SCHEDULE = "kernel/sched/core.c"

# Older kernels printed no "non_block" field in the might_sleep() report
# (seed 002, 3.4-rt: "in_atomic(): 1, irqs_disabled(): 0, pid: 55, name:
# kswapd0"). A report located at a site of that era uses that format.
LEGACY_FORMAT_WHERE = frozenset({WHERE_RT_SPINLOCK_34})


def where_line(fn: str, c: str) -> str:
    """The model's stand-in for a code address: ``func: C line``."""
    return f"[<{fn}>] {c.strip()}"


def might_sleep(where: str, in_atomic: int, irqs_disabled: int, pid: int, comm: str,
                pdis: tuple[str, str] | None) -> str:
    lines = [
        f"BUG: sleeping function called from invalid context at {where}",
        f"in_atomic(): {in_atomic}, irqs_disabled(): {irqs_disabled}, "
        + ("" if where in LEGACY_FORMAT_WHERE else "non_block: 0, ") + f"pid: {pid}, name: {comm}",
    ]
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
