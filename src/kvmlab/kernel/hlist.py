"""hlists of objects: hashed/unhashed nodes, hlist_del vs hlist_del_init.

A list is a tuple of object ids at a ref, head first. Each node object has a
``link`` field: None when unhashed (``pprev == NULL``), the list's ref while
on a list, or ``"POISON"`` after ``hlist_del()`` (which poisons the pointers:
the node still reads as hashed, as in the kernel).
"""

from __future__ import annotations

POISON = "POISON"


class HlistMixin:
    def hlist_add_head(self, head, oid: int) -> None:
        self.put(head, (oid,) + self.get(head))
        self.deref(oid)["link"] = head

    def _unlink(self, oid: int) -> None:
        node = self.deref(oid)
        head = node["link"]
        if head is None or head == POISON:
            return
        self.put(head, tuple(x for x in self.get(head) if x != oid))

    def hlist_del(self, oid: int) -> None:
        self._unlink(oid)
        self.deref(oid)["link"] = POISON

    def hlist_del_init(self, oid: int) -> None:
        self._unlink(oid)
        self.deref(oid)["link"] = None

    def hlist_unhashed(self, oid: int) -> bool:
        return self.deref(oid)["link"] is None
