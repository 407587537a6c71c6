// oneDNN inference graphs: a whole network's forward pass, compiled once per batch size.
//
// The training path (dnnl_conv.c) crosses the NCHW boundary at every convolution: each
// call reorders its input into oneDNN's blocked layout and its output back. At inference
// nothing between two layers needs NCHW, so a graph keeps every activation in the layout
// its producer chose and reorders only at the edges (the network's input and output) or
// where two consumers disagree. Batch norm after a convolution is folded by the caller
// (Swift's lowering); activations, residual sums and scales ride on the producing
// convolution or inner product as post-ops. A compiled plan (an "executor") owns its
// primitives, its activation buffers (shared between values whose lifetimes do not
// overlap) and one scratchpad; weights in the blocked layout a primitive asked for are
// shared by every executor of the graph that asks for the same layout.
//
// A graph is built single-threaded; executors are then compiled and run by any thread,
// one thread per executor at a time (their buffers are theirs).
#include "sprout_kernels.h"
#include "dnnl_internal.h"
#include <dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { OP_INPUT, OP_CONV, OP_POOL, OP_LRN, OP_AFFINE, OP_ELTWISE, OP_ADD, OP_LINEAR };
enum { MAX_POST = 4 };

typedef struct {
    int is_sum;        // 1: add the value `sum_src` (the primitive's dst holds it beforehand)
    int act;           // SPROUT_ACT_*
    float alpha, beta;
} post_t;

typedef struct weight_variant {
    dnnl_memory_desc_t md;
    void *data;
    struct weight_variant *next;
} weight_variant;

typedef struct {
    int op;
    int src, src2;                 // values read (src2: the add's other operand)
    int version;                   // bumped when a post-op is fused in (older ids become stale)
    int uses;                      // consumers so far
    long dims[4]; int ndims;       // output, batch 1
    // convolution / pooling / linear
    int kh, kw, sh, sw, pt, pl, pb, pr, groups, pool_max;
    float *weights; long weight_count; float *bias;   // OIHW (GOIHW with groups) / [K, C·H·W]
    weight_variant *variants;
    // LRN
    int lrn_size; float lrn_alpha, lrn_beta, lrn_k;
    // affine (a batch norm not folded): y = x·scale[c] + shift[c]
    float *scale, *shift;
    post_t post[MAX_POST]; int npost; int sum_src;
} node_t;

typedef struct { int node, version; } value_t;

struct sprout_infer_graph {
    node_t *nodes; int count, capacity;
    value_t *values; int value_count, value_capacity;
    int output;                   // value id marked as the graph's output (-1: the last)
    int fuse, winograd;           // sprout_infer_graph_set_options
    // Measured Winograd-or-direct choices, by convolution shape and batch (see build_node).
    struct { long key[9]; int winograd; } *choices;
    int nchoices, choice_capacity;
    pthread_mutex_t lock;         // weight variants are shared between executors
    char error[256];
};

// ---- building ---------------------------------------------------------------

static int g_winograd = 1;  // sprout_infer_configure

void sprout_infer_configure(int winograd) { g_winograd = winograd; }

static dnnl_alg_kind_t act_alg(int act) {
    switch (act) {
    case SPROUT_ACT_RELU: return dnnl_eltwise_relu;           // alpha: the negative slope
    case SPROUT_ACT_CLIP: return dnnl_eltwise_clip;           // [alpha, beta]
    case SPROUT_ACT_GELU_ERF: return dnnl_eltwise_gelu_erf;
    case SPROUT_ACT_GELU_TANH: return dnnl_eltwise_gelu_tanh;
    case SPROUT_ACT_ELU: return dnnl_eltwise_elu;
    case SPROUT_ACT_SIGMOID: return dnnl_eltwise_logistic;
    case SPROUT_ACT_TANH: return dnnl_eltwise_tanh;
    default: return dnnl_eltwise_linear;                      // alpha·x + beta
    }
}

static int fail(sprout_infer_graph *g, const char *message) {
    if (!g->error[0]) snprintf(g->error, sizeof g->error, "%s", message);
    return -1;
}

sprout_infer_graph *sprout_infer_graph_create(int c, int h, int w) {
    sprout_infer_graph *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    pthread_mutex_init(&g->lock, NULL);
    g->output = -1;
    g->fuse = 1;
    g->winograd = g_winograd;
    g->capacity = 64;
    g->nodes = calloc((size_t)g->capacity, sizeof(node_t));
    g->value_capacity = 64;
    g->values = calloc((size_t)g->value_capacity, sizeof(value_t));
    if (!g->nodes || !g->values) { sprout_infer_graph_destroy(g); return NULL; }
    node_t *in = &g->nodes[g->count++];
    in->op = OP_INPUT; in->src = in->src2 = -1; in->sum_src = -1;
    in->ndims = 4; in->dims[0] = 1; in->dims[1] = c; in->dims[2] = h; in->dims[3] = w;
    g->values[g->value_count++] = (value_t){0, 0};
    return g;
}

void sprout_infer_graph_set_options(sprout_infer_graph *g, int fuse, int winograd) {
    g->fuse = fuse;
    g->winograd = winograd;
}

void sprout_infer_graph_destroy(sprout_infer_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->count; i++) {
        node_t *n = &g->nodes[i];
        free(n->weights); free(n->bias); free(n->scale); free(n->shift);
        for (weight_variant *v = n->variants; v;) { weight_variant *next = v->next; free(v->data); free(v); v = next; }
    }
    free(g->nodes); free(g->values); free(g->choices);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

const char *sprout_infer_graph_error(const sprout_infer_graph *g) { return g->error; }

// The node behind a value id, or NULL when the id is unknown or stale (a post-op was
// fused into its producer after the id was handed out, so the id names a value that no
// longer exists).
static node_t *resolve(sprout_infer_graph *g, int value) {
    if (value < 0 || value >= g->value_count) { fail(g, "unknown value"); return NULL; }
    value_t v = g->values[value];
    node_t *n = &g->nodes[v.node];
    if (n->version != v.version) { fail(g, "a value was used after a post-op was fused into its producer"); return NULL; }
    return n;
}

static int new_value(sprout_infer_graph *g, int node) {
    if (g->value_count == g->value_capacity) {
        int cap = g->value_capacity * 2;
        value_t *v = realloc(g->values, (size_t)cap * sizeof(value_t));
        if (!v) return fail(g, "out of memory");
        g->values = v; g->value_capacity = cap;
    }
    g->values[g->value_count] = (value_t){node, g->nodes[node].version};
    return g->value_count++;
}

static node_t *append(sprout_infer_graph *g, int op, int src) {
    if (g->error[0]) return NULL;
    node_t *s = resolve(g, src);
    if (!s) return NULL;
    if (g->count == g->capacity) {
        int cap = g->capacity * 2;
        node_t *n = realloc(g->nodes, (size_t)cap * sizeof(node_t));
        if (!n) { fail(g, "out of memory"); return NULL; }
        memset(n + g->capacity, 0, (size_t)(cap - g->capacity) * sizeof(node_t));
        g->nodes = n; g->capacity = cap;
    }
    s->uses++;
    node_t *n = &g->nodes[g->count++];
    n->op = op; n->src = g->values[src].node; n->src2 = -1; n->sum_src = -1;
    return n;
}

static float *copy_floats(const float *p, long count) {
    if (!p) return NULL;
    float *q = malloc((size_t)count * sizeof(float));
    if (q) memcpy(q, p, (size_t)count * sizeof(float));
    return q;
}

int sprout_infer_conv(sprout_infer_graph *g, int src, int out_channels, int kh, int kw, int sh, int sw,
                      int pad_top, int pad_left, int pad_bottom, int pad_right, int oh, int ow, int groups,
                      const float *weights, const float *bias) {
    node_t *n = append(g, OP_CONV, src);
    if (!n) return -1;
    const node_t *s = &g->nodes[n->src];
    if (s->ndims != 4 || s->dims[1] % groups || out_channels % groups) return fail(g, "convolution: input is not [N, C, H, W] with C divisible by groups");
    n->ndims = 4; n->dims[0] = 1; n->dims[1] = out_channels; n->dims[2] = oh; n->dims[3] = ow;
    n->kh = kh; n->kw = kw; n->sh = sh; n->sw = sw; n->groups = groups;
    n->pt = pad_top; n->pl = pad_left; n->pb = pad_bottom; n->pr = pad_right;
    n->weight_count = (long)out_channels * (s->dims[1] / groups) * kh * kw;
    n->weights = copy_floats(weights, n->weight_count);
    n->bias = copy_floats(bias, out_channels);
    if (!n->weights || (bias && !n->bias)) return fail(g, "out of memory");
    return new_value(g, (int)(n - g->nodes));
}

int sprout_infer_pool(sprout_infer_graph *g, int src, int max, int kh, int kw, int sh, int sw,
                      int pad_top, int pad_left, int pad_bottom, int pad_right, int oh, int ow) {
    node_t *n = append(g, OP_POOL, src);
    if (!n) return -1;
    const node_t *s = &g->nodes[n->src];
    if (s->ndims != 4) return fail(g, "pooling: input is not [N, C, H, W]");
    n->ndims = 4; n->dims[0] = 1; n->dims[1] = s->dims[1]; n->dims[2] = oh; n->dims[3] = ow;
    n->pool_max = max; n->kh = kh; n->kw = kw; n->sh = sh; n->sw = sw;
    n->pt = pad_top; n->pl = pad_left; n->pb = pad_bottom; n->pr = pad_right;
    return new_value(g, (int)(n - g->nodes));
}

int sprout_infer_lrn(sprout_infer_graph *g, int src, int size, float alpha, float beta, float k) {
    node_t *n = append(g, OP_LRN, src);
    if (!n) return -1;
    const node_t *s = &g->nodes[n->src];
    if (s->ndims != 4) return fail(g, "LRN: input is not [N, C, H, W]");
    memcpy(n->dims, s->dims, sizeof n->dims); n->ndims = 4;
    n->lrn_size = size; n->lrn_alpha = alpha; n->lrn_beta = beta; n->lrn_k = k;
    return new_value(g, (int)(n - g->nodes));
}

int sprout_infer_affine(sprout_infer_graph *g, int src, const float *scale, const float *shift) {
    node_t *n = append(g, OP_AFFINE, src);
    if (!n) return -1;
    const node_t *s = &g->nodes[n->src];
    if (s->ndims != 4) return fail(g, "batch norm: input is not [N, C, H, W]");
    memcpy(n->dims, s->dims, sizeof n->dims); n->ndims = 4;
    long c = s->dims[1];
    n->scale = copy_floats(scale, c);
    n->shift = copy_floats(shift, c);
    n->weights = calloc((size_t)(2 * c), sizeof(float));  // the primitive's mean (0) and variance (1)
    if (!n->scale || !n->shift || !n->weights) return fail(g, "out of memory");
    for (long k = 0; k < c; k++) n->weights[c + k] = 1;
    return new_value(g, (int)(n - g->nodes));
}

int sprout_infer_linear(sprout_infer_graph *g, int src, int out_features, const float *weights, const float *bias) {
    node_t *n = append(g, OP_LINEAR, src);
    if (!n) return -1;
    const node_t *s = &g->nodes[n->src];
    long in = 1;
    for (int i = 1; i < s->ndims; i++) in *= s->dims[i];
    n->ndims = 2; n->dims[0] = 1; n->dims[1] = out_features;
    n->weight_count = (long)out_features * in;
    n->weights = copy_floats(weights, n->weight_count);
    n->bias = copy_floats(bias, out_features);
    if (!n->weights || (bias && !n->bias)) return fail(g, "out of memory");
    return new_value(g, (int)(n - g->nodes));
}

// A post-op can join the producer when the producer computes into its own output
// (convolution, inner product, addition), has room, and nobody has read its value yet.
static node_t *fusable(sprout_infer_graph *g, int value) {
    node_t *n = resolve(g, value);
    if (!n || !g->fuse || n->uses > 0 || n->npost >= MAX_POST) return NULL;
    return n->op == OP_CONV || n->op == OP_LINEAR || n->op == OP_ADD ? n : NULL;
}

int sprout_infer_activation(sprout_infer_graph *g, int src, int act, float alpha, float beta) {
    if (g->error[0]) return -1;
    node_t *p = fusable(g, src);
    if (p) {
        p->post[p->npost++] = (post_t){0, act, alpha, beta};
        p->version++;
        return new_value(g, (int)(p - g->nodes));
    }
    if (g->error[0]) return -1;
    node_t *n = append(g, OP_ELTWISE, src);
    if (!n) return -1;
    const node_t *s = &g->nodes[n->src];
    memcpy(n->dims, s->dims, sizeof n->dims); n->ndims = s->ndims;
    n->post[n->npost++] = (post_t){0, act, alpha, beta};
    return new_value(g, (int)(n - g->nodes));
}

int sprout_infer_add(sprout_infer_graph *g, int a, int b) {
    if (g->error[0]) return -1;
    node_t *na = resolve(g, a), *nb = resolve(g, b);
    if (!na || !nb) return -1;
    if (na->ndims != nb->ndims || memcmp(na->dims, nb->dims, sizeof na->dims) != 0) return fail(g, "add: operands differ in shape");
    // y = conv(…) + other: the convolution accumulates into a buffer holding `other`.
    for (int pass = 0; pass < 2; pass++) {
        int into = pass == 0 ? a : b, other = pass == 0 ? b : a;
        node_t *p = fusable(g, into);
        node_t *o = resolve(g, other);
        if (!o) return -1;
        // The addend must exist before the node that accumulates it runs (nodes run in order).
        if (p && (p->op == OP_CONV || p->op == OP_LINEAR) && p->sum_src < 0 && o < p) {
            o->uses++;
            p->sum_src = g->values[other].node;
            p->post[p->npost++] = (post_t){1, 0, 0, 0};
            p->version++;
            return new_value(g, (int)(p - g->nodes));
        }
    }
    int ib = g->values[b].node;
    node_t *n = append(g, OP_ADD, a);  // may move the node array
    if (!n) return -1;
    g->nodes[ib].uses++;
    n->src2 = ib;
    memcpy(n->dims, g->nodes[n->src].dims, sizeof n->dims); n->ndims = g->nodes[n->src].ndims;
    return new_value(g, (int)(n - g->nodes));
}

int sprout_infer_set_output(sprout_infer_graph *g, int value) {
    if (!resolve(g, value)) return -1;
    g->output = value;
    return 0;
}

int sprout_infer_value_dims(sprout_infer_graph *g, int value, long dims[4]) {
    node_t *n = resolve(g, value);
    if (!n) return -1;
    memcpy(dims, n->dims, sizeof n->dims);
    return n->ndims;
}

int sprout_infer_output_dims(sprout_infer_graph *g, long dims[4]) {
    int v = g->output >= 0 ? g->output : g->value_count - 1;
    node_t *n = resolve(g, v);
    if (!n) return -1;
    memcpy(dims, n->dims, sizeof n->dims);
    return n->ndims;
}

// ---- compiling --------------------------------------------------------------

enum { MAX_ARGS = 8 };
enum { BUF_USER_IN = -1, BUF_USER_OUT = -2, BUF_CONST = -3 };

typedef struct {
    dnnl_primitive_t prim;
    int nargs;
    int arg_ids[MAX_ARGS];
    dnnl_memory_desc_t mds[MAX_ARGS];
    int bufs[MAX_ARGS];            // buffer index, or BUF_*
    void *consts[MAX_ARGS];        // data for BUF_CONST
    dnnl_memory_t mems[MAX_ARGS];
} step_t;

struct sprout_infer_plan {
    int batch;
    step_t *steps; int nsteps, step_capacity;
    size_t *buf_bytes; void **bufs; int nbufs;
    void *scratch; size_t scratch_bytes;
    dnnl_stream_t stream;
    long out_count;
    char error[256];
};

typedef struct {
    dnnl_memory_desc_t md;   // layout of the value
    int buf;                 // buffer holding it
    int last_use;            // last node index that reads it
} value_state;

typedef struct {
    struct sprout_infer_plan *plan;
    sprout_infer_graph *g;
    value_state *vs;
    int *buf_free;            // 1 when a buffer holds nothing live
    int buf_capacity;
} builder_t;

static int plan_fail(struct sprout_infer_plan *p, const char *what, const char *detail) {
    if (!p->error[0]) snprintf(p->error, sizeof p->error, "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
    return 0;
}

static dnnl_primitive_attr_t make_attr(const node_t *n, int from_post) {
    dnnl_primitive_attr_t attr = NULL;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) return NULL;
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (n && n->npost > from_post) {
        dnnl_post_ops_t po;
        dnnl_post_ops_create(&po);
        for (int i = from_post; i < n->npost; i++) {
            if (n->post[i].is_sum) dnnl_post_ops_append_sum(po, 1.0f);
            else dnnl_post_ops_append_eltwise(po, 1.0f, act_alg(n->post[i].act), n->post[i].alpha, n->post[i].beta);
        }
        dnnl_primitive_attr_set_post_ops(attr, po);
        dnnl_post_ops_destroy(po);
    }
    return attr;
}

static int add_buffer(builder_t *b, size_t bytes) {
    struct sprout_infer_plan *p = b->plan;
    // Best fit among free buffers; a free one that is too small grows.
    int best = -1;
    for (int i = 0; i < p->nbufs; i++) {
        if (!b->buf_free[i]) continue;
        if (best < 0) { best = i; continue; }
        int fits_i = p->buf_bytes[i] >= bytes, fits_best = p->buf_bytes[best] >= bytes;
        if (fits_i && (!fits_best || p->buf_bytes[i] < p->buf_bytes[best])) best = i;
        else if (!fits_i && !fits_best && p->buf_bytes[i] > p->buf_bytes[best]) best = i;
    }
    if (best >= 0) {
        if (p->buf_bytes[best] < bytes) p->buf_bytes[best] = bytes;
        b->buf_free[best] = 0;
        return best;
    }
    if (p->nbufs == b->buf_capacity) {
        int cap = b->buf_capacity ? b->buf_capacity * 2 : 16;
        size_t *bb = realloc(p->buf_bytes, (size_t)cap * sizeof(size_t));
        if (bb) p->buf_bytes = bb;
        int *bf = realloc(b->buf_free, (size_t)cap * sizeof(int));
        if (bf) b->buf_free = bf;
        if (!bb || !bf) return -1;
        b->buf_capacity = cap;
    }
    p->buf_bytes[p->nbufs] = bytes;
    b->buf_free[p->nbufs] = 0;
    return p->nbufs++;
}

static step_t *add_step(struct sprout_infer_plan *p) {
    if (p->nsteps == p->step_capacity) {
        int cap = p->step_capacity ? p->step_capacity * 2 : 64;
        step_t *s = realloc(p->steps, (size_t)cap * sizeof(step_t));
        if (!s) return NULL;
        p->steps = s; p->step_capacity = cap;
    }
    step_t *s = &p->steps[p->nsteps++];
    memset(s, 0, sizeof *s);
    return s;
}

static void step_arg(step_t *s, int id, const dnnl_memory_desc_t *md, int buf, void *data) {
    s->arg_ids[s->nargs] = id;
    s->mds[s->nargs] = *md;
    s->bufs[s->nargs] = buf;
    s->consts[s->nargs] = data;
    s->nargs++;
}

// Creates the primitive of a step from its descriptor; grows the plan's scratchpad.
static int finish_step(struct sprout_infer_plan *p, step_t *s, dnnl_primitive_desc_t pd, const char *what) {
    const dnnl_memory_desc_t *pad = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t bytes = pad ? dnnl_memory_desc_get_size(pad) : 0;
    if (bytes > p->scratch_bytes) p->scratch_bytes = bytes;
    if (bytes) step_arg(s, DNNL_ARG_SCRATCHPAD, pad, -4, NULL);
    int ok = dnnl_primitive_create(&s->prim, pd) == dnnl_success;
    dnnl_primitive_desc_destroy(pd);
    return ok ? 1 : plan_fail(p, what, "primitive creation failed");
}

// A reorder step from one buffer/layout to another.
static int reorder_step(struct sprout_infer_plan *p, const dnnl_memory_desc_t *from, int from_buf,
                        const dnnl_memory_desc_t *to, int to_buf) {
    dnnl_engine_t engine = sprout_dnnl_engine();
    dnnl_primitive_attr_t attr = make_attr(NULL, 0);
    dnnl_primitive_desc_t pd;
    dnnl_status_t st = dnnl_reorder_primitive_desc_create(&pd, from, engine, to, engine, attr);
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) return plan_fail(p, "reorder", "no reorder between the layouts");
    step_t *s = add_step(p);
    if (!s) return plan_fail(p, "reorder", "out of memory");
    step_arg(s, DNNL_ARG_FROM, from, from_buf, NULL);
    step_arg(s, DNNL_ARG_TO, to, to_buf, NULL);
    return finish_step(p, s, pd, "reorder");
}

// Weights in the layout `md` (converted from the plain `user` layout once and shared by
// every executor of the graph that asks for the same layout).
// Converts `data` (layout `user`) into `buf` (layout `md`) with a one-off reorder.
static int reorder_once(const dnnl_memory_desc_t *user, const void *data, const dnnl_memory_desc_t *md, void *buf) {
    dnnl_engine_t engine = sprout_dnnl_engine();
    dnnl_memory_t src = NULL, dst = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t r = NULL;
    dnnl_stream_t stream = NULL;
    int ok = dnnl_memory_create(&src, user, engine, (void *)data) == dnnl_success
        && dnnl_memory_create(&dst, md, engine, buf) == dnnl_success
        && dnnl_reorder_primitive_desc_create(&pd, user, engine, md, engine, NULL) == dnnl_success
        && dnnl_primitive_create(&r, pd) == dnnl_success
        && dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) == dnnl_success;
    if (ok) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}};
        ok = dnnl_primitive_execute(r, stream, 2, args) == dnnl_success && dnnl_stream_wait(stream) == dnnl_success;
    }
    if (stream) dnnl_stream_destroy(stream);
    if (r) dnnl_primitive_destroy(r);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (src) dnnl_memory_destroy(src);
    if (dst) dnnl_memory_destroy(dst);
    return ok;
}

// Weights in the layout `md` (converted from the plain `user` layout once and shared by
// every executor of the graph that asks for the same layout).
static void *weights_in(sprout_infer_graph *g, node_t *n, const dnnl_memory_desc_t *user, const float *data,
                        const dnnl_memory_desc_t *md) {
    pthread_mutex_lock(&g->lock);
    void *found = NULL;
    for (weight_variant *v = n->variants; v; v = v->next)
        if (dnnl_memory_desc_equal(&v->md, md)) { found = v->data; break; }
    if (!found) {
        size_t bytes = dnnl_memory_desc_get_size(md);
        weight_variant *v = calloc(1, sizeof *v);
        void *buf = NULL;
        if (v && posix_memalign(&buf, 64, bytes ? bytes : 64) == 0 && reorder_once(user, data, md, buf)) {
            v->md = *md; v->data = buf; v->next = n->variants; n->variants = v;
            found = buf;
        } else { free(buf); free(v); }
    }
    pthread_mutex_unlock(&g->lock);
    return found;
}

static double seconds_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

// The best of 3 timed runs of a convolution primitive (after one untimed), on zeroed
// buffers of its own; a large number when it cannot run.
static double time_convolution(dnnl_primitive_desc_t pd, const node_t *n, const dnnl_memory_desc_t *wuser,
                               const dnnl_memory_desc_t *bias_md) {
    dnnl_engine_t engine = sprout_dnnl_engine();
    enum { SRC, WEI, DST, PAD, COUNT };
    const dnnl_memory_desc_t *mds[COUNT] = {
        dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0),
        dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0)};
    int ids[COUNT] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_SCRATCHPAD};
    void *bufs[COUNT] = {0};
    dnnl_memory_t mems[COUNT + 1] = {0};
    dnnl_exec_arg_t args[COUNT + 1];
    int nargs = 0, ok = 1;
    for (int k = 0; k < COUNT && ok; k++) {
        size_t bytes = mds[k] ? dnnl_memory_desc_get_size(mds[k]) : 0;
        if (!bytes) continue;
        if (posix_memalign(&bufs[k], 64, bytes) != 0) { bufs[k] = NULL; ok = 0; break; }
        memset(bufs[k], 0, bytes);
        if (k == WEI) ok = reorder_once(wuser, n->weights, mds[k], bufs[k]);
        if (ok && dnnl_memory_create(&mems[nargs], mds[k], engine, bufs[k]) == dnnl_success) {
            args[nargs].arg = ids[k]; args[nargs].memory = mems[nargs]; nargs++;
        } else ok = 0;
    }
    if (ok && n->bias && dnnl_memory_create(&mems[nargs], bias_md, engine, n->bias) == dnnl_success) {
        args[nargs].arg = DNNL_ARG_BIAS; args[nargs].memory = mems[nargs]; nargs++;
    }
    dnnl_primitive_t prim = NULL;
    dnnl_stream_t stream = NULL;
    double best = 1e30;
    if (ok && dnnl_primitive_create(&prim, pd) == dnnl_success &&
        dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) == dnnl_success) {
        // In a network every layer's weights and input arrive from memory, evicted by the layers
        // before it; timed back to back they would sit in cache, and a weights-bound layer (batch 1)
        // would look faster than it runs. So the caches are flushed before each run.
        size_t flush_bytes = 64u << 20;
        char *flush = malloc(flush_bytes);
        for (int r = 0; r < 4; r++) {
            if (flush) memset(flush, r, flush_bytes);
            double t0 = seconds_now();
            if (dnnl_primitive_execute(prim, stream, nargs, args) != dnnl_success || dnnl_stream_wait(stream) != dnnl_success) break;
            double t = seconds_now() - t0;
            if (r > 0 && t < best) best = t;
        }
        free(flush);
    }
    if (stream) dnnl_stream_destroy(stream);
    if (prim) dnnl_primitive_destroy(prim);
    for (int k = 0; k <= COUNT; k++) if (mems[k]) dnnl_memory_destroy(mems[k]);
    for (int k = 0; k < COUNT; k++) free(bufs[k]);
    return best;
}

static void init_plain(dnnl_memory_desc_t *md, int ndims, const long *dims, int batch) {
    dnnl_dims_t d;
    for (int i = 0; i < ndims; i++) d[i] = dims[i];
    d[0] = batch;
    dnnl_memory_desc_init_by_tag(md, ndims, d, dnnl_f32, ndims == 4 ? dnnl_nchw : dnnl_nc);
}

static void init_any(dnnl_memory_desc_t *md, int ndims, const long *dims, int batch) {
    dnnl_dims_t d;
    for (int i = 0; i < ndims; i++) d[i] = dims[i];
    d[0] = batch;
    dnnl_memory_desc_init_by_tag(md, ndims, d, dnnl_f32, dnnl_format_tag_any);
}

// The value `v` in layout `want`: itself when it already is, else a reorder into a fresh
// buffer (freed after node `until`).
static int value_as(builder_t *b, int v, const dnnl_memory_desc_t *want, int *buf) {
    value_state *s = &b->vs[v];
    if (dnnl_memory_desc_equal(&s->md, want)) { *buf = s->buf; return 1; }
    int nb = add_buffer(b, dnnl_memory_desc_get_size(want));
    if (nb < 0) return plan_fail(b->plan, "buffers", "out of memory");
    if (!reorder_step(b->plan, &s->md, s->buf, want, nb)) return 0;
    b->buf_free[nb] = 1;  // read by the next step only; reusable after it (never by its own output: see below)
    *buf = nb;
    return 2;
}

// The output buffer of node `i` with layout `md`. For a sum post-op the buffer must hold the
// addend first: take over the addend's buffer when this node is its last reader and the
// layouts agree, else copy (reorder) the addend into a new buffer.
static int output_buffer(builder_t *b, int i, const dnnl_memory_desc_t *md, int reserved) {
    node_t *n = &b->g->nodes[i];
    if (n->sum_src >= 0) {
        value_state *a = &b->vs[n->sum_src];
        if (a->last_use == i && dnnl_memory_desc_equal(&a->md, md) && a->buf != reserved) {
            int buf = a->buf;
            a->buf = -1;  // ownership moves to this node's output
            return buf;
        }
        int nb = add_buffer(b, dnnl_memory_desc_get_size(md));
        if (nb < 0 || nb == reserved) return -1;
        if (!reorder_step(b->plan, &a->md, a->buf, md, nb)) return -1;
        return nb;
    }
    return add_buffer(b, dnnl_memory_desc_get_size(md));
}

// The primitive descriptor of `desc` with the node's post-ops from `from_post` on (none
// when `n` is NULL), or NULL with the reason recorded.
static dnnl_primitive_desc_t make_pd(struct sprout_infer_plan *p, const void *desc, const node_t *n, int from_post,
                                     const char *what) {
    dnnl_primitive_attr_t attr = make_attr(n, from_post);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_primitive_desc_create(&pd, desc, attr, sprout_dnnl_engine(), NULL);
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) { plan_fail(p, what, "no implementation"); return NULL; }
    return pd;
}

// A step reading node i's input as it is (plus `extra` constant arguments) and writing a
// buffer in the layout the primitive picks — in place over the input when `in_place` and
// this is the input's last reader.
static int plain_step(builder_t *b, int i, dnnl_primitive_desc_t pd, int in_place, const char *what,
                      int nextra, const int *extra_ids, const dnnl_memory_desc_t *extra_md, void *const *extra_data) {
    node_t *n = &b->g->nodes[i];
    value_state *src = &b->vs[n->src], *out = &b->vs[i];
    int src_buf = src->buf;
    out->md = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    if (in_place && src->last_use == i && src->buf >= 0 && n->src != 0) { out->buf = src->buf; src->buf = -1; }
    else out->buf = add_buffer(b, dnnl_memory_desc_get_size(&out->md));
    if (out->buf < 0) { dnnl_primitive_desc_destroy(pd); return plan_fail(b->plan, what, "out of memory"); }
    step_t *s = add_step(b->plan);
    if (!s) { dnnl_primitive_desc_destroy(pd); return plan_fail(b->plan, what, "out of memory"); }
    step_arg(s, DNNL_ARG_SRC, &src->md, src_buf, NULL);
    for (int k = 0; k < nextra; k++) step_arg(s, extra_ids[k], &extra_md[k], BUF_CONST, extra_data[k]);
    step_arg(s, DNNL_ARG_DST, &out->md, out->buf, NULL);
    return finish_step(b->plan, s, pd, what);
}

// A convolution or inner product: the input reordered if the primitive wants another layout,
// the weights converted once into the layout it wants (`wuser`: their plain layout), the
// output accumulating a sum post-op's addend where the node has one.
static int weighted_step(builder_t *b, int i, dnnl_primitive_desc_t pd, const dnnl_memory_desc_t *wuser,
                         const dnnl_memory_desc_t *bias_md, const char *what) {
    struct sprout_infer_plan *p = b->plan;
    node_t *n = &b->g->nodes[i];
    value_state *src = &b->vs[n->src], *out = &b->vs[i];
    int src_buf = src->buf;
    const dnnl_memory_desc_t *want_src = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    if (value_as(b, n->src, want_src, &src_buf) == 0) { dnnl_primitive_desc_destroy(pd); return 0; }
    int temp = src_buf != src->buf ? src_buf : -1;
    out->md = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    const dnnl_memory_desc_t *want_w = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    void *wdata = weights_in(b->g, n, wuser, n->weights, want_w);
    if (!wdata) { dnnl_primitive_desc_destroy(pd); return plan_fail(p, what, "weight reorder failed"); }
    if (temp >= 0) b->buf_free[temp] = 0;  // keep the reordered input out of the output's reach
    out->buf = output_buffer(b, i, &out->md, src_buf);
    if (temp >= 0) b->buf_free[temp] = 1;
    if (out->buf < 0) { dnnl_primitive_desc_destroy(pd); return plan_fail(p, what, "output buffer"); }
    step_t *s = add_step(p);
    if (!s) { dnnl_primitive_desc_destroy(pd); return plan_fail(p, what, "out of memory"); }
    step_arg(s, DNNL_ARG_SRC, want_src, src_buf, NULL);
    step_arg(s, DNNL_ARG_WEIGHTS, want_w, BUF_CONST, wdata);
    if (n->bias) step_arg(s, DNNL_ARG_BIAS, bias_md, BUF_CONST, n->bias);
    step_arg(s, DNNL_ARG_DST, &out->md, out->buf, NULL);
    return finish_step(p, s, pd, what);
}

static int build_node(builder_t *b, int i) {
    struct sprout_infer_plan *p = b->plan;
    node_t *n = &b->g->nodes[i];
    const node_t *sn = &b->g->nodes[n->src];
    value_state *src = &b->vs[n->src];
    int N = p->batch;
    dnnl_primitive_desc_t pd;
    dnnl_memory_desc_t bias;
    dnnl_dims_t bias_dims = {n->dims[1]};
    dnnl_memory_desc_init_by_tag(&bias, 1, bias_dims, dnnl_f32, dnnl_x);

    switch (n->op) {
    case OP_CONV: {
        long c = sn->dims[1];
        dnnl_memory_desc_t s, w, d, wuser;
        init_any(&s, 4, sn->dims, N);
        init_any(&d, 4, n->dims, N);
        if (n->groups == 1) {
            dnnl_dims_t wd = {n->dims[1], c, n->kh, n->kw};
            dnnl_memory_desc_init_by_tag(&w, 4, wd, dnnl_f32, dnnl_format_tag_any);
            dnnl_memory_desc_init_by_tag(&wuser, 4, wd, dnnl_f32, dnnl_oihw);
        } else {
            dnnl_dims_t wd = {n->groups, n->dims[1] / n->groups, c / n->groups, n->kh, n->kw};
            dnnl_memory_desc_init_by_tag(&w, 5, wd, dnnl_f32, dnnl_format_tag_any);
            dnnl_memory_desc_init_by_tag(&wuser, 5, wd, dnnl_f32, dnnl_goihw);
        }
        dnnl_dims_t strides = {n->sh, n->sw}, pl = {n->pt, n->pl}, pr = {n->pb, n->pr};
        const dnnl_memory_desc_t *bp = n->bias ? &bias : NULL;
        dnnl_convolution_desc_t cd;
        // 3x3 stride-1 convolutions: Winograd where oneDNN has it (its f32 kernels need AVX-512)
        // and it is faster for this shape and batch — measured once per shape when a plan is
        // compiled (the best of 3 runs of each), since neither wins everywhere: resnet9 at batch
        // 32 goes 557 → 998 img/s with Winograd, while at batch 1 its 16x16 and smaller layers are
        // faster direct (128→256 at 16x16: 0.32 ms direct, 0.55 ms Winograd) and resnet18's 56x56
        // to 14x14 layers are faster with it. oneDNN's `auto` never chose Winograd here.
        dnnl_primitive_desc_t direct = NULL, wino = NULL;
        if (dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &s, &w, bp, &d,
                                               strides, pl, pr) != dnnl_success)
            return plan_fail(p, "convolution", "descriptor rejected (shapes or padding)");
        if (!(direct = make_pd(p, &cd, n, 0, "convolution"))) return 0;
        if (b->g->winograd && n->kh == 3 && n->kw == 3 && n->sh == 1 && n->sw == 1 && n->groups == 1 &&
            dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_winograd, &s, &w, bp, &d,
                                               strides, pl, pr) == dnnl_success) {
            dnnl_primitive_attr_t attr = make_attr(n, 0);
            if (dnnl_primitive_desc_create(&wino, &cd, attr, sprout_dnnl_engine(), NULL) != dnnl_success) wino = NULL;
            dnnl_primitive_attr_destroy(attr);
        }
        pd = direct;
        if (wino) {
            sprout_infer_graph *g = b->g;
            long key[9] = {N, c, n->dims[1], sn->dims[2], sn->dims[3], n->pt, n->pl, n->pb, n->pr};
            int chosen = -1;
            pthread_mutex_lock(&g->lock);
            for (int k = 0; k < g->nchoices; k++)
                if (memcmp(g->choices[k].key, key, sizeof key) == 0) { chosen = g->choices[k].winograd; break; }
            pthread_mutex_unlock(&g->lock);
            if (chosen < 0) {
                chosen = time_convolution(wino, n, &wuser, &bias) < time_convolution(direct, n, &wuser, &bias);
                pthread_mutex_lock(&g->lock);
                if (g->nchoices == g->choice_capacity) {
                    int cap = g->choice_capacity ? 2 * g->choice_capacity : 16;
                    void *grown = realloc(g->choices, (size_t)cap * sizeof *g->choices);
                    if (grown) { g->choices = grown; g->choice_capacity = cap; }
                }
                if (g->nchoices < g->choice_capacity) {
                    memcpy(g->choices[g->nchoices].key, key, sizeof key);
                    g->choices[g->nchoices++].winograd = chosen;
                }
                pthread_mutex_unlock(&g->lock);
            }
            if (chosen) { pd = wino; dnnl_primitive_desc_destroy(direct); }
            else dnnl_primitive_desc_destroy(wino);
        }
        return weighted_step(b, i, pd, &wuser, &bias, "convolution");
    }
    case OP_LINEAR: {
        dnnl_memory_desc_t w, wuser, d;
        dnnl_dims_t wd;
        wd[0] = n->dims[1];
        for (int k = 1; k < sn->ndims; k++) wd[k] = sn->dims[k];
        dnnl_memory_desc_init_by_tag(&w, sn->ndims, wd, dnnl_f32, dnnl_format_tag_any);
        dnnl_memory_desc_init_by_tag(&wuser, sn->ndims, wd, dnnl_f32, sn->ndims == 4 ? dnnl_oihw : dnnl_oi);
        init_any(&d, 2, n->dims, N);
        dnnl_inner_product_desc_t ipd;
        // The input keeps its producer's layout; the weights follow it.
        if (dnnl_inner_product_forward_desc_init(&ipd, dnnl_forward_inference, &src->md, &w, n->bias ? &bias : NULL, &d) != dnnl_success)
            return plan_fail(p, "linear", "descriptor rejected");
        if (!(pd = make_pd(p, &ipd, n, 0, "linear"))) return 0;
        return weighted_step(b, i, pd, &wuser, &bias, "linear");
    }
    case OP_POOL: {
        dnnl_memory_desc_t d;
        init_any(&d, 4, n->dims, N);
        dnnl_dims_t strides = {n->sh, n->sw}, kernel = {n->kh, n->kw}, pl = {n->pt, n->pl}, pr = {n->pb, n->pr};
        dnnl_pooling_desc_t pdsc;
        if (dnnl_pooling_forward_desc_init(&pdsc, dnnl_forward_inference, n->pool_max ? dnnl_pooling_max : dnnl_pooling_avg_exclude_padding,
                                           &src->md, &d, strides, kernel, pl, pr) != dnnl_success)
            return plan_fail(p, "pooling", "descriptor rejected");
        if (!(pd = make_pd(p, &pdsc, NULL, 0, "pooling"))) return 0;
        return plain_step(b, i, pd, 0, "pooling", 0, NULL, NULL, NULL);
    }
    case OP_LRN: {
        dnnl_lrn_desc_t ld;
        if (dnnl_lrn_forward_desc_init(&ld, dnnl_forward_inference, dnnl_lrn_across_channels, &src->md,
                                       n->lrn_size, n->lrn_alpha, n->lrn_beta, n->lrn_k) != dnnl_success)
            return plan_fail(p, "LRN", "descriptor rejected");
        if (!(pd = make_pd(p, &ld, NULL, 0, "LRN"))) return 0;
        return plain_step(b, i, pd, 0, "LRN", 0, NULL, NULL, NULL);
    }
    case OP_AFFINE: {
        // Batch normalisation with mean 0, variance 1, ε 0 is exactly x·scale + shift.
        dnnl_batch_normalization_desc_t bd;
        if (dnnl_batch_normalization_forward_desc_init(&bd, dnnl_forward_inference, &src->md, 0.0f,
                                                       dnnl_use_global_stats | dnnl_use_scale | dnnl_use_shift) != dnnl_success)
            return plan_fail(p, "batch norm", "descriptor rejected");
        if (!(pd = make_pd(p, &bd, NULL, 0, "batch norm"))) return 0;
        long c = n->dims[1];
        int ids[4] = {DNNL_ARG_MEAN, DNNL_ARG_VARIANCE, DNNL_ARG_SCALE, DNNL_ARG_SHIFT};
        dnnl_memory_desc_t mds[4] = {bias, bias, bias, bias};  // all [C]
        void *data[4] = {n->weights, n->weights + c, n->scale, n->shift};
        return plain_step(b, i, pd, 0, "batch norm", 4, ids, mds, data);
    }
    case OP_ELTWISE: {
        dnnl_eltwise_desc_t ed;
        if (dnnl_eltwise_forward_desc_init(&ed, dnnl_forward_inference, act_alg(n->post[0].act), &src->md,
                                           n->post[0].alpha, n->post[0].beta) != dnnl_success)
            return plan_fail(p, "activation", "descriptor rejected");
        if (!(pd = make_pd(p, &ed, NULL, 0, "activation"))) return 0;
        return plain_step(b, i, pd, 1, "activation", 0, NULL, NULL, NULL);
    }
    case OP_ADD: {
        value_state *other = &b->vs[n->src2], *out = &b->vs[i];
        dnnl_memory_desc_t d = src->md;
        dnnl_binary_desc_t bd;
        if (dnnl_binary_desc_init(&bd, dnnl_binary_add, &src->md, &other->md, &d) != dnnl_success)
            return plan_fail(p, "add", "descriptor rejected");
        if (!(pd = make_pd(p, &bd, n, 0, "add"))) return 0;
        out->md = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
        out->buf = add_buffer(b, dnnl_memory_desc_get_size(&out->md));
        step_t *s = add_step(p);
        if (out->buf < 0 || !s) { dnnl_primitive_desc_destroy(pd); return plan_fail(p, "add", "out of memory"); }
        step_arg(s, DNNL_ARG_SRC_0, &src->md, src->buf, NULL);
        step_arg(s, DNNL_ARG_SRC_1, &other->md, other->buf, NULL);
        step_arg(s, DNNL_ARG_DST, &out->md, out->buf, NULL);
        return finish_step(p, s, pd, "add");
    }
    }
    return plan_fail(p, "graph", "unknown node");
}

static void plan_free(struct sprout_infer_plan *p) {
    if (!p) return;
    for (int i = 0; i < p->nsteps; i++) {
        step_t *s = &p->steps[i];
        if (s->prim) dnnl_primitive_destroy(s->prim);
        for (int k = 0; k < s->nargs; k++) if (s->mems[k]) dnnl_memory_destroy(s->mems[k]);
    }
    for (int i = 0; i < p->nbufs; i++) free(p->bufs ? p->bufs[i] : NULL);
    free(p->bufs); free(p->buf_bytes); free(p->steps); free(p->scratch);
    if (p->stream) dnnl_stream_destroy(p->stream);
    free(p);
}

void sprout_infer_plan_destroy(sprout_infer_plan *p) { plan_free(p); }

sprout_infer_plan *sprout_infer_plan_create(sprout_infer_graph *g, int batch, char *error, int error_size) {
    struct sprout_infer_plan *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->batch = batch;
    builder_t b = {p, g, NULL, NULL, 0};
    int ok = 1;
    if (g->error[0]) ok = plan_fail(p, "graph", g->error);
    if (ok && !sprout_dnnl_engine()) ok = plan_fail(p, "oneDNN", "unavailable");
    if (ok && dnnl_stream_create(&p->stream, sprout_dnnl_engine(), dnnl_stream_default_flags) != dnnl_success)
        ok = plan_fail(p, "oneDNN", "no stream");
    int output = -1;
    if (ok) {
        int ov = g->output >= 0 ? g->output : g->value_count - 1;
        node_t *on = resolve(g, ov);
        if (!on) ok = plan_fail(p, "graph", g->error);
        else output = (int)(on - g->nodes);
    }
    if (ok) {
        b.vs = calloc((size_t)g->count, sizeof(value_state));
        if (!b.vs) ok = plan_fail(p, "compile", "out of memory");
    }
    if (ok) {
        for (int i = 0; i < g->count; i++) b.vs[i].last_use = -1;
        for (int i = 0; i < g->count; i++) {
            const node_t *n = &g->nodes[i];
            if (n->src >= 0) b.vs[n->src].last_use = i;
            if (n->src2 >= 0) b.vs[n->src2].last_use = i;
            if (n->sum_src >= 0) b.vs[n->sum_src].last_use = i;
        }
        b.vs[output].last_use = g->count;  // read by the final reorder
        init_plain(&b.vs[0].md, 4, g->nodes[0].dims, batch);
        b.vs[0].buf = BUF_USER_IN;
        for (int i = 1; i < g->count && ok; i++) {
            if (b.vs[i].last_use < 0) continue;  // nothing reads it (a dead branch)
            ok = build_node(&b, i);
            // Buffers whose values are read for the last time here become free.
            const node_t *n = &g->nodes[i];
            int reads[3] = {n->src, n->src2, n->sum_src};
            for (int k = 0; k < 3 && ok; k++) {
                int v = reads[k];
                if (v > 0 && b.vs[v].last_use == i && b.vs[v].buf >= 0) b.buf_free[b.vs[v].buf] = 1;
            }
        }
        if (ok) {
            dnnl_memory_desc_t plain;
            init_plain(&plain, g->nodes[output].ndims, g->nodes[output].dims, batch);
            p->out_count = (long)(dnnl_memory_desc_get_size(&plain) / sizeof(float));
            ok = reorder_step(p, &b.vs[output].md, output == 0 ? BUF_USER_IN : b.vs[output].buf, &plain, BUF_USER_OUT);
        }
    }
    // Allocate the buffers and bind every argument to its memory.
    if (ok) {
        p->bufs = calloc((size_t)(p->nbufs ? p->nbufs : 1), sizeof(void *));
        if (!p->bufs) ok = plan_fail(p, "compile", "out of memory");
        for (int i = 0; i < p->nbufs && ok; i++)
            if (posix_memalign(&p->bufs[i], 64, p->buf_bytes[i] ? p->buf_bytes[i] : 64) != 0) { p->bufs[i] = NULL; ok = plan_fail(p, "compile", "out of memory"); }
        if (ok && p->scratch_bytes && posix_memalign(&p->scratch, 64, p->scratch_bytes) != 0) { p->scratch = NULL; ok = plan_fail(p, "compile", "out of memory"); }
        dnnl_engine_t engine = sprout_dnnl_engine();
        for (int i = 0; i < p->nsteps && ok; i++) {
            step_t *s = &p->steps[i];
            for (int k = 0; k < s->nargs && ok; k++) {
                void *h = DNNL_MEMORY_NONE;
                int buf = s->bufs[k];
                if (buf >= 0) h = p->bufs[buf];
                else if (buf == BUF_CONST) h = s->consts[k];
                else if (buf == -4) h = p->scratch;
                if (dnnl_memory_create(&s->mems[k], &s->mds[k], engine, h) != dnnl_success) ok = plan_fail(p, "compile", "memory object");
            }
        }
    }
    free(b.vs); free(b.buf_free);
    if (!ok) {
        if (error && error_size > 0) snprintf(error, (size_t)error_size, "%s", p->error);
        plan_free(p);
        return NULL;
    }
    return p;
}

long sprout_infer_plan_output_count(const sprout_infer_plan *p) { return p->out_count; }

size_t sprout_infer_plan_bytes(const sprout_infer_plan *p) {
    size_t total = p->scratch_bytes;
    for (int i = 0; i < p->nbufs; i++) total += p->buf_bytes[i];
    return total;
}


int sprout_infer_plan_run(sprout_infer_plan *p, const float *input, float *output) {
    for (int i = 0; i < p->nsteps; i++) {
        step_t *s = &p->steps[i];
        dnnl_exec_arg_t args[MAX_ARGS];
        for (int k = 0; k < s->nargs; k++) {
            if (s->bufs[k] == BUF_USER_IN) dnnl_memory_set_data_handle(s->mems[k], (void *)input);
            else if (s->bufs[k] == BUF_USER_OUT) dnnl_memory_set_data_handle(s->mems[k], output);
            args[k].arg = s->arg_ids[k];
            args[k].memory = s->mems[k];
        }
        if (dnnl_primitive_execute(s->prim, p->stream, s->nargs, args) != dnnl_success) return -1;
    }
    return dnnl_stream_wait(p->stream) == dnnl_success ? 0 : -1;
}
