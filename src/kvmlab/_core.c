/* The explorer's hot loop in C (optional accelerator; kvmlab/engine/explorer.py is the reference).
 *
 * A state is W = nthreads + 1 uint32 ids: the interned global part, then each
 * thread's interned part (0: finished), exactly kvmlab.engine.packed's ids.
 * States are numbered in the order they are found; the BFS queue is the
 * cursor over that numbering. Successors come from a memo keyed on
 * (thread, global id, own id); on a miss C walks its copy of Packed's read-set
 * trees (kc_try) and makes the entry from the leaf; when no leaf matches (or a
 * leaf writes a global part Python has not interned yet) the loop stops and
 * asks (KC_NEED), Python answers with kc_memo_put / kc_oneshot (or the new
 * parts, kc_delta_put), and the loop resumes at that state. Everything Python must judge (reports, new global parts
 * for invariants, terminal states) goes to a log, in the order the pure
 * Python loop meets it, so both find the same first counterexamples.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KC_DONE 0
#define KC_BUDGET 1
#define KC_NEED 2
#define KC_FULL 3
#define KC_NOMEM 4

#define E_SUCC 0
#define E_BLOCKED 1
#define E_DEP 2 /* the outcome also depends on other threads' parts: see the second-level table */

/* an open-addressing map from a 64-bit key to an int32 (-1: absent) */
typedef struct kmap { uint64_t *k; int32_t *v; int64_t mask, count; } kmap;

static uint64_t mix(uint64_t h);

static int32_t kmap_get(const kmap *m, uint64_t key) {
    if (!m->v) return -1;
    uint64_t h = mix(key) & (uint64_t)m->mask;
    while (m->v[h] != -1) {
        if (m->k[h] == key) return m->v[h];
        h = (h + 1) & (uint64_t)m->mask;
    }
    return -1;
}

static int kmap_put(kmap *m, uint64_t key, int32_t val) {
    if (!m->v || (m->count + 1) * 2 > m->mask + 1) {
        int64_t size = m->v ? (m->mask + 1) * 2 : 1024;
        uint64_t *k = malloc((size_t)size * 8);
        int32_t *v = malloc((size_t)size * 4);
        if (!k || !v) { free(k); free(v); return -1; }
        for (int64_t q = 0; q < size; q++) v[q] = -1;
        for (int64_t q = 0; m->v && q <= m->mask; q++) {
            if (m->v[q] == -1) continue;
            uint64_t h = mix(m->k[q]) & (uint64_t)(size - 1);
            while (v[h] != -1) h = (h + 1) & (uint64_t)(size - 1);
            k[h] = m->k[q]; v[h] = m->v[q];
        }
        free(m->k); free(m->v);
        m->k = k; m->v = v; m->mask = size - 1;
    }
    uint64_t h = mix(key) & (uint64_t)m->mask;
    while (m->v[h] != -1) {
        if (m->k[h] == key) { m->v[h] = val; return 0; }
        h = (h + 1) & (uint64_t)m->mask;
    }
    m->k[h] = key; m->v[h] = val; m->count++;
    return 0;
}

/* the last memo entry found for a thread: key + 1 (0: none), entries, and for a dep entry the
   threads it depends on and their ids */
typedef struct lcache { uint64_t key; int32_t first, e; int k; uint8_t dep[64]; uint32_t ids[64]; } lcache;

typedef struct kc_ctx {
    int W, n, keep_rows, has_inv;
    int64_t max_states;
    /* states */
    uint32_t *st; int64_t nst, stcap;
    uint64_t *ht; int64_t hmask;  /* slot: (state index + 1) << 32 | the hash's top 32 bits; 0 empty */
    uint32_t *parent; uint32_t *pmove; uint8_t *term;  /* per state: BFS parent (the root's: 0), move, fatal */
    uint32_t dcur, maxd; int64_t dnext;  /* the depth of the state at the cursor; where the next level starts */
    int64_t cursor, qlen, transitions;
    /* memo: key -> entry */
    uint64_t *mk; int32_t *mv; int64_t mmask, mcount;
    int32_t *ekind, *eoff, *en, *edoff; int64_t ne, ecap;
    /* second level, for E_DEP entries: (first-level key, the dep threads' ids) -> entry */
    int32_t *m2h; int64_t m2mask, m2count;
    uint64_t *m2key; int64_t *m2off; int32_t *m2val; int64_t nm2, m2cap;
    uint32_t *ids; int64_t nids, idscap;   /* dep thread lists, dep ids of keys, successors' new dep ids */
    uint32_t *smove, *sg, *sown; int32_t *sev; uint8_t *sfatal; int64_t ns, scap;
    /* one-shot successors of the state being expanded (not memoisable) */
    int64_t os_state; uint64_t os_mask, os_blocked;
    int32_t os_off[64], os_n[64];
    uint32_t *os_move; uint32_t *os_words; int32_t *os_ev; uint8_t *os_fatal; int64_t os_count, os_cap;
    /* invariants already known to hold on a global id */
    uint8_t *inv_clean; int64_t inv_cap;
    /* rows (edges) for the termination check */
    int64_t *rb, *re; uint64_t *mask;
    int64_t *edst; uint8_t *etid; uint32_t *emove; int64_t nedge, ecap2;
    /* log: (kind, a, b, c): 1 report (state, event id, move id), 2 new state to check, 3 terminal */
    int64_t *log; int64_t nlog, logcap;
    int64_t need;
    /* scc output */
    int64_t *comp; int64_t ncomp_nodes; int64_t *cstart; int64_t ncomps;
    /* read-set trees (a mirror of Packed.l2): locations, per-location value ids, nodes, leaves */
    int32_t *loc_kind, *loc_arg; int32_t **lv; int64_t *lvcap; int64_t nloc, loccap;
    kmap roots, kids, deltas;   /* (tid, own) -> ref; (node, key) -> ref; (gid, delta) -> new gid */
    int32_t *node_loc; int64_t nnode, nodecap;
    int32_t *lf_kind, *lf_nd, *lf_nb; int64_t *lf_doff, *lf_boff; int64_t nleaf, leafcap;
    uint32_t *b_move, *b_delta, *b_own; int32_t *b_ev; uint8_t *b_fatal; int64_t *b_ooff; int64_t nb, bcap;
    uint32_t *scratch; int64_t scratchcap;
    uint32_t want_g, want_d;
    uint32_t *wants; int64_t nwants, wantcap, scanned;
    int64_t tree_hits;  /* memo entries made from a read-set leaf */
    lcache lc[64];
    /* the successors of the state being expanded: words, hash, thread, move, event, fatal */
    uint32_t *sb_w; uint64_t *sb_h; uint8_t *sb_t; uint32_t *sb_mv; int32_t *sb_ev; uint8_t *sb_fatal; int64_t sbcap;  /* (global id, delta id) pairs Python should apply */
} kc_ctx;

static int grow(void **p, int64_t *cap, int64_t need, size_t sz) {  /* *p holds *cap items of sz bytes */
    if (need <= *cap) return 0;
    int64_t c = *cap ? *cap : 1024;
    while (c < need) c *= 2;
    void *q = realloc(*p, (size_t)c * sz);
    if (!q) return -1;
    *p = q; *cap = c;
    return 0;
}

static uint64_t mix(uint64_t h) {
    h ^= h >> 33; h *= 0xff51afd7ed558ccdULL; h ^= h >> 33; h *= 0xc4ceb9fe1a85ec53ULL; h ^= h >> 33;
    return h;
}

static uint64_t hash_words(const uint32_t *w, int W) {
    uint64_t h = 0x9e3779b97f4a7c15ULL;
    for (int k = 0; k < W; k++) h = mix(h ^ w[k]) + (uint64_t)k;
    return h;
}

/* A state's hash: a sum of one mixed term per word, so a successor's hash follows from its
   parent's by redoing only the words that differ. */
static inline uint64_t word_term(int k, uint32_t x) {
    return mix(((uint64_t)k << 32 | x) + 0x9e3779b97f4a7c15ULL);
}

static uint64_t hash_state(const uint32_t *w, int W) {
    uint64_t h = 0;
    for (int k = 0; k < W; k++) h += word_term(k, w[k]);
    return h;
}

void kc_free(kc_ctx *c) {
    if (!c) return;
    void *ps[] = {c->st, c->ht, c->parent, c->pmove, c->term, c->mk, c->mv, c->ekind, c->eoff, c->en,
                  c->smove, c->sg, c->sown, c->sev, c->sfatal, c->os_move, c->os_words, c->os_ev, c->os_fatal,
                  c->inv_clean, c->rb, c->re, c->mask, c->edst, c->etid, c->emove, c->log, c->comp, c->cstart,
                  c->edoff, c->m2h, c->m2key, c->m2off, c->m2val, c->ids,
                  c->loc_kind, c->loc_arg, c->lvcap, c->roots.k, c->roots.v, c->kids.k, c->kids.v, c->deltas.k,
                  c->deltas.v, c->node_loc, c->lf_kind, c->lf_nd, c->lf_nb, c->lf_doff, c->lf_boff, c->b_move,
                  c->b_delta, c->b_own, c->b_ev, c->b_fatal, c->b_ooff, c->scratch, c->wants,
                  c->sb_w, c->sb_h, c->sb_t, c->sb_mv, c->sb_ev, c->sb_fatal};
    for (int64_t k = 0; k < c->nloc; k++) free(c->lv[k]);
    free(c->lv);
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) free(ps[k]);
    free(c);
}

static int rehash(kc_ctx *c, int64_t size) {
    uint64_t *ht = calloc((size_t)size, sizeof(uint64_t));
    if (!ht) return -1;
    for (int64_t i = 0; i < c->nst; i++) {
        uint64_t hv = hash_state(c->st + i * c->W, c->W), h = hv & (uint64_t)(size - 1);
        while (ht[h]) h = (h + 1) & (uint64_t)(size - 1);
        ht[h] = ((uint64_t)(i + 1) << 32) | (hv >> 32);
    }
    free(c->ht);
    c->ht = ht; c->hmask = size - 1;
    return 0;
}

static int memo_rehash(kc_ctx *c, int64_t size) {
    uint64_t *mk = calloc((size_t)size, sizeof(uint64_t));
    int32_t *mv = malloc((size_t)size * sizeof(int32_t));
    if (!mk || !mv) { free(mk); free(mv); return -1; }
    for (int64_t k = 0; k < size; k++) mv[k] = -1;
    for (int64_t k = 0; k <= c->mmask; k++) {
        if (c->mv && c->mv[k] >= 0) {
            uint64_t h = mix(c->mk[k]) & (uint64_t)(size - 1);
            while (mv[h] >= 0) h = (h + 1) & (uint64_t)(size - 1);
            mk[h] = c->mk[k]; mv[h] = c->mv[k];
        }
    }
    free(c->mk); free(c->mv);
    c->mk = mk; c->mv = mv; c->mmask = size - 1;
    return 0;
}

kc_ctx *kc_new(int nthreads, int keep_rows, int has_inv, int64_t max_states) {
    kc_ctx *c = calloc(1, sizeof(kc_ctx));
    if (!c) return NULL;
    c->n = nthreads; c->W = nthreads + 1; c->keep_rows = keep_rows; c->has_inv = has_inv;
    c->max_states = max_states; c->os_state = -1; c->need = -1;
    if (rehash(c, 1 << 12) || memo_rehash(c, 1 << 12)) { kc_free(c); return NULL; }
    return c;
}

/* the index of state w, adding it (parent, move, depth) if new; *isnew says which; -1: no memory */
static int64_t intern_h(kc_ctx *c, const uint32_t *w, uint64_t hv, int64_t par, uint32_t mv, uint32_t d,
                        int *isnew) {
    uint64_t h = hv & (uint64_t)c->hmask, x;
    uint32_t fp = (uint32_t)(hv >> 32);
    while ((x = c->ht[h])) {
        if ((uint32_t)x == fp && !memcmp(c->st + ((int64_t)(x >> 32) - 1) * c->W, w, (size_t)c->W * 4)) {
            *isnew = 0;
            return (int64_t)(x >> 32) - 1;
        }
        h = (h + 1) & (uint64_t)c->hmask;
    }
    int64_t j = c->nst;
    if (j + 1 >= 0xFFFFFFFFLL) return -1;  /* a slot of the table keeps the index in 32 bits */
    if (j + 1 > c->stcap) {  /* stcap: states; every per-state array has that many slots */
        int64_t cap = c->stcap ? c->stcap * 2 : 4096;
        uint32_t *a = realloc(c->st, (size_t)cap * c->W * 4); if (!a) return -1; c->st = a;
        uint32_t *p = realloc(c->parent, (size_t)cap * 4); if (!p) return -1; c->parent = p;
        uint32_t *pm = realloc(c->pmove, (size_t)cap * 4); if (!pm) return -1; c->pmove = pm;
        uint8_t *tm = realloc(c->term, (size_t)cap); if (!tm) return -1; c->term = tm;
        if (c->keep_rows) {
            int64_t *r1 = realloc(c->rb, (size_t)cap * 8); if (!r1) return -1; c->rb = r1;
            int64_t *r2 = realloc(c->re, (size_t)cap * 8); if (!r2) return -1; c->re = r2;
            uint64_t *m = realloc(c->mask, (size_t)cap * 8); if (!m) return -1; c->mask = m;
        }
        c->stcap = cap;
    }
    if (c->keep_rows) { c->rb[j] = c->re[j] = 0; c->mask[j] = 0; }
    memcpy(c->st + j * c->W, w, (size_t)c->W * 4);
    c->parent[j] = par < 0 ? 0 : (uint32_t)par; c->pmove[j] = mv; c->term[j] = 0;
    if (d > c->maxd) c->maxd = d;
    c->ht[h] = ((uint64_t)(j + 1) << 32) | fp;
    c->nst = j + 1;
    *isnew = 1;
    if (c->nst * 2 > c->hmask + 1 && rehash(c, (c->hmask + 1) * 2)) return -1;
    return j;
}

static int64_t intern(kc_ctx *c, const uint32_t *w, int64_t par, uint32_t mv, uint32_t d, int *isnew) {
    return intern_h(c, w, hash_state(w, c->W), par, mv, d, isnew);
}

int64_t kc_init(kc_ctx *c, const uint32_t *w) {
    int isnew;
    int64_t j = intern(c, w, -1, 0, 0, &isnew);
    if (j >= 0) { c->qlen = 1; c->dcur = 0; c->dnext = 1; }
    return j;
}

static uint64_t mkey(uint32_t gid, uint32_t own, int tid) {
    return ((((uint64_t)gid << 24) | own) << 6) | (uint64_t)tid;
}

static int32_t memo_find(kc_ctx *c, uint64_t key) {
    uint64_t h = mix(key) & (uint64_t)c->mmask;
    while (c->mv[h] >= 0) {
        if (c->mk[h] == key) return c->mv[h];
        h = (h + 1) & (uint64_t)c->mmask;
    }
    return -1;
}

static int64_t push_ids(kc_ctx *c, const uint32_t *src, int64_t k) {
    if (c->nids + k > c->idscap) {
        int64_t cap = c->idscap ? c->idscap : 4096;
        while (cap < c->nids + k) cap *= 2;
        uint32_t *a = realloc(c->ids, (size_t)cap * 4); if (!a) return -1;
        c->ids = a; c->idscap = cap;
    }
    int64_t off = c->nids;
    if (k) memcpy(c->ids + off, src, (size_t)k * 4);
    c->nids += k;
    return off;
}

/* a new entry: blocked (n < 0) or n successors (move, global id, own id, event id, fatal) */
static int64_t new_entry(kc_ctx *c, int n, const uint32_t *moves, const uint32_t *gs, const uint32_t *owns,
                         const int32_t *evs, const uint8_t *fatal) {
    if (c->ne + 1 > c->ecap) {
        int64_t cap = c->ecap ? c->ecap * 2 : 1024;
        int32_t *k = realloc(c->ekind, (size_t)cap * 4); if (!k) return -1; c->ekind = k;
        int32_t *a = realloc(c->eoff, (size_t)cap * 4); if (!a) return -1; c->eoff = a;
        int32_t *b = realloc(c->en, (size_t)cap * 4); if (!b) return -1; c->en = b;
        int32_t *d = realloc(c->edoff, (size_t)cap * 4); if (!d) return -1; c->edoff = d;
        c->ecap = cap;
    }
    int64_t e = c->ne++;
    c->ekind[e] = n < 0 ? E_BLOCKED : E_SUCC;
    c->eoff[e] = (int32_t)c->ns; c->en[e] = n < 0 ? 0 : n; c->edoff[e] = -1;
    if (n > 0) {
        int64_t cap2 = c->scap ? c->scap : 1024;
        while (cap2 < c->ns + n) cap2 *= 2;
        if (cap2 != c->scap) {
            uint32_t *p1 = realloc(c->smove, (size_t)cap2 * 4); if (!p1) return -1; c->smove = p1;
            uint32_t *p2 = realloc(c->sg, (size_t)cap2 * 4); if (!p2) return -1; c->sg = p2;
            uint32_t *p3 = realloc(c->sown, (size_t)cap2 * 4); if (!p3) return -1; c->sown = p3;
            int32_t *p4 = realloc(c->sev, (size_t)cap2 * 4); if (!p4) return -1; c->sev = p4;
            uint8_t *p5 = realloc(c->sfatal, (size_t)cap2); if (!p5) return -1; c->sfatal = p5;
            c->scap = cap2;
        }
        for (int k = 0; k < n; k++) {
            c->smove[c->ns + k] = moves[k]; c->sg[c->ns + k] = gs[k]; c->sown[c->ns + k] = owns[k];
            c->sev[c->ns + k] = evs[k]; c->sfatal[c->ns + k] = fatal[k];
        }
        c->ns += n;
    }
    return e;
}

static int map_put(kc_ctx *c, uint64_t key, int32_t e) {
    if ((c->mcount + 1) * 2 > c->mmask + 1 && memo_rehash(c, (c->mmask + 1) * 2)) return -1;
    uint64_t h = mix(key) & (uint64_t)c->mmask;
    while (c->mv[h] >= 0) {
        if (c->mk[h] == key) { c->mv[h] = e; return 0; }
        h = (h + 1) & (uint64_t)c->mmask;
    }
    c->mk[h] = key; c->mv[h] = e; c->mcount++;
    return 0;
}

/* A memo entry for (tid, gid, own): blocked (n < 0) or n successors (move, global id, own id, event id, fatal). */
int kc_memo_put(kc_ctx *c, int tid, uint32_t gid, uint32_t own, int n, const uint32_t *moves, const uint32_t *gs,
                const uint32_t *owns, const int32_t *evs, const uint8_t *fatal) {
    int64_t e = new_entry(c, n, moves, gs, owns, evs, fatal);
    if (e < 0) return -1;
    return map_put(c, mkey(gid, own, tid), (int32_t)e);
}

static uint64_t key2_hash(uint64_t key, const uint32_t *ids, int k) {
    return mix(key ^ hash_words(ids, k));
}

static int m2_rehash(kc_ctx *c, int64_t size) {
    int32_t *h = malloc((size_t)size * 4);
    if (!h) return -1;
    for (int64_t k = 0; k < size; k++) h[k] = -1;
    for (int64_t r = 0; r < c->nm2; r++) {
        int32_t e1 = memo_find(c, c->m2key[r]);
        int k = c->en[e1];
        uint64_t x = key2_hash(c->m2key[r], c->ids + c->m2off[r], k) & (uint64_t)(size - 1);
        while (h[x] >= 0) x = (x + 1) & (uint64_t)(size - 1);
        h[x] = (int32_t)r;
    }
    free(c->m2h);
    c->m2h = h; c->m2mask = size - 1;
    return 0;
}

/* The entry for thread t of state s (following an E_DEP entry to the second level), or -1; *first: the
   first-level entry. */
static int32_t lookup2(kc_ctx *c, const uint32_t *s, int t, int32_t *first) {
    uint64_t key = mkey(s[0], s[t + 1], t);
    /* neighbouring states (the successors of one state) mostly share a thread's entry: remember
       the last one found per thread (entries never change once made) */
    lcache *lc = &c->lc[t];
    if (lc->key == key + 1) {
        int ok = 1;
        for (int q = 0; q < lc->k && ok; q++) ok = s[lc->dep[q] + 1] == lc->ids[q];
        if (ok) { *first = lc->first; return lc->e; }
    }
    int32_t e = *first = memo_find(c, key);
    if (e < 0) return e;
    int k = 0;
    uint32_t ids[64];
    if (c->ekind[e] == E_DEP) {
        k = c->en[e];
        for (int q = 0; q < k; q++) ids[q] = s[c->ids[c->eoff[e] + q] + 1];
        if (!c->m2h) return -1;
        uint64_t x = key2_hash(key, ids, k) & (uint64_t)c->m2mask;
        int32_t r, e2 = -1;
        while ((r = c->m2h[x]) >= 0) {
            if (c->m2key[r] == key && !memcmp(c->ids + c->m2off[r], ids, (size_t)k * 4)) { e2 = c->m2val[r]; break; }
            x = (x + 1) & (uint64_t)c->m2mask;
        }
        if (e2 < 0) return -1;
        for (int q = 0; q < k; q++) lc->dep[q] = (uint8_t)c->ids[c->eoff[e] + q];
        memcpy(lc->ids, ids, (size_t)k * 4);
        e = e2;
    }
    lc->key = key + 1; lc->first = *first; lc->e = e; lc->k = k;
    return e;
}

static int32_t lookup(kc_ctx *c, const uint32_t *s, int t) {
    int32_t first;
    return lookup2(c, s, t, &first);
}

/* A memo entry for (tid, gid, own) that also depends on threads deps[0..k) having ids depids: blocked (n < 0) or
   n successors, each also giving the new ids of the dep threads (newdeps[k * successor + q]). */
int kc_memo_dep_put(kc_ctx *c, int tid, uint32_t gid, uint32_t own, int k, const uint32_t *deps,
                    const uint32_t *depids, int n, const uint32_t *moves, const uint32_t *gs, const uint32_t *owns,
                    const uint32_t *newdeps, const int32_t *evs, const uint8_t *fatal) {
    uint64_t key = mkey(gid, own, tid);
    int32_t e1 = memo_find(c, key);
    if (e1 < 0) {
        int64_t e = new_entry(c, 0, NULL, NULL, NULL, NULL, NULL);
        int64_t off = push_ids(c, deps, k);
        if (e < 0 || off < 0) return -1;
        c->ekind[e] = E_DEP; c->eoff[e] = (int32_t)off; c->en[e] = k;
        if (map_put(c, key, (int32_t)e)) return -1;
        e1 = (int32_t)e;
    } else if (c->ekind[e1] != E_DEP || c->en[e1] != k || memcmp(c->ids + c->eoff[e1], deps, (size_t)k * 4)) {
        return -2;
    }
    int64_t e2 = new_entry(c, n, moves, gs, owns, evs, fatal);
    if (e2 < 0) return -1;
    if (n > 0) {
        int64_t off = push_ids(c, newdeps, (int64_t)n * k);
        if (off < 0) return -1;
        c->edoff[e2] = (int32_t)off;
    }
    int64_t koff = push_ids(c, depids, k);
    if (koff < 0) return -1;
    if (c->nm2 + 1 > c->m2cap) {
        int64_t cap = c->m2cap ? c->m2cap * 2 : 1024;
        uint64_t *a = realloc(c->m2key, (size_t)cap * 8); if (!a) return -1; c->m2key = a;
        int64_t *b = realloc(c->m2off, (size_t)cap * 8); if (!b) return -1; c->m2off = b;
        int32_t *d = realloc(c->m2val, (size_t)cap * 4); if (!d) return -1; c->m2val = d;
        c->m2cap = cap;
    }
    int64_t r = c->nm2++;
    c->m2key[r] = key; c->m2off[r] = koff; c->m2val[r] = (int32_t)e2;
    if ((c->nm2 * 2 > c->m2mask + 1 || !c->m2h) && m2_rehash(c, c->m2h ? (c->m2mask + 1) * 2 : 4096)) return -1;
    else {
        /* m2_rehash inserted every record; otherwise insert this one */
        uint64_t x = key2_hash(key, depids, k) & (uint64_t)c->m2mask;
        int found = 0;
        while (c->m2h[x] >= 0) { if (c->m2h[x] == (int32_t)r) { found = 1; break; } x = (x + 1) & (uint64_t)c->m2mask; }
        if (!found) c->m2h[x] = (int32_t)r;
    }
    return 0;
}

/* ---- read-set trees: the C side of Packed.l2 ----------------------------------------------------
 * Python mirrors every path it adds to its decision trees (kc_tree_put) and pushes the value id of
 * every location in every global part / thread part it interns (kc_loc_vals). A memo miss then
 * walks the tree here; a leaf applied to the state becomes a memo entry without Python, unless a
 * global part it writes is new ((gid, delta) unknown: kc_try returns 2) or the leaf is not
 * memoisable. Location kinds: 0 a value of the global part, 1 another thread's id, 2 a value of
 * another thread's part, 3 one C cannot read (Python walks it). Refs: >= 0 a node, <= -2 a leaf. */
#define L_GLOBAL 0
#define L_THREAD 1
#define L_TPART 2
#define UNCH 0xFFFFFFFFu

int kc_loc_new(kc_ctx *c, int kind, int arg) {
    if (c->nloc + 1 > c->loccap) {
        int64_t cap = c->loccap ? c->loccap * 2 : 16;
        int32_t *a = realloc(c->loc_kind, (size_t)cap * 4); if (!a) return -1; c->loc_kind = a;
        int32_t *b = realloc(c->loc_arg, (size_t)cap * 4); if (!b) return -1; c->loc_arg = b;
        int32_t **d = realloc(c->lv, (size_t)cap * sizeof(int32_t *)); if (!d) return -1; c->lv = d;
        int64_t *e = realloc(c->lvcap, (size_t)cap * 8); if (!e) return -1; c->lvcap = e;
        c->loccap = cap;
    }
    int64_t l = c->nloc++;
    c->loc_kind[l] = kind; c->loc_arg[l] = arg; c->lv[l] = NULL; c->lvcap[l] = 0;
    return (int)l;
}

/* values of location loc for the parts start .. start + n - 1 (-1: unknown) */
int kc_loc_vals(kc_ctx *c, int loc, int64_t start, int64_t n, const int32_t *vals) {
    if (start + n > c->lvcap[loc]) {
        int64_t cap = c->lvcap[loc] ? c->lvcap[loc] : 1024;
        while (cap < start + n) cap *= 2;
        int32_t *a = realloc(c->lv[loc], (size_t)cap * 4); if (!a) return -1;
        for (int64_t q = c->lvcap[loc]; q < cap; q++) a[q] = -1;
        c->lv[loc] = a; c->lvcap[loc] = cap;
    }
    memcpy(c->lv[loc] + start, vals, (size_t)n * 4);
    return 0;
}

static int lv_reserve(kc_ctx *c, int64_t loc, int64_t idx) {
    if (idx < c->lvcap[loc]) return 0;
    int64_t cap = c->lvcap[loc] ? c->lvcap[loc] : 1024;
    while (cap <= idx) cap *= 2;
    int32_t *a = realloc(c->lv[loc], (size_t)cap * 4); if (!a) return -1;
    for (int64_t q = c->lvcap[loc]; q < cap; q++) a[q] = -1;
    c->lv[loc] = a; c->lvcap[loc] = cap;
    return 0;
}

int32_t kc_loc_get(kc_ctx *c, int loc, int64_t idx) { return idx < c->lvcap[loc] ? c->lv[loc][idx] : -1; }

/* Global part dst starts as a copy of src in every location of a global part (a part made by a
   delta: Python then sets the locations the delta changes). */
int kc_row_copy(kc_ctx *c, uint32_t dst, uint32_t src) {
    for (int64_t l = 0; l < c->nloc; l++) {
        if (c->loc_kind[l] != L_GLOBAL) continue;
        if (lv_reserve(c, l, dst)) return -1;
        c->lv[l][dst] = src < c->lvcap[l] ? c->lv[l][src] : -1;
    }
    return 0;
}

/* The values of n locations in global part g. */
int kc_row_set(kc_ctx *c, uint32_t g, int n, const int32_t *locs, const int32_t *vals) {
    for (int q = 0; q < n; q++) {
        if (lv_reserve(c, locs[q], g)) return -1;
        c->lv[locs[q]][g] = vals[q];
    }
    return 0;
}

/* A leaf: kind 0 (depends on the thread's own part only), 1 (also on threads deps[0..nd)), 2 (Python
   only); nb < 0 blocked, else nb branches: move, delta id (0: no write to the global part), own id,
   event id, fatal, and for kind 1 the new ids of the dep threads (others[nd * branch + q], UNCH: as
   before). Returns its id, -1 out of memory. */
int64_t kc_leaf_new(kc_ctx *c, int kind, int nd, const uint32_t *deps, int nb, const uint32_t *moves,
                    const uint32_t *deltas, const uint32_t *owns, const uint32_t *others, const int32_t *evs,
                    const uint8_t *fatal) {
    if (c->nleaf + 1 > c->leafcap) {
        int64_t cap = c->leafcap ? c->leafcap * 2 : 1024;
        int32_t *a = realloc(c->lf_kind, (size_t)cap * 4); if (!a) return -1; c->lf_kind = a;
        int32_t *b = realloc(c->lf_nd, (size_t)cap * 4); if (!b) return -1; c->lf_nd = b;
        int32_t *d = realloc(c->lf_nb, (size_t)cap * 4); if (!d) return -1; c->lf_nb = d;
        int64_t *e = realloc(c->lf_doff, (size_t)cap * 8); if (!e) return -1; c->lf_doff = e;
        int64_t *f = realloc(c->lf_boff, (size_t)cap * 8); if (!f) return -1; c->lf_boff = f;
        c->leafcap = cap;
    }
    int64_t nbr = nb > 0 ? nb : 0;
    if (c->nb + nbr > c->bcap) {
        int64_t cap = c->bcap ? c->bcap : 1024;
        while (cap < c->nb + nbr) cap *= 2;
        uint32_t *a = realloc(c->b_move, (size_t)cap * 4); if (!a) return -1; c->b_move = a;
        uint32_t *b = realloc(c->b_delta, (size_t)cap * 4); if (!b) return -1; c->b_delta = b;
        uint32_t *d = realloc(c->b_own, (size_t)cap * 4); if (!d) return -1; c->b_own = d;
        int32_t *e = realloc(c->b_ev, (size_t)cap * 4); if (!e) return -1; c->b_ev = e;
        uint8_t *f = realloc(c->b_fatal, (size_t)cap); if (!f) return -1; c->b_fatal = f;
        int64_t *g = realloc(c->b_ooff, (size_t)cap * 8); if (!g) return -1; c->b_ooff = g;
        c->bcap = cap;
    }
    int64_t doff = push_ids(c, deps, nd);
    if (doff < 0) return -1;
    int64_t L = c->nleaf++;
    c->lf_kind[L] = kind; c->lf_nd[L] = nd; c->lf_nb[L] = nb; c->lf_doff[L] = doff; c->lf_boff[L] = c->nb;
    for (int64_t k = 0; k < nbr; k++) {
        int64_t q = c->nb + k;
        c->b_move[q] = moves[k]; c->b_delta[q] = deltas[k]; c->b_own[q] = owns[k]; c->b_ev[q] = evs[k];
        c->b_fatal[q] = fatal[k];
        int64_t off = push_ids(c, others ? others + k * nd : NULL, others ? nd : 0);
        if (off < 0) return -1;
        c->b_ooff[q] = off;
    }
    c->nb += nbr;
    return L;
}

/* Add the path (locs[q] read key[q], q < n) from the root of (tid, own) to leaf; -2: the tree disagrees. */
int kc_tree_put(kc_ctx *c, int tid, uint32_t own, int n, const int32_t *locs, const uint32_t *keys, int64_t leaf) {
    uint64_t rk = ((uint64_t)own << 6) | (uint64_t)tid;
    int32_t lref = (int32_t)(-leaf - 2);
    int32_t ref = kmap_get(&c->roots, rk);
    kmap *m = &c->roots; uint64_t mkk = rk;
    for (int q = 0; q <= n; q++) {
        int node = q < n;  /* at level q < n: a node reading locs[q]; at level n: the leaf */
        if (ref == -1) {
            int32_t want = lref;
            if (node) {
                if (grow((void **)&c->node_loc, &c->nodecap, c->nnode + 1, 4)) return -1;
                c->node_loc[c->nnode] = locs[q];
                want = (int32_t)c->nnode++;
            }
            if (kmap_put(m, mkk, want)) return -1;
            ref = want;
        } else if (node ? (ref < 0 || c->node_loc[ref] != locs[q]) : ref != lref) {
            return -2;
        }
        if (q < n) { m = &c->kids; mkk = ((uint64_t)ref << 32) | keys[q]; ref = kmap_get(m, mkk); }
    }
    return 0;
}

int kc_delta_put(kc_ctx *c, uint32_t gid, uint32_t delta, uint32_t ng) {
    return kmap_put(&c->deltas, ((uint64_t)gid << 32) | delta, (int32_t)ng);
}

uint32_t kc_want_g(kc_ctx *c) { return c->want_g; }
uint32_t kc_want_d(kc_ctx *c) { return c->want_d; }

static int64_t loc_value(kc_ctx *c, const uint32_t *s, int32_t loc) {
    int64_t idx;
    switch (c->loc_kind[loc]) {
    case L_GLOBAL: idx = s[0]; break;
    case L_THREAD: return s[c->loc_arg[loc] + 1];
    case L_TPART: idx = s[c->loc_arg[loc] + 1]; break;
    default: return -1;
    }
    return idx < c->lvcap[loc] ? c->lv[loc][idx] : -1;
}

/* Make sure thread t of state i has a memo entry: 0 it has (found, or made from a read-set leaf),
   1 Python must run it, 2 Python must apply delta kc_want_d to global part kc_want_g first, -1 no memory. */
int kc_oneshot(kc_ctx *c, int64_t state, int tid, int n, const uint32_t *moves, const uint32_t *words,
               const int32_t *evs, const uint8_t *fatal);

/* The leaf of thread t's tree that state s leads to, or -1. */
static int64_t walk(kc_ctx *c, const uint32_t *s, int t) {
    int32_t ref = kmap_get(&c->roots, ((uint64_t)s[t + 1] << 6) | (uint64_t)t);
    while (ref >= 0) {
        int64_t v = loc_value(c, s, c->node_loc[ref]);
        if (v < 0) return -1;
        ref = kmap_get(&c->kids, ((uint64_t)ref << 32) | (uint64_t)v);
    }
    return ref == -1 ? -1 : -(int64_t)ref - 2;
}

int kc_try(kc_ctx *c, int64_t i, int t) {
    const uint32_t *s = c->st + i * c->W;
    if (c->os_state == i && (c->os_mask >> t & 1)) return 0;
    if (lookup(c, s, t) >= 0) return 0;
    int64_t L = walk(c, s, t);
    if (L < 0) return 1;
    int kind = c->lf_kind[L], nb = c->lf_nb[L], nd = c->lf_nd[L];
    int64_t nbr = nb > 0 ? nb : 0, boff = c->lf_boff[L];
    if (grow((void **)&c->scratch, &c->scratchcap, nbr + 2 * nd + nbr * nd + nbr * c->W + 1, 4)) return -1;
    uint32_t *gs = c->scratch, *deps = gs + nbr, *depids = deps + nd, *newdeps = depids + nd;
    for (int64_t k = 0; k < nbr; k++) {
        uint32_t d = c->b_delta[boff + k];
        if (!d) { gs[k] = s[0]; continue; }
        int32_t ng = kmap_get(&c->deltas, ((uint64_t)s[0] << 32) | d);
        if (ng < 0) { c->want_g = s[0]; c->want_d = d; return 2; }
        gs[k] = (uint32_t)ng;
    }
    if (kind == 0) {
        int64_t e = new_entry(c, nb, c->b_move + boff, gs, c->b_own + boff, c->b_ev + boff, c->b_fatal + boff);
        if (e < 0) return -1;
        c->tree_hits++;
        return map_put(c, mkey(s[0], s[t + 1], t), (int32_t)e);
    }
    for (int q = 0; q < nd; q++) { deps[q] = c->ids[c->lf_doff[L] + q]; depids[q] = s[deps[q] + 1]; }
    if (kind == 1) {
        for (int64_t k = 0; k < nbr; k++)
            for (int q = 0; q < nd; q++) {
                uint32_t x = c->ids[c->b_ooff[boff + k] + q];
                newdeps[k * nd + q] = x == UNCH ? depids[q] : x;
            }
        int rc = kc_memo_dep_put(c, t, s[0], s[t + 1], nd, deps, depids, nb, c->b_move + boff, gs,
                                 c->b_own + boff, newdeps, c->b_ev + boff, c->b_fatal + boff);
        if (rc != -2) {
            if (!rc) c->tree_hits++;
            return rc ? -1 : 0;
        }
        /* an entry for the same (thread, parts) depends on other threads: this leaf holds for this state only */
    }
    /* kind 2 (its outcome is not keyed on these parts), or the above: successors for this state, one shot */
    uint32_t *ws = depids + nd;
    for (int64_t k = 0; k < nbr; k++) {
        uint32_t *w = ws + k * c->W;
        memcpy(w, s, (size_t)c->W * 4);
        w[0] = gs[k]; w[t + 1] = c->b_own[boff + k];
        for (int q = 0; q < nd; q++) {
            uint32_t x = c->ids[c->b_ooff[boff + k] + q];
            if (x != UNCH) w[deps[q] + 1] = x;
        }
    }
    c->tree_hits++;
    return kc_oneshot(c, i, t, nb, c->b_move + boff, ws, c->b_ev + boff, c->b_fatal + boff);
}

/* The (global part, delta) pairs that the leaves of the queued states from i on need and C lacks, at
   most WANTS of them (duplicates possible), for Python to apply in one go; returns how many. */
#define WANTS 4096
#define LOOKAHEAD 8192

static int64_t collect_wants(kc_ctx *c, int64_t i) {
    int64_t nw = 0;
    if (grow((void **)&c->wants, &c->wantcap, 2 * WANTS, 4)) return 0;
    /* state i, then the states not scanned before (an earlier scan's wants are all applied) */
    int64_t from = c->scanned > i + 1 ? c->scanned : i + 1, q = i;
    for (; q < c->nst && q < from + LOOKAHEAD && nw < WANTS; q = q == i ? from : q + 1) {
        if (c->term[q]) continue;
        const uint32_t *s = c->st + q * c->W;
        for (int t = 0; t < c->n && nw < WANTS; t++) {
            if (!s[t + 1] || (c->os_state == q && (c->os_mask >> t & 1)) || lookup(c, s, t) >= 0) continue;
            int64_t L = walk(c, s, t);
            if (L < 0) continue;
            for (int64_t k = 0; k < c->lf_nb[L] && nw < WANTS; k++) {
                uint32_t d = c->b_delta[c->lf_boff[L] + k];
                if (d && kmap_get(&c->deltas, ((uint64_t)s[0] << 32) | d) < 0) {
                    c->wants[2 * nw] = s[0]; c->wants[2 * nw + 1] = d; nw++;
                }
            }
        }
    }
    if (q > c->scanned) c->scanned = q;
    return nw;
}

int64_t kc_tree_hits(kc_ctx *c) { return c->tree_hits; }

uint32_t *kc_wants(kc_ctx *c, int64_t *n) { *n = c->nwants; c->nwants = 0; return c->wants; }

/* Successors of thread tid in the state being expanded, given whole (not memoisable); n < 0: blocked. */
int kc_oneshot(kc_ctx *c, int64_t state, int tid, int n, const uint32_t *moves, const uint32_t *words,
               const int32_t *evs, const uint8_t *fatal) {
    if (c->os_state != state) { c->os_state = state; c->os_mask = 0; c->os_blocked = 0; c->os_count = 0; }
    c->os_mask |= 1ULL << tid;
    if (n < 0) { c->os_blocked |= 1ULL << tid; return 0; }
    int64_t need = c->os_count + n, cap = c->os_cap;
    if (need > cap) {
        while (cap < need) cap = cap ? cap * 2 : 64;
        uint32_t *a = realloc(c->os_move, (size_t)cap * 4); if (!a) return -1; c->os_move = a;
        uint32_t *b = realloc(c->os_words, (size_t)cap * c->W * 4); if (!b) return -1; c->os_words = b;
        int32_t *d = realloc(c->os_ev, (size_t)cap * 4); if (!d) return -1; c->os_ev = d;
        uint8_t *e = realloc(c->os_fatal, (size_t)cap); if (!e) return -1; c->os_fatal = e;
        c->os_cap = cap;
    }
    c->os_off[tid] = (int32_t)c->os_count; c->os_n[tid] = n;
    for (int k = 0; k < n; k++) {
        int64_t q = c->os_count + k;
        c->os_move[q] = moves[k]; c->os_ev[q] = evs[k]; c->os_fatal[q] = fatal[k];
        memcpy(c->os_words + q * c->W, words + (int64_t)k * c->W, (size_t)c->W * 4);
    }
    c->os_count += n;
    return 0;
}

/* The invariants hold in every state with global id gid (Python checked and memoised it). */
int kc_inv_clean(kc_ctx *c, uint32_t gid) {
    if ((int64_t)gid >= c->inv_cap) {
        int64_t cap = c->inv_cap ? c->inv_cap : 1024;
        while (cap <= (int64_t)gid) cap *= 2;
        uint8_t *a = realloc(c->inv_clean, (size_t)cap); if (!a) return -1;
        memset(a + c->inv_cap, 0, (size_t)(cap - c->inv_cap));
        c->inv_clean = a; c->inv_cap = cap;
    }
    c->inv_clean[gid] = 1;
    return 0;
}

static int logit(kc_ctx *c, int64_t kind, int64_t a, int64_t b, int64_t d) {
    if (grow((void **)&c->log, &c->logcap, (c->nlog + 1) * 4, 8)) return -1;
    int64_t *l = c->log + c->nlog * 4;
    l[0] = kind; l[1] = a; l[2] = b; l[3] = d;
    c->nlog++;
    return 0;
}

static int add_edge(kc_ctx *c, int64_t j, int tid, uint32_t mv) {
    if (c->nedge + 1 > c->ecap2) {
        int64_t cap = c->ecap2 ? c->ecap2 * 2 : 4096;
        int64_t *a = realloc(c->edst, (size_t)cap * 8); if (!a) return -1; c->edst = a;
        uint8_t *b = realloc(c->etid, (size_t)cap); if (!b) return -1; c->etid = b;
        uint32_t *d = realloc(c->emove, (size_t)cap * 4); if (!d) return -1; c->emove = d;
        c->ecap2 = cap;
    }
    c->edst[c->nedge] = j; c->etid[c->nedge] = (uint8_t)tid; c->emove[c->nedge] = mv;
    c->nedge++;
    return 0;
}

/* one successor of state i: intern, log, queue */
static int succ(kc_ctx *c, int64_t i, int tid, const uint32_t *w, uint64_t hv, uint32_t mv, int32_t ev,
                uint8_t fatal, uint32_t d1) {
    int isnew;
    if (ev >= 0 && logit(c, 1, i, ev, mv)) return -1;
    int64_t j = intern_h(c, w, hv, i, mv, d1, &isnew);
    if (j < 0) return -1;
    if (isnew) {
        if (c->has_inv && !(w[0] < c->inv_cap && c->inv_clean[w[0]] == 1) && logit(c, 2, j, 0, 0)) return -1;
        if (fatal) c->term[j] = 1; else c->qlen++;
    }
    if (c->keep_rows && add_edge(c, j, tid, mv)) return -1;
    return 0;
}

/* room for n successors of the state being expanded */
static int sb_reserve(kc_ctx *c, int64_t n) {
    if (n <= c->sbcap) return 0;
    int64_t cap = c->sbcap ? c->sbcap : 64;
    while (cap < n) cap *= 2;
    uint32_t *a = realloc(c->sb_w, (size_t)cap * c->W * 4); if (!a) return -1; c->sb_w = a;
    uint64_t *b = realloc(c->sb_h, (size_t)cap * 8); if (!b) return -1; c->sb_h = b;
    uint8_t *d = realloc(c->sb_t, (size_t)cap); if (!d) return -1; c->sb_t = d;
    uint32_t *e = realloc(c->sb_mv, (size_t)cap * 4); if (!e) return -1; c->sb_mv = e;
    int32_t *f = realloc(c->sb_ev, (size_t)cap * 4); if (!f) return -1; c->sb_ev = f;
    uint8_t *g = realloc(c->sb_fatal, (size_t)cap); if (!g) return -1; c->sb_fatal = g;
    c->sbcap = cap;
    return 0;
}

/* Expand states from the cursor, at most budget of them. */
int kc_run(kc_ctx *c, int64_t budget) {
    int W = c->W;
    while (c->cursor < c->nst) {
        int64_t i = c->cursor;
        if (c->term[i]) { c->cursor++; continue; }
        if (budget-- <= 0) return KC_BUDGET;
        const uint32_t *s = c->st + i * W;
        int oneshot = c->os_state == i;
        int32_t ent[64], first[64];
        /* every live thread needs an answer before the state is expanded */
        for (int t = 0; t < c->n; t++) {
            if (!s[t + 1] || (oneshot && (c->os_mask >> t & 1))) continue;
            ent[t] = lookup2(c, s, t, &first[t]);
            if (ent[t] >= 0) continue;
            int r = kc_try(c, i, t);
            if (r < 0) return KC_NOMEM;
            if (!r && c->os_state == i && (c->os_mask >> t & 1)) { oneshot = 1; continue; }
            if (r) {  /* Python runs the step, or makes new global parts (all those it soon will, at once) */
                c->need = i;
                c->nwants = r == 2 ? collect_wants(c, i) : 0;
                return KC_NEED;
            }
            ent[t] = lookup2(c, s, t, &first[t]);
        }
        if (i >= c->dnext) { c->dcur++; c->dnext = c->nst; }  /* BFS: the states of a level are contiguous */
        uint32_t d1 = c->dcur + 1;
        int64_t e0 = c->nedge, nouts = 0;
        uint64_t mask = 0;
        /* gather the successors, hash them and prefetch their slots of the table, then add them in
           order (the table's memory is the loop's cost: this overlaps the cache misses) */
        for (int t = 0; t < c->n; t++) {
            uint32_t own = c->st[i * W + t + 1];
            if (!own) continue;
            if (oneshot && (c->os_mask >> t & 1)) {
                if (c->os_blocked >> t & 1) continue;
                mask |= 1ULL << t;
                for (int k = 0; k < c->os_n[t]; k++) {
                    int64_t q = c->os_off[t] + k;
                    if (sb_reserve(c, nouts + 1)) return KC_NOMEM;
                    memcpy(c->sb_w + nouts * W, c->os_words + q * W, (size_t)W * 4);
                    c->sb_t[nouts] = (uint8_t)t; c->sb_mv[nouts] = c->os_move[q]; c->sb_ev[nouts] = c->os_ev[q];
                    c->sb_fatal[nouts] = c->os_fatal[q];
                    nouts++;
                }
                continue;
            }
            int32_t e1 = first[t], e = ent[t];
            if (c->ekind[e] == E_BLOCKED) continue;
            mask |= 1ULL << t;
            int dk = c->ekind[e1] == E_DEP ? c->en[e1] : 0;
            if (sb_reserve(c, nouts + c->en[e])) return KC_NOMEM;
            for (int k = 0; k < c->en[e]; k++) {
                int64_t q = c->eoff[e] + k;
                uint32_t *w = c->sb_w + nouts * W;
                memcpy(w, c->st + i * W, (size_t)W * 4);
                w[0] = c->sg[q]; w[t + 1] = c->sown[q];
                for (int d = 0; d < dk; d++) w[c->ids[c->eoff[e1] + d] + 1] = c->ids[c->edoff[e] + (int64_t)k * dk + d];
                c->sb_t[nouts] = (uint8_t)t; c->sb_mv[nouts] = c->smove[q]; c->sb_ev[nouts] = c->sev[q];
                c->sb_fatal[nouts] = c->sfatal[q];
                nouts++;
            }
        }
        const uint32_t *ps = c->st + i * W;
        uint64_t hp = hash_state(ps, W);
        for (int64_t k = 0; k < nouts; k++) {
            const uint32_t *w = c->sb_w + k * W;
            uint64_t hv = hp;
            for (int q = 0; q < W; q++)
                if (w[q] != ps[q]) hv += word_term(q, w[q]) - word_term(q, ps[q]);
            c->sb_h[k] = hv;
            __builtin_prefetch(c->ht + (hv & (uint64_t)c->hmask));
        }
        for (int64_t k = 0; k < nouts; k++) {
            uint64_t x = c->ht[c->sb_h[k] & (uint64_t)c->hmask];
            if (x) __builtin_prefetch(c->st + ((int64_t)(x >> 32) - 1) * W);
        }
        for (int64_t k = 0; k < nouts; k++)
            if (succ(c, i, c->sb_t[k], c->sb_w + k * W, c->sb_h[k], c->sb_mv[k], c->sb_ev[k], c->sb_fatal[k], d1))
                return KC_NOMEM;
        c->transitions += nouts;
        if (c->keep_rows) { c->rb[i] = e0; c->re[i] = c->nedge; c->mask[i] = mask; }
        if (!nouts && logit(c, 3, i, 0, 0)) return KC_NOMEM;
        c->qlen--;
        c->cursor++;
        if (oneshot) c->os_state = -1;
        if (c->nst >= c->max_states && c->qlen > 0) return KC_FULL;
    }
    return KC_DONE;
}

/* Tarjan's SCCs over the recorded edges, in the pure-Python explorer's order; keeps components with a cycle. */
int kc_scc(kc_ctx *c) {
    int64_t n = c->nst;
    int64_t *index = malloc((size_t)n * 8), *low = malloc((size_t)n * 8), *stack = malloc((size_t)n * 8);
    int64_t *wv = malloc((size_t)n * 8), *wp = malloc((size_t)n * 8);
    uint8_t *on = calloc((size_t)n, 1);
    int64_t *comp = malloc((size_t)n * 8), *cstart = malloc((size_t)(n + 1) * 8);
    if (!index || !low || !stack || !wv || !wp || !on || !comp || !cstart) {
        free(index); free(low); free(stack); free(wv); free(wp); free(on); free(comp); free(cstart);
        return -1;
    }
    for (int64_t v = 0; v < n; v++) index[v] = -1;
    int64_t counter = 0, sp = 0, ncn = 0, nc = 0;
    for (int64_t root = 0; root < n; root++) {
        if (index[root] != -1) continue;
        int64_t wt = 0;
        wv[wt] = root; wp[wt] = c->rb[root]; wt++;
        index[root] = low[root] = counter++;
        stack[sp++] = root; on[root] = 1;
        while (wt) {
            int64_t v = wv[wt - 1];
            if (wp[wt - 1] < c->re[v]) {
                int64_t u = c->edst[wp[wt - 1]++];
                if (index[u] == -1) {
                    index[u] = low[u] = counter++;
                    stack[sp++] = u; on[u] = 1;
                    wv[wt] = u; wp[wt] = c->rb[u]; wt++;
                } else if (on[u] && index[u] < low[v]) {
                    low[v] = index[u];
                }
            } else {
                wt--;
                if (wt && low[v] < low[wv[wt - 1]]) low[wv[wt - 1]] = low[v];
                if (low[v] == index[v]) {
                    int64_t start = ncn, u;
                    do { u = stack[--sp]; on[u] = 0; comp[ncn++] = u; } while (u != v);
                    int cyc = ncn - start > 1;
                    if (!cyc) for (int64_t q = c->rb[v]; q < c->re[v]; q++) if (c->edst[q] == v) { cyc = 1; break; }
                    if (cyc) cstart[nc++] = start; else ncn = start;
                }
            }
        }
    }
    cstart[nc] = ncn;
    free(index); free(low); free(stack); free(wv); free(wp); free(on);
    free(c->comp); free(c->cstart);
    c->comp = comp; c->cstart = cstart; c->ncomp_nodes = ncn; c->ncomps = nc;
    return 0;
}

/* accessors (cffi sees only these) */
int64_t kc_nstates(kc_ctx *c) { return c->nst; }
int64_t kc_transitions(kc_ctx *c) { return c->transitions; }
int64_t kc_need(kc_ctx *c) { return c->need; }
int64_t kc_cursor(kc_ctx *c) { return c->cursor; }
const uint32_t *kc_state(kc_ctx *c, int64_t i) { return c->st + i * c->W; }
uint32_t *kc_parent(kc_ctx *c) { return c->parent; }
uint32_t *kc_pmove(kc_ctx *c) { return c->pmove; }
uint32_t kc_max_depth(kc_ctx *c) { return c->maxd; }
uint8_t *kc_term(kc_ctx *c) { return c->term; }
int64_t *kc_log(kc_ctx *c, int64_t *n) { *n = c->nlog; c->nlog = 0; return c->log; }
int64_t kc_edges(kc_ctx *c, int64_t v, int64_t *end) { *end = c->re[v]; return c->rb[v]; }
uint64_t kc_mask(kc_ctx *c, int64_t v) { return c->mask[v]; }
int64_t kc_edge_dst(kc_ctx *c, int64_t q) { return c->edst[q]; }
int kc_edge_tid(kc_ctx *c, int64_t q) { return c->etid[q]; }
uint32_t kc_edge_move(kc_ctx *c, int64_t q) { return c->emove[q]; }
int64_t kc_ncomps(kc_ctx *c) { return c->ncomps; }
int64_t *kc_comp(kc_ctx *c) { return c->comp; }
int64_t *kc_cstart(kc_ctx *c) { return c->cstart; }
