"""Branch-coverage configurations of the chapter 0-3 models, for tools/model_coverage.py.

``CONFIGS`` lists, per model, the (variant, params, config) triples the chapters and their
tests check; ``NOT_COVERED`` names the model functions with a branch no configuration takes,
and why (the chapters say the same). ``EXTRA_FILES`` are model files shared by several models,
to measure with them. tools/model_coverage.py (written for chapters 4 to 6) merges these:

    from model_coverage_ch0_3 import CONFIGS as C03, NOT_COVERED as N03
    CONFIGS.update(C03); NOT_COVERED.update(N03)

Measured with that tool on this branch: every branch of every step of lost_update, apf_wake,
apf_handshake and rcu_watch is taken; the gaps are listed below.
"""

from __future__ import annotations

import itertools

_APF_WAIT_CONTEXTS = [{"context": "host", "preempt_count": 0, "rcu_nesting": 0},
                      {"context": "user", "preempt_count": 0, "rcu_nesting": 0}] + [
    {"context": "kernel", "preempt_count": pc, "rcu_nesting": rn} for pc, rn in itertools.product((0, 1), (0, 1))
] + [{"context": "idle", "preempt_count": 1, "rcu_nesting": 0}]
_APF_WAIT_CONFIGS = [dict(zip(("PREEMPTION", "PREEMPT_COUNT", "PREEMPT_RCU"), b))
                     for b in itertools.product((True, False), repeat=3)]

CONFIGS: dict[str, list[tuple[str, dict, dict]]] = {
    "lost_update": [(v, {"cpus": c, "loops": lp}, {}) for v in ("plain", "atomic", "spinlock")
                    for c, lp in ((2, 1), (2, 2), (3, 1))],
    "kvm_lock_shrink": [(v, {"vms": vms, "vcpus": vc}, {"PREEMPT_RT": rt, "PROVE_RAW_LOCK_NESTING": pr})
                        for v in ("raw_kvm_lock", "spinlock_kvm_lock") for vms in (1, 2) for vc in (0, 1)
                        for rt in (False, True) for pr in (False, True)],
    "apf_wake": [(v, p, {"PREEMPT_RT": rt}) for v in ("original", "unlock_alloc", "recheck", "recheck_atomic")
                 for rt in (False, True)
                 for p in ({}, {"waiters": 2, "wakers": 2}, {"waiters": 2, "wakers": 1, "alloc_failures": 2},
                           {"context": "hardirq"}, {"alloc_failures": 0})],
    "apf_handshake": [(v, {"ready_first": rf, "same_cpu": sc, "irqs_off": off, **x}, {})
                      for v in ("schedule_wait", "check_then_prepare", "safe_halt", "sti_then_hlt", "wake_all")
                      for rf, sc, off in itertools.product((0, 1), (0, 1), (0, 1))
                      for x in ({}, {"wake_all_anytime": 1}) if not (x and v != "wake_all")],
    "apf_wait": [(v, ctx, cfg) for v in ("single_wait", "split_wait", "preempt_only")
                 for cfg in _APF_WAIT_CONFIGS for ctx in _APF_WAIT_CONTEXTS],
    "rcu_watch": [(v, {}, {}) for v in ("watching", "eqs_reader", "irq_enter")],
}

EXTRA_FILES = {m: ["_apf_common.py"] for m in ("apf_wake", "apf_handshake", "apf_wait")}

NOT_COVERED: dict[str, dict[str, str]] = {
    "kvm_lock_shrink": {
        "Shrinker.next_vm": "the walk never reaches the end of vm_list: every configuration has a VM with "
                            "shadow pages (the splat's situation), where mmu_shrink() stops",
        "_NestProbe.ctx_hardirq": "the nesting checker's probe: run by nesting_table() (every combination, "
                                  "tests/test_ch1_raw_spinlocks.py), not by a model configuration",
        "_NestProbe.ctx_irqs_off": "as _NestProbe.ctx_hardirq",
        "_NestProbe.take_mutex": "as _NestProbe.ctx_hardirq",
        "_NestProbe.take_raw": "as _NestProbe.ctx_hardirq",
        "_NestProbe.take_spin": "as _NestProbe.ctx_hardirq",
    },
    "apf_wake": {
        "queue_task": "the version switch of the shared kvm_async_pf_queue_task(): apf_wake runs the 2022 "
                      "version, apf_handshake and apf_wait the 2020 one",
        "queue_task.QueueTask.init_node": "as queue_task (n->use_halt is a 2020 line)",
    },
    "apf_handshake": {
        "find_apf_task": "one token: the lookup never skips a node of another token",
        "queue_task": "as for apf_wake, the other version",
        "queue_task.QueueTask.init_node": "as queue_task",
    },
    "apf_wait": {
        "find_apf_task": "one token: the lookup never skips a node of another token",
        "queue_task": "as for apf_wake, the other version",
        "queue_task.QueueTask.init_node": "as queue_task",
        "_sleep_checks": "its reports fire only for a wrong rule: no kernel variant schedules where RCU is "
                         "not watching, inside a reader with PREEMPT_RCU=n, or with a hidden preempt count "
                         "(tests/test_ch3_rcu.py and exercise ch3-ex-rcuonly reach them)",
    },
}
