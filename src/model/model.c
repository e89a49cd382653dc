/* model.c — the model runtime: a Hugging Face checkpoint (config + mmapped safetensors) run by one
 * forward function for every family. What differs between families is data: the tensor-name table
 * below and the flags of heed_config; weights stay in their file dtype (f32, f16, bf16). */
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tensor names of a family, without ".weight"/".bias". Layer names follow `layer` ("layers.%d.");
 * NULL: the family has no such tensor. Norms are named by role: *_in before a block (pre-norm),
 * *_out after it (gemma2's post-norms on the branch, bert's post-LayerNorm on the residual sum). */
typedef struct arch_names {
    heed_arch arch;
    const char *prefixes[3];   /* tried in order: the first under which `embed` exists is used */
    int conv1d;                /* linear weights are [in, out] (GPT-2 Conv1D) instead of [out, in] */
    const char *embed, *pos_embed, *type_embed, *embed_norm;
    const char *layer;
    const char *attn_in, *attn_out, *ffn_in, *ffn_out;
    const char *q, *k, *v, *qkv, *o, *q_norm, *k_norm;
    const char *gate, *up, *down;
    const char *final_norm;
    const char *lm_head;       /* outside the prefix; NULL: no LM head (encoders) */
} arch_names;

#define LLAMA_NAMES(a, attn_out, ffn_in, ffn_out)                                                      \
    {a, {"model.", "", NULL}, 0, "embed_tokens", NULL, NULL, NULL, "layers.%d.", "input_layernorm",      \
     attn_out, ffn_in, ffn_out, "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", NULL,         \
     "self_attn.o_proj", "self_attn.q_norm", "self_attn.k_norm", "mlp.gate_proj", "mlp.up_proj",          \
     "mlp.down_proj", "norm", "lm_head"}

static const arch_names NAMES[] = {
    LLAMA_NAMES(HEED_ARCH_LLAMA, NULL, "post_attention_layernorm", NULL),
    LLAMA_NAMES(HEED_ARCH_MISTRAL, NULL, "post_attention_layernorm", NULL),
    LLAMA_NAMES(HEED_ARCH_QWEN2, NULL, "post_attention_layernorm", NULL),
    LLAMA_NAMES(HEED_ARCH_QWEN3, NULL, "post_attention_layernorm", NULL),
    LLAMA_NAMES(HEED_ARCH_GEMMA2, "post_attention_layernorm", "pre_feedforward_layernorm",
                "post_feedforward_layernorm"),
    {HEED_ARCH_GPT2, {"transformer.", "", NULL}, 1, "wte", "wpe", NULL, NULL, "h.%d.", "ln_1", NULL, "ln_2", NULL,
     NULL, NULL, NULL, "attn.c_attn", "attn.c_proj", NULL, NULL, NULL, "mlp.c_fc", "mlp.c_proj", "ln_f", "lm_head"},
    {HEED_ARCH_BERT, {"bert.", "", NULL}, 0, "embeddings.word_embeddings", "embeddings.position_embeddings",
     "embeddings.token_type_embeddings", "embeddings.LayerNorm", "encoder.layer.%d.", NULL,
     "attention.output.LayerNorm", NULL, "output.LayerNorm", "attention.self.query", "attention.self.key",
     "attention.self.value", NULL, "attention.output.dense", NULL, NULL, NULL, "intermediate.dense",
     "output.dense", NULL, NULL},
};

typedef struct lin {
    const heed_st_tensor *w, *b; /* w: [out, in], or [in, out] when conv1d; b: [out] or NULL */
    int conv1d;
} lin;
typedef struct norm { const heed_st_tensor *w, *b; } norm; /* w, b: [n]; w NULL: not used */

typedef struct layer_w {
    norm attn_in, attn_out, ffn_in, ffn_out, q_norm, k_norm;
    lin q, k, v, qkv, o, gate, up, down;
} layer_w;

struct heed_model {
    heed_config cfg;
    heed_gen_config gen;
    heed_st *st;
    const arch_names *names;
    /* weights */
    const heed_st_tensor *embed, *pos_embed, *type_embed, *lm_head; /* lm_head NULL: none */
    norm embed_norm, final_norm;
    layer_w *layers;               /* [n_layers] */
    /* run state, grown on demand */
    int64_t cap_tokens;            /* rows of the activation buffers */
    float *x, *xb;                 /* [cap_tokens, hidden] residual stream and a block's input/output */
    float *qkv;                    /* [cap_tokens, qkv_dim]: q | k | v of each token */
    float *att;                    /* [cap_tokens, n_heads * head_dim] attention output, heads concatenated */
    float *hb, *hb2;               /* [cap_tokens, intermediate] */
    float *lse;                    /* [n_heads, cap_tokens] */
    float *inv_freq;               /* [head_dim / 2] */
    /* KV cache: layer L key of head h at position p is kc[L][(h * cap_ctx + p) * head_dim] */
    float **kc, **vc;              /* [n_layers] */
    int64_t cap_ctx, n_cached;
    double attn_log_n0;            /* > 1: heed_model_set_attn_log_scale; 0: off */
    float *head_scale;             /* [n_layers, n_heads] heed_model_set_head_scale, or NULL: all 1 */
    heed_probe probe;              /* heed_model_set_probe (buffers borrowed), used when has_probe */
    int has_probe;
    heed_intervention *iv;         /* [n_iv] heed_model_set_interventions */
    int64_t n_iv;
    float *iv_recv;                /* [n_iv, iv_cap]: ACT's column sums of the original probabilities */
    double *iv_sum;                /* [n_iv, head_dim]: MEAN's sums of the original output rows */
    uint8_t *patch_sel;            /* [n_layers, n_heads, patch_len] heed_model_set_head_patch, or NULL: none */
    const float *patch_out;        /* [n_layers, n_heads, patch_len, head_dim] (borrowed) */
    int64_t patch_len;
    int64_t iv_cap, iv_rows;       /* iv_rows: the query rows summed (-1: unknown, a sequence must restart) */
};

static int64_t qkv_dim(const heed_config *c) { return (c->n_heads + 2 * c->n_kv_heads) * c->head_dim; }

static float load(const heed_st_tensor *t, int64_t i) { return heed_load_f32(t->data, (heed_dtype)t->dtype, i); }

/* ---------------------------------------------------------------------------------------------- */
/* Loading */

/* The tensor prefix + mid + name + suffix ("model.layers.3." "self_attn.q_proj" ".weight"), checked
 * against n_dims / shape (see heed_st_get). */
static heed_status get(heed_ctx *ctx, const heed_st_tensor **out, const heed_model *m, const char *prefix,
                       const char *mid, const char *name, const char *suffix, int n_dims, const int64_t *shape)
{
    char full[512];
    snprintf(full, sizeof full, "%s%s%s%s", prefix, mid, name, suffix);
    if (!heed_st_find(m->st, full))
        return heed_fail(ctx, HEED_ERR_FORMAT, "model: tensor '%s' (%s) is missing from the checkpoint", full,
                         m->cfg.model_type);
    return heed_st_get(ctx, out, m->st, full, n_dims, shape);
}

static heed_status get_norm(heed_ctx *ctx, norm *n, const heed_model *m, const char *prefix, const char *mid,
                            const char *name, int64_t size)
{
    n->w = n->b = NULL;
    if (!name) return HEED_OK;
    heed_status s = get(ctx, &n->w, m, prefix, mid, name, ".weight", 1, &size);
    if (s == HEED_OK && m->cfg.norm == HEED_LN_LAYER && m->cfg.norm_bias)
        s = get(ctx, &n->b, m, prefix, mid, name, ".bias", 1, &size);
    return s;
}

static heed_status get_lin(heed_ctx *ctx, lin *l, const heed_model *m, const char *prefix, const char *mid,
                           const char *name, int64_t in, int64_t out, int bias)
{
    l->w = l->b = NULL;
    l->conv1d = m->names->conv1d;
    int64_t shape[2] = {out, in};
    if (l->conv1d) shape[0] = in, shape[1] = out;
    heed_status s = get(ctx, &l->w, m, prefix, mid, name, ".weight", 2, shape);
    if (s == HEED_OK && bias) s = get(ctx, &l->b, m, prefix, mid, name, ".bias", 1, &out);
    return s;
}

static heed_status load_weights(heed_ctx *ctx, heed_model *m)
{
    const heed_config *c = &m->cfg;
    const arch_names *nm = m->names;
    const char *p = NULL;
    char probe[256];
    for (int i = 0; i < 3 && nm->prefixes[i] && !p; i++) {
        snprintf(probe, sizeof probe, "%s%s.weight", nm->prefixes[i], nm->embed);
        if (heed_st_find(m->st, probe)) p = nm->prefixes[i];
    }
    if (!p)
        return heed_fail(ctx, HEED_ERR_FORMAT, "model: tensor '%s%s.weight' (%s embeddings) is missing from the checkpoint",
                         nm->prefixes[0], nm->embed, c->model_type);
    int64_t d = c->hidden, D = c->head_dim, F = c->intermediate;
    int64_t sh[2] = {c->vocab, d};
    heed_status s = get(ctx, &m->embed, m, p, "", nm->embed, ".weight", 2, sh);
    if (s == HEED_OK && nm->pos_embed) {
        sh[0] = c->max_pos;
        s = get(ctx, &m->pos_embed, m, p, "", nm->pos_embed, ".weight", 2, sh);
    }
    if (s == HEED_OK && nm->type_embed) {
        sh[0] = c->type_vocab;
        s = get(ctx, &m->type_embed, m, p, "", nm->type_embed, ".weight", 2, sh);
    }
    if (s == HEED_OK) s = get_norm(ctx, &m->embed_norm, m, p, "", nm->embed_norm, d);
    if (s == HEED_OK) s = get_norm(ctx, &m->final_norm, m, p, "", nm->final_norm, d);
    m->lm_head = NULL;
    if (s == HEED_OK && nm->lm_head) {
        if (c->tie_embeddings) m->lm_head = m->embed;
        else {
            sh[0] = c->vocab;
            s = get(ctx, &m->lm_head, m, "", "", nm->lm_head, ".weight", 2, sh);
        }
    }
    int64_t qd = c->n_heads * D, kd = c->n_kv_heads * D;
    for (int64_t L = 0; L < c->n_layers && s == HEED_OK; L++) {
        char mid[64];
        snprintf(mid, sizeof mid, nm->layer, (int)L);
        layer_w *w = &m->layers[L];
        s = get_norm(ctx, &w->attn_in, m, p, mid, nm->attn_in, d);
        if (s == HEED_OK) s = get_norm(ctx, &w->attn_out, m, p, mid, nm->attn_out, d);
        if (s == HEED_OK) s = get_norm(ctx, &w->ffn_in, m, p, mid, nm->ffn_in, d);
        if (s == HEED_OK) s = get_norm(ctx, &w->ffn_out, m, p, mid, nm->ffn_out, d);
        if (s == HEED_OK && c->qk_norm) s = get_norm(ctx, &w->q_norm, m, p, mid, nm->q_norm, D);
        if (s == HEED_OK && c->qk_norm) s = get_norm(ctx, &w->k_norm, m, p, mid, nm->k_norm, D);
        if (c->fused_qkv) {
            if (s == HEED_OK) s = get_lin(ctx, &w->qkv, m, p, mid, nm->qkv, d, qd + 2 * kd, c->qkv_bias);
        } else {
            if (s == HEED_OK) s = get_lin(ctx, &w->q, m, p, mid, nm->q, d, qd, c->qkv_bias);
            if (s == HEED_OK) s = get_lin(ctx, &w->k, m, p, mid, nm->k, d, kd, c->qkv_bias);
            if (s == HEED_OK) s = get_lin(ctx, &w->v, m, p, mid, nm->v, d, kd, c->qkv_bias);
        }
        if (s == HEED_OK) s = get_lin(ctx, &w->o, m, p, mid, nm->o, qd, d, c->o_bias);
        if (s == HEED_OK && c->mlp == HEED_MLP_GATED) s = get_lin(ctx, &w->gate, m, p, mid, nm->gate, d, F, c->mlp_bias);
        if (s == HEED_OK) s = get_lin(ctx, &w->up, m, p, mid, nm->up, d, F, c->mlp_bias);
        if (s == HEED_OK) s = get_lin(ctx, &w->down, m, p, mid, nm->down, F, d, c->mlp_bias);
    }
    return s;
}

heed_status heed_model_load(heed_ctx *ctx, heed_model **out, const char *dir)
{
    if (!out || !dir) return heed_fail(ctx, HEED_ERR_INVALID, "heed_model_load: NULL argument");
    *out = NULL;
    heed_model *m = calloc(1, sizeof *m);
    if (!m) return heed_fail(ctx, HEED_ERR_NOMEM, "heed_model_load: out of memory");
    heed_status s = heed_config_load(ctx, &m->cfg, &m->gen, dir);
    const heed_config *c = &m->cfg;
    for (size_t i = 0; s == HEED_OK && i < sizeof NAMES / sizeof NAMES[0]; i++)
        if (NAMES[i].arch == c->arch) m->names = &NAMES[i];
    if (s == HEED_OK && !m->names)
        s = heed_fail(ctx, HEED_ERR_UNSUPPORTED, "heed_model_load: model_type '%s' has no tensor-name table", c->model_type);
    const heed_variant *v = &c->variant;
    if (s == HEED_OK && (v->mixer || v->sigmoid || v->sink_logit || v->selective || v->s2_block || v->moh_top_k))
        s = heed_fail(ctx, HEED_ERR_UNSUPPORTED, "heed_model_load: %s/config.json is a heed training variant (heed_* "
                      "keys: mixer, sigmoid, sinks, selective, S2 or MoH) that the runtime does not run", dir);
    if (s == HEED_OK && c->pos == HEED_POS_ROPE && c->head_dim % 2)
        s = heed_fail(ctx, HEED_ERR_FORMAT, "heed_model_load: head_dim %lld must be even for RoPE", (long long)c->head_dim);
    if (s == HEED_OK) s = heed_st_open(ctx, &m->st, dir);
    if (s == HEED_OK) {
        m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
        m->kc = calloc((size_t)c->n_layers, sizeof *m->kc);
        m->vc = calloc((size_t)c->n_layers, sizeof *m->vc);
        m->inv_freq = heed_alloc(sizeof(float) * (size_t)(c->head_dim / 2 + 1));
        if (!m->layers || !m->kc || !m->vc || !m->inv_freq)
            s = heed_fail(ctx, HEED_ERR_NOMEM, "heed_model_load: out of memory");
    }
    if (s == HEED_OK) s = load_weights(ctx, m);
    if (s != HEED_OK) {
        heed_model_free(m);
        return s;
    }
    *out = m;
    return HEED_OK;
}

static void free_state(heed_model *m)
{
    float **bufs[] = {&m->x, &m->xb, &m->qkv, &m->att, &m->hb, &m->hb2, &m->lse};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) heed_free(*bufs[i]), *bufs[i] = NULL;
}

void heed_model_free(heed_model *m)
{
    if (!m) return;
    free_state(m);
    for (int64_t L = 0; m->kc && L < m->cfg.n_layers; L++) heed_free(m->kc[L]), heed_free(m->vc[L]);
    free(m->kc);
    free(m->vc);
    free(m->layers);
    heed_free(m->inv_freq);
    free(m->head_scale);
    free(m->iv);
    free(m->iv_recv);
    free(m->iv_sum);
    free(m->patch_sel);
    heed_st_close(m->st);
    free(m);
}

const heed_config *heed_model_config(const heed_model *m) { return &m->cfg; }
const heed_gen_config *heed_model_gen_config(const heed_model *m) { return &m->gen; }
int heed_model_has_lm_head(const heed_model *m) { return m->lm_head != NULL; }
int64_t heed_model_n_cached(const heed_model *m) { return m->n_cached; }

heed_status heed_model_set_rope_theta(heed_ctx *ctx, heed_model *m, double theta)
{
    if (m->cfg.pos != HEED_POS_ROPE)
        return heed_fail(ctx, HEED_ERR_INVALID, "rope theta: this %s model has no RoPE", m->cfg.model_type);
    if (!(theta > 0) || !isfinite(theta))
        return heed_fail(ctx, HEED_ERR_INVALID, "rope theta: %g, expected a finite number > 0", theta);
    m->cfg.rope.theta = theta;
    m->n_cached = 0;
    return HEED_OK;
}

heed_status heed_model_set_attn_log_scale(heed_ctx *ctx, heed_model *m, double n0)
{
    if (n0 != 0.0 && !(n0 > 1.0 && isfinite(n0)))
        return heed_fail(ctx, HEED_ERR_INVALID, "attn log scale: n0 = %g, expected 0 (off) or a finite number > 1", n0);
    m->attn_log_n0 = n0;
    return HEED_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* Run state */

static heed_status reserve_tokens(heed_ctx *ctx, heed_model *m, int64_t n)
{
    if (n <= m->cap_tokens) return HEED_OK;
    free_state(m);
    const heed_config *c = &m->cfg;
    size_t N = (size_t)n, d = (size_t)c->hidden, F = (size_t)c->intermediate;
    m->x = heed_alloc(sizeof(float) * N * d);
    m->xb = heed_alloc(sizeof(float) * N * d);
    m->qkv = heed_alloc(sizeof(float) * N * (size_t)qkv_dim(c));
    m->att = heed_alloc(sizeof(float) * N * (size_t)(c->n_heads * c->head_dim));
    m->hb = heed_alloc(sizeof(float) * N * F);
    m->hb2 = heed_alloc(sizeof(float) * N * F);
    m->lse = heed_alloc(sizeof(float) * N * (size_t)c->n_heads);
    if (!m->x || !m->xb || !m->qkv || !m->att || !m->hb || !m->hb2 || !m->lse) {
        free_state(m);
        m->cap_tokens = 0;
        return heed_fail(ctx, HEED_ERR_NOMEM, "heed_model_forward: out of memory for %lld tokens", (long long)n);
    }
    m->cap_tokens = n;
    return HEED_OK;
}

/* Grows the KV cache to hold n positions, keeping the first m->n_cached; on failure it is unchanged. */
static heed_status reserve_ctx(heed_ctx *ctx, heed_model *m, int64_t n)
{
    if (n <= m->cap_ctx) return HEED_OK;
    const heed_config *c = &m->cfg;
    int64_t cap = m->cap_ctx * 2 > n ? m->cap_ctx * 2 : n, D = c->head_dim, NL = c->n_layers;
    size_t bytes = sizeof(float) * (size_t)(c->n_kv_heads * cap * D);
    float **nc = calloc((size_t)(2 * NL), sizeof *nc); /* new k caches, then new v caches */
    int ok = nc != NULL;
    for (int64_t i = 0; ok && i < 2 * NL; i++) ok = (nc[i] = heed_alloc(bytes)) != NULL;
    if (!ok) {
        for (int64_t i = 0; nc && i < 2 * NL; i++) heed_free(nc[i]);
        free(nc);
        return heed_fail(ctx, HEED_ERR_NOMEM, "heed_model_forward: out of memory for a KV cache of %lld positions",
                         (long long)cap);
    }
    for (int64_t i = 0; i < 2 * NL; i++) {
        float **old = i < NL ? &m->kc[i] : &m->vc[i - NL];
        for (int64_t h = 0; h < c->n_kv_heads && m->n_cached; h++)
            memcpy(nc[i] + h * cap * D, *old + h * m->cap_ctx * D, sizeof(float) * (size_t)(m->n_cached * D));
        heed_free(*old);
        *old = nc[i];
    }
    free(nc);
    m->cap_ctx = cap;
    return HEED_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* Kernels */

typedef struct matvec_job {
    float *y;
    int64_t ldy, n, in, out;
    const float *x;
    const heed_st_tensor *w;
} matvec_job;

#define MATVEC_ROWS 64 /* output rows per task */

static void matvec_task(void *arg, int64_t task, int thread)
{
    const matvec_job *J = arg;
    int64_t j0 = task * MATVEC_ROWS, j1 = j0 + MATVEC_ROWS < J->out ? j0 + MATVEC_ROWS : J->out;
    model_matvec_avx2(J->y, J->ldy, J->x, J->w->data, (heed_dtype)J->w->dtype, J->n, J->in, j0, j1);
}

/* y [n, ldy] (columns [0, out)) = x [n, in] W^T + b, on the context's threads. A few tokens (decode) with
 * nn.Linear weights: the matvec kernel, which reads each weight once as stored (f32, or f16/bf16 widened
 * in registers); otherwise heed_gemm (slabs of W, f16/bf16 widened slab by slab). conv1d: W is [in, out]. */
static heed_status linear(heed_ctx *ctx, float *y, int64_t ldy, const float *x, const lin *l, int64_t n, int64_t in,
                          int64_t out)
{
    const heed_st_tensor *w = l->w;
    if (!l->conv1d && n <= MODEL_MATVEC_MAX_N && heed_ctx_isa(ctx) >= HEED_ISA_AVX2) {
        matvec_job J = {y, ldy, n, in, out, x, w};
        heed_parallel(ctx, (out + MATVEC_ROWS - 1) / MATVEC_ROWS, matvec_task, &J);
    } else {
        const heed_status s = heed_gemm(ctx, 0, !l->conv1d, n, out, in, x, in, w->data, (heed_dtype)w->dtype,
                                        l->conv1d ? out : in, 0.0f, y, ldy);
        if (s != HEED_OK) return s;
    }
    if (l->b)
        for (int64_t t = 0; t < n; t++)
            for (int64_t j = 0; j < out; j++) y[t * ldy + j] += load(l->b, j);
    return HEED_OK;
}

/* o [n, stride] = norm(x [n, stride]) over the first `size` columns of each row, as transformers computes it
 * in f32: RMSNorm x / sqrt(mean(x^2) + eps) * w (gemma2: * (1 + w)); LayerNorm (x - mean) / sqrt(var + eps) * w + b. */
static void apply_norm(const heed_config *c, float *o, const float *x, const norm *nw, int64_t n, int64_t size,
                       int64_t stride)
{
    for (int64_t t = 0; t < n; t++) {
        const float *xr = x + t * stride;
        float *orow = o + t * stride;
        if (c->norm == HEED_LN_RMS) {
            float ss = 0.0f;
            for (int64_t i = 0; i < size; i++) ss += xr[i] * xr[i];
            float r = 1.0f / sqrtf(ss / (float)size + (float)c->norm_eps);
            for (int64_t i = 0; i < size; i++) {
                float g = load(nw->w, i);
                orow[i] = (xr[i] * r) * (c->norm_add_one ? 1.0f + g : g);
            }
        } else {
            double mean = 0.0, var = 0.0;
            for (int64_t i = 0; i < size; i++) mean += xr[i];
            mean /= (double)size;
            for (int64_t i = 0; i < size; i++) var += (xr[i] - mean) * (xr[i] - mean);
            float r = (float)(1.0 / sqrt(var / (double)size + c->norm_eps));
            for (int64_t i = 0; i < size; i++)
                orow[i] = (float)(xr[i] - mean) * r * load(nw->w, i) + (nw->b ? load(nw->b, i) : 0.0f);
        }
    }
}

static float activation(heed_act a, float x)
{
    switch (a) {
    case HEED_ACT_SILU: return x / (1.0f + expf(-x));
    case HEED_ACT_GELU: return (float)(0.5 * x * (1.0 + erf(x / sqrt(2.0))));
    case HEED_ACT_GELU_TANH:
        return (float)(0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * (double)x * x * x))));
    case HEED_ACT_RELU: return x > 0.0f ? x : 0.0f;
    }
    return x;
}

/* Rotates the heads of rows x [n, stride] (n_h heads of D from column 0) at positions pos0 + t,
 * rotate_half convention: cos/sin of cat(freqs, freqs), times attention_factor. */
static void rope(float *x, const float *inv_freq, float factor, int64_t n, int64_t n_h, int64_t D, int64_t stride,
                 int64_t pos0)
{
    int64_t half = D / 2;
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < half; i++) {
            float f = (float)(pos0 + t) * inv_freq[i];
            float cs = cosf(f) * factor, sn = sinf(f) * factor;
            for (int64_t h = 0; h < n_h; h++) {
                float *r = x + t * stride + h * D;
                float x1 = r[i], x2 = r[i + half];
                r[i] = x1 * cs - x2 * sn;
                r[i + half] = x2 * cs + x1 * sn;
            }
        }
}

/* The mask of layer L: bidirectional (encoders, or any model asked to be), the sliding window, or causal. */
static heed_mask layer_mask(const heed_config *c, int64_t L, int bidirectional)
{
    heed_mask mk;
    memset(&mk, 0, sizeof mk);
    mk.dilation[0] = mk.dilation[1] = 1;
    if (!c->causal || bidirectional) mk.kind = HEED_MASK_NONE;
    else if (c->layer_window[L] && c->sliding_window > 0) {
        mk.kind = HEED_MASK_WINDOW;
        mk.left = c->sliding_window - 1;
        mk.right = 0;
    } else mk.kind = HEED_MASK_CAUSAL;
    return mk;
}

/* One attention call observed: trace->attn of a layer (every head) and the selected heads of a probe. */
typedef struct observe_job {
    heed_ctx *ctx;
    const heed_model *m;
    const heed_attn_desc *d;
    const heed_probe *pr; /* NULL: only trace_attn */
    float *trace_attn;    /* NULL or [Hq, n, Tk] */
    int64_t L, n, Tk;
} observe_job;

static float l2(const float *x, int64_t n)
{
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    return (float)sqrt(ss);
}

/* Query t of head h: the logits s [Tk] the kernel used (scale, softcap; masked -INFINITY) and the
 * probabilities p [Tk] = exp(s - lse), exactly normalised by the kernel's lse. */
static void attn_row(float *s, float *p, const heed_attn_desc *d, float lse, int64_t group, int64_t h, int64_t t,
                     int64_t Tk)
{
    int64_t D = d->q.ne[3];
    const float *q = heed_row(&d->q, 0, h, t);
    for (int64_t j = 0; j < Tk; j++) {
        if (!heed_mask_visible(&d->mask, d->q_offset + t, j, h)) {
            s[j] = -INFINITY;
            p[j] = 0.0f;
            continue;
        }
        const float *k = heed_row(&d->k, 0, h / group, j);
        double x = 0.0;
        for (int64_t i = 0; i < D; i++) x += (double)q[i] * k[i];
        x *= d->scale;
        if (d->softcap > 0.0f) x = d->softcap * tanh(x / d->softcap);
        s[j] = (float)x;
        p[j] = (float)exp(x - lse);
    }
}

/* Task h: the rows of head h (each [Tk], in scratch unless an output holds them) and its statistics. */
static void observe_task(void *arg, int64_t h, int thread)
{
    const observe_job *J = arg;
    const heed_model *m = J->m;
    const heed_config *c = &m->cfg;
    const heed_probe *pr = J->pr;
    int64_t H = c->n_heads, D = c->head_dim, n = J->n, Tk = J->Tk, slot = J->L * H + h;
    int64_t group = H / c->n_kv_heads, pos = J->d->q_offset;
    int sel = pr && (!pr->select || pr->select[slot]);
    if (!sel && !J->trace_attn) return;
    float *buf = heed_scratch(J->ctx, thread); /* [2, Tk] */
    float *S = sel && pr->scores ? pr->scores[slot] : NULL;
    float *P = sel && pr->probs ? pr->probs[slot] : NULL;
    for (int64_t t = 0; t < n; t++) {
        float lse = m->lse[h * n + t];
        float *s = S ? S + t * Tk : buf, *p = P ? P + t * Tk : buf + Tk;
        attn_row(s, p, J->d, lse, group, h, t, Tk);
        if (J->trace_attn) memcpy(J->trace_attn + (h * n + t) * Tk, p, sizeof(float) * (size_t)Tk);
        if (!sel) continue;
        int64_t o = slot * n + t;
        if (pr->lse) pr->lse[o] = lse;
        if (pr->entropy || pr->top1) {
            double ent = 0.0;
            int64_t best = -1;
            for (int64_t j = 0; j < Tk; j++) {
                if (p[j] > 0.0f) ent -= (double)p[j] * log((double)p[j]);
                if (s[j] > -INFINITY && (best < 0 || p[j] > p[best])) best = j;
            }
            if (pr->entropy) pr->entropy[o] = (float)ent;
            if (pr->top1) pr->top1[o] = (int32_t)best;
        }
        if (pr->recv)
            for (int64_t j = 0; j < Tk; j++) pr->recv[slot * pr->recv_len + j] += p[j];
        if (pr->q_norm) pr->q_norm[o] = l2(heed_row(&J->d->q, 0, h, t), D);
        if (pr->k_norm) pr->k_norm[o] = l2(heed_row(&J->d->k, 0, h / group, pos + t), D);
        if (pr->v_norm) pr->v_norm[o] = l2(heed_row(&J->d->v, 0, h / group, pos + t), D);
        if (pr->head_out)
            memcpy(pr->head_out + o * D, m->att + t * H * D + h * D, sizeof(float) * (size_t)D);
    }
}

/* The layer's observations after its attention call (trace_attn NULL and no probe: nothing). */
static heed_status observe(heed_ctx *ctx, const heed_model *m, const heed_attn_desc *d, const heed_probe *pr,
                           float *trace_attn, int64_t L, int64_t n, int64_t Tk)
{
    if (!pr && !trace_attn) return HEED_OK;
    heed_status s = heed_scratch_reserve(ctx, sizeof(float) * (size_t)(2 * Tk));
    if (s != HEED_OK) return s;
    observe_job J = {ctx, m, d, pr, trace_attn, L, n, Tk};
    heed_parallel(ctx, m->cfg.n_heads, observe_task, &J);
    return HEED_OK;
}

/* The heads of one layer that heed_model_set_interventions edits. */
typedef struct intervene_job {
    heed_ctx *ctx;
    heed_model *m;
    const heed_attn_desc *d;
    int64_t L, n, Tk;
} intervene_job;

/* Task k: intervention k, when it is on layer L, rewrites its head's output rows in m->att: from edited
 * probabilities (ACT first adds this call's original rows to its column sums), or MEAN's running mean. */
static void intervene_task(void *arg, int64_t k, int thread)
{
    const intervene_job *J = arg;
    heed_model *m = J->m;
    const heed_intervention *iv = &m->iv[k];
    if (iv->layer != J->L) return;
    const heed_config *c = &m->cfg;
    int64_t H = c->n_heads, D = c->head_dim, n = J->n, Tk = J->Tk, h = iv->head, group = H / c->n_kv_heads;
    int64_t pos = J->d->q_offset;
    double *acc = heed_scratch(J->ctx, thread);                   /* [D] */
    float *s = (float *)(acc + D), *p = s + Tk, *alpha = p + Tk; /* [3, Tk] */
    uint8_t *sink = (uint8_t *)(alpha + Tk);                     /* [Tk] */
    if (iv->kind == HEED_EDIT_MEAN) {
        /* causal: row t the mean over positions 0 .. pos + t; bidirectional: over all rows */
        double *sum = m->iv_sum + k * D;
        const int all = J->d->mask.kind == HEED_MASK_NONE;
        for (int64_t t = 0; all && t < n; t++)
            for (int64_t i = 0; i < D; i++) sum[i] += m->att[t * H * D + h * D + i];
        for (int64_t t = 0; t < n; t++)
            for (int64_t i = 0; i < D; i++) {
                float *o = m->att + t * H * D + h * D + i;
                if (!all) sum[i] += *o;
                *o = (float)(sum[i] / (double)(all ? n : pos + t + 1));
            }
        return;
    }
    if (iv->kind == HEED_EDIT_ACT) {
        float *recv = m->iv_recv + k * m->iv_cap;
        for (int64_t t = 0; t < n; t++) {
            attn_row(s, p, J->d, m->lse[h * n + t], group, h, t, Tk);
            for (int64_t j = 0; j < Tk; j++) recv[j] += p[j];
        }
        heed_score_sink_alpha(alpha, recv, Tk, J->d->mask.kind != HEED_MASK_NONE);
        for (int64_t j = 0; j < Tk; j++) sink[j] = j >= 1 && alpha[j] > iv->threshold;
    }
    for (int64_t t = 0; t < n; t++) {
        if (iv->kind == HEED_EDIT_ACT && pos + t == 0) continue; /* ACT leaves the first row alone */
        attn_row(s, p, J->d, m->lse[h * n + t], group, h, t, Tk);
        model_edit_row(p, s, sink, iv, Tk);
        for (int64_t i = 0; i < D; i++) acc[i] = 0.0;
        for (int64_t j = 0; j < Tk; j++) {
            if (p[j] == 0.0f) continue;
            const float *v = heed_row(&J->d->v, 0, h / group, j);
            for (int64_t i = 0; i < D; i++) acc[i] += (double)p[j] * v[i];
        }
        for (int64_t i = 0; i < D; i++) m->att[t * H * D + h * D + i] = (float)acc[i];
    }
}

/* Applies the interventions of layer L to this attention call's output (none: nothing). */
static heed_status intervene(heed_ctx *ctx, heed_model *m, const heed_attn_desc *d, int64_t L, int64_t n, int64_t Tk)
{
    if (!m->n_iv) return HEED_OK;
    heed_status s = heed_scratch_reserve(ctx, sizeof(double) * (size_t)m->cfg.head_dim + sizeof(float) * (size_t)(4 * Tk));
    if (s != HEED_OK) return s;
    intervene_job J = {ctx, m, d, L, n, Tk};
    heed_parallel(ctx, m->n_iv, intervene_task, &J);
    return HEED_OK;
}

/* Before a forward over positions [pos, pos + n): ACT's and MEAN's sums restart at pos 0 and must otherwise
 * continue where the last forward ended. */
static heed_status intervene_begin(heed_ctx *ctx, heed_model *m, int64_t pos, int64_t n)
{
    int sums = 0;
    for (int64_t k = 0; k < m->n_iv; k++) sums |= m->iv[k].kind == HEED_EDIT_ACT || m->iv[k].kind == HEED_EDIT_MEAN;
    if (!sums) return HEED_OK;
    if (pos != 0 && pos != m->iv_rows)
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_model_forward: an ACT or MEAN intervention sums the rows of the sequence "
                         "so far, which cover %lld positions, but the forward starts at pos %lld: restart at pos 0",
                         (long long)(m->iv_rows < 0 ? 0 : m->iv_rows), (long long)pos);
    if (pos + n > m->iv_cap) {
        int64_t cap = 2 * m->iv_cap > pos + n ? 2 * m->iv_cap : pos + n;
        float *r = calloc((size_t)(m->n_iv * cap), sizeof(float));
        if (!r) return heed_fail(ctx, HEED_ERR_NOMEM, "heed_model_forward: out of memory for the ACT sums");
        for (int64_t k = 0; k < m->n_iv && m->iv_recv; k++)
            memcpy(r + k * cap, m->iv_recv + k * m->iv_cap, sizeof(float) * (size_t)m->iv_cap);
        free(m->iv_recv);
        m->iv_recv = r;
        m->iv_cap = cap;
    }
    if (pos == 0) {
        memset(m->iv_recv, 0, sizeof(float) * (size_t)(m->n_iv * m->iv_cap));
        memset(m->iv_sum, 0, sizeof(double) * (size_t)(m->n_iv * m->cfg.head_dim));
    }
    m->iv_rows = -1; /* until this forward completes */
    return HEED_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* Forward */

/* One attention block on m->xb [n, d] (the block's input) into m->xb: projections, q/k norm, RoPE,
 * cache append, attention over positions [0, pos + n), output projection. */
static heed_status attention(heed_ctx *ctx, heed_model *m, int64_t L, int64_t n, int64_t pos, int bidirectional,
                             float *probs, const heed_probe *pr)
{
    const heed_config *c = &m->cfg;
    const layer_w *w = &m->layers[L];
    int64_t d = c->hidden, D = c->head_dim, Hq = c->n_heads, Hk = c->n_kv_heads, ld = qkv_dim(c);
    int64_t qd = Hq * D, kd = Hk * D;
    float *q = m->qkv, *k = m->qkv + qd, *v = m->qkv + qd + kd;
    heed_status s;
    if (c->fused_qkv) s = linear(ctx, m->qkv, ld, m->xb, &w->qkv, n, d, ld);
    else if ((s = linear(ctx, q, ld, m->xb, &w->q, n, d, qd)) == HEED_OK &&
             (s = linear(ctx, k, ld, m->xb, &w->k, n, d, kd)) == HEED_OK)
        s = linear(ctx, v, ld, m->xb, &w->v, n, d, kd);
    if (s != HEED_OK) return s;
    if (c->qk_norm) {
        for (int64_t t = 0; t < n; t++) {
            apply_norm(c, q + t * ld, q + t * ld, &w->q_norm, Hq, D, D);
            apply_norm(c, k + t * ld, k + t * ld, &w->k_norm, Hk, D, D);
        }
    }
    if (c->pos == HEED_POS_ROPE) {
        float factor;
        s = heed_rope_inv_freq(ctx, m->inv_freq, &factor, c, pos + n);
        if (s != HEED_OK) return s;
        rope(q, m->inv_freq, factor, n, Hq, D, ld, pos);
        rope(k, m->inv_freq, factor, n, Hk, D, ld, pos);
    }
    if (m->attn_log_n0 > 0.0) /* scaling q scales every logit of its row, before the softcap */
        for (int64_t t = 0; t < n; t++) {
            const double sc = log((double)(pos + t + 1)) / log(m->attn_log_n0);
            for (int64_t i = 0; sc > 1.0 && i < Hq * D; i++) q[t * ld + i] *= (float)sc;
        }
    for (int64_t h = 0; h < Hk; h++)
        for (int64_t t = 0; t < n; t++) {
            memcpy(m->kc[L] + (h * m->cap_ctx + pos + t) * D, k + t * ld + h * D, sizeof(float) * (size_t)D);
            memcpy(m->vc[L] + (h * m->cap_ctx + pos + t) * D, v + t * ld + h * D, sizeof(float) * (size_t)D);
        }
    int64_t Tk = pos + n;
    heed_attn_desc ad;
    heed_attn_desc_init(&ad);
    int64_t f = (int64_t)sizeof(float);
    ad.q = (heed_tensor){q, HEED_F32, {1, Hq, n, D}, {n * ld * f, D * f, ld * f, f}};
    ad.k = (heed_tensor){m->kc[L], HEED_F32, {1, Hk, Tk, D}, {Hk * m->cap_ctx * D * f, m->cap_ctx * D * f, D * f, f}};
    ad.v = ad.k;
    ad.v.data = m->vc[L];
    ad.q_offset = pos;
    ad.mask = layer_mask(c, L, bidirectional);
    ad.scale = (float)(c->scale_by_inverse_layer ? c->attn_scale / (double)(L + 1) : c->attn_scale);
    ad.softcap = (float)c->attn_softcap;
    heed_tensor o = {m->att, HEED_F32, {1, Hq, n, D}, {n * qd * f, D * f, qd * f, f}};
    s = heed_attn_forward(ctx, &o, m->lse, &ad);
    if (s == HEED_OK) s = intervene(ctx, m, &ad, L, n, Tk);
    if (s != HEED_OK) return s;
    if (m->head_scale)
        for (int64_t h = 0; h < Hq; h++) {
            float sc = m->head_scale[L * Hq + h];
            for (int64_t t = 0; sc != 1.0f && t < n; t++)
                for (int64_t i = 0; i < D; i++) m->att[t * qd + h * D + i] *= sc;
        }
    for (int64_t h = 0; m->patch_sel && h < Hq; h++)
        for (int64_t t = 0; t < n; t++) {
            const int64_t slot = (L * Hq + h) * m->patch_len + pos + t;
            if (m->patch_sel[slot])
                memcpy(m->att + t * qd + h * D, m->patch_out + slot * D, sizeof(float) * (size_t)D);
        }
    s = observe(ctx, m, &ad, pr, probs, L, n, Tk);
    if (s != HEED_OK) return s;
    return linear(ctx, m->xb, d, m->att, &w->o, n, qd, d);
}

/* MLP on m->xb [n, d] into m->xb. */
static heed_status mlp(heed_ctx *ctx, heed_model *m, int64_t L, int64_t n)
{
    const heed_config *c = &m->cfg;
    const layer_w *w = &m->layers[L];
    int64_t d = c->hidden, F = c->intermediate;
    heed_status s = linear(ctx, m->hb, F, m->xb, &w->up, n, d, F);
    if (s != HEED_OK) return s;
    if (c->mlp == HEED_MLP_GATED) {
        if ((s = linear(ctx, m->hb2, F, m->xb, &w->gate, n, d, F)) != HEED_OK) return s;
        for (int64_t i = 0; i < n * F; i++) m->hb[i] *= activation(c->act, m->hb2[i]);
    } else
        for (int64_t i = 0; i < n * F; i++) m->hb[i] = activation(c->act, m->hb[i]);
    return linear(ctx, m->xb, d, m->hb, &w->down, n, F, d);
}

/* x += branch, with the optional post-norm of the branch (gemma2) or of the sum (bert). */
static void residual(const heed_config *c, float *x, float *branch, const norm *out_norm, int64_t n)
{
    int64_t d = c->hidden;
    if (out_norm->w && !c->post_ln) apply_norm(c, branch, branch, out_norm, n, d, d);
    for (int64_t i = 0; i < n * d; i++) x[i] += branch[i];
    if (out_norm->w && c->post_ln) apply_norm(c, x, x, out_norm, n, d, d);
}

static void embed(heed_model *m, const int32_t *ids, const int32_t *types, int64_t n, int64_t pos)
{
    const heed_config *c = &m->cfg;
    int64_t d = c->hidden;
    for (int64_t t = 0; t < n; t++) {
        float *x = m->x + t * d;
        size_t esz = heed_st_dtype_size(m->embed->dtype);
        heed_convert(x, HEED_F32, (const char *)m->embed->data + (size_t)ids[t] * (size_t)d * esz,
                     (heed_dtype)m->embed->dtype, (size_t)d);
        if (c->embed_scale) {
            /* transformers makes the factor a tensor of the model dtype: sqrt(3584) is 60 in bf16 */
            float sc = (float)sqrt((double)d);
            if (m->embed->dtype != HEED_ST_F32) {
                uint16_t h;
                heed_convert(&h, (heed_dtype)m->embed->dtype, &sc, HEED_F32, 1);
                heed_convert(&sc, HEED_F32, &h, (heed_dtype)m->embed->dtype, 1);
            }
            for (int64_t i = 0; i < d; i++) x[i] *= sc;
        }
        if (m->pos_embed)
            for (int64_t i = 0; i < d; i++) x[i] += load(m->pos_embed, (pos + t) * d + i);
        if (m->type_embed)
            for (int64_t i = 0; i < d; i++) x[i] += load(m->type_embed, (types ? types[t] : 0) * d + i);
    }
    if (m->embed_norm.w) apply_norm(c, m->x, m->x, &m->embed_norm, n, d, d);
}

/* logits [n, vocab] out = the LM head of x [n, hidden] (already through the final norm), final softcap applied. */
static heed_status lm_head(heed_ctx *ctx, heed_model *m, float *logits, const float *x, int64_t n)
{
    const heed_config *c = &m->cfg;
    int64_t V = c->vocab;
    lin head = {m->lm_head, NULL, 0}; /* [V, d] in every family: the embedding or a Linear */
    const heed_status s = linear(ctx, logits, V, x, &head, n, c->hidden, V);
    if (s == HEED_OK && c->final_softcap > 0.0)
        for (int64_t i = 0; i < n * V; i++) logits[i] = (float)(c->final_softcap * tanh(logits[i] / c->final_softcap));
    return s;
}

heed_status heed_model_forward(heed_ctx *ctx, heed_model *m, float *logits, const heed_model_trace *trace,
                               const int32_t *ids, const int32_t *token_types, int64_t n, int64_t pos,
                               unsigned flags)
{
    if (!m || !ids) return heed_fail(ctx, HEED_ERR_INVALID, "heed_model_forward: NULL model or ids");
    const heed_config *c = &m->cfg;
    if (n < 1) return heed_fail(ctx, HEED_ERR_INVALID, "heed_model_forward: n = %lld tokens, expected >= 1", (long long)n);
    if (pos < 0 || pos > m->n_cached)
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_model_forward: pos = %lld, expected 0..%lld (the cached positions)",
                         (long long)pos, (long long)m->n_cached);
    if (logits && !m->lm_head)
        return heed_fail(ctx, HEED_ERR_UNSUPPORTED, "heed_model_forward: this %s checkpoint has no LM head: no logits",
                         c->model_type);
    for (int64_t t = 0; t < n; t++) {
        if (ids[t] < 0 || ids[t] >= c->vocab)
            return heed_fail(ctx, HEED_ERR_INVALID, "heed_model_forward: ids[%lld] = %d is outside the vocabulary [0, %lld)",
                             (long long)t, ids[t], (long long)c->vocab);
        if (m->type_embed && token_types && (token_types[t] < 0 || token_types[t] >= c->type_vocab))
            return heed_fail(ctx, HEED_ERR_INVALID, "heed_model_forward: token_types[%lld] = %d, expected 0..%lld",
                             (long long)t, token_types[t], (long long)c->type_vocab - 1);
    }
    if (m->pos_embed && pos + n > c->max_pos)
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_model_forward: positions up to %lld, but the model has learned "
                         "positions for %lld", (long long)(pos + n), (long long)c->max_pos);
    if ((!c->causal || (flags & HEED_FWD_BIDIRECTIONAL)) && pos != 0)
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_model_forward: an encoder (%s, or HEED_FWD_BIDIRECTIONAL) runs the "
                         "whole sequence at once: pos must be 0", c->model_type);
    const heed_probe *pr = m->has_probe ? &m->probe : NULL;
    if (pr && pr->recv && pr->recv_len < pos + n)
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_model_forward: probe recv_len = %lld, expected >= pos + n = %lld",
                         (long long)pr->recv_len, (long long)(pos + n));
    heed_status s = reserve_tokens(ctx, m, n);
    if (s == HEED_OK) s = reserve_ctx(ctx, m, pos + n);
    if (m->patch_sel && pos + n > m->patch_len)
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_model_forward: the head patch covers %lld positions, the call "
                         "reaches %lld", (long long)m->patch_len, (long long)(pos + n));
    if (s == HEED_OK) s = intervene_begin(ctx, m, pos, n);
    if (s != HEED_OK) return s;
    m->n_cached = pos; /* positions past pos are overwritten */
    int64_t d = c->hidden;
    size_t row_bytes = sizeof(float) * (size_t)(n * d);
    embed(m, ids, token_types, n, pos);
    if (trace && trace->hidden && trace->hidden[0]) memcpy(trace->hidden[0], m->x, row_bytes);
    for (int64_t L = 0; L < c->n_layers; L++) {
        const layer_w *w = &m->layers[L];
        for (int64_t t = 0; pr && pr->resid_norm && t < n; t++) pr->resid_norm[L * n + t] = l2(m->x + t * d, d);
        if (w->attn_in.w) apply_norm(c, m->xb, m->x, &w->attn_in, n, d, d);
        else memcpy(m->xb, m->x, row_bytes);
        s = attention(ctx, m, L, n, pos, (flags & HEED_FWD_BIDIRECTIONAL) != 0,
                      trace && trace->attn ? trace->attn[L] : NULL, pr);
        if (s != HEED_OK) return s;
        residual(c, m->x, m->xb, &w->attn_out, n);
        if (w->ffn_in.w) apply_norm(c, m->xb, m->x, &w->ffn_in, n, d, d);
        else memcpy(m->xb, m->x, row_bytes);
        if ((s = mlp(ctx, m, L, n)) != HEED_OK) return s;
        residual(c, m->x, m->xb, &w->ffn_out, n);
        if (trace && trace->hidden && trace->hidden[L + 1] && L + 1 < c->n_layers)
            memcpy(trace->hidden[L + 1], m->x, row_bytes);
    }
    m->n_cached = pos + n;
    m->iv_rows = pos + n;
    for (int64_t t = 0; pr && pr->resid_norm && t < n; t++) pr->resid_norm[c->n_layers * n + t] = l2(m->x + t * d, d);
    if (m->final_norm.w) apply_norm(c, m->x, m->x, &m->final_norm, n, d, d);
    if (trace && trace->hidden && trace->hidden[c->n_layers]) memcpy(trace->hidden[c->n_layers], m->x, row_bytes);
    if (!logits) return HEED_OK;
    int64_t first = flags & HEED_FWD_LAST_LOGITS ? n - 1 : 0;
    return lm_head(ctx, m, logits, m->x + first * d, n - first);
}

heed_status heed_model_unembed(heed_ctx *ctx, heed_model *m, float *logits, const float *x, int64_t n)
{
    if (!m || !logits || !x || n < 1)
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_model_unembed: NULL argument or n = %lld < 1", (long long)n);
    if (!m->lm_head)
        return heed_fail(ctx, HEED_ERR_UNSUPPORTED, "heed_model_unembed: this %s checkpoint has no LM head",
                         m->cfg.model_type);
    heed_status s = reserve_tokens(ctx, m, n);
    if (s != HEED_OK) return s;
    int64_t d = m->cfg.hidden;
    if (m->final_norm.w) apply_norm(&m->cfg, m->xb, x, &m->final_norm, n, d, d);
    else memcpy(m->xb, x, sizeof(float) * (size_t)(n * d));
    return lm_head(ctx, m, logits, m->xb, n);
}

heed_status heed_model_set_probe(heed_ctx *ctx, heed_model *m, const heed_probe *probe)
{
    if (!m) return heed_fail(ctx, HEED_ERR_INVALID, "heed_model_set_probe: NULL model");
    m->has_probe = probe != NULL;
    if (probe) m->probe = *probe;
    return HEED_OK;
}

heed_status heed_model_set_head_scale(heed_ctx *ctx, heed_model *m, const float *scale)
{
    if (!m) return heed_fail(ctx, HEED_ERR_INVALID, "heed_model_set_head_scale: NULL model");
    size_t count = (size_t)(m->cfg.n_layers * m->cfg.n_heads);
    if (!scale) {
        free(m->head_scale);
        m->head_scale = NULL;
        return HEED_OK;
    }
    for (size_t i = 0; i < count; i++)
        if (!isfinite(scale[i]))
            return heed_fail(ctx, HEED_ERR_INVALID, "heed_model_set_head_scale: scale of layer %zu head %zu is %g",
                             i / (size_t)m->cfg.n_heads, i % (size_t)m->cfg.n_heads, (double)scale[i]);
    if (!m->head_scale && !(m->head_scale = malloc(sizeof(float) * count)))
        return heed_fail(ctx, HEED_ERR_NOMEM, "heed_model_set_head_scale: out of memory");
    memcpy(m->head_scale, scale, sizeof(float) * count);
    return HEED_OK;
}

heed_status heed_model_set_head_patch(heed_ctx *ctx, heed_model *m, const uint8_t *select, const float *out,
                                      int64_t len)
{
    if (!m || ((select || out) && (!select || !out || len < 1)))
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_model_set_head_patch: NULL model, select without out (or out "
                         "without select), or len = %lld < 1", (long long)len);
    free(m->patch_sel);
    m->patch_sel = NULL;
    m->patch_out = NULL;
    m->patch_len = 0;
    if (!select) return HEED_OK;
    size_t count = (size_t)(m->cfg.n_layers * m->cfg.n_heads * len);
    if (!(m->patch_sel = malloc(count)))
        return heed_fail(ctx, HEED_ERR_NOMEM, "heed_model_set_head_patch: out of memory");
    memcpy(m->patch_sel, select, count);
    m->patch_out = out;
    m->patch_len = len;
    return HEED_OK;
}

heed_status heed_model_set_interventions(heed_ctx *ctx, heed_model *m, const heed_intervention *list, int64_t n)
{
    if (!m || n < 0 || (n && !list))
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_model_set_interventions: NULL model or list, or n = %lld < 0",
                         (long long)n);
    static const char *const names[] = {"bos", "act", "var", "steer", "inhibit", "mean"};
    for (int64_t k = 0; k < n; k++) {
        const heed_intervention *iv = &list[k];
        const int span = iv->kind == HEED_EDIT_VAR || iv->kind == HEED_EDIT_STEER;
        const char *why = NULL;
        if (iv->kind < HEED_EDIT_BOS || iv->kind > HEED_EDIT_MEAN) why = "unknown edit kind";
        else if (iv->layer < 0 || iv->layer >= m->cfg.n_layers || iv->head < 0 || iv->head >= m->cfg.n_heads)
            why = "no such layer or head";
        else if (!(iv->amount >= 0.0 && iv->amount <= 1.0)) why = "amount outside [0, 1]";
        else if (iv->kind == HEED_EDIT_ACT && !(iv->threshold >= 0.0 && isfinite(iv->threshold)))
            why = "threshold must be finite and >= 0";
        else if (span && (iv->a < 0 || iv->b <= iv->a)) why = "span [a, b) needs 0 <= a < b";
        else if (iv->kind == HEED_EDIT_VAR && iv->a < 1) why = "VAR moves mass off key 0: its span must start at >= 1";
        for (int64_t e = 0; !why && e < k; e++)
            if (list[e].layer == iv->layer && list[e].head == iv->head) why = "a second edit of the same head";
        if (why)
            return heed_fail(ctx, HEED_ERR_INVALID, "heed_model_set_interventions: entry %lld (%s, layer %lld head %lld): %s",
                             (long long)k, iv->kind >= HEED_EDIT_BOS && iv->kind <= HEED_EDIT_MEAN ? names[iv->kind]
                                                                                                      : "?",
                             (long long)iv->layer, (long long)iv->head, why);
    }
    heed_intervention *copy = NULL;
    double *sum = NULL;
    if (n && (!(copy = malloc(sizeof *copy * (size_t)n)) ||
              !(sum = calloc((size_t)(n * m->cfg.head_dim), sizeof *sum)))) {
        free(copy);
        return heed_fail(ctx, HEED_ERR_NOMEM, "heed_model_set_interventions: out of memory");
    }
    if (n) memcpy(copy, list, sizeof *copy * (size_t)n);
    free(m->iv);
    free(m->iv_recv);
    free(m->iv_sum);
    m->iv = copy;
    m->iv_sum = sum;
    m->n_iv = n;
    m->iv_recv = NULL;
    m->iv_cap = 0;
    m->iv_rows = -1;
    return HEED_OK;
}

heed_status heed_model_cached_values(heed_ctx *ctx, const heed_model *m, float *v, int64_t L, int64_t h, int64_t T)
{
    const heed_config *c = &m->cfg;
    if (!v || L < 0 || L >= c->n_layers || h < 0 || h >= c->n_heads || T < 0 || T > m->n_cached)
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_model_cached_values: layer %lld head %lld T %lld: expected a layer "
                         "< %lld, a head < %lld and T <= %lld cached positions", (long long)L, (long long)h, (long long)T,
                         (long long)c->n_layers, (long long)c->n_heads, (long long)m->n_cached);
    int64_t D = c->head_dim, kv = h / (c->n_heads / c->n_kv_heads);
    memcpy(v, m->vc[L] + kv * m->cap_ctx * D, sizeof(float) * (size_t)(T * D));
    return HEED_OK;
}
