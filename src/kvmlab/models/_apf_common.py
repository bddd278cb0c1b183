"""The guest's async #PF sleepers bucket, shared by apf_wake, apf_handshake and apf_wait.

``kvm_async_pf_queue_task()`` (arch/x86/kernel/kvm.c, since commit
6bca69ada4bc) is written here once; the three models' waiting programs
inherit it. It is one step per C line, every step in C function
``kvm_async_pf_queue_task``, so a stepper shows the nested function while a
task runs it.

Call and return: a caller reaches it by falling through to (or jumping to)
its first step ``lock``; its two ``return`` lines ask the caller's
:meth:`QueueTaskBase.queue_task_return` where to go (by default ``return
false`` ends the thread, as ``kvm_async_pf_task_wait_schedule()`` returns at
once, and ``return true`` falls through to the caller's next step, its wait
loop). A caller that places its own steps before the function uses
``before="lock"``.

Two versions of the function differ in one line: the 2020 code sets
``n->use_halt`` (the halt-based wait of 6bca69ada4bc), the 2022 code around
0547758a6de3 has no halt-based wait and no such line. ``under`` is the
explorer's reduction hint a model may give (the steps that touch only the
bucket run under ``b->lock``, see :func:`kvmlab.engine.line`); it changes
how many states the reduced search visits, not what the code does.
"""

from __future__ import annotations

from ..engine import DONE, Program, line

B_LOCK = "b->lock"
B_LIST = "b->list"


def find_apf_task(w, token):
    """_find_apf_task(b, token): the first node on the bucket with this token."""
    for oid in w[B_LIST]:
        if w.deref(oid)["token"] == token:
            return oid
    return None


class QueueTaskBase(Program):
    """Hooks of kvm_async_pf_queue_task(); the steps come from :func:`queue_task`."""

    locals = {"e": None}

    def apf_token(self, t) -> int:
        """The token this task waits for (``self.token``, else 1)."""
        return getattr(self, "token", 1)

    def apf_use_halt(self, t) -> bool:
        """The ``use_halt`` argument (2020 code only)."""
        return bool(getattr(self, "use_halt", False))

    def queue_task_return(self, w, t, queued: bool):
        """Where ``return queued;`` goes: the caller's next step or label (default: DONE if false)."""
        if queued:
            return None  # fall through to the caller's next step (written out: the engine reads it)
        return DONE


_CACHE: dict[tuple[str, str | None], type] = {}


def queue_task(version: str = "2020", under: str | None = None) -> type:
    """The class holding kvm_async_pf_queue_task()'s steps, for code of ``version`` "2020" or "2022"."""
    if version not in ("2020", "2022"):
        raise ValueError(f"kvm_async_pf_queue_task: no version {version!r}")
    key = (version, under)
    if key in _CACHE:
        return _CACHE[key]
    fn = "kvm_async_pf_queue_task"
    init_lines = ["n->token = token;", "n->cpu = smp_processor_id();"]
    if version == "2020":
        init_lines.append("n->use_halt = use_halt;")
    init_lines.append("init_swait_queue_head(&n->wq);")

    class QueueTask(QueueTaskBase):
        @line("raw_spin_lock(&b->lock);", fn=fn)
        def lock(self, w, t):
            w.raw_spin_lock(B_LOCK)

        @line("e = _find_apf_task(b, token);", fn=fn, under=under)
        def find(self, w, t):
            t.e = find_apf_task(w, self.apf_token(t))

        @line("if (e) {", fn=fn, local=True)
        def if_e(self, w, t):
            if not t.e:
                return "init_node"

        @line("hlist_del(&e->link);", fn=fn, under=under)
        def del_dummy(self, w, t):
            w.hlist_del(t.e)

        @line("raw_spin_unlock(&b->lock);", fn=fn, under=under)
        def unlock_dummy(self, w, t):
            w.raw_spin_unlock(B_LOCK)

        @line(["kfree(e);", "return false;"], fn=fn)
        def kfree_dummy(self, w, t):
            w.kfree(t.e)
            t.e = None
            return self.queue_task_return(w, t, False)

        @line(init_lines, fn=fn, local=True)
        def init_node(self, w, t):
            n = w.deref(self.node)
            n["token"] = self.apf_token(t)
            n["cpu"] = self.cpu
            if version == "2020":
                n["use_halt"] = self.apf_use_halt(t)

        @line("hlist_add_head(&n->link, &b->list);", fn=fn, under=under)
        def add(self, w, t):
            w.hlist_add_head(B_LIST, self.node)

        @line(["raw_spin_unlock(&b->lock);", "return true;"], fn=fn, under=under)
        def unlock(self, w, t):
            w.raw_spin_unlock(B_LOCK)
            return self.queue_task_return(w, t, True)

    QueueTask.__name__ = QueueTask.__qualname__ = f"QueueTask{version}" + ("Under" if under else "")
    _CACHE[key] = QueueTask
    return QueueTask
