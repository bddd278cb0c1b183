"""Putting the last reference to a TDP MMU root: kvm_tdp_mmu_put_root() and its rivals.

Source: seed 004 (the March 2022 thread on "[PATCH v3 20/28] KVM: x86/mmu:
Allow yielding when zapping GFNs for defunct TDP MMU root" between Sean
Christopherson and Paolo Bonzini) and the kernel history it names, checked
against the public lore archive and kernel logs:

* ``v3``: Sean's patch as posted, lore
  20220226001546.360188-21-seanjc@google.com (plain ``role.invalid`` check,
  ``refcount_set(..., 1)``, zap, then a recursive ``kvm_tdp_mmu_put_root()``).
* ``dec_not_one``: Paolo's first counter-proposal, 1 March 2022, lore
  28276890-c90c-e9a9-3cab-15264617ef5a@redhat.com (``refcount_dec_not_one``,
  ``xchg``, the count forced to 0). Paolo's text is pseudocode (an unclosed
  comment); the model runs it as he evidently meant it.
* ``no_invalid_check``: not a proposal but the counterfactual that the
  comment in v3 and in Sean's reply (seed 004) warns against: "Re-zapping
  invalid roots would put KVM into an infinite loop". v3 without its
  ``if (root->role.invalid)`` branch.
* ``merged``: Paolo's version in seed 004, refined on 2 March into
  ``kvm_tdp_root_mark_invalid()`` (an ``xchg`` on ``role.word``), merged as
  commit 8351779ce65f ("KVM: x86/mmu: Allow yielding when zapping GFNs for
  defunct TDP MMU root", in linux-next from next-20220309, Linux 5.18).
* ``v3_gift``: Paolo's 2 March plan (lore
  2e856a9d-bef0-09ff-351a-113db9b36e2d@redhat.com): the ``merged``
  put_root with the fast zap of the day, whose
  ``kvm_tdp_mmu_zap_invalidated_roots()`` puts back one reference for every
  invalid root it finds. Sean: "Oof, that's not gonna work. My approach here
  in v3 doesn't work either." The v4 cover letter (lore
  20220303193842.370645-1-pbonzini@redhat.com) fixed "a bug in v3 where the
  extra reference added by kvm_tdp_mmu_put_root could be given back twice".
* ``worker``: Linux 5.18 after commits 22b94c4b63eb ("KVM: x86/mmu: Zap
  invalidated roots via asynchronous worker") and efd995dae5eb ("KVM:
  x86/mmu: Zap defunct roots via asynchronous worker"): put_root hands the
  extra reference to a work item; the fast zap skips invalid roots and
  flushes the workqueue.
* ``preserved``: commit edbdb43fc96b ("KVM: x86: Preserve TDP MMU roots
  until they are explicitly invalidated", 2023): roots start with two
  references, one the TDP MMU's own, gifted to the zap worker on
  invalidation; the last put of a valid root is a KVM bug (``KVM_BUG_ON``).

Code: arch/x86/kvm/mmu/tdp_mmu.c and mmu.c of those versions.

Threads (one root, object #1 unless the vCPU allocates it):

* ``putter``: a task holding a reference that it puts, with ``mmu_lock``
  held for write (param ``putter_lock=write``: ``kvm_mmu_free_roots()``
  calls ``kvm_tdp_mmu_put_root(kvm, root, false)``) or for read
  (``putter_lock=read``: a shared root walk, ``tdp_mmu_next_root()``, puts
  the previous root with ``shared=true``). In ``v3_gift`` it is a vCPU that
  first allocates the root (``kvm_tdp_mmu_get_vcpu_root_hpa()``).
* ``reader`` (param ``readers``, 0-2): a shared walk over valid roots only
  (``for_each_valid_tdp_mmu_root_yield_safe``, e.g. dirty logging's
  ``kvm_tdp_mmu_wrprot_slot()``): ``read_lock``, find the root under RCU,
  skip it if invalid, take a reference with ``refcount_inc_not_zero``, use
  it, put it (maybe the last reference: then the reader runs put_root).
* ``writer`` (param ``writer``, 0-1): a walk over all roots, invalid ones
  included, with ``mmu_lock`` held for write (``kvm_tdp_mmu_zap_leafs()``);
  it can run only while the putter has dropped ``mmu_lock`` to yield.
* ``fastzap`` (``v3_gift``, ``worker``, ``preserved``):
  ``kvm_mmu_zap_all_fast()``'s TDP MMU part; ``kworker`` (``worker``,
  ``preserved``): the zap workqueue running ``tdp_mmu_zap_root_work()``.
* ``rcu``: the RCU callback runner; ``tdp_mmu_free_sp_rcu_callback()``
  frees the root once a grace period has passed (kernel library
  ``call_rcu``). The kworker and rcu threads are daemons: the model ends
  them once nothing can give them work any more.

Abstractions (the verdicts hold within these bounds):

* one root, one putter, 0-2 readers, 0-1 writer; each walker visits the
  root once; lines that only touch the thread's own data are local steps;
* the walkers' work on the root (``wrprot_gfn_range()``, ``tdp_mmu_zap_leafs()``)
  is four steps like the zap below: they yield too, holding their reference;
* ``tdp_mmu_zap_root()`` is four steps: zap some SPTEs (under
  ``rcu_read_lock()``), yield (``rcu_read_unlock()`` and the unlock half of
  ``cond_resched_rwlock_read/write()``), come back (the lock half, then
  ``rcu_read_lock()``), zap the rest. It always yields once: the
  interleavings where nobody runs in between are the ones where it did not
  need to. SPTEs themselves are not modelled, only that the zap touches the
  root (a freed root there is a KASAN use-after-free);
* the model is sequentially consistent: ``smp_mb__after_atomic()`` and
  ``smp_mb__before_atomic()`` in v3 are not steps; ``xchg()`` and the
  refcount operations are atomic steps (kernel library ``refcount_t``,
  whose misuse reports are the kernel's ``refcount_t:`` warnings);
* ``rwlock_t`` is the !PREEMPT_RT spinning lock (kernel library); who gets
  ``mmu_lock`` next is free (queued-rwlock fairness is not modelled);
* ``list_del_rcu()``/``list_add_rcu()`` are one step each, under
  ``tdp_mmu_pages_lock`` as in the code; list walkers read the list under
  ``rcu_read_lock()``;
* ``next_invalidated_root()`` and ``list_for_each_entry()`` over a one-root
  list are one step each; the trailing ``rcu_read_lock()``/
  ``rcu_read_unlock()`` pair of the ``kvm_tdp_mmu_zap_invalidated_roots()``
  loop around the NULL next root is left out;
* the workqueue holds one work item per root (``root->tdp_mmu_async_work``):
  queueing an item that is still pending does nothing (``queue_work()``
  returns false); a running item may be queued again;
* bookkeeping not in the kernel: which thread holds which reference
  (``ref`` locals, references handed to a work item or kept by the TDP MMU),
  how often put_root or the zap worker zapped the root (``zaps``) and how
  often ``call_rcu()`` queued its free (``frees``). The properties read it.
"""

from __future__ import annotations

from ..engine import DONE, Model, Param, Program, Variant, line
from ..engine.errors import Blocked
from ..kernel import KernelWorld

MMU_LOCK = "kvm->mmu_lock"
PAGES_LOCK = "kvm->arch.tdp_mmu_pages_lock"
ROOTS = "kvm->arch.tdp_mmu_roots"
WQ = "kvm->arch.tdp_mmu_zap_wq"
FREE_CB = "tdp_mmu_free_sp_rcu_callback"

CAP = 2  # counters saturate here: "twice" is all the properties need to know


def _bump(w, field):
    w[field] = min(w[field] + 1, CAP)


def _put_ref(t):
    """The thread gives up one reference it holds (if it holds any)."""
    if t.ref > 0:
        t.ref -= 1


def _touch(w, oid):
    """Dereference the root: the object, or None after a KASAN use-after-free report (fatal)."""
    o = w.deref(oid)
    return o if w.has_obj(oid) else None


def _daemons_idle(w, me):
    """True when every thread but ``me`` and the daemons has finished."""
    for i, p in enumerate(w.programs):
        if i != me and not getattr(p, "daemon", False) and w.thread(i) is not None:
            return False
    return True


# ---------------------------------------------------------------------------------------
# tdp_mmu_zap_root(): four steps, see the module docstring
# ---------------------------------------------------------------------------------------
def zap_steps(prefix: str, shared: bool, counted: bool, nxt: str, fn: str = "tdp_mmu_zap_root",
              what: str = "root", op: str | None = None) -> dict:
    """The steps of ``tdp_mmu_zap_root(kvm, root, shared)``, named ``prefix1..4``.

    ``counted``: this zap is the teardown zap of a defunct root (put_root or
    the zap worker), counted by ``zapped_at_most_once``; the fast zap's own
    zap in ``v3_gift`` is not.
    """
    mode = "read" if shared else "write"
    setfn = op or ("tdp_mmu_set_spte_atomic(kvm, &iter, 0);" if shared else "tdp_mmu_set_spte(kvm, &iter, 0);")

    @line(["rcu_read_lock();", f"{setfn}  /* the first SPTEs of {what} */"], fn=fn)
    def z1(self, w, t):
        if _touch(w, t.root) is None:
            return None
        w.rcu_read_lock()
        if counted:
            _bump(w, "zaps")

    @line(["if (tdp_mmu_iter_cond_resched(kvm, &iter, false, shared)) {", "rcu_read_unlock();",
           f"cond_resched_rwlock_{mode}(&kvm->mmu_lock);  /* {mode}_unlock() */"],
          fn="tdp_mmu_iter_cond_resched")
    def z2(self, w, t):
        w.rcu_read_unlock()
        getattr(w, f"{mode}_unlock")(MMU_LOCK)

    @line([f"cond_resched_rwlock_{mode}(&kvm->mmu_lock);  /* schedule(); {mode}_lock() */",
           "rcu_read_lock();"], fn="tdp_mmu_iter_cond_resched")
    def z3(self, w, t):
        getattr(w, f"{mode}_lock")(MMU_LOCK)
        w.rcu_read_lock()

    @line([f"{setfn}  /* the rest of {what} */", "rcu_read_unlock();"], fn=fn)
    def z4(self, w, t):
        if _touch(w, t.root) is None:
            return None
        w.rcu_read_unlock()
        return nxt

    return {f"{prefix}1": z1, f"{prefix}2": z2, f"{prefix}3": z3, f"{prefix}4": z4}


# ---------------------------------------------------------------------------------------
# kvm_tdp_mmu_put_root(): one subroutine per variant. A caller sets t.ret (where to go
# on return) and jumps to "put_dec"; every return path jumps to t.ret.
# ---------------------------------------------------------------------------------------
FN = "kvm_tdp_mmu_put_root"


def _free_steps(first_name: str = "put_lock") -> dict:
    """spin_lock; list_del_rcu; spin_unlock; call_rcu; return (common to all variants)."""

    @line("spin_lock(&kvm->arch.tdp_mmu_pages_lock);", fn=FN)
    def put_lock(self, w, t):
        w.spin_lock(PAGES_LOCK)

    @line("list_del_rcu(&root->link);", fn=FN)
    def put_del(self, w, t):
        if _touch(w, t.root) is None:
            return None
        w[ROOTS] = tuple(r for r in w[ROOTS] if r != t.root)

    @line("spin_unlock(&kvm->arch.tdp_mmu_pages_lock);", fn=FN)
    def put_unlock(self, w, t):
        w.spin_unlock(PAGES_LOCK)

    @line("call_rcu(&root->rcu_head, tdp_mmu_free_sp_rcu_callback);", fn=FN)
    def put_call_rcu(self, w, t):
        if _touch(w, t.root) is None:
            return None
        _bump(w, "frees")
        w.call_rcu(t.root, FREE_CB)
        return t.ret

    return {"put_lock": put_lock, "put_del": put_del, "put_unlock": put_unlock,
            "put_call_rcu": put_call_rcu}


def _dec_and_test_step(name: str) -> dict:
    @line("if (!refcount_dec_and_test(&root->tdp_mmu_root_count)) return;", fn=FN)
    def put_dec(self, w, t):
        if _touch(w, t.root) is None:
            return None
        _put_ref(t)
        if not w.refcount_dec_and_test((t.root, "count")):
            return t.ret

    return {name: put_dec}


def put_merged(shared: bool) -> dict:
    """8351779ce65f (Paolo's version in seed 004, with kvm_tdp_root_mark_invalid())."""

    @line("if (!kvm_tdp_root_mark_invalid(root)) {  /* xchg(&page->role.word, ...) */", fn=FN)
    def put_xchg(self, w, t):
        if w.xchg((t.root, "invalid"), True):
            return "put_lock"

    @line("refcount_set(&root->tdp_mmu_root_count, 1);", fn=FN)
    def put_set1(self, w, t):
        w.refcount_set((t.root, "count"), 1)
        t.ref += 1  # "the reference that was added back above" is this task's

    @line("if (!refcount_dec_and_test(&root->tdp_mmu_root_count)) return;", fn=FN)
    def put_dec2(self, w, t):
        if _touch(w, t.root) is None:
            return None
        _put_ref(t)
        if not w.refcount_dec_and_test((t.root, "count")):
            return t.ret

    return {**_dec_and_test_step("put_dec"), "put_xchg": put_xchg, "put_set1": put_set1,
            **zap_steps("put_zap", shared, True, "put_dec2"), "put_dec2": put_dec2, **_free_steps()}


def put_dec_not_one(shared: bool) -> dict:
    """Paolo's first proposal (1 March 2022, quoted in seed 004)."""

    @line("if (refcount_dec_not_one(&root->tdp_mmu_root_count)) return;", fn=FN)
    def put_dec(self, w, t):
        if _touch(w, t.root) is None:
            return None
        if w.refcount_dec_not_one((t.root, "count")):
            _put_ref(t)
            return t.ret
        # the count was 1 and stays 1: this task still holds its reference

    @line("if (!xchg(&root->role.invalid, true)) {", fn=FN)
    def put_xchg(self, w, t):
        if w.xchg((t.root, "invalid"), True):
            return "put_set0"

    @line("if (refcount_dec_not_one(&root->tdp_mmu_root_count)) return;", fn=FN)
    def put_dec2(self, w, t):
        if _touch(w, t.root) is None:
            return None
        if w.refcount_dec_not_one((t.root, "count")):
            _put_ref(t)
            return t.ret

    @line("refcount_set(&root->tdp_mmu_root_count, 0);", fn=FN)
    def put_set0(self, w, t):
        w.refcount_set((t.root, "count"), 0)
        t.ref = 0  # forced: whatever this count stood for is gone

    return {"put_dec": put_dec, "put_xchg": put_xchg, **zap_steps("put_zap", shared, True, "put_dec2"),
            "put_dec2": put_dec2, "put_set0": put_set0, **_free_steps()}


def put_v3(shared: bool, check: bool = True) -> dict:
    """Sean's v3 20/28; with ``check=False`` the counterfactual without the invalid check."""
    steps = dict(_dec_and_test_step("put_dec"))
    if check:
        @line("if (root->role.invalid) {", fn=FN)
        def put_check(self, w, t):
            if w.deref(t.root)["invalid"]:
                return "put_lock"
        steps["put_check"] = put_check

    @line("root->role.invalid = true;", fn=FN)
    def put_inval(self, w, t):
        w.deref(t.root)["invalid"] = True

    @line("refcount_set(&root->tdp_mmu_root_count, 1);", fn=FN)
    def put_set1(self, w, t):
        w.refcount_set((t.root, "count"), 1)
        t.ref += 1

    @line("kvm_tdp_mmu_put_root(kvm, root, shared);  /* recursive call */", fn=FN, local=True)
    def put_again(self, w, t):
        return "put_dec"

    steps.update({"put_inval": put_inval, "put_set1": put_set1,
                  **zap_steps("put_zap", shared, True, "put_again"), "put_again": put_again})
    if check:
        steps.update(_free_steps())
    return steps


def _queue_zap_work(w, root):
    """tdp_mmu_schedule_zap_root(): queue_work() on the root's one work item."""
    w["work_refs"] += 1  # the reference handed over belongs to the work item from now on
    if root not in w[WQ]:
        w[WQ] = w[WQ] + (root,)
    # else: queue_work() returns false, the work runs once and one reference is leaked


def put_worker(shared: bool) -> dict:
    """v5.18 (efd995dae5eb): the zap is handed to the workqueue with the extra reference."""

    @line("if (!kvm_tdp_root_mark_invalid(root)) {  /* xchg(&page->role.word, ...) */", fn=FN)
    def put_xchg(self, w, t):
        if w.xchg((t.root, "invalid"), True):
            return "put_lock"

    @line("refcount_set(&root->tdp_mmu_root_count, 1);", fn=FN)
    def put_set1(self, w, t):
        w.refcount_set((t.root, "count"), 1)
        t.ref += 1

    @line(["tdp_mmu_schedule_zap_root(kvm, root);", "return;"], fn=FN)
    def put_sched(self, w, t):
        if _touch(w, t.root) is None:
            return None
        _put_ref(t)
        _queue_zap_work(w, t.root)
        return t.ret

    return {**_dec_and_test_step("put_dec"), "put_xchg": put_xchg, "put_set1": put_set1,
            "put_sched": put_sched, **_free_steps()}


def put_preserved(shared: bool) -> dict:
    """edbdb43fc96b: the last put must be of an invalid root."""

    @line("KVM_BUG_ON(!is_tdp_mmu_page(root) || !root->role.invalid, kvm);", fn=FN)
    def put_bug(self, w, t):
        if not w.deref(t.root)["invalid"]:
            w.report("no_kvm_bug", _warn(w, "KVM_BUG_ON(!is_tdp_mmu_page(root) || !root->role.invalid, kvm)"),
                     title="WARNING: KVM_BUG_ON in kvm_tdp_mmu_put_root")

    return {**_dec_and_test_step("put_dec"), "put_bug": put_bug, **_free_steps()}


def _warn(w, cond: str) -> str:
    p = w.me()
    fn, c = w.site()
    return "\n".join([
        "------------[ cut here ]------------",
        f"WARNING: CPU: {p.cpu} PID: {p.pid} at arch/x86/kvm/mmu/tdp_mmu.c {fn}",
        f"  {cond}",
        f"Call Trace: [<{fn}>] {c}",
    ])


def put_unreachable(shared: bool, yields: bool) -> dict:
    """Before 8351779ce65f: unlink the root, zap it unreachable, free it.

    ``yields=False`` is the code of that time (tdp_mmu_zap_root() did not yield
    for an unreachable root); ``yields=True`` is what its comment forbade.
    """
    steps = dict(_dec_and_test_step("put_dec"))

    @line("spin_lock(&kvm->arch.tdp_mmu_pages_lock);", fn=FN)
    def put_ulock(self, w, t):
        w.spin_lock(PAGES_LOCK)

    @line("list_del_rcu(&root->link);   /* from now on no mmu_notifier walk sees the root */", fn=FN)
    def put_udel(self, w, t):
        if _touch(w, t.root) is None:
            return None
        w[ROOTS] = tuple(r for r in w[ROOTS] if r != t.root)

    @line("spin_unlock(&kvm->arch.tdp_mmu_pages_lock);", fn=FN)
    def put_uunlock(self, w, t):
        w.spin_unlock(PAGES_LOCK)

    zap = zap_steps("put_zap", shared, True, "put_call_rcu")
    if not yields:
        zap.pop("put_zap2")
        zap.pop("put_zap3")

    @line(["tdp_mmu_set_spte(kvm, &iter, 0);  /* the rest of root: the guest page's SPTE */",
           "  handle_changed_spte_acc_track(): kvm_set_pfn_accessed(spte_to_pfn(old_spte));",
           "rcu_read_unlock();"], fn="tdp_mmu_zap_root")
    def put_zap4(self, w, t):
        if _touch(w, t.root) is None:
            return None
        if w["guest spte"]:
            w["guest spte"] = False
            w.deref(GUEST_PAGE)["accessed"] = True   # "writeback" of the A/D bits to the struct page
        w.rcu_read_unlock()

    @line("call_rcu(&root->rcu_head, tdp_mmu_free_sp_rcu_callback);", fn=FN)
    def put_call_rcu(self, w, t):
        if _touch(w, t.root) is None:
            return None
        _bump(w, "frees")
        w.call_rcu(t.root, FREE_CB)
        return t.ret

    zap["put_zap4"] = put_zap4
    steps.update({"put_ulock": put_ulock, "put_udel": put_udel, "put_uunlock": put_uunlock, **zap,
                  "put_call_rcu": put_call_rcu})
    return steps


class MmuNotifier(Program):
    """An mmu_notifier invalidation of the guest page (e.g. the page is reclaimed), then its free."""

    fn = "kvm_mmu_notifier_invalidate_range_start"

    @line("KVM_MMU_LOCK(kvm);   /* write_lock(&kvm->mmu_lock) */")
    def n_lock(self, w, t):
        w.write_lock(MMU_LOCK)

    @line("for_each_tdp_mmu_root(kvm, root, as_id) zap_gfn_range(kvm, root, gfn, gfn + 1, ...);",
          fn="kvm_tdp_mmu_unmap_gfn_range")
    def n_zap(self, w, t):
        if w["root"] in w[ROOTS] and w["guest spte"]:
            w["guest spte"] = False
            w.deref(GUEST_PAGE)["accessed"] = True

    @line("KVM_MMU_UNLOCK(kvm);   /* the callback completes: KVM holds no SPTE of the page */")
    def n_unlock(self, w, t):
        w.write_unlock(MMU_LOCK)

    @line("put_page(page);   /* the primary MM frees the page once every secondary MMU let go */",
          fn="try_to_unmap_one")
    def n_free(self, w, t):
        w.del_obj(GUEST_PAGE)
        return DONE


GUEST_PAGE = 2   # object id of the guest page's struct page (created after the root, object #1)


PUTS = {
    "unreachable": lambda shared: put_unreachable(shared, False),
    "unreachable_yield": lambda shared: put_unreachable(shared, True),
    "v3": lambda shared: put_v3(shared, True),
    "no_invalid_check": lambda shared: put_v3(shared, False),
    "dec_not_one": put_dec_not_one,
    "merged": put_merged,
    "worker": put_worker,
    "preserved": put_preserved,
}


def with_put(body: type, put: str | dict, shared: bool, name: str | None = None) -> type:
    """``body`` with the steps of kvm_tdp_mmu_put_root() (variant ``put``) appended.

    ``put`` is a key of :data:`PUTS` or a dict of step methods (a learner's own put_root,
    whose first step must be called ``put_dec``). ``shared``: the caller holds
    ``mmu_lock`` for read.
    """
    if isinstance(put, str):
        steps = PUTS[put](shared)
    elif callable(put):
        steps = put(shared)
    else:
        steps = dict(put)
    if "put_dec" not in steps:
        from ..engine import KvmlabError
        raise KvmlabError("a put_root must have a first step called put_dec")
    return type(name or body.__name__, (body, PutRoot), dict(steps))


# ---------------------------------------------------------------------------------------
# The threads
# ---------------------------------------------------------------------------------------
class Putter(Program):
    """A task that holds a reference to the root and puts it, mmu_lock held for write."""

    fn = "mmu_free_root_page"
    locals = {"root": None, "ref": 0, "ret": None}
    shared = False

    @line("write_lock(&kvm->mmu_lock);", fn="kvm_mmu_free_roots")
    def p_lock(self, w, t):
        w.write_lock(MMU_LOCK)

    @line("kvm_tdp_mmu_put_root(kvm, root, false);", local=True)
    def p_put(self, w, t):
        t.ret = "p_unlock"
        return "put_dec"

    @line("write_unlock(&kvm->mmu_lock);", fn="kvm_mmu_free_roots")
    def p_unlock(self, w, t):
        w.write_unlock(MMU_LOCK)
        return DONE


class SharedPutter(Putter):
    """A shared root walk that puts its (last) reference: mmu_lock held for read."""

    fn = "tdp_mmu_next_root"
    shared = True

    @line("read_lock(&kvm->mmu_lock);", fn="kvm_mmu_slot_remove_write_access")
    def p_lock(self, w, t):
        w.read_lock(MMU_LOCK)

    @line("kvm_tdp_mmu_put_root(kvm, prev_root, shared);", local=True)
    def p_put(self, w, t):
        t.ret = "p_unlock"
        return "put_dec"

    @line("read_unlock(&kvm->mmu_lock);", fn="kvm_mmu_slot_remove_write_access")
    def p_unlock(self, w, t):
        w.read_unlock(MMU_LOCK)
        return DONE


class VcpuPutter(Putter):
    """A vCPU that allocates a new root (after the fast zap's invalidation pass), then puts it."""

    @line("write_lock(&kvm->mmu_lock);", fn="mmu_alloc_direct_roots", before="p_lock")
    def c_lock(self, w, t):
        w.write_lock(MMU_LOCK)

    @line(["root = tdp_mmu_alloc_sp(vcpu);", "tdp_mmu_init_sp(root, NULL, 0, role);",
           "refcount_set(&root->tdp_mmu_root_count, 1);"], fn="kvm_tdp_mmu_get_vcpu_root_hpa",
          before="p_lock")
    def c_alloc(self, w, t):
        t.root = w.new_obj("kvm_mmu_page", _heap=True, count=1, invalid=False)
        t.ref = 1
        w["root"] = t.root

    @line("spin_lock(&kvm->arch.tdp_mmu_pages_lock);", fn="kvm_tdp_mmu_get_vcpu_root_hpa", before="p_lock")
    def c_plock(self, w, t):
        w.spin_lock(PAGES_LOCK)

    @line("list_add_rcu(&root->link, &kvm->arch.tdp_mmu_roots);", fn="kvm_tdp_mmu_get_vcpu_root_hpa",
          before="p_lock")
    def c_add(self, w, t):
        w[ROOTS] = w[ROOTS] + (t.root,)

    @line("spin_unlock(&kvm->arch.tdp_mmu_pages_lock);", fn="kvm_tdp_mmu_get_vcpu_root_hpa",
          before="p_lock")
    def c_punlock(self, w, t):
        w.spin_unlock(PAGES_LOCK)

    @line("write_unlock(&kvm->mmu_lock);  /* ... the vCPU runs the guest ... */", fn="mmu_alloc_direct_roots",
          before="p_lock")
    def c_unlock(self, w, t):
        w.write_unlock(MMU_LOCK)


class Walker(Program):
    """A root walk: tdp_mmu_next_root() finds the root, takes a reference, uses it, puts it."""

    locals = {"root": None, "ref": 0, "ret": None, "inv_ref": False}
    only_valid = True
    shared = True

    @line("read_lock(&kvm->mmu_lock);", fn="kvm_mmu_slot_remove_write_access")
    def w_lock(self, w, t):
        w.read_lock(MMU_LOCK)

    @line("rcu_read_lock();", fn="tdp_mmu_next_root")
    def w_rcu(self, w, t):
        w.rcu_read_lock()

    @line("next_root = list_first_or_null_rcu(&kvm->arch.tdp_mmu_roots, typeof(*next_root), link);",
          fn="tdp_mmu_next_root")
    def w_first(self, w, t):
        roots = w[ROOTS]
        t.root = roots[0] if roots else None
        if t.root is None:
            return "w_rcu_unlock"

    @line("if ((!only_valid || !next_root->role.invalid) &&", fn="tdp_mmu_next_root")
    def w_check(self, w, t):
        if w.deref(t.root)["invalid"]:
            t.root = None  # skipped; the list has no next entry
            return "w_rcu_unlock"

    @line("    kvm_tdp_mmu_get_root(next_root))  /* refcount_inc_not_zero() */", fn="tdp_mmu_next_root")
    def w_get(self, w, t):
        root = _touch(w, t.root)
        if root is None:
            return None
        if w.refcount_inc_not_zero((t.root, "count")):
            t.ref = 1
            if root["invalid"] and self.only_valid:
                t.inv_ref = True
        else:
            t.root = None

    @line("rcu_read_unlock();", fn="tdp_mmu_next_root")
    def w_rcu_unlock(self, w, t):
        w.rcu_read_unlock()
        if t.root is None:
            return "w_unlock"

    @line("spte_set |= wrprot_gfn_range(kvm, root, slot->base_gfn, ...);", fn="kvm_tdp_mmu_wrprot_slot",
          local=True)
    def w_use(self, w, t):
        return "wz1"

    @line("kvm_tdp_mmu_put_root(kvm, prev_root, shared);", fn="tdp_mmu_next_root", local=True)
    def w_put(self, w, t):
        t.ret = "w_unlock"
        return "put_dec"

    @line("read_unlock(&kvm->mmu_lock);", fn="kvm_mmu_slot_remove_write_access")
    def w_unlock(self, w, t):
        w.read_unlock(MMU_LOCK)
        return DONE


class Writer(Walker):
    """kvm_tdp_mmu_zap_leafs(): every root, invalid ones too, mmu_lock held for write."""

    only_valid = False
    shared = False

    @line("write_lock(&kvm->mmu_lock);", fn="kvm_zap_gfn_range")
    def w_lock(self, w, t):
        w.write_lock(MMU_LOCK)

    drop = ("w_check",)

    @line("if ((!only_valid || ...) && kvm_tdp_mmu_get_root(next_root))  /* refcount_inc_not_zero() */",
          fn="tdp_mmu_next_root")
    def w_get(self, w, t):
        if _touch(w, t.root) is None:
            return None
        if w.refcount_inc_not_zero((t.root, "count")):
            t.ref = 1
        else:
            t.root = None

    @line("flush = tdp_mmu_zap_leafs(kvm, root, start, end, true, flush);", fn="kvm_tdp_mmu_zap_leafs",
          local=True)
    def w_use(self, w, t):
        return "wz1"

    @line("kvm_tdp_mmu_put_root(kvm, prev_root, false);", fn="tdp_mmu_next_root", local=True)
    def w_put(self, w, t):
        t.ret = "w_unlock"
        return "put_dec"

    @line("write_unlock(&kvm->mmu_lock);", fn="kvm_zap_gfn_range")
    def w_unlock(self, w, t):
        w.write_unlock(MMU_LOCK)
        return DONE


class FastZapGift(Program):
    """kvm_mmu_zap_all_fast()'s TDP MMU part before v4: gift a reference, put it back later."""

    fn = "kvm_mmu_zap_all_fast"
    locals = {"root": None, "ref": 0, "ret": None}
    shared = True

    @line("write_lock(&kvm->mmu_lock);")
    def f_lock(self, w, t):
        w.write_lock(MMU_LOCK)

    @line("list_for_each_entry(root, &kvm->arch.tdp_mmu_roots, link)", fn="kvm_tdp_mmu_invalidate_all_roots")
    def f_inv(self, w, t):
        roots = w[ROOTS]
        t.root = roots[0] if roots else None
        if t.root is None:
            return "f_unlock"

    @line("if (!WARN_ON_ONCE(!kvm_tdp_mmu_get_root(root)))", fn="kvm_tdp_mmu_invalidate_all_roots")
    def f_get(self, w, t):
        if _touch(w, t.root) is None:
            return None
        if not w.refcount_inc_not_zero((t.root, "count")):
            w.report("no_kvm_bug", _warn(w, "WARN_ON_ONCE(!kvm_tdp_mmu_get_root(root))"),
                     title="WARNING: WARN_ON_ONCE in kvm_tdp_mmu_invalidate_all_roots")
            return "f_unlock"
        t.ref = 1  # gifted to kvm_tdp_mmu_zap_invalidated_roots()

    @line("root->role.invalid = true;", fn="kvm_tdp_mmu_invalidate_all_roots")
    def f_set(self, w, t):
        w.deref(t.root)["invalid"] = True

    @line("write_unlock(&kvm->mmu_lock);")
    def f_unlock(self, w, t):
        w.write_unlock(MMU_LOCK)
        t.root = None

    @line("read_lock(&kvm->mmu_lock);")
    def f_rlock(self, w, t):
        w.read_lock(MMU_LOCK)

    @line("rcu_read_lock();", fn="kvm_tdp_mmu_zap_invalidated_roots")
    def f_rcu(self, w, t):
        w.rcu_read_lock()

    @line("root = next_invalidated_root(kvm, NULL);  /* role.invalid && refcount_read() */",
          fn="kvm_tdp_mmu_zap_invalidated_roots")
    def f_next(self, w, t):
        t.root = None
        for r in w[ROOTS]:
            o = w.deref(r)
            if o["invalid"] and o["count"] != 0:
                t.root = r
                break

    @line("rcu_read_unlock();", fn="kvm_tdp_mmu_zap_invalidated_roots")
    def f_rcu_unlock(self, w, t):
        w.rcu_read_unlock()
        if t.root is None:
            return "f_runlock"

    @line("tdp_mmu_zap_root(kvm, root, true);", fn="kvm_tdp_mmu_zap_invalidated_roots", local=True)
    def f_zap(self, w, t):
        return "fz1"

    @line("kvm_tdp_mmu_put_root(kvm, root, true);  /* \"the reference acquired in kvm_tdp_mmu_invalidate_roots\" */",
          fn="kvm_tdp_mmu_zap_invalidated_roots", local=True)
    def f_put(self, w, t):
        t.ret = "f_runlock"
        return "put_dec"

    @line("read_unlock(&kvm->mmu_lock);")
    def f_runlock(self, w, t):
        w.read_unlock(MMU_LOCK)
        return DONE


class FastZapWorker(Program):
    """kvm_mmu_zap_all_fast()'s TDP MMU part in 5.18: invalidate, queue the zap, flush."""

    fn = "kvm_mmu_zap_all_fast"
    locals = {"root": None, "ref": 0, "ret": None}
    preserved = False

    @line("write_lock(&kvm->mmu_lock);")
    def f_lock(self, w, t):
        w.write_lock(MMU_LOCK)

    @line("list_for_each_entry(root, &kvm->arch.tdp_mmu_roots, link) {",
          fn="kvm_tdp_mmu_invalidate_all_roots")
    def f_inv(self, w, t):
        roots = w[ROOTS]
        t.root = roots[0] if roots else None
        if t.root is None:
            return "f_unlock"

    @line("if (!root->role.invalid &&", fn="kvm_tdp_mmu_invalidate_all_roots")
    def f_check(self, w, t):
        if w.deref(t.root)["invalid"]:
            return "f_unlock"

    @line("    !WARN_ON_ONCE(!kvm_tdp_mmu_get_root(root))) {", fn="kvm_tdp_mmu_invalidate_all_roots")
    def f_get(self, w, t):
        if _touch(w, t.root) is None:
            return None
        if not w.refcount_inc_not_zero((t.root, "count")):
            w.report("no_kvm_bug", _warn(w, "WARN_ON_ONCE(!kvm_tdp_mmu_get_root(root))"),
                     title="WARNING: WARN_ON_ONCE in kvm_tdp_mmu_invalidate_all_roots")
            return "f_unlock"
        t.ref = 1

    @line("root->role.invalid = true;", fn="kvm_tdp_mmu_invalidate_all_roots")
    def f_set(self, w, t):
        w.deref(t.root)["invalid"] = True

    @line("tdp_mmu_schedule_zap_root(kvm, root);", fn="kvm_tdp_mmu_invalidate_all_roots")
    def f_sched(self, w, t):
        if _touch(w, t.root) is None:
            return None
        if self.preserved:
            w["mmu_ref"] -= 1  # "the asynchronous worker is gifted the TDP MMU's reference"
        else:
            _put_ref(t)
        _queue_zap_work(w, t.root)

    @line("write_unlock(&kvm->mmu_lock);")
    def f_unlock(self, w, t):
        w.write_unlock(MMU_LOCK)

    @line("flush_workqueue(kvm->arch.tdp_mmu_zap_wq);", fn="kvm_tdp_mmu_zap_invalidated_roots")
    def f_flush(self, w, t):
        if w[WQ] or w["work_running"]:
            raise Blocked("flush_workqueue(): waiting for the zap work")
        return DONE


class FastZapGiftWorker(FastZapWorker):
    """22b94c4b63eb (the tree 8351779ce65f went into): a reference to every root, then the worker.

    Before efd995dae5eb, kvm_tdp_mmu_invalidate_all_roots() did not skip already
    invalid roots (efd995dae5eb's message: it "has to check root->role.invalid and
    skip already invalid roots" from then on).
    """

    drop = ("f_check",)

    @line("if (!WARN_ON_ONCE(!kvm_tdp_mmu_get_root(root))) {", fn="kvm_tdp_mmu_invalidate_all_roots")
    def f_get(self, w, t):
        if _touch(w, t.root) is None:
            return None
        if not w.refcount_inc_not_zero((t.root, "count")):
            w.report("no_kvm_bug", _warn(w, "WARN_ON_ONCE(!kvm_tdp_mmu_get_root(root))"),
                     title="WARNING: WARN_ON_ONCE in kvm_tdp_mmu_invalidate_all_roots")
            return "f_unlock"
        t.ref = 1


class FastZapPreserved(FastZapWorker):
    """edbdb43fc96b: invalidate_all_roots() gifts the TDP MMU's own reference to the worker.

    edbdb43fc96b walks the list with list_for_each_entry_rcu() inside
    rcu_read_lock()/rcu_read_unlock() (mmu_lock is not held when the VM is being
    destroyed); with mmu_lock held for write and one root, the model keeps the
    5.18 list_for_each_entry() step and leaves the RCU pair out.
    """

    preserved = True
    drop = ("f_get",)

    @line("if (!root->role.invalid) {", fn="kvm_tdp_mmu_invalidate_all_roots")
    def f_check(self, w, t):
        if w.deref(t.root)["invalid"]:
            return "f_unlock"


class Kworker(Program):
    """The zap workqueue's worker: tdp_mmu_zap_root_work() for each queued root."""

    fn = "tdp_mmu_zap_root_work"
    locals = {"root": None, "ref": 0, "ret": None}
    shared = True
    daemon = True

    @line("process_one_work(worker, work);  /* clear PENDING, call work->func */", fn="worker_thread")
    def k_wait(self, w, t):
        if w[WQ]:
            t.root = w[WQ][0]
            w[WQ] = w[WQ][1:]
            w.deref(t.root)  # container_of(work, struct kvm_mmu_page, tdp_mmu_async_work)
            w["work_refs"] -= 1
            t.ref = 1  # the work item's reference is now this call's
            w["work_running"] = True
            return None
        if _daemons_idle(w, w.tid):
            return DONE
        raise Blocked("idle: no work queued")

    @line("read_lock(&kvm->mmu_lock);")
    def k_lock(self, w, t):
        w.read_lock(MMU_LOCK)

    @line("tdp_mmu_zap_root(kvm, root, true);", local=True)
    def k_zap(self, w, t):
        return "kz1"

    @line("kvm_tdp_mmu_put_root(kvm, root, true);", local=True)
    def k_put(self, w, t):
        t.ret = "k_unlock"
        return "put_dec"

    @line("read_unlock(&kvm->mmu_lock);")
    def k_unlock(self, w, t):
        w.read_unlock(MMU_LOCK)
        w["work_running"] = False
        t.root = None
        return "k_wait"


class RcuCallbacks(Program):
    """The RCU callback runner (rcu_core()/rcuc): frees the root after a grace period."""

    fn = "rcu_do_batch"
    locals = {"head": None}
    daemon = True

    @line("f = rhp->func; f(rhp);  /* tdp_mmu_free_sp_rcu_callback() */")
    def cb(self, w, t):
        got = w.rcu_pop_callback()
        if got is not None:
            t.head = got[0]
            return None
        if not w.rcu_callbacks() and _daemons_idle(w, w.tid):
            return DONE
        raise Blocked("waiting for a grace period" if w.rcu_callbacks() else "no callback queued")

    @line("tdp_mmu_free_sp(sp);  /* free_page(sp->spt); kmem_cache_free(mmu_page_header_cache, sp); */",
          fn="tdp_mmu_free_sp_rcu_callback")
    def free(self, w, t):
        w.kfree(t.head)
        t.head = None
        return "cb"


# ---------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------
def _v(name, desc, commit, put, buggy, **flags):
    return Variant(name, desc, commit=commit, flags={"put": put, **flags}, buggy=buggy)


class TdpRootPut(Model):
    name = "tdp_root_put"
    title = "TDP MMU roots: putting the last reference while zapping may yield"
    source = ("the v3 20/28 thread (lore 20220226001546.360188-21-seanjc@google.com and replies); commits "
              "8351779ce65f, 22b94c4b63eb, efd995dae5eb (Linux 5.18), edbdb43fc96b (2023)")
    variants = [
        _v("unreachable", "before 8351779ce65f: unlink the root, zap it without yielding, free it; an "
           "mmu_notifier invalidation and the page's free race with the put", "before 8351779ce65f",
           "unreachable", False, notifier=True),
        _v("unreachable_yield", "the same, but the zap of the unreachable root yields (what the comment in "
           "tdp_mmu_zap_root() forbade)", "counterfactual (comment removed by 8351779ce65f)",
           "unreachable_yield", True, notifier=True),
        _v("v3", "Sean's v3 20/28: plain role.invalid check, refcount_set(1), zap, recursive put",
           "lore 20220226001546.360188-21-seanjc@google.com", "v3", False),
        _v("v3_fastzap", "v3 20/28 with v3's own fast zap, which gifts a reference to every root it "
           "invalidates and puts one back for every invalid root it finds",
           "lore 20220226001546.360188-21-seanjc@google.com + v3's fast zap", "v3", True,
           fastzap="gift", vcpu_creates=True),
        _v("dec_not_one", "Paolo, 1 March 2022: refcount_dec_not_one(), xchg(), count forced to 0",
           "lore 28276890-c90c-e9a9-3cab-15264617ef5a@redhat.com", "dec_not_one", True),
        _v("no_invalid_check", "v3 without the 'already invalid: free it' branch (what its comment warns of)",
           "counterfactual (v3's comment: 'Re-zapping invalid roots would put KVM into an infinite loop')",
           "no_invalid_check", True),
        _v("merged", "dec_and_test; if (!kvm_tdp_root_mark_invalid()) {set 1; zap; dec_and_test}; free",
           "8351779ce65f", "merged", False),
        _v("v3_gift", "Paolo's 2 March plan: merged put_root + the fast zap that puts back a 'gifted' "
           "reference for every invalid root", "lore 2e856a9d-bef0-09ff-351a-113db9b36e2d@redhat.com",
           "merged", True, fastzap="gift", vcpu_creates=True),
        _v("worker", "Linux 5.18: put_root hands the zap and the extra reference to a work item",
           "22b94c4b63eb + 8351779ce65f + efd995dae5eb", "worker", False, fastzap="worker"),
        _v("preserved", "2023: the TDP MMU keeps its own reference until it invalidates the root",
           "edbdb43fc96b", "preserved", False, fastzap="preserved", mmu_ref=True),
    ]
    params = {
        "readers": Param(1, 0, 2, "shared walks over valid roots (take and put a reference)"),
        "writer": Param(1, 0, 1, "a walk over all roots with mmu_lock held for write"),
        "fastzap": Param("none", choices=("none", "worker"),
                         help="for v3, dec_not_one, no_invalid_check, merged and lab variants: add "
                              "kvm_mmu_zap_all_fast() of 22b94c4b63eb with its zap worker"),
        "putter_lock": Param("write", choices=("write", "read"),
                             help="how the putter holds mmu_lock: write (kvm_mmu_free_roots) or "
                                  "read (a shared walk putting the previous root)"),
    }
    properties = {
        "freed_once": "call_rcu() queues the root's free at most once",
        "no_free_while_referenced": "the root is not queued for freeing while someone still holds a reference",
        "zapped_at_most_once": "put_root (or the zap worker it hands the zap to) zaps the root at most once; "
                               "the fast zap zapping a root as well is by design and not counted",
        "terminates": "every thread finishes (no endless re-zap)",
        "no_ref_to_invalid_root": "a walk over valid roots never ends up holding a reference to an invalid root",
        "no_use_after_free": "nobody touches the root after it was freed (KASAN)",
        "no_double_free": "the root is freed once (KASAN)",
        "refcount_ok": "no refcount_t: warning",
        "no_kvm_bug": "no KVM_BUG_ON()/WARN_ON_ONCE() in put_root or invalidate_all_roots",
        "no_leak": "when everything has finished, the root is freed (or kept only by the TDP MMU's own reference)",
        "no_deadlock": "no thread waits forever",
    }
    fairness = "weak"
    world = KernelWorld
    goals = {
        "unreachable": "Try to break it: make the zap write A/D bits to the guest page after it was freed.",
        "unreachable_yield": "Make the zap of the unreachable root write A/D bits to the freed guest page.",
        "v3": "Try to break it: free the root while a reference is still held, or zap it twice.",
        "v3_fastzap": "Give the vCPU's extra reference back twice: free the root while it is still referenced.",
        "dec_not_one": "Free the root while a reader still holds a reference to it.",
        "no_invalid_check": "Make put_root zap the root a second time (and forever).",
        "merged": "Try to break it: free the root while a reference is still held.",
        "v3_gift": "Give the vCPU's extra reference back twice: free the root while the vCPU is still zapping it.",
        "worker": "Try to break it.",
        "preserved": "Try to break it: make the last put hit a valid root.",
    }

    def setup(self, w, variant, config, params):
        put = variant.flags.get("put")
        fast = variant.flags.get("fastzap")
        if fast is None and params["fastzap"] == "worker":
            fast = "gift_worker"
        creates = variant.flags.get("vcpu_creates", False)
        mmu_ref = 1 if variant.flags.get("mmu_ref") else 0
        progs = variant.programs
        w.rwlock(MMU_LOCK)
        w.spinlock(PAGES_LOCK)
        w.declare_call_rcu()
        root = None
        if not creates:
            root = w.new_obj("kvm_mmu_page", _heap=True, count=1 + mmu_ref, invalid=False)
        w.declare(ROOTS, () if root is None else (root,))
        w.declare("root", root)
        w.declare("zaps", 0)
        w.declare("frees", 0)
        w.declare("mmu_ref", mmu_ref)
        w.declare(WQ, ())
        w.declare("work_refs", 0)
        w.declare("work_running", False)
        notifier = variant.flags.get("notifier", False)
        w.declare("guest spte", notifier)
        if notifier:
            if w.new_obj("struct page", _heap=True, accessed=False) != GUEST_PAGE:
                raise AssertionError("the guest page must be object #2")

        def build(role, body, shared):
            cls = progs.get(role)
            if cls is not None:
                return cls
            return with_put(body, put, shared)

        cpu = 0
        shared_putter = params["putter_lock"] == "read"
        if creates:
            pbody = VcpuPutter
        else:
            pbody = SharedPutter if shared_putter else Putter
        pcls = build("putter", pbody, getattr(pbody, "shared", False))
        w.spawn(pcls("putter", cpu=cpu, comm="vcpu" if not shared_putter else "walk",
                     title="the task putting its reference" + (" (a vCPU)" if creates else "")),
                root=root, ref=0 if creates else 1)
        cpu += 1
        rbody = type("Walker", (Walker,), zap_steps("wz", True, False, "w_put", "wrprot_gfn_range",
                                                      "root, write-protected",
                                                      "tdp_mmu_set_spte_atomic(kvm, &iter, new_spte);"))
        wbody = type("Writer", (Writer,), zap_steps("wz", False, False, "w_put", "tdp_mmu_zap_leafs",
                                                      "root's leaf SPTEs, zapped"))
        for i in range(params["readers"]):
            rcls = build("reader", rbody, True)
            w.spawn(rcls(f"reader{i}", cpu=cpu, comm=f"reader{i}", title="walk over valid roots (read)"))
            cpu += 1
        if params["writer"]:
            wcls = build("writer", wbody, False)
            w.spawn(wcls("writer", cpu=cpu, comm="writer", title="walk over all roots (write)"))
            cpu += 1
        if fast is not None:
            if fast == "gift":
                fbody = type("FastZapGift", (FastZapGift,), zap_steps("fz", True, False, "f_put"))
                fcls = progs.get("fastzap") or with_put(fbody, put, True)
            else:
                fcls = progs.get("fastzap") or {"preserved": FastZapPreserved, "worker": FastZapWorker,
                                                "gift_worker": FastZapGiftWorker}[fast]
            w.spawn(fcls("fastzap", cpu=cpu, comm="fastzap", title="kvm_mmu_zap_all_fast()"))
            cpu += 1
            if fast in ("worker", "preserved", "gift_worker"):
                # the fast zap's own zap of a root is by design (it must drop every SPTE before
                # returning): counted only where the work item can come from put_root alone
                kbody = type("Kworker", (Kworker,), zap_steps("kz", True, fast != "gift_worker", "k_put"))
                kcls = progs.get("kworker") or with_put(kbody, put, True)
                w.spawn(kcls("kworker", cpu=cpu, comm="kworker", title="zap workqueue"))
                cpu += 1
        if notifier:
            w.spawn(MmuNotifier("notifier", cpu=cpu, comm="kswapd0",
                                title="mmu_notifier invalidation of the guest page, then its free"))
            cpu += 1
        w.spawn(RcuCallbacks("rcu", cpu=cpu, comm="rcuc", title="RCU callbacks"))

    # -- properties ------------------------------------------------------------------------
    def _holders(self, w):
        out = []
        for i, p in enumerate(w.programs):
            t = w.thread(i)
            if t is not None and t.get("ref", 0) > 0:
                out.append(p.label)
        if w["work_refs"] > 0:
            out.append("the zap work item")
        if w["mmu_ref"] > 0:
            out.append("the TDP MMU")
        return out

    def invariants(self, w):
        if w["frees"] >= 2:
            yield "freed_once", "call_rcu() queued the root's free a second time"
        if w["frees"] >= 1:
            held = self._holders(w)
            if held:
                yield ("no_free_while_referenced",
                       f"the root is queued for freeing but {', '.join(held)} still hold"
                       f"{'s' if len(held) == 1 else ''} a reference")
        if w["zaps"] >= 2:
            yield "zapped_at_most_once", "the root is being zapped a second time by put_root"
        for i, p in enumerate(w.programs):
            t = w.thread(i)
            if t is not None and t.get("inv_ref"):
                yield ("no_ref_to_invalid_root",
                       f"{p.label} ({p.name}) took a reference to a root that is already invalid")

    def end_checks(self, w):
        root = w["root"]
        if root is not None and w.has_obj(root):
            o = w.obj(root)
            if not (o["count"] == w["mmu_ref"] and o["count"] > 0 and not o["invalid"]):
                yield "no_leak", f"the root was never freed (refcount {o['count']}, " \
                                 f"{'invalid' if o['invalid'] else 'valid'})"

    def describe_state(self, w):
        out = {}
        st = w[MMU_LOCK]
        if st is None:
            out["kvm->mmu_lock"] = "unlocked"
        elif isinstance(st, int):
            out["kvm->mmu_lock"] = f"held for write by {w.label(st)}"
        else:
            out["kvm->mmu_lock"] = "held for read by " + ", ".join(w.label(i) for i in st)
        root = w["root"]
        if root is None:
            out["root"] = "not allocated yet"
        elif not w.has_obj(root):
            out["root"] = "freed"
        else:
            o = w.obj(root)
            out["root->tdp_mmu_root_count"] = str(o["count"])
            out["root->role.invalid"] = "true" if o["invalid"] else "false"
        out["tdp_mmu_roots"] = "[" + ", ".join(f"root #{r}" for r in w[ROOTS]) + "]"
        if w.variant.flags.get("notifier"):
            page = ("freed by the primary MM" if not w.has_obj(GUEST_PAGE) else
                    "allocated" + (", accessed bit written back" if w.obj(GUEST_PAGE)["accessed"] else ""))
            out["guest page"] = page
            out["SPTE of the guest page"] = "present in root #1" if w["guest spte"] else "zapped"
        held = self._holders(w)
        out["references held by"] = ", ".join(held) if held else "nobody"
        out["zapped by put_root"] = f"{w['zaps']}{'+' if w['zaps'] >= CAP else ''} time(s)"
        cbs = w.rcu_callbacks()
        if cbs or w["frees"]:
            out["call_rcu"] = f"{w['frees']} queued; pending: " + (
                ", ".join(f"free root #{h}" + (f" (waits for {', '.join(w.label(i) for i in ws)})" if ws else
                                               " (grace period over)") for h, _, ws in cbs) or "none")
        if w[WQ] or w["work_running"] or w["work_refs"]:
            out["zap workqueue"] = (f"queued: {len(w[WQ])}, running: {'yes' if w['work_running'] else 'no'}, "
                                    f"references owned: {w['work_refs']}")
        return out


# ---------------------------------------------------------------------------------------
# The refcount helpers at 0, 1 and n, computed from the kernel library (chapter table)
# ---------------------------------------------------------------------------------------
def refcount_helper_table(n: int = 3) -> list[dict]:
    """What each refcount_t helper does at 0, 1 and ``n``: rows for the chapter's table.

    Runs the kernel library's own implementation (:mod:`kvmlab.kernel.refcount`)
    on a scratch counter, so the table cannot drift from what the models do.
    """
    from ..kernel.refcount import SATURATED, RefcountMixin

    class Scratch(RefcountMixin):
        def __init__(self, v):
            self.v, self.warn = v, None

        def get(self, ref):
            return self.v

        def put(self, ref, value):
            self.v = value

        def site(self):
            return ("f", "x")

        def report(self, prop, text, **kw):
            self.warn = text.splitlines()[1]

    helpers = [
        ("refcount_inc_not_zero(r)", lambda s: s.refcount_inc_not_zero("r")),
        ("refcount_inc(r)", lambda s: s.refcount_inc("r")),
        ("refcount_dec_and_test(r)", lambda s: s.refcount_dec_and_test("r")),
        ("refcount_dec_not_one(r)", lambda s: s.refcount_dec_not_one("r")),
        ("refcount_dec(r)", lambda s: s.refcount_dec("r")),
        ("refcount_set(r, 1)", lambda s: s.refcount_set("r", 1)),
    ]

    def cell(fn, v):
        s = Scratch(v)
        r = fn(s)
        new = "saturated" if s.v == SATURATED else str(s.v)
        parts = []
        if r is not None:
            parts.append(f"returns {'true' if r else 'false'}")
        parts.append(f"count {v} → {new}" if s.v != v else f"count stays {v}")
        if s.warn:
            parts.append(f"WARN “{s.warn}”")
        return "; ".join(parts)

    return [{"helper": name, "at 0": cell(fn, 0), "at 1": cell(fn, 1), f"at {n}": cell(fn, n)}
            for name, fn in helpers]


# ---------------------------------------------------------------------------------------
# For the lab: a learner's own put_root
# ---------------------------------------------------------------------------------------
class PutRoot:
    """Base class for a learner's ``kvm_tdp_mmu_put_root()`` (lab 6).

    Write one method per C line, decorated with ``@line("C line", fn="kvm_tdp_mmu_put_root")``,
    in the order of the C code; the first must be called ``put_dec``. A step gets
    ``(self, w, t)`` and returns None (next line), the name of another step (jump) or
    ``t.ret`` (put_root returns to its caller). Class attributes add library steps at
    the end: ``zap_root = "step"`` adds ``tdp_mmu_zap_root()`` as steps ``put_zap1..4``
    (jump to ``"put_zap1"`` to zap; afterwards it goes on at ``"step"``), and
    ``free_root = True`` adds ``spin_lock``, ``list_del_rcu``, ``spin_unlock`` and
    ``call_rcu`` as ``put_lock`` ... ``put_call_rcu``, which then returns (jump to
    ``"put_lock"`` to free the root). The helpers below do one C operation on the root
    and keep the model's bookkeeping of who holds which reference.
    """

    def dec_and_test(self, w, t) -> bool:
        """refcount_dec_and_test(&root->tdp_mmu_root_count): this task gives up a reference."""
        if _touch(w, t.root) is None:
            return False
        _put_ref(t)
        return w.refcount_dec_and_test((t.root, "count"))

    def dec_not_one(self, w, t) -> bool:
        """refcount_dec_not_one(): gives up a reference only if it decremented."""
        if _touch(w, t.root) is None:
            return True
        r = w.refcount_dec_not_one((t.root, "count"))
        if r:
            _put_ref(t)
        return r

    def mark_invalid(self, w, t) -> bool:
        """kvm_tdp_root_mark_invalid(): xchg() role.invalid to true; returns the old value."""
        if _touch(w, t.root) is None:
            return True
        return w.xchg((t.root, "invalid"), True)

    def is_invalid(self, w, t) -> bool:
        """root->role.invalid (a plain read)."""
        o = _touch(w, t.root)
        return True if o is None else o["invalid"]

    def set_count(self, w, t, n: int) -> None:
        """refcount_set(&root->tdp_mmu_root_count, n): this task then holds n references."""
        if _touch(w, t.root) is None:
            return
        w.refcount_set((t.root, "count"), n)
        t.ref = n


def put_steps(cls: type) -> dict:
    """The step methods of a learner's put_root class, in definition order.

    Class attributes ``zap_root = "next_step"`` and ``free_root = True`` insert the
    library's zap steps (``put_zap1..4``, jumping to ``next_step``) and the free
    steps (``put_lock`` ... ``put_call_rcu``) at the end. The zap's lock mode is
    chosen per caller (see :func:`learner_variant`).
    """
    out = {}
    for klass in reversed(cls.__mro__):  # a subclass's override keeps the step's place
        for k, v in klass.__dict__.items():
            if getattr(v, "_kvmlab_line", None) is not None:
                out[k] = v
    if "put_dec" not in out:
        from ..engine import KvmlabError
        raise KvmlabError(f"{cls.__name__}: the first step of put_root must be called put_dec")
    return out


def learner_variant(name: str, cls: type, desc: str = "a learner's kvm_tdp_mmu_put_root()") -> Variant:
    """A variant of ``tdp_root_put`` running the learner's put_root (class ``cls``)."""
    steps = put_steps(cls)
    zap_to = getattr(cls, "zap_root", None)
    free = getattr(cls, "free_root", False)

    def make(shared):
        d = dict(steps)
        if zap_to:
            d.update(zap_steps("put_zap", shared, True, zap_to))
        if free:
            d.update(_free_steps())
        return d

    return TdpRootPut.variant("merged").derive(name, desc, commit=None, flags={"put": make}, buggy=False)


LAB_PARAMS = [
    {"putter_lock": "write", "readers": 1, "writer": 1, "fastzap": "worker"},
    {"putter_lock": "read", "readers": 1, "writer": 1, "fastzap": "worker"},
]
"""The configurations lab 6 grades a put_root in."""

LAB_MUST_HOLD = ["freed_once", "no_free_while_referenced", "zapped_at_most_once", "terminates",
                 "no_use_after_free", "no_double_free", "refcount_ok", "no_kvm_bug", "no_leak",
                 "no_deadlock"]
"""Every property but ``no_ref_to_invalid_root`` (the benign race of the merged code)."""
