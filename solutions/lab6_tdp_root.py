"""Reference solution of lab 6: kvm_tdp_mmu_put_root() as merged in 8351779ce65f.

Imported by tests/test_ch6_tdp_root.py; never shown in the student notebook.
"""

from kvmlab.engine import line
from kvmlab.models.tdp_root_put import PutRoot

FN = "kvm_tdp_mmu_put_root"


class MyPut(PutRoot):
    zap_root = "put_dec2"  # after tdp_mmu_zap_root(), go on at put_dec2
    free_root = True       # put_lock ... put_call_rcu

    @line("if (!refcount_dec_and_test(&root->tdp_mmu_root_count)) return;", fn=FN)
    def put_dec(self, w, t):
        if not self.dec_and_test(w, t):
            return t.ret

    @line("if (!kvm_tdp_root_mark_invalid(root)) {", fn=FN)
    def put_xchg(self, w, t):
        if self.mark_invalid(w, t):
            return "put_lock"  # already invalid: someone zapped it, free it

    @line("refcount_set(&root->tdp_mmu_root_count, 1);", fn=FN)
    def put_set1(self, w, t):
        self.set_count(w, t, 1)

    @line("tdp_mmu_zap_root(kvm, root, shared);", fn=FN, local=True)
    def put_zap(self, w, t):
        return "put_zap1"

    @line("if (!refcount_dec_and_test(&root->tdp_mmu_root_count)) return;", fn=FN)
    def put_dec2(self, w, t):
        if not self.dec_and_test(w, t):
            return t.ret
        return "put_lock"
