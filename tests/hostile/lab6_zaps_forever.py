# expect: fail terminates
class MyPut(PutRoot):
    zap_root = "put_zap"   # after the zap, zap again
    free_root = True

    @line("if (!refcount_dec_and_test(&root->tdp_mmu_root_count)) return;", fn=FN)
    def put_dec(self, w, t):
        if not self.dec_and_test(w, t):
            return t.ret

    @line("tdp_mmu_zap_root(kvm, root, shared);", fn=FN, local=True)
    def put_zap(self, w, t):
        return "put_zap1"
