"""cffi build script of the optional C core (``kvmlab._core``), used by ``setup.py``.

Run it directly to build the module in place: ``python src/kvmlab/_core_build.py``.
"""

from pathlib import Path

from cffi import FFI

CDEF = """
typedef struct kc_ctx kc_ctx;
kc_ctx *kc_new(int nthreads, int keep_rows, int has_inv, int64_t max_states);
void kc_free(kc_ctx *c);
int64_t kc_init(kc_ctx *c, const uint32_t *w);
int kc_memo_put(kc_ctx *c, int tid, uint32_t gid, uint32_t own, int n, const uint32_t *moves, const uint32_t *gs,
                const uint32_t *owns, const int32_t *evs, const uint8_t *fatal);
int kc_memo_dep_put(kc_ctx *c, int tid, uint32_t gid, uint32_t own, int k, const uint32_t *deps,
                    const uint32_t *depids, int n, const uint32_t *moves, const uint32_t *gs, const uint32_t *owns,
                    const uint32_t *newdeps, const int32_t *evs, const uint8_t *fatal);
int kc_oneshot(kc_ctx *c, int64_t state, int tid, int n, const uint32_t *moves, const uint32_t *words,
               const int32_t *evs, const uint8_t *fatal);
int kc_inv_clean(kc_ctx *c, uint32_t gid);
int kc_loc_new(kc_ctx *c, int kind, int arg);
int kc_loc_vals(kc_ctx *c, int loc, int64_t start, int64_t n, const int32_t *vals);
int kc_row_copy(kc_ctx *c, uint32_t dst, uint32_t src);
int32_t kc_loc_get(kc_ctx *c, int loc, int64_t idx);
int kc_row_set(kc_ctx *c, uint32_t g, int n, const int32_t *locs, const int32_t *vals);
int64_t kc_leaf_new(kc_ctx *c, int kind, int nd, const uint32_t *deps, int nb, const uint32_t *moves,
                    const uint32_t *deltas, const uint32_t *owns, const uint32_t *others, const int32_t *evs,
                    const uint8_t *fatal);
int kc_tree_put(kc_ctx *c, int tid, uint32_t own, int n, const int32_t *locs, const uint32_t *keys, int64_t leaf);
int kc_delta_put(kc_ctx *c, uint32_t gid, uint32_t delta, uint32_t ng);
uint32_t kc_want_g(kc_ctx *c);
uint32_t kc_want_d(kc_ctx *c);
int kc_try(kc_ctx *c, int64_t i, int t);
uint32_t *kc_wants(kc_ctx *c, int64_t *n);
int64_t kc_tree_hits(kc_ctx *c);
int kc_run(kc_ctx *c, int64_t budget);
int kc_scc(kc_ctx *c);
int64_t kc_nstates(kc_ctx *c);
int64_t kc_transitions(kc_ctx *c);
int64_t kc_need(kc_ctx *c);
int64_t kc_cursor(kc_ctx *c);
const uint32_t *kc_state(kc_ctx *c, int64_t i);
uint32_t *kc_parent(kc_ctx *c);
uint32_t *kc_pmove(kc_ctx *c);
uint32_t kc_max_depth(kc_ctx *c);
uint8_t *kc_term(kc_ctx *c);
int64_t *kc_log(kc_ctx *c, int64_t *n);
int64_t kc_edges(kc_ctx *c, int64_t v, int64_t *end);
uint64_t kc_mask(kc_ctx *c, int64_t v);
int64_t kc_edge_dst(kc_ctx *c, int64_t q);
int kc_edge_tid(kc_ctx *c, int64_t q);
uint32_t kc_edge_move(kc_ctx *c, int64_t q);
int64_t kc_ncomps(kc_ctx *c);
int64_t *kc_comp(kc_ctx *c);
int64_t *kc_cstart(kc_ctx *c);
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source("kvmlab._core", (Path(__file__).parent / "_core.c").read_text(),
                      extra_compile_args=["-O2"])

if __name__ == "__main__":
    import os
    import tempfile
    here = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory() as tmp:
        so = ffibuilder.compile(tmpdir=tmp)
        dest = here / Path(so).name
        os.replace(so, dest)
        print(dest)
