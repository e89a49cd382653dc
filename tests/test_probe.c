/* test_probe.c — observation of attention heads in the model runtime (heed_model_set_probe) against the
 * transformers goldens of tests/data/models: captured probabilities (max abs <= 1e-5), the logits they
 * come from, the streaming statistics (entropy, top-1, received attention, also accumulated over a decode
 * step) against the same statistics of the golden maps, residual norms against the golden hidden states,
 * and on llama3-old q/k/v norms and head outputs against a by-hand recomputation from the weights.
 * Also: unselected heads are untouched, head ablation (heed_model_set_head_scale) and the logit lens. */
#include "goldens.h"
#include "harness.h"
#include "heed.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ATTN_TOL 1e-5
#define STAT_TOL 1e-4

static const char *MODELS[] = {"llama3-old", "mistral", "qwen2", "gemma2", "gpt2", "bert"};

static const float *golden(const heed_st *g, const char *fmt, int64_t L, int64_t n_elems)
{
    char name[64];
    snprintf(name, sizeof name, fmt, (long long)L);
    const heed_st_tensor *t = heed_st_find(g, name);
    int ok = t && t->dtype == HEED_ST_F32 && t->n_elems == n_elems;
    CHECK(ok, "golden %s: missing or not F32 [%lld]", name, (long long)n_elems);
    return ok ? t->data : NULL;
}

/* A weight of the checkpoint as f32 [n_elems] (malloc'd), NULL when absent. */
static float *weight(const heed_st *st, const char *fmt, int64_t L)
{
    char name[128];
    snprintf(name, sizeof name, fmt, (long long)L);
    const heed_st_tensor *t = heed_st_find(st, name);
    CHECK(t != NULL, "weight %s missing", name);
    if (!t) return NULL;
    float *w = malloc(sizeof(float) * (size_t)t->n_elems);
    heed_convert(w, HEED_F32, t->data, (heed_dtype)t->dtype, (size_t)t->n_elems);
    return w;
}

static double norm2(const float *x, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return sqrt(s);
}

/* llama3-old: q, k, v of layer L recomputed from the golden input hidden state and the weights (RMSNorm,
 * projections; RoPE keeps norms), against the captured norms; head outputs against P V. */
static void check_llama_states(heed_model *m, const heed_st *g, const heed_probe *pr, int64_t T)
{
    const heed_config *c = heed_model_config(m);
    int64_t d = c->hidden, D = c->head_dim, H = c->n_heads, Hk = c->n_kv_heads, group = H / Hk;
    char path[1100];
    snprintf(path, sizeof path, "%s/models/llama3-old/model.safetensors", data_dir());
    heed_st *st = NULL;
    heed_ctx *ctx = NULL;
    if (heed_ctx_create(&ctx, 1) != HEED_OK || heed_st_open(ctx, &st, path) != HEED_OK) {
        CHECK(0, "open %s", path);
        heed_ctx_free(ctx);
        return;
    }
    double e_norm = 0, e_out = 0;
    for (int64_t L = 0; L < c->n_layers; L++) {
        const float *x = golden(g, "hidden.%lld", L, T * d);
        float *ln = weight(st, "model.layers.%lld.input_layernorm.weight", L);
        float *wq = weight(st, "model.layers.%lld.self_attn.q_proj.weight", L);
        float *wk = weight(st, "model.layers.%lld.self_attn.k_proj.weight", L);
        float *wv = weight(st, "model.layers.%lld.self_attn.v_proj.weight", L);
        float *xn = malloc(sizeof(float) * (size_t)d), *v = malloc(sizeof(float) * (size_t)(T * Hk * D));
        float row[64];
        for (int64_t t = 0; x && ln && wq && wk && wv && t < T; t++) {
            double ss = 0;
            for (int64_t i = 0; i < d; i++) ss += (double)x[t * d + i] * x[t * d + i];
            for (int64_t i = 0; i < d; i++) xn[i] = (float)(x[t * d + i] / sqrt(ss / (double)d + c->norm_eps)) * ln[i];
            const float *ws[3] = {wq, wk, wv};
            for (int which = 0; which < 3; which++) {
                int64_t nh = which ? Hk : H;
                for (int64_t h = 0; h < nh; h++) {
                    for (int64_t i = 0; i < D; i++) {
                        double a = 0;
                        for (int64_t k = 0; k < d; k++) a += (double)ws[which][(h * D + i) * d + k] * xn[k];
                        row[i] = (float)a;
                    }
                    if (which == 2) memcpy(v + (t * Hk + h) * D, row, sizeof(float) * (size_t)D);
                    float *cap = which == 0 ? pr->q_norm : which == 1 ? pr->k_norm : pr->v_norm;
                    for (int64_t hq = 0; hq < H; hq++) { /* the query heads that read this head */
                        if ((which ? hq / group : hq) != h || !pr->select[L * H + hq]) continue;
                        double e = fabs(cap[(L * H + hq) * T + t] - norm2(row, D));
                        e_norm = e > e_norm ? e : e_norm;
                    }
                }
            }
        }
        for (int64_t h = 0; h < H; h++) { /* head output = P V */
            if (!pr->select[L * H + h] || !pr->probs[L * H + h]) continue;
            for (int64_t t = 0; t < T; t++)
                for (int64_t i = 0; i < D; i++) {
                    double a = 0;
                    for (int64_t j = 0; j < T; j++) a += (double)pr->probs[L * H + h][t * T + j] * v[(j * Hk + h / group) * D + i];
                    double e = fabs(pr->head_out[((L * H + h) * T + t) * D + i] - a);
                    e_out = e > e_out ? e : e_out;
                }
        }
        free(ln), free(wq), free(wk), free(wv), free(xn), free(v);
    }
    CHECK(e_norm <= STAT_TOL, "llama3-old: q/k/v norms max abs %.3g", e_norm);
    CHECK(e_out <= STAT_TOL, "llama3-old: head outputs vs P V max abs %.3g", e_out);
    printf("llama3-old q/k/v norms %.2e  head outputs %.2e\n", e_norm, e_out);
    heed_st_close(st);
    heed_ctx_free(ctx);
}

/* Every other head selected (the first and last always): the captured maps and statistics of the
 * selected heads against the goldens; the others untouched. */
static void test_capture(heed_ctx *ctx, const char *name)
{
    char dir[1024], gpath[1100];
    snprintf(dir, sizeof dir, "%s/models/%s", data_dir(), name);
    snprintf(gpath, sizeof gpath, "%s/golden.safetensors", dir);
    heed_model *m = NULL;
    heed_st *g = NULL;
    CHECK_OK(ctx, heed_model_load(ctx, &m, dir));
    CHECK_OK(ctx, heed_st_open(ctx, &g, gpath));
    if (!m || !g) goto out;
    const heed_config *c = heed_model_config(m);
    int64_t T = 0, nt = 0, NL = c->n_layers, H = c->n_heads, D = c->head_dim, d = c->hidden, S = NL * H;
    int32_t *ids = golden_ids(g, "input_ids", &T);
    int32_t *types = golden_ids(g, "token_type_ids", &nt);
    uint8_t *sel = calloc((size_t)S, 1);
    float **probs = calloc((size_t)S, sizeof *probs), **scores = calloc((size_t)S, sizeof *scores);
    for (int64_t i = 0; i < S; i++) {
        sel[i] = i % 2 == 0 || i == S - 1;
        if (sel[i]) probs[i] = malloc(sizeof(float) * (size_t)(T * T)), scores[i] = malloc(sizeof(float) * (size_t)(T * T));
    }
    size_t per = sizeof(float) * (size_t)(S * T);
    float *qn = malloc(per), *kn = malloc(per), *vn = malloc(per), *lse = malloc(per), *ent = malloc(per);
    float *recv = calloc((size_t)(S * T), sizeof(float)), *out = malloc(per * (size_t)D);
    float *rn = malloc(sizeof(float) * (size_t)((NL + 1) * T));
    int32_t *top1 = malloc(sizeof(int32_t) * (size_t)(S * T));
    for (int64_t i = 0; i < S * T; i++) ent[i] = -1.0f, top1[i] = -7;
    heed_probe pr = {sel, probs, scores, out, qn, kn, vn, lse, ent, top1, recv, T, rn};
    CHECK_OK(ctx, heed_model_set_probe(ctx, m, &pr));
    CHECK_OK(ctx, heed_model_forward(ctx, m, NULL, NULL, ids, types, T, 0, 0));
    double e_p = 0, e_s = 0, e_ent = 0, e_recv = 0, e_top = 0, e_rn = 0;
    int untouched = 1;
    for (int64_t L = 0; L < NL; L++) {
        const float *ga = golden(g, "attn.%lld", L, H * T * T);
        for (int64_t h = 0; ga && h < H; h++) {
            int64_t slot = L * H + h;
            if (!sel[slot]) {
                for (int64_t t = 0; t < T; t++) untouched &= ent[slot * T + t] == -1.0f && top1[slot * T + t] == -7 && recv[slot * T + t] == 0.0f;
                continue;
            }
            const float *A = ga + h * T * T;
            e_p = fmax(e_p, t_max_abs(probs[slot], A, T * T));
            for (int64_t t = 0; t < T; t++) {
                double ent_ref = 0, best = -1;
                for (int64_t j = 0; j < T; j++) {
                    double p = A[t * T + j], s = scores[slot][t * T + j];
                    /* p = exp(s - lse), masked keys -inf */
                    double pe = s == -INFINITY ? 0.0 : exp(s - lse[slot * T + t]);
                    e_s = fmax(e_s, fabs(pe - p));
                    if (p > 0) ent_ref -= p * log(p);
                    best = p > best ? p : best;
                }
                e_ent = fmax(e_ent, fabs(ent[slot * T + t] - ent_ref));
                int32_t k = top1[slot * T + t];
                e_top = fmax(e_top, k >= 0 && k < T ? best - A[t * T + k] : 1.0); /* 0 unless a near tie */
            }
            for (int64_t j = 0; j < T; j++) {
                double col = 0;
                for (int64_t t = 0; t < T; t++) col += A[t * T + j];
                e_recv = fmax(e_recv, fabs(recv[slot * T + j] - col));
            }
        }
    }
    for (int64_t L = 0; L <= NL; L++) { /* golden hidden.NL is after the final norm, when there is one */
        if (L == NL && c->arch != HEED_ARCH_BERT) continue;
        const float *gh = golden(g, "hidden.%lld", L, T * d);
        for (int64_t t = 0; gh && t < T; t++)
            e_rn = fmax(e_rn, fabs(rn[L * T + t] - norm2(gh + t * d, d)) / norm2(gh + t * d, d));
    }
    CHECK(e_p <= ATTN_TOL, "%s: captured probabilities max abs %.3g", name, e_p);
    CHECK(e_s <= ATTN_TOL, "%s: exp(scores - lse) max abs %.3g", name, e_s);
    CHECK(e_ent <= STAT_TOL && e_recv <= STAT_TOL && e_top <= 1e-5, "%s: entropy %.3g, recv %.3g, top1 %.3g", name,
          e_ent, e_recv, e_top);
    CHECK(e_rn <= STAT_TOL, "%s: residual norms relative %.3g", name, e_rn);
    CHECK(untouched, "%s: an unselected head's slots were written", name);
    printf("%-12s probs %.2e  scores %.2e  entropy %.2e  recv %.2e  resid %.2e\n", name, e_p, e_s, e_ent, e_recv, e_rn);
    if (!strcmp(name, "llama3-old")) check_llama_states(m, g, &pr, T);

    if (c->causal) {
        /* received attention accumulated over a prefill of T - 1 tokens and one decode step = the golden
         * column sums; a recv_len below pos + n is an error */
        memset(recv, 0, per);
        CHECK_OK(ctx, heed_model_forward(ctx, m, NULL, NULL, ids, NULL, T - 1, 0, 0));
        pr.recv_len = T - 1;
        CHECK_OK(ctx, heed_model_set_probe(ctx, m, &pr));
        CHECK(heed_model_forward(ctx, m, NULL, NULL, ids + T - 1, NULL, 1, T - 1, 0) == HEED_ERR_INVALID,
              "%s: recv_len T-1 accepted for T keys", name);
        pr.recv_len = T;
        pr.probs = pr.scores = NULL; /* decode rows are [1, T]: no maps this time */
        CHECK_OK(ctx, heed_model_set_probe(ctx, m, &pr));
        CHECK_OK(ctx, heed_model_forward(ctx, m, NULL, NULL, ids + T - 1, NULL, 1, T - 1, 0));
        double e_dec = 0;
        for (int64_t L = 0; L < NL; L++) {
            const float *ga = golden(g, "attn.%lld", L, H * T * T);
            for (int64_t h = 0; ga && h < H; h++)
                for (int64_t j = 0; sel[L * H + h] && j < T; j++) {
                    double col = 0;
                    for (int64_t t = 0; t < T; t++) col += ga[(h * T + t) * T + j];
                    e_dec = fmax(e_dec, fabs(recv[(L * H + h) * T + j] - col));
                }
        }
        CHECK(e_dec <= STAT_TOL, "%s: recv over prefill + decode max abs %.3g", name, e_dec);
    }
    CHECK_OK(ctx, heed_model_set_probe(ctx, m, NULL));
    for (int64_t i = 0; i < S; i++) free(probs[i]), free(scores[i]);
    free(probs), free(scores), free(sel), free(qn), free(kn), free(vn), free(lse), free(ent), free(recv), free(out);
    free(rn), free(top1), free(ids), free(types);
out:
    heed_st_close(g);
    heed_model_free(m);
}

/* Head scale 0 zeroes that head's output and changes the logits; 1 everywhere and NULL give the logits
 * of the plain model bit for bit; a non-finite scale is an error. */
static void test_head_scale(heed_ctx *ctx)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/models/llama3-old", data_dir());
    heed_model *m = NULL;
    CHECK_OK(ctx, heed_model_load(ctx, &m, dir));
    if (!m) return;
    const heed_config *c = heed_model_config(m);
    int64_t T = 12, V = c->vocab, S = c->n_layers * c->n_heads, D = c->head_dim;
    int32_t ids[12] = {1, 17, 230, 5, 99, 42, 7, 300, 12, 64, 8, 150};
    float *ref = malloc(sizeof(float) * (size_t)(T * V)), *lg = malloc(sizeof(float) * (size_t)(T * V));
    float *scale = malloc(sizeof(float) * (size_t)S), *out = malloc(sizeof(float) * (size_t)(S * T * D));
    CHECK_OK(ctx, heed_model_forward(ctx, m, ref, NULL, ids, NULL, T, 0, 0));
    for (int64_t i = 0; i < S; i++) scale[i] = 1.0f;
    CHECK_OK(ctx, heed_model_set_head_scale(ctx, m, scale));
    CHECK_OK(ctx, heed_model_forward(ctx, m, lg, NULL, ids, NULL, T, 0, 0));
    CHECK(!memcmp(lg, ref, sizeof(float) * (size_t)(T * V)), "scale 1 changed the logits");
    scale[c->n_heads + 1] = 0.0f; /* layer 1, head 1 */
    CHECK_OK(ctx, heed_model_set_head_scale(ctx, m, scale));
    heed_probe pr = {0};
    pr.head_out = out;
    CHECK_OK(ctx, heed_model_set_probe(ctx, m, &pr));
    CHECK_OK(ctx, heed_model_forward(ctx, m, lg, NULL, ids, NULL, T, 0, 0));
    CHECK_OK(ctx, heed_model_set_probe(ctx, m, NULL));
    double zero = 0, other = 0;
    for (int64_t i = 0; i < T * D; i++) {
        zero = fmax(zero, fabs(out[(c->n_heads + 1) * T * D + i]));
        other = fmax(other, fabs(out[c->n_heads * T * D + i]));
    }
    CHECK(zero == 0.0 && other > 0.0, "ablated head output max %g, a kept head %g", zero, other);
    CHECK(t_max_abs(lg, ref, T * V) > 1e-4, "ablating a head left the logits within %g", t_max_abs(lg, ref, T * V));
    CHECK_OK(ctx, heed_model_set_head_scale(ctx, m, NULL));
    CHECK_OK(ctx, heed_model_forward(ctx, m, lg, NULL, ids, NULL, T, 0, 0));
    CHECK(!memcmp(lg, ref, sizeof(float) * (size_t)(T * V)), "NULL scale did not restore the logits");
    scale[0] = NAN;
    CHECK(heed_model_set_head_scale(ctx, m, scale) == HEED_ERR_INVALID, "NaN scale accepted");
    free(ref), free(lg), free(scale), free(out);
    heed_model_free(m);
}

/* The logit lens: unembed of gpt2's golden hidden.1 (the residual stream after layer 0) against its final
 * LayerNorm and tied unembedding computed by hand; an encoder without an LM head is an error. */
static void test_unembed(heed_ctx *ctx)
{
    char dir[1024], gpath[1100];
    snprintf(dir, sizeof dir, "%s/models/gpt2", data_dir());
    snprintf(gpath, sizeof gpath, "%s/golden.safetensors", dir);
    heed_model *m = NULL;
    heed_st *g = NULL;
    CHECK_OK(ctx, heed_model_load(ctx, &m, dir));
    CHECK_OK(ctx, heed_st_open(ctx, &g, gpath));
    if (m && g) {
        const heed_config *c = heed_model_config(m);
        int64_t T = 0, V = c->vocab, d = c->hidden;
        int32_t *ids = golden_ids(g, "input_ids", &T);
        float *lens = malloc(sizeof(float) * (size_t)(T * V)), *xn = malloc(sizeof(float) * (size_t)d);
        const float *x = golden(g, "hidden.%lld", 1, T * d);
        heed_st *st = NULL;
        char path[1100];
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        CHECK_OK(ctx, heed_st_open(ctx, &st, path));
        float *lw = st ? weight(st, "transformer.ln_f.weight", 0) : NULL, *lb = st ? weight(st, "transformer.ln_f.bias", 0) : NULL;
        float *E = st ? weight(st, "transformer.wte.weight", 0) : NULL;
        if (x && lw && lb && E && ids) {
            CHECK_OK(ctx, heed_model_unembed(ctx, m, lens, x, T));
            double e = 0;
            for (int64_t t = 0; t < T; t++) {
                double mean = 0, var = 0;
                for (int64_t i = 0; i < d; i++) mean += x[t * d + i];
                mean /= (double)d;
                for (int64_t i = 0; i < d; i++) var += (x[t * d + i] - mean) * (x[t * d + i] - mean);
                for (int64_t i = 0; i < d; i++)
                    xn[i] = (float)((x[t * d + i] - mean) / sqrt(var / (double)d + c->norm_eps) * lw[i] + lb[i]);
                for (int64_t v = 0; v < V; v++) {
                    double a = 0;
                    for (int64_t i = 0; i < d; i++) a += (double)E[v * d + i] * xn[i];
                    e = fmax(e, fabs(lens[t * V + v] - a));
                }
            }
            CHECK(e <= 1e-4, "gpt2: logit lens of hidden.1 max abs %.3g", e);
            printf("gpt2 logit lens of hidden.1 vs by hand: %.2e\n", e);
        }
        free(lw), free(lb), free(E), free(ids), free(lens), free(xn);
        heed_st_close(st);
    }
    heed_st_close(g);
    heed_model_free(m);
    snprintf(dir, sizeof dir, "%s/models/bert", data_dir());
    CHECK_OK(ctx, heed_model_load(ctx, &m, dir));
    float x[1024] = {0}, lg[1];
    if (m) CHECK(heed_model_unembed(ctx, m, lg, x, 1) == HEED_ERR_UNSUPPORTED, "bert unembed accepted");
    heed_model_free(m);
}

int main(void)
{
    heed_ctx *ctx = NULL;
    if (heed_ctx_create(&ctx, 2) != HEED_OK) return 1;
    for (size_t i = 0; i < sizeof MODELS / sizeof MODELS[0]; i++) test_capture(ctx, MODELS[i]);
    test_head_scale(ctx);
    test_unembed(ctx);
    heed_ctx_free(ctx);
    return t_done("test_probe");
}
