# kvmlab lab6: the preamble (run before the answer), then the answer cell's starter.
# ruff: noqa: F401
import kvmlab
from kvmlab.engine import line
from kvmlab.models.tdp_root_put import PutRoot

FN = "kvm_tdp_mmu_put_root"

# --- answer ---
class MyPut(PutRoot):
    zap_root = "put_free"   # after tdp_mmu_zap_root(), go on at put_free
    free_root = True        # put_lock ... put_call_rcu

    @line("if (!refcount_dec_and_test(&root->tdp_mmu_root_count)) return;", fn=FN)
    def put_dec(self, w, t):
        if not self.dec_and_test(w, t):
            return t.ret

    @line("tdp_mmu_zap_root(kvm, root, shared);", fn=FN, local=True)
    def put_zap(self, w, t):
        return "put_zap1"

    @line("/* unlink the root and free it after a grace period */", fn=FN, local=True)
    def put_free(self, w, t):
        return "put_lock"
