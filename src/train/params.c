/* params.c — the trainer's parameter table: which tensors a configuration has, their Hugging Face
 * names and shapes, one flat f32 buffer each for parameters, gradients and AdamW moments, and the
 * initialisation drawn from a seed. */
#include "train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

void heed_train_config_init(heed_train_config *c)
{
    memset(c, 0, sizeof *c);
    c->vocab = 4096;
    c->hidden = 256;
    c->n_layers = 4;
    c->n_heads = 8;
    c->n_kv_heads = 4;
    c->head_dim = 32;
    c->intermediate = 768;
    c->max_seq = 256;
    c->rope_theta = 10000.0;
    c->norm_eps = 1e-5;
    c->tie_embeddings = 1;
    c->bos_id = c->eos_id = -1;
    c->mixer = HEED_MIXER_ATTENTION;
    c->norm = HEED_NORM_SOFTMAX;
    c->moh_balance = 0.01f;
}

#define BAD(field, ...) heed_fail(ctx, HEED_ERR_INVALID, "training config: " field ": " __VA_ARGS__)

heed_status train_config_check(heed_ctx *ctx, const heed_train_config *c)
{
    if (c->vocab < 2 || c->vocab > (1 << 24)) return BAD("vocab", "%lld, expected 2..2^24", (long long)c->vocab);
    if (c->hidden < 1 || c->n_layers < 1 || c->intermediate < 1 || c->max_seq < 1)
        return BAD("sizes", "hidden, n_layers, intermediate and max_seq must be >= 1");
    if (c->n_layers > HEED_CONFIG_MAX_LAYERS) return BAD("n_layers", "at most %d", HEED_CONFIG_MAX_LAYERS);
    if (c->norm_eps <= 0 || !(c->rope_theta > 0)) return BAD("norm_eps/rope_theta", "must be > 0");
    if (c->mixer == HEED_MIXER_GCONV) {
        if (c->conv_kernel < 1 || c->conv_kernel > c->max_seq)
            return BAD("conv_kernel", "%lld, expected 1..max_seq (%lld)", (long long)c->conv_kernel,
                       (long long)c->max_seq);
        return HEED_OK;
    }
    if (c->mixer != HEED_MIXER_ATTENTION && c->mixer != HEED_MIXER_LINEAR) return BAD("mixer", "unknown value");
    if (c->n_heads < 1 || c->n_kv_heads < 1 || c->n_heads % c->n_kv_heads)
        return BAD("n_heads", "%lld query heads must be a multiple of %lld KV heads", (long long)c->n_heads,
                   (long long)c->n_kv_heads);
    if (c->n_heads > TRAIN_MAX_HEADS) return BAD("n_heads", "at most %d", TRAIN_MAX_HEADS);
    if (c->head_dim < 2 || c->head_dim % 2) return BAD("head_dim", "%lld, expected an even number >= 2",
                                                       (long long)c->head_dim);
    if (c->mixer == HEED_MIXER_LINEAR) {
        if (c->n_kv_heads != c->n_heads) return BAD("n_kv_heads", "linear attention needs n_kv_heads == n_heads");
        if (c->norm != HEED_NORM_SOFTMAX || c->sink_logit || c->selective || c->window || c->s2_block ||
            c->moh_top_k)
            return BAD("mixer", "linear attention takes none of the softmax attention options");
        return HEED_OK;
    }
    if (c->norm != HEED_NORM_SOFTMAX && c->norm != HEED_NORM_SIGMOID) return BAD("norm", "unknown value");
    if (c->sink_logit && c->norm != HEED_NORM_SOFTMAX) return BAD("sink_logit", "needs softmax attention");
    if (c->window < 0) return BAD("window", "must be >= 0");
    if (c->window && c->s2_block) return BAD("window", "a sliding window and S2 shards exclude each other");
    if (c->s2_block < 0 || (c->s2_block && (c->s2_local_blocks < 1 || c->s2_vert_stride < 1)))
        return BAD("s2", "block > 0 needs local_blocks >= 1 and vert_stride >= 1");
    if (c->moh_top_k < 0 || c->moh_shared < 0 || (c->moh_top_k && c->moh_shared + c->moh_top_k > c->n_heads))
        return BAD("moh", "shared (%lld) + top_k (%lld) must not exceed n_heads (%lld)", (long long)c->moh_shared,
                   (long long)c->moh_top_k, (long long)c->n_heads);
    if (c->moh_top_k && c->moh_shared == c->n_heads) return BAD("moh", "needs at least one routed head");
    return HEED_OK;
}

/* Appends one tensor to the table (or, with tr->params == NULL, only counts floats). */
typedef struct table {
    train_param *p;
    int64_t n, floats;
    float ***slots;                          /* [n][2]: where to store the data and grad pointers */
} table;

static void add(table *t, float **dslot, float **gslot, int n_dims, int64_t s0, int64_t s1, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static void add(table *t, float **dslot, float **gslot, int n_dims, int64_t s0, int64_t s1, const char *fmt, ...)
{
    int64_t n = n_dims == 1 ? s0 : s0 * s1;
    if (t->p) {
        train_param *p = &t->p[t->n];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->name, sizeof p->name, fmt, ap);
        va_end(ap);
        p->n_dims = n_dims;
        p->shape[0] = s0;
        p->shape[1] = n_dims == 1 ? 1 : s1;
        p->n = n;
        p->off = t->floats;
        t->slots[2 * t->n] = dslot;
        t->slots[2 * t->n + 1] = gslot;
    }
    t->n++;
    t->floats += (n + 15) / 16 * 16;         /* every tensor starts 64-byte aligned */
}

/* The tensors of tr->cfg in a fixed order (the order of initialisation and of the files). */
static void build(table *t, heed_trainer *tr)
{
    const heed_train_config *c = &tr->cfg;
    int64_t C = c->hidden, V = c->vocab, F = c->intermediate;
    int64_t qd = c->n_heads * c->head_dim, kd = c->n_kv_heads * c->head_dim;
    add(t, &tr->w.embed, &tr->g.embed, 2, V, C, "model.embed_tokens.weight");
    for (int64_t L = 0; L < c->n_layers; L++) {
        train_layer *w = &tr->w.layer[L], *g = &tr->g.layer[L];
        const char *pre = "model.layers";
        add(t, &w->ln1, &g->ln1, 1, C, 0, "%s.%lld.input_layernorm.weight", pre, (long long)L);
        if (c->mixer == HEED_MIXER_GCONV) {
            add(t, &w->conv_u, &g->conv_u, 2, C, C, "%s.%lld.mixer.u_proj.weight", pre, (long long)L);
            add(t, &w->conv_g, &g->conv_g, 2, C, C, "%s.%lld.mixer.g_proj.weight", pre, (long long)L);
            add(t, &w->conv_filter, &g->conv_filter, 2, C, c->conv_kernel, "%s.%lld.mixer.filter", pre,
                (long long)L);
            add(t, &w->o, &g->o, 2, C, C, "%s.%lld.mixer.o_proj.weight", pre, (long long)L);
        } else {
            add(t, &w->q, &g->q, 2, qd, C, "%s.%lld.self_attn.q_proj.weight", pre, (long long)L);
            add(t, &w->k, &g->k, 2, kd, C, "%s.%lld.self_attn.k_proj.weight", pre, (long long)L);
            add(t, &w->v, &g->v, 2, kd, C, "%s.%lld.self_attn.v_proj.weight", pre, (long long)L);
            add(t, &w->o, &g->o, 2, C, qd, "%s.%lld.self_attn.o_proj.weight", pre, (long long)L);
            if (c->sink_logit) add(t, &w->sinks, &g->sinks, 1, c->n_heads, 0, "%s.%lld.self_attn.sinks", pre,
                                   (long long)L);
            if (c->selective) add(t, &w->temp_beta, &g->temp_beta, 1, c->n_heads, 0,
                                  "%s.%lld.self_attn.temp_beta", pre, (long long)L);
            if (c->moh_top_k) {
                int64_t nr = c->n_heads - c->moh_shared;
                if (c->moh_shared > 1) add(t, &w->r_shared, &g->r_shared, 2, c->moh_shared, C,
                                           "%s.%lld.self_attn.router_shared.weight", pre, (long long)L);
                add(t, &w->r_routed, &g->r_routed, 2, nr, C, "%s.%lld.self_attn.router_routed.weight", pre,
                    (long long)L);
                if (c->moh_shared > 0) add(t, &w->r_alpha, &g->r_alpha, 2, 2, C,
                                           "%s.%lld.self_attn.router_alpha.weight", pre, (long long)L);
            }
        }
        add(t, &w->ln2, &g->ln2, 1, C, 0, "%s.%lld.post_attention_layernorm.weight", pre, (long long)L);
        add(t, &w->gate, &g->gate, 2, F, C, "%s.%lld.mlp.gate_proj.weight", pre, (long long)L);
        add(t, &w->up, &g->up, 2, F, C, "%s.%lld.mlp.up_proj.weight", pre, (long long)L);
        add(t, &w->down, &g->down, 2, C, F, "%s.%lld.mlp.down_proj.weight", pre, (long long)L);
    }
    add(t, &tr->w.final_norm, &tr->g.final_norm, 1, C, 0, "model.norm.weight");
    if (!c->tie_embeddings) add(t, &tr->w.lm_head, &tr->g.lm_head, 2, V, C, "lm_head.weight");
}

heed_status train_alloc(heed_ctx *ctx, heed_trainer *tr, const heed_train_config *cfg)
{
    heed_status s = train_config_check(ctx, cfg);
    if (s != HEED_OK) return s;
    tr->cfg = *cfg;
    tr->w.layer = calloc((size_t)cfg->n_layers, sizeof(train_layer));
    tr->g.layer = calloc((size_t)cfg->n_layers, sizeof(train_layer));
    table t = {0};
    build(&t, tr);
    tr->params = calloc((size_t)t.n, sizeof *tr->params);
    t.slots = calloc((size_t)t.n * 2, sizeof *t.slots);
    size_t bytes = (size_t)t.floats * sizeof(float);
    tr->data = heed_alloc(bytes);
    tr->grad = heed_alloc(bytes);
    tr->m = heed_alloc(bytes);
    tr->v = heed_alloc(bytes);
    if (!tr->w.layer || !tr->g.layer || !tr->params || !t.slots || !tr->data || !tr->grad || !tr->m || !tr->v) {
        free(t.slots);
        return heed_fail(ctx, HEED_ERR_NOMEM, "trainer: cannot allocate %zu bytes of parameters", 4 * bytes);
    }
    memset(tr->data, 0, bytes);
    memset(tr->grad, 0, bytes);
    memset(tr->m, 0, bytes);
    memset(tr->v, 0, bytes);
    t.p = tr->params;
    t.n = t.floats = 0;
    build(&t, tr);
    for (int64_t i = 0; i < t.n; i++) {
        *t.slots[2 * i] = tr->data + tr->params[i].off;
        *t.slots[2 * i + 1] = tr->grad + tr->params[i].off;
    }
    free(t.slots);
    tr->n_params = t.n;
    tr->n_floats = t.floats;
    if (cfg->tie_embeddings) {
        tr->w.lm_head = tr->w.embed;
        tr->g.lm_head = tr->g.embed;
    }
    return train_rope_tables(ctx, tr);
}

heed_status train_rope_tables(heed_ctx *ctx, heed_trainer *tr)
{
    const heed_train_config *c = &tr->cfg;
    if (c->mixer != HEED_MIXER_ATTENTION) return HEED_OK;
    int64_t half = c->head_dim / 2;
    heed_config rc;
    memset(&rc, 0, sizeof rc);
    rc.pos = HEED_POS_ROPE;
    rc.head_dim = c->head_dim;
    rc.max_pos = c->max_seq;
    rc.rope.type = HEED_ROPE_DEFAULT;
    rc.rope.theta = c->rope_theta;
    float *inv = malloc(sizeof(float) * (size_t)half), factor = 1.0f;
    free(tr->cos_t);
    free(tr->sin_t);
    tr->cos_t = malloc(sizeof(float) * (size_t)(c->max_seq * half));
    tr->sin_t = malloc(sizeof(float) * (size_t)(c->max_seq * half));
    if (!inv || !tr->cos_t || !tr->sin_t) {
        free(inv);
        return heed_fail(ctx, HEED_ERR_NOMEM, "trainer: out of memory for RoPE tables");
    }
    heed_status s = heed_rope_inv_freq(ctx, inv, &factor, &rc, c->max_seq);
    for (int64_t t = 0; s == HEED_OK && t < c->max_seq; t++)
        for (int64_t i = 0; i < half; i++) { /* the angle is an f32 product, as transformers computes it */
            float ang = (float)t * inv[i];
            tr->cos_t[t * half + i] = (float)cos((double)ang) * factor;
            tr->sin_t[t * half + i] = (float)sin((double)ang) * factor;
        }
    free(inv);
    return s;
}

/* A standard normal draw (Box-Muller on two 53-bit uniforms). */
static double normal(uint64_t *rng)
{
    double u1 = ((double)(heed_rng_next(rng) >> 11) + 0.5) * 0x1p-53;
    double u2 = (double)(heed_rng_next(rng) >> 11) * 0x1p-53;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

heed_status heed_trainer_create(heed_ctx *ctx, heed_trainer **out, const heed_train_config *cfg, uint64_t seed)
{
    if (!out || !cfg) return heed_fail(ctx, HEED_ERR_INVALID, "heed_trainer_create: NULL argument");
    *out = NULL;
    heed_trainer *tr = calloc(1, sizeof *tr);
    if (!tr) return heed_fail(ctx, HEED_ERR_NOMEM, "trainer: out of memory");
    heed_status s = train_alloc(ctx, tr, cfg);
    if (s != HEED_OK) {
        heed_trainer_free(tr);
        return s;
    }
    uint64_t rng = seed;
    double out_std = 0.02 / sqrt(2.0 * (double)cfg->n_layers);
    for (int64_t i = 0; i < tr->n_params; i++) {
        const train_param *p = &tr->params[i];
        float *d = tr->data + p->off;
        if (p->n_dims == 1 && !ends_with(p->name, "sinks") && !ends_with(p->name, "temp_beta")) {
            for (int64_t j = 0; j < p->n; j++) d[j] = 1.0f; /* norms */
            continue;
        }
        double std = 0.02, mean = 0.0;
        if (ends_with(p->name, "o_proj.weight") || ends_with(p->name, "down_proj.weight")) std = out_std;
        if (ends_with(p->name, "sinks")) std = 0.0;                /* exp(0) = one extra unit of mass */
        if (ends_with(p->name, "temp_beta")) std = 0.0, mean = 1.75; /* the paper's init range 1.5-2.0 */
        if (ends_with(p->name, "mixer.filter")) std = 1.0 / sqrt((double)p->shape[1]);
        for (int64_t j = 0; j < p->n; j++) d[j] = (float)(mean + std * normal(&rng));
    }
    *out = tr;
    return HEED_OK;
}

static void free_acts(heed_trainer *tr);

void heed_trainer_free(heed_trainer *tr)
{
    if (!tr) return;
    free_acts(tr);
    heed_free(tr->data);
    heed_free(tr->grad);
    heed_free(tr->m);
    heed_free(tr->v);
    free(tr->params);
    free(tr->w.layer);
    free(tr->g.layer);
    free(tr->cos_t);
    free(tr->sin_t);
    free(tr);
}

const heed_train_config *heed_trainer_config(const heed_trainer *tr) { return &tr->cfg; }
int64_t heed_trainer_step_count(const heed_trainer *tr) { return tr->step; }
int64_t heed_trainer_n_params(const heed_trainer *tr) { return tr->n_params; }

heed_param heed_trainer_param(const heed_trainer *tr, int64_t i)
{
    const train_param *p = &tr->params[i];
    heed_param r = {p->name, p->n_dims, {p->shape[0], p->shape[1]}, p->n, tr->data + p->off, tr->grad + p->off};
    return r;
}

/* ---------------------------------------------------------------------------------------------- */
/* Activations: one block of per-layer arrays, grown when a larger batch arrives. */

static void free_acts(heed_trainer *tr)
{
    train_acts *a = &tr->a;
    float ***lists[] = {&a->x, &a->ln1, &a->rstd1, &a->q, &a->k, &a->v, &a->att, &a->lse, &a->mix, &a->gates,
                        &a->rlog_s, &a->rlog_r, &a->rlog_a, &a->cu, &a->cg, &a->xm, &a->ln2, &a->rstd2,
                        &a->gate, &a->up, &a->h};
    for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) {
        if (*lists[i])
            for (int64_t L = 0; L <= tr->cfg.n_layers; L++) heed_free((*lists[i])[L]);
        free(*lists[i]);
        *lists[i] = NULL;
    }
    float **flat[] = {&a->lnf, &a->rstdf, &a->logits, &a->dx, &a->dln, &a->dq, &a->dk, &a->dv, &a->datt,
                      &a->dmix, &a->dgate, &a->dup, &a->dh, &a->tmp, &a->dgates, &a->drs, &a->drr, &a->dra};
    for (size_t i = 0; i < sizeof flat / sizeof *flat; i++) {
        heed_free(*flat[i]);
        *flat[i] = NULL;
    }
    a->cap_tokens = 0;
}

/* Allocates per-layer arrays of n floats each (n == 0: left NULL). */
static int alloc_list(float ***list, int64_t n_layers, int64_t n)
{
    *list = calloc((size_t)n_layers + 1, sizeof **list);
    if (!*list) return 0;
    for (int64_t L = 0; n > 0 && L < n_layers; L++)
        if (!((*list)[L] = heed_alloc(sizeof(float) * (size_t)n))) return 0;
    return 1;
}

static int alloc_flat(float **p, int64_t n)
{
    *p = n > 0 ? heed_alloc(sizeof(float) * (size_t)n) : NULL;
    return n <= 0 || *p;
}

heed_status train_reserve(heed_ctx *ctx, heed_trainer *tr, int64_t B, int64_t T)
{
    train_acts *a = &tr->a;
    int64_t N = B * T;
    if (N <= a->cap_tokens) return HEED_OK;
    free_acts(tr);
    const heed_train_config *c = &tr->cfg;
    int64_t nL = c->n_layers, C = c->hidden, F = c->intermediate, V = c->vocab;
    int attn = c->mixer != HEED_MIXER_GCONV, moh = c->moh_top_k > 0, conv = c->mixer == HEED_MIXER_GCONV;
    int64_t H = c->n_heads, qd = attn ? H * c->head_dim : C, kd = attn ? c->n_kv_heads * c->head_dim : 0;
    int64_t ns = c->moh_shared, nr = H - c->moh_shared;
    int ok = alloc_list(&a->x, nL + 1, N * C) && alloc_list(&a->ln1, nL, N * C) && alloc_list(&a->rstd1, nL, N) && alloc_list(&a->q, nL, attn * N * qd) &&
         alloc_list(&a->k, nL, N * kd) && alloc_list(&a->v, nL, N * kd) && alloc_list(&a->att, nL, attn * N * qd) &&
         alloc_list(&a->lse, nL, attn * B * H * T) && alloc_list(&a->mix, nL, N * qd) &&
         alloc_list(&a->gates, nL, moh * N * H) && alloc_list(&a->rlog_s, nL, moh * N * ns) &&
         alloc_list(&a->rlog_r, nL, moh * N * nr) && alloc_list(&a->rlog_a, nL, moh * N * 2) &&
         alloc_list(&a->cu, nL, conv * N * C) && alloc_list(&a->cg, nL, conv * N * C) &&
         alloc_list(&a->xm, nL, N * C) && alloc_list(&a->ln2, nL, N * C) && alloc_list(&a->rstd2, nL, N) &&
         alloc_list(&a->gate, nL, N * F) && alloc_list(&a->up, nL, N * F) && alloc_list(&a->h, nL, N * F) &&
         alloc_flat(&a->lnf, N * C) && alloc_flat(&a->rstdf, N) && alloc_flat(&a->logits, N * V) &&
         alloc_flat(&a->dx, N * C) && alloc_flat(&a->dln, N * C) && alloc_flat(&a->dq, attn * N * qd) &&
         alloc_flat(&a->dk, N * (kd > C ? kd : C)) && alloc_flat(&a->dv, N * (kd > C ? kd : C)) &&
         alloc_flat(&a->datt, N * qd) && alloc_flat(&a->dmix, N * qd) && alloc_flat(&a->dgate, N * F) &&
         alloc_flat(&a->dup, N * F) && alloc_flat(&a->dh, N * F) && alloc_flat(&a->tmp, N * (qd > C ? qd : C)) &&
         alloc_flat(&a->dgates, moh * N * H) && alloc_flat(&a->drs, moh * N * ns) &&
         alloc_flat(&a->drr, moh * N * nr) && alloc_flat(&a->dra, moh * N * 2);
    if (!ok) {
        free_acts(tr);
        return heed_fail(ctx, HEED_ERR_NOMEM, "trainer: cannot allocate activations for B=%lld T=%lld",
                         (long long)B, (long long)T);
    }
    a->cap_tokens = N;
    return HEED_OK;
}
