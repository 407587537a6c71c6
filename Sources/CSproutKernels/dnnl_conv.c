// oneDNN convolution glue.
//
// Activations cross this boundary as plain NCHW (the tensor layer's layout) and weights
// as OIHW/GOIHW. Each pass of each problem has two candidates:
//   - blocked: oneDNN picks the layout (`format_tag_any`, nChw8c on AVX2) and the direct
//     jit kernel runs; the caller's NCHW buffers are reordered at the edges;
//   - plain: NCHW as it is, which selects oneDNN's GEMM-based kernel.
// Neither wins everywhere (measured on a 2-core AVX2 machine: blocked is 1.3-1.5x faster
// for forward and backward-data of wide layers; plain is 1.4-1.6x faster for
// backward-weights of 3x3 layers and 2x for backward-data of the 3-channel input layer),
// so a fixed rule, drawn from those measurements, picks one (`preferred_candidate`).
// The rule is deterministic on purpose: timing-based choices would make two runs with the
// same seed round differently. Autotuning (`SPROUT_CONV_AUTOTUNE=1`, passed in by
// `sprout_dnnl_configure`) instead times both candidates on the first call of each problem
// and pass and keeps the faster one. Primitives, reorders and blocked buffers are cached, so
// a steady training loop creates and allocates nothing.
//
// All of that state — the cache, its memory objects, the stream and the scratch area — lives
// in a context (`sprout_conv_context`). Threads use the process's default context unless
// they bind their own, so two inference threads (or two models) run convolutions at once,
// each with its own primitives and scratch; only the engine is shared.
//
// Every primitive runs in oneDNN's user scratchpad mode, its scratchpad carved from the
// context's scratch area. The library mode keeps one scratchpad per *thread*, sized when a
// primitive is created: a primitive created on one thread and run on another (the default
// context serves whichever thread holds its lock — Swift's task pool hops threads) wrote
// past the end of the runner's smaller scratchpad and crashed a CI run.
#include "sprout_kernels.h"
#include "dnnl_internal.h"
#include <dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static dnnl_engine_t g_engine;
static pthread_once_t g_engine_once = PTHREAD_ONCE_INIT;
static int g_engine_ready;
static int g_dnnl_disabled;   // sprout_dnnl_configure
static int g_autotune;

enum { PASS_FWD = 0, PASS_BWD_DATA = 1, PASS_BWD_WEIGHTS = 2, PASS_COUNT = 3 };
enum { SLOT_SRC, SLOT_WEI, SLOT_BIA, SLOT_DST, SLOT_COUNT };

// One tensor argument: the caller's plain memory, and (when the primitive wants another
// layout) the blocked memory plus the reorder between them.
typedef struct {
    int used;
    dnnl_memory_t user;     // plain layout, data handle set per call
    dnnl_memory_t inner;    // primitive's layout; == user when no reorder is needed
    size_t inner_bytes;     // > 0 when `inner` is a separate buffer (bound to the shared scratch per call)
    dnnl_primitive_t to_inner, to_user;
    dnnl_memory_t to_inner_pad, to_user_pad;  // the reorders' scratchpads, when they need one
} slot_t;

typedef struct {
    int ok;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    dnnl_memory_t pad;      // the primitive's scratchpad, when it needs one
    size_t pad_bytes;       // the largest scratchpad of the primitive and its reorders
    slot_t slots[SLOT_COUNT];
    char impl[64];
} candidate_t;

enum { CAND_BLOCKED = 0, CAND_PLAIN = 1, CAND_COUNT = 2 };

typedef struct entry {
    sprout_conv_problem p;
    int pass;
    int chosen;            // index into cand, -1 until tuned
    candidate_t cand[CAND_COUNT];
    struct entry *next;
} entry_t;

struct sprout_conv_context {
    pthread_mutex_t lock;  // a context may still be shared (the default one is)
    dnnl_stream_t stream;
    entry_t *cache;
    void *scratch;
    size_t scratch_bytes;
};

static sprout_conv_context g_default_context = {PTHREAD_MUTEX_INITIALIZER, NULL, NULL, NULL, 0};
static __thread sprout_conv_context *t_context;

void sprout_dnnl_configure(int enabled, int autotune) {
    g_dnnl_disabled = !enabled;
    g_autotune = autotune;
}

int sprout_dnnl_enabled(void) { return !g_dnnl_disabled; }

int sprout_dnnl_has_avx512(void) {
    if (g_dnnl_disabled) return 0;
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();  // honours ONEDNN_MAX_CPU_ISA
    return (isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core;
}

static void create_engine(void) {
    g_engine_ready = dnnl_engine_create(&g_engine, dnnl_cpu, 0) == dnnl_success;
}

dnnl_engine_t sprout_dnnl_engine(void) {
    if (g_dnnl_disabled) return NULL;
    pthread_once(&g_engine_once, create_engine);
    return g_engine_ready ? g_engine : NULL;
}

// The engine (once per process) and this context's stream; called with the context locked.
static int ensure_engine(sprout_conv_context *ctx) {
    if (g_dnnl_disabled) return 0;
    pthread_once(&g_engine_once, create_engine);
    if (!g_engine_ready) return 0;
    if (!ctx->stream && dnnl_stream_create(&ctx->stream, g_engine, dnnl_stream_default_flags) != dnnl_success) {
        ctx->stream = NULL;
        return 0;
    }
    return 1;
}

sprout_conv_context *sprout_conv_context_create(void) {
    sprout_conv_context *ctx = calloc(1, sizeof *ctx);
    if (ctx) pthread_mutex_init(&ctx->lock, NULL);
    return ctx;
}

void sprout_conv_context_bind(sprout_conv_context *ctx) { t_context = ctx; }

sprout_conv_context *sprout_conv_context_bound(void) { return t_context; }

static sprout_conv_context *current_context(void) { return t_context ? t_context : &g_default_context; }

const char *sprout_dnnl_version(void) {
    static char buf[32];
    const dnnl_version_t *v = dnnl_version();
    if (!v) return "";
    snprintf(buf, sizeof buf, "%d.%d.%d", v->major, v->minor, v->patch);
    return buf;
}

static void init_md(dnnl_memory_desc_t *md, int ndims, const dnnl_dims_t dims, dnnl_format_tag_t tag) {
    dnnl_memory_desc_init_by_tag(md, ndims, dims, dnnl_f32, tag);
}

static void weight_dims(const sprout_conv_problem *p, dnnl_dims_t d, int *nd, dnnl_format_tag_t *tag) {
    if (p->groups > 1) {
        d[0] = p->groups; d[1] = p->k / p->groups; d[2] = p->c / p->groups; d[3] = p->r; d[4] = p->s;
        *nd = 5; *tag = dnnl_goihw;
    } else {
        d[0] = p->k; d[1] = p->c; d[2] = p->r; d[3] = p->s;
        *nd = 4; *tag = dnnl_oihw;
    }
}

static int build_conv_desc(const sprout_conv_problem *p, int pass, dnnl_convolution_desc_t *cd, int any) {
    dnnl_dims_t src = {p->n, p->c, p->h, p->w}, dst = {p->n, p->k, p->oh, p->ow}, wei, bia = {p->k};
    dnnl_dims_t strides = {p->stride_h, p->stride_w};
    dnnl_dims_t pl = {p->pad_top, p->pad_left}, pr = {p->pad_bottom, p->pad_right};
    int wnd; dnnl_format_tag_t wtag;
    weight_dims(p, wei, &wnd, &wtag);
    dnnl_memory_desc_t s, w, b, d;
    init_md(&s, 4, src, any ? dnnl_format_tag_any : dnnl_nchw);
    init_md(&d, 4, dst, any ? dnnl_format_tag_any : dnnl_nchw);
    init_md(&w, wnd, wei, any ? dnnl_format_tag_any : wtag);
    init_md(&b, 1, bia, dnnl_x);
    const dnnl_memory_desc_t *bp = p->has_bias ? &b : NULL;
    switch (pass) {
    case PASS_FWD:
        return dnnl_convolution_forward_desc_init(cd, dnnl_forward_training, dnnl_convolution_direct,
                                                  &s, &w, bp, &d, strides, pl, pr) == dnnl_success;
    case PASS_BWD_DATA:
        return dnnl_convolution_backward_data_desc_init(cd, dnnl_convolution_direct, &s, &w, &d,
                                                        strides, pl, pr) == dnnl_success;
    default:
        return dnnl_convolution_backward_weights_desc_init(cd, dnnl_convolution_direct, &s, &w, bp, &d,
                                                           strides, pl, pr) == dnnl_success;
    }
}

// Attributes asking for a scratchpad the caller provides (see the note at the top).
static dnnl_primitive_attr_t user_scratchpad_attr(void) {
    dnnl_primitive_attr_t attr = NULL;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) return NULL;
    if (dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) != dnnl_success) {
        dnnl_primitive_attr_destroy(attr);
        return NULL;
    }
    return attr;
}

static dnnl_primitive_desc_t make_pd(const sprout_conv_problem *p, int pass, int any) {
    dnnl_convolution_desc_t cd;
    if (!build_conv_desc(p, pass, &cd, any)) return NULL;
    dnnl_primitive_attr_t attr = user_scratchpad_attr();
    if (!attr) return NULL;
    dnnl_primitive_desc_t hint = NULL, pd = NULL;
    dnnl_status_t st = dnnl_success;
    if (pass != PASS_FWD) {
        dnnl_convolution_desc_t fd;
        if (!build_conv_desc(p, PASS_FWD, &fd, any)) st = dnnl_invalid_arguments;
        else st = dnnl_primitive_desc_create(&hint, &fd, NULL, g_engine, NULL);
    }
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, &cd, attr, g_engine, hint);
    if (hint) dnnl_primitive_desc_destroy(hint);
    dnnl_primitive_attr_destroy(attr);
    return st == dnnl_success ? pd : NULL;
}

// A memory object for `pd`'s scratchpad (handle bound per call), or NULL when it needs none.
// Grows `*bytes` to the largest scratchpad seen.
static int make_scratchpad(dnnl_primitive_desc_t pd, dnnl_memory_t *mem, size_t *bytes) {
    *mem = NULL;
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t size = md ? dnnl_memory_desc_get_size(md) : 0;
    if (size == 0) return 1;
    if (dnnl_memory_create(mem, md, g_engine, DNNL_MEMORY_NONE) != dnnl_success) { *mem = NULL; return 0; }
    if (size > *bytes) *bytes = size;
    return 1;
}

// A reorder primitive in user scratchpad mode, with its scratchpad memory.
static int make_reorder(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, dnnl_primitive_t *prim,
                        dnnl_memory_t *pad, size_t *pad_bytes) {
    dnnl_primitive_attr_t attr = user_scratchpad_attr();
    if (!attr) return 0;
    dnnl_primitive_desc_t rpd;
    dnnl_status_t st = dnnl_reorder_primitive_desc_create(&rpd, from, g_engine, to, g_engine, attr);
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) return 0;
    int ok = dnnl_primitive_create(prim, rpd) == dnnl_success && make_scratchpad(rpd, pad, pad_bytes);
    dnnl_primitive_desc_destroy(rpd);
    return ok;
}

static const char *impl_name(dnnl_primitive_desc_t pd) {
    const char *name = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) != dnnl_success || !name) return "";
    return name;
}

static int is_reference(const char *name) { return strstr(name, "ref") != NULL || name[0] == 0; }

static int setup_slot(slot_t *slot, const dnnl_memory_desc_t *user_md, const dnnl_memory_desc_t *inner_md,
                      int input, int output, size_t *pad_bytes) {
    slot->used = 1;
    if (dnnl_memory_create(&slot->user, user_md, g_engine, DNNL_MEMORY_NONE) != dnnl_success) return 0;
    if (dnnl_memory_desc_equal(user_md, inner_md)) {
        slot->inner = slot->user;
        return 1;
    }
    // No buffer of its own: calls are serialised, so every problem's blocked copies live in
    // one shared scratch area bound at execution (peak memory = the largest single call,
    // not the sum over every layer and pass).
    if (dnnl_memory_create(&slot->inner, inner_md, g_engine, DNNL_MEMORY_NONE) != dnnl_success) return 0;
    slot->inner_bytes = dnnl_memory_desc_get_size(inner_md);
    if (input && !make_reorder(user_md, inner_md, &slot->to_inner, &slot->to_inner_pad, pad_bytes)) return 0;
    if (output && !make_reorder(inner_md, user_md, &slot->to_user, &slot->to_user_pad, pad_bytes)) return 0;
    return 1;
}

static void build_candidate(candidate_t *c, const sprout_conv_problem *p, int pass, int any) {
    c->pd = make_pd(p, pass, any);
    if (!c->pd) return;
    snprintf(c->impl, sizeof c->impl, "%s", impl_name(c->pd));
    if (is_reference(c->impl)) return;
    if (dnnl_primitive_create(&c->prim, c->pd) != dnnl_success) return;
    if (!make_scratchpad(c->pd, &c->pad, &c->pad_bytes)) return;

    dnnl_dims_t src = {p->n, p->c, p->h, p->w}, dst = {p->n, p->k, p->oh, p->ow}, wei, bia = {p->k};
    int wnd; dnnl_format_tag_t wtag;
    weight_dims(p, wei, &wnd, &wtag);
    dnnl_memory_desc_t s, w, b, d;
    init_md(&s, 4, src, dnnl_nchw);
    init_md(&d, 4, dst, dnnl_nchw);
    init_md(&w, wnd, wei, wtag);
    init_md(&b, 1, bia, dnnl_x);

    int ok = 1;
    dnnl_primitive_desc_t pd = c->pd;
    if (pass == PASS_FWD) {
        ok &= setup_slot(&c->slots[SLOT_SRC], &s, dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), 1, 0, &c->pad_bytes);
        ok &= setup_slot(&c->slots[SLOT_WEI], &w, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), 1, 0, &c->pad_bytes);
        if (p->has_bias)
            ok &= setup_slot(&c->slots[SLOT_BIA], &b, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1), 1, 0, &c->pad_bytes);
        ok &= setup_slot(&c->slots[SLOT_DST], &d, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), 0, 1, &c->pad_bytes);
    } else if (pass == PASS_BWD_DATA) {
        ok &= setup_slot(&c->slots[SLOT_DST], &d, dnnl_primitive_desc_query_md(pd, dnnl_query_diff_dst_md, 0), 1, 0, &c->pad_bytes);
        ok &= setup_slot(&c->slots[SLOT_WEI], &w, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), 1, 0, &c->pad_bytes);
        ok &= setup_slot(&c->slots[SLOT_SRC], &s, dnnl_primitive_desc_query_md(pd, dnnl_query_diff_src_md, 0), 0, 1, &c->pad_bytes);
    } else {
        ok &= setup_slot(&c->slots[SLOT_SRC], &s, dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), 1, 0, &c->pad_bytes);
        ok &= setup_slot(&c->slots[SLOT_DST], &d, dnnl_primitive_desc_query_md(pd, dnnl_query_diff_dst_md, 0), 1, 0, &c->pad_bytes);
        ok &= setup_slot(&c->slots[SLOT_WEI], &w, dnnl_primitive_desc_query_md(pd, dnnl_query_diff_weights_md, 0), 0, 1, &c->pad_bytes);
        if (p->has_bias)
            ok &= setup_slot(&c->slots[SLOT_BIA], &b, dnnl_primitive_desc_query_md(pd, dnnl_query_diff_weights_md, 1), 0, 1, &c->pad_bytes);
    }
    c->ok = ok;
}

static void destroy_candidate(candidate_t *c) {
    for (int i = 0; i < SLOT_COUNT; i++) {
        slot_t *s = &c->slots[i];
        if (s->to_inner) dnnl_primitive_destroy(s->to_inner);
        if (s->to_user) dnnl_primitive_destroy(s->to_user);
        if (s->to_inner_pad) dnnl_memory_destroy(s->to_inner_pad);
        if (s->to_user_pad) dnnl_memory_destroy(s->to_user_pad);
        if (s->inner && s->inner != s->user) dnnl_memory_destroy(s->inner);
        if (s->user) dnnl_memory_destroy(s->user);
    }
    if (c->prim) dnnl_primitive_destroy(c->prim);
    if (c->pad) dnnl_memory_destroy(c->pad);
    if (c->pd) dnnl_primitive_desc_destroy(c->pd);
    char impl[64];
    memcpy(impl, c->impl, sizeof impl);
    memset(c, 0, sizeof *c);
    memcpy(c->impl, impl, sizeof impl);
}


// Measured (sprout bench ops, 2 threads, N=128): the blocked direct kernel wins forward
// passes and backward-data of layers with many input channels; oneDNN's GEMM kernel on
// plain NCHW wins backward-data of thin-input layers (3 channels: 2x) and
// backward-weights of 3x3 layers (1.3-1.7x); 5x5 backward-weights stays blocked (1.7x).
// Grouped (depthwise) layers stay blocked: their plain backward-data is a GEMM with K = 9
// per group, which took 60% of mobilenet-v2's convolution time (jit_dw is ~10x faster).
// Pointwise (1x1, stride 1) layers run plain in every pass: on NCHW they are one GEMM per
// image, and the blocked kernel's reorders at both edges cost more than they save
// (mobilenet-v2 training 45-52 -> 53-58 img/s, efficientnet-lite0 32-34 -> 34-36, three
// alternating rounds at 224 px, batch 32, 2 threads on the AVX-512 machine).
static int preferred_candidate(const sprout_conv_problem *p, int pass) {
    if (p->groups == 1 && p->r == 1 && p->s == 1 && p->stride_h == 1 && p->stride_w == 1) return CAND_PLAIN;
    if (pass == PASS_BWD_DATA && p->groups == 1 && p->c < 8) return CAND_PLAIN;
    if (pass == PASS_BWD_WEIGHTS && p->r <= 3 && p->s <= 3 && p->c / p->groups >= 16) return CAND_PLAIN;
    return CAND_BLOCKED;
}

static entry_t *lookup(sprout_conv_context *ctx, const sprout_conv_problem *p, int pass) {
    for (entry_t *e = ctx->cache; e; e = e->next)
        if (e->pass == pass && memcmp(&e->p, p, sizeof *p) == 0) return e;
    entry_t *e = calloc(1, sizeof *e);
    e->p = *p;
    e->pass = pass;
    e->chosen = -1;
    e->next = ctx->cache;
    ctx->cache = e;
    if (g_autotune) {
        build_candidate(&e->cand[CAND_BLOCKED], p, pass, 1);
        build_candidate(&e->cand[CAND_PLAIN], p, pass, 0);
        // A single usable candidate needs no timing.
        int usable = e->cand[CAND_BLOCKED].ok + e->cand[CAND_PLAIN].ok;
        if (usable == 1) e->chosen = e->cand[CAND_BLOCKED].ok ? CAND_BLOCKED : CAND_PLAIN;
        return e;
    }
    int first = preferred_candidate(p, pass), second = 1 - first;
    build_candidate(&e->cand[first], p, pass, first == CAND_BLOCKED);
    if (e->cand[first].ok) { e->chosen = first; return e; }
    build_candidate(&e->cand[second], p, pass, second == CAND_BLOCKED);
    if (e->cand[second].ok) e->chosen = second;
    return e;
}

static void reorder(sprout_conv_context *ctx, dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to,
                    dnnl_memory_t pad) {
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}, {DNNL_ARG_SCRATCHPAD, pad}};
    dnnl_primitive_execute(r, ctx->stream, pad ? 3 : 2, args);
}

// Binds each slot's blocked buffer to its own region of the context's scratch area, and
// every scratchpad (the primitive's and its reorders', which run one after another) to
// the region after them.
static int bind_scratch(sprout_conv_context *ctx, candidate_t *c) {
    size_t total = (c->pad_bytes + 63) & ~(size_t)63;
    for (int i = 0; i < SLOT_COUNT; i++) total += (c->slots[i].inner_bytes + 63) & ~(size_t)63;
    if (total > ctx->scratch_bytes) {
        free(ctx->scratch);
        ctx->scratch = NULL;
        ctx->scratch_bytes = 0;
        if (posix_memalign(&ctx->scratch, 64, total) != 0) return 0;
        ctx->scratch_bytes = total;
    }
    size_t offset = 0;
    for (int i = 0; i < SLOT_COUNT; i++) {
        slot_t *s = &c->slots[i];
        if (!s->used || s->inner_bytes == 0) continue;
        dnnl_memory_set_data_handle(s->inner, (char *)ctx->scratch + offset);
        offset += (s->inner_bytes + 63) & ~(size_t)63;
    }
    void *pad = (char *)ctx->scratch + offset;
    if (c->pad) dnnl_memory_set_data_handle(c->pad, pad);
    for (int i = 0; i < SLOT_COUNT; i++) {
        slot_t *s = &c->slots[i];
        if (s->to_inner_pad) dnnl_memory_set_data_handle(s->to_inner_pad, pad);
        if (s->to_user_pad) dnnl_memory_set_data_handle(s->to_user_pad, pad);
    }
    return 1;
}

static int execute(sprout_conv_context *ctx, candidate_t *c, void *ptrs[SLOT_COUNT], const int arg_ids[SLOT_COUNT]) {
    if (!bind_scratch(ctx, c)) return 1;
    dnnl_exec_arg_t args[SLOT_COUNT + 1];
    int nargs = 0;
    for (int i = 0; i < SLOT_COUNT; i++) {
        slot_t *s = &c->slots[i];
        if (!s->used) continue;
        dnnl_memory_set_data_handle(s->user, ptrs[i]);
        if (s->to_inner) reorder(ctx, s->to_inner, s->user, s->inner, s->to_inner_pad);
        args[nargs].arg = arg_ids[i];
        args[nargs].memory = s->inner;
        nargs++;
    }
    if (c->pad) {
        args[nargs].arg = DNNL_ARG_SCRATCHPAD;
        args[nargs].memory = c->pad;
        nargs++;
    }
    int status = dnnl_primitive_execute(c->prim, ctx->stream, nargs, args) == dnnl_success ? 0 : 1;
    for (int i = 0; i < SLOT_COUNT; i++) {
        slot_t *s = &c->slots[i];
        if (s->used && s->to_user) reorder(ctx, s->to_user, s->inner, s->user, s->to_user_pad);
    }
    dnnl_stream_wait(ctx->stream);
    return status;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Times each usable candidate on the caller's own buffers (the first run of each warms
// its buffers up; the better of the next two counts) and destroys the loser. Every pass
// writes its outputs whole, so the extra runs leave the same result.
static void tune(sprout_conv_context *ctx, entry_t *e, void *ptrs[SLOT_COUNT], const int arg_ids[SLOT_COUNT]) {
    double best = 1e30;
    for (int k = 0; k < CAND_COUNT; k++) {
        candidate_t *c = &e->cand[k];
        if (!c->ok) continue;
        execute(ctx, c, ptrs, arg_ids);
        double t = 1e30;
        for (int r = 0; r < 2; r++) {
            double t0 = now_seconds();
            execute(ctx, c, ptrs, arg_ids);
            double dt = now_seconds() - t0;
            if (dt < t) t = dt;
        }
        if (t < best) { best = t; e->chosen = k; }
    }
    for (int k = 0; k < CAND_COUNT; k++)
        if (k != e->chosen && e->cand[k].ok) destroy_candidate(&e->cand[k]);
}

// Runs one cached pass: bind the caller's pointers, reorder inputs in, execute, reorder
// outputs back. `ptrs` is indexed by SLOT_*; `arg_ids` gives each slot's DNNL_ARG_*.
static int run(const sprout_conv_problem *p, int pass, void *ptrs[SLOT_COUNT], const int arg_ids[SLOT_COUNT]) {
    sprout_conv_context *ctx = current_context();
    pthread_mutex_lock(&ctx->lock);
    int status = 1;
    if (ensure_engine(ctx)) {
        entry_t *e = lookup(ctx, p, pass);
        if (e->chosen < 0 && (e->cand[0].ok || e->cand[1].ok)) tune(ctx, e, ptrs, arg_ids);
        if (e->chosen >= 0) status = execute(ctx, &e->cand[e->chosen], ptrs, arg_ids);
    }
    pthread_mutex_unlock(&ctx->lock);
    return status;
}

void sprout_conv_context_destroy(sprout_conv_context *ctx) {
    if (!ctx || ctx == &g_default_context) return;
    if (t_context == ctx) t_context = NULL;
    for (entry_t *e = ctx->cache, *next; e; e = next) {
        next = e->next;
        for (int k = 0; k < CAND_COUNT; k++) destroy_candidate(&e->cand[k]);
        free(e);
    }
    if (ctx->stream) dnnl_stream_destroy(ctx->stream);
    free(ctx->scratch);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

int sprout_conv_forward(const sprout_conv_problem *p, const float *x, const float *w, const float *bias, float *y) {
    void *ptrs[SLOT_COUNT] = {(void *)x, (void *)w, (void *)bias, y};
    const int ids[SLOT_COUNT] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST};
    return run(p, PASS_FWD, ptrs, ids);
}

int sprout_conv_backward_data(const sprout_conv_problem *p, const float *dy, const float *w, float *dx) {
    void *ptrs[SLOT_COUNT] = {dx, (void *)w, NULL, (void *)dy};
    const int ids[SLOT_COUNT] = {DNNL_ARG_DIFF_SRC, DNNL_ARG_WEIGHTS, 0, DNNL_ARG_DIFF_DST};
    return run(p, PASS_BWD_DATA, ptrs, ids);
}

int sprout_conv_backward_weights(const sprout_conv_problem *p, const float *x, const float *dy, float *dw, float *db) {
    void *ptrs[SLOT_COUNT] = {(void *)x, dw, db, (void *)dy};
    const int ids[SLOT_COUNT] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_BIAS, DNNL_ARG_DIFF_DST};
    return run(p, PASS_BWD_WEIGHTS, ptrs, ids);
}

const char *sprout_conv_implementation(const sprout_conv_problem *p, int pass) {
    const char *name = "";
    sprout_conv_context *ctx = current_context();
    pthread_mutex_lock(&ctx->lock);
    if (ensure_engine(ctx)) {
        entry_t *e = lookup(ctx, p, pass);
        // Before tuning, report the candidates; after, the one kept.
        static char both[160];
        if (e->chosen >= 0) {
            name = e->cand[e->chosen].impl;
        } else if (e->cand[0].ok && e->cand[1].ok) {
            snprintf(both, sizeof both, "%s|%s", e->cand[0].impl, e->cand[1].impl);
            name = both;
        } else {
            name = "";
        }
    }
    pthread_mutex_unlock(&ctx->lock);
    return name;
}

// ---- GEMM on oneDNN's pool ---------------------------------------------------------
int sprout_dnnl_sgemm(int transpose_a, int transpose_b, long m, long n, long k, const float *a, long lda,
                      const float *b, long ldb, float beta, float *c, long ldc) {
    if (g_dnnl_disabled) return -1;
    dnnl_status_t s = dnnl_sgemm(transpose_a ? 'T' : 'N', transpose_b ? 'T' : 'N', m, n, k, 1.0f, a, lda, b, ldb,
                                 beta, c, ldc);
    return s == dnnl_success ? 0 : -1;
}
