/* test_model.c — the model runtime against transformers on every golden checkpoint of tests/data/models:
 * logits (max abs <= 1e-4), attention probabilities (max abs <= 1e-5), hidden states (max abs <= 1e-4,
 * rows normalised or not: the residual stream is O(1)), and for decoders the greedy continuation
 * decoded one token at a time through the KV cache (ids identical, each step's logits <= 1e-4 of gen_logits),
 * and a prefill in two chunks and a rewind over the cache (logits <= 1e-4 of the one-shot golden rows).
 * f16 and bf16 weights (used in their dtype, widened a block at a time or by the decode kernels) against
 * f32 weights holding the same rounded values: logits and decode steps within 2e-5 (same math, other
 * summation order). Also: a missing tensor and an id outside the vocabulary are clear errors. */
#include "goldens.h"
#include "harness.h"
#include "heed.h"
#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOGIT_TOL 1e-4
#define ATTN_TOL 1e-5
#define HIDDEN_TOL 1e-4

static const char *MODELS[] = {"llama3-old", "llama3-new", "llama-yarn", "llama-linear-sharded", "llama3-bf16",
                               "mistral", "qwen2", "qwen3", "gemma2", "gpt2", "bert"};

static const float *golden_f32(const heed_st *g, const char *name, int64_t n_elems)
{
    const heed_st_tensor *t = heed_st_find(g, name);
    CHECK(t && t->dtype == HEED_ST_F32 && t->n_elems == n_elems, "golden %s: missing or not F32 [%lld]", name,
          (long long)n_elems);
    return t && t->dtype == HEED_ST_F32 && t->n_elems == n_elems ? t->data : NULL;
}

static int64_t argmax(const float *x, int64_t n)
{
    int64_t b = 0;
    for (int64_t i = 1; i < n; i++) b = x[i] > x[b] ? i : b;
    return b;
}

static void test_model(heed_ctx *ctx, const char *name)
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
    int64_t T = 0, nt = 0, ng = 0, V = c->vocab, d = c->hidden, H = c->n_heads, NL = c->n_layers;
    int32_t *ids = golden_ids(g, "input_ids", &T);
    int32_t *types = golden_ids(g, "token_type_ids", &nt);
    int32_t *gen = golden_ids(g, "gen_ids", &ng);
    float *attn[8], *hidden[9];
    for (int64_t L = 0; L < NL; L++) attn[L] = malloc(sizeof(float) * (size_t)(H * T * T));
    for (int64_t L = 0; L <= NL; L++) hidden[L] = malloc(sizeof(float) * (size_t)(T * d));
    float *logits = malloc(sizeof(float) * (size_t)(T * V));
    heed_model_trace tr = {attn, hidden};
    int lm = heed_model_has_lm_head(m);
    CHECK(lm == (c->arch != HEED_ARCH_BERT), "%s: LM head %d", name, lm);
    CHECK_OK(ctx, heed_model_forward(ctx, m, lm ? logits : NULL, &tr, ids, types, T, 0, 0));
    double e_logits = 0, e_attn = 0, e_hidden = 0;
    if (lm) {
        const float *gl = golden_f32(g, "logits", T * V);
        if (gl) e_logits = t_max_abs(logits, gl, T * V);
        CHECK(e_logits <= LOGIT_TOL, "%s: logits max abs %.3g > %g", name, e_logits, LOGIT_TOL);
    }
    for (int64_t L = 0; L < NL; L++) {
        char key[32];
        snprintf(key, sizeof key, "attn.%lld", (long long)L);
        const float *ga = golden_f32(g, key, H * T * T);
        double e = ga ? t_max_abs(attn[L], ga, H * T * T) : 1.0;
        e_attn = e > e_attn ? e : e_attn;
        CHECK(e <= ATTN_TOL, "%s: attn.%lld max abs %.3g > %g", name, (long long)L, e, ATTN_TOL);
    }
    for (int64_t L = 0; L <= NL; L++) {
        char key[32];
        snprintf(key, sizeof key, "hidden.%lld", (long long)L);
        const float *gh = golden_f32(g, key, T * d);
        double e = gh ? t_max_abs(hidden[L], gh, T * d) : 1.0;
        e_hidden = e > e_hidden ? e : e_hidden;
        CHECK(e <= HIDDEN_TOL, "%s: hidden.%lld max abs %.3g > %g", name, (long long)L, e, HIDDEN_TOL);
    }
    double e_gen = 0;
    int same = 1;
    if (lm && gen) {
        /* greedy: prefill, then one token at a time at position T + i from the cache */
        const float *gl = golden_f32(g, "gen_logits", ng * V);
        float *step = malloc(sizeof(float) * (size_t)V);
        CHECK_OK(ctx, heed_model_forward(ctx, m, step, NULL, ids, types, T, 0, HEED_FWD_LAST_LOGITS));
        for (int64_t i = 0; i < ng && gl; i++) {
            double e = t_max_abs(step, gl + i * V, V);
            e_gen = e > e_gen ? e : e_gen;
            int32_t next = (int32_t)argmax(step, V);
            same &= next == gen[i];
            CHECK(next == gen[i], "%s: greedy step %lld picked %d, transformers %d", name, (long long)i, next, gen[i]);
            if (i + 1 < ng) CHECK_OK(ctx, heed_model_forward(ctx, m, step, NULL, &next, NULL, 1, T + i, 0));
        }
        CHECK(e_gen <= LOGIT_TOL, "%s: KV-cache decode logits max abs %.3g > %g", name, e_gen, LOGIT_TOL);
        CHECK(heed_model_n_cached(m) == T + ng - 1, "%s: %lld cached positions", name, (long long)heed_model_n_cached(m));
        free(step);
        /* chunked prefill through the cache (13 then 19 tokens), then a rewind to position 5 over a
         * longer cache: the rows equal the one-shot golden logits */
        const float *glog = golden_f32(g, "logits", T * V);
        CHECK_OK(ctx, heed_model_forward(ctx, m, logits, NULL, ids, NULL, 13, 0, 0));
        CHECK_OK(ctx, heed_model_forward(ctx, m, logits, NULL, ids + 13, NULL, T - 13, 13, 0));
        double e_chunk = glog ? t_max_abs(logits, glog + 13 * V, (T - 13) * V) : 1.0;
        CHECK_OK(ctx, heed_model_forward(ctx, m, logits, NULL, ids + 5, NULL, T - 5, 5, 0));
        double e_rewind = glog ? t_max_abs(logits, glog + 5 * V, (T - 5) * V) : 1.0;
        CHECK(e_chunk <= LOGIT_TOL && e_rewind <= LOGIT_TOL, "%s: chunked prefill %.3g, rewind %.3g > %g", name, e_chunk,
              e_rewind, LOGIT_TOL);
        e_gen = e_chunk > e_gen ? e_chunk : e_gen;
        e_gen = e_rewind > e_gen ? e_rewind : e_gen;
    }
    if (lm) printf("%-22s logits %.2e  attn %.2e  hidden %.2e  cached %.2e  greedy %s\n", name, e_logits, e_attn,
                   e_hidden, e_gen, same ? "identical" : "DIFFERENT");
    else printf("%-22s (no LM head)     attn %.2e  hidden %.2e\n", name, e_attn, e_hidden);
    for (int64_t L = 0; L < NL; L++) free(attn[L]);
    for (int64_t L = 0; L <= NL; L++) free(hidden[L]);
    free(logits);
    free(ids);
    free(types);
    free(gen);
out:
    heed_st_close(g);
    heed_model_free(m);
}

/* Errors: an id outside the vocabulary, a pos past the cache, and a checkpoint missing a tensor. */
static void test_errors(heed_ctx *ctx)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/models/llama3-old", data_dir());
    heed_model *m = NULL;
    CHECK_OK(ctx, heed_model_load(ctx, &m, dir));
    if (!m) return;
    int32_t bad = 320, ok = 5;
    float logits[320];
    CHECK(heed_model_forward(ctx, m, logits, NULL, &bad, NULL, 1, 0, 0) == HEED_ERR_INVALID, "id 320 accepted");
    CHECK(strstr(heed_ctx_error(ctx), "vocabulary") != NULL, "message: %s", heed_ctx_error(ctx));
    CHECK(heed_model_forward(ctx, m, logits, NULL, &ok, NULL, 1, 1, 0) == HEED_ERR_INVALID, "pos past the cache accepted");
    heed_model_free(m);

    /* the same model with one tensor dropped: write its weights less one tensor to a temporary folder */
    char tmp[] = "/tmp/heed_model_XXXXXX";
    if (!mkdtemp(tmp)) return;
    heed_st *st = NULL;
    char path[1100];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK_OK(ctx, heed_st_open(ctx, &st, path));
    if (st) {
        int64_t n = heed_st_count(st), k = 0;
        heed_st_entry *e = calloc((size_t)n, sizeof *e);
        for (int64_t i = 0; i < n; i++) {
            const heed_st_tensor *t = heed_st_at(st, i);
            if (!strcmp(t->name, "model.layers.1.mlp.up_proj.weight")) continue;
            e[k].name = t->name;
            e[k].dtype = (heed_dtype)t->dtype;
            e[k].n_dims = t->n_dims;
            memcpy(e[k].shape, t->shape, sizeof t->shape);
            e[k++].data = t->data;
        }
        snprintf(path, sizeof path, "%s/model.safetensors", tmp);
        CHECK_OK(ctx, heed_st_write(ctx, path, e, k));
        char cmd[2400];
        snprintf(cmd, sizeof cmd, "cp '%s/config.json' '%s/'", dir, tmp);
        CHECK(system(cmd) == 0, "%s", cmd);
        heed_status s = heed_model_load(ctx, &m, tmp);
        CHECK(s == HEED_ERR_FORMAT && m == NULL, "missing tensor: %s", heed_status_name(s));
        CHECK(strstr(heed_ctx_error(ctx), "model.layers.1.mlp.up_proj.weight") != NULL, "message: %s",
              heed_ctx_error(ctx));
        free(e);
        heed_st_close(st);
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        CHECK(system(cmd) == 0, "%s", cmd);
    }
}

/* Writes dir/config.json (copied from src) and dir/model.safetensors with every weight of src rounded to
 * dtype, stored as dtype (store = dtype) or widened back to f32 (store = HEED_F32). */
static void write_rounded(heed_ctx *ctx, const char *dir, const char *src, heed_dtype dtype, heed_dtype store)
{
    char path[1100], cmd[2400];
    snprintf(path, sizeof path, "%s/model.safetensors", src);
    heed_st *st = NULL;
    CHECK_OK(ctx, heed_st_open(ctx, &st, path));
    if (!st) return;
    int64_t n = heed_st_count(st);
    heed_st_entry *e = calloc((size_t)n, sizeof *e);
    void **bufs = calloc((size_t)n, sizeof *bufs);
    for (int64_t i = 0; i < n; i++) {
        const heed_st_tensor *t = heed_st_at(st, i);
        size_t ne = (size_t)t->n_elems;
        uint16_t *r = malloc(2 * ne);
        bufs[i] = malloc(heed_dtype_size(store) * ne);
        heed_convert(r, dtype, t->data, (heed_dtype)t->dtype, ne);
        heed_convert(bufs[i], store, r, dtype, ne);
        free(r);
        e[i] = (heed_st_entry){t->name, store, t->n_dims, {0}, bufs[i]};
        memcpy(e[i].shape, t->shape, sizeof t->shape);
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK_OK(ctx, heed_st_write(ctx, path, e, n));
    snprintf(cmd, sizeof cmd, "cp '%s/config.json' '%s/'", src, dir);
    CHECK(system(cmd) == 0, "%s", cmd);
    for (int64_t i = 0; i < n; i++) free(bufs[i]);
    free(bufs);
    free(e);
    heed_st_close(st);
}

/* Prefill logits [T, V] then `steps` decode steps' logits [V] of greedy continuation, into out. */
static void run_greedy(heed_ctx *ctx, float *out, const char *dir, const int32_t *ids, int64_t T, int64_t steps)
{
    heed_model *m = NULL;
    CHECK_OK(ctx, heed_model_load(ctx, &m, dir));
    if (!m) return;
    int64_t V = heed_model_config(m)->vocab;
    CHECK_OK(ctx, heed_model_forward(ctx, m, out, NULL, ids, NULL, T, 0, 0));
    float *row = out + (T - 1) * V;
    for (int64_t i = 0; i < steps; i++) {
        int32_t next = (int32_t)argmax(row, V);
        row = out + (T + i) * V;
        CHECK_OK(ctx, heed_model_forward(ctx, m, row, NULL, &next, NULL, 1, T + i, 0));
    }
    heed_model_free(m);
}

static void test_half_weights(heed_ctx *ctx, const char *name, heed_dtype dtype)
{
    char src[1024], half[] = "/tmp/heed_half_XXXXXX", wide[] = "/tmp/heed_wide_XXXXXX", cmd[256];
    snprintf(src, sizeof src, "%s/models/%s", data_dir(), name);
    if (!mkdtemp(half) || !mkdtemp(wide)) return;
    write_rounded(ctx, half, src, dtype, dtype);
    write_rounded(ctx, wide, src, dtype, HEED_F32);
    int32_t ids[24];
    t_rng r = {(uint64_t)dtype * 7 + 3};
    for (int i = 0; i < 24; i++) ids[i] = (int32_t)t_int(&r, 3, 319);
    int64_t T = 24, steps = 6, V = 320;
    float *a = calloc((size_t)((T + steps) * V), sizeof *a), *b = calloc((size_t)((T + steps) * V), sizeof *b);
    run_greedy(ctx, a, half, ids, T, steps);
    run_greedy(ctx, b, wide, ids, T, steps);
    double e = t_max_abs(a, b, (T + steps) * V);
    /* the portable path (blocks widened for sgemm, also for decode) against the same f32 values */
    CHECK_OK(ctx, heed_ctx_set_isa(ctx, HEED_ISA_SCALAR));
    run_greedy(ctx, a, half, ids, T, steps);
    CHECK_OK(ctx, heed_ctx_set_isa(ctx, heed_cpu_isa()));
    double e_scalar = t_max_abs(a, b, (T + steps) * V);
    printf("%-22s %s weights vs the same values in f32: logits + decode max abs %.2e (%s), %.2e (scalar)\n", name,
           heed_dtype_name(dtype), e, heed_isa_name(heed_cpu_isa()), e_scalar);
    CHECK(e <= 2e-5, "%s %s: max abs %.3g > 2e-5", name, heed_dtype_name(dtype), e);
    CHECK(e_scalar <= 2e-5, "%s %s scalar: max abs %.3g > 2e-5", name, heed_dtype_name(dtype), e_scalar);
    free(a);
    free(b);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", half, wide);
    CHECK(system(cmd) == 0, "%s", cmd);
}

/* The decode kernel on sizes that leave tails (rows not a multiple of 4, in not a multiple of 8), n = 1..4,
 * against an f64 sum of the same widened values: max abs <= 1e-5 (sums of 37 O(1) products in f32). */
static void test_matvec(void)
{
    if (heed_cpu_isa() < HEED_ISA_AVX2) return;
    enum { OUT = 11, IN = 37, N = MODEL_MATVEC_MAX_N };
    t_rng r = {99};
    float x[N * IN], wf[OUT * IN], y[N * OUT], ref[N * OUT];
    uint16_t w[OUT * IN];
    t_fill_normal(&r, x, N * IN, 1.0f);
    t_fill_normal(&r, wf, OUT * IN, 1.0f);
    heed_dtype types[2] = {HEED_F16, HEED_BF16};
    for (int k = 0; k < 2; k++)
        for (int64_t n = 1; n <= N; n++) {
            heed_convert(w, types[k], wf, HEED_F32, OUT * IN);
            heed_convert(wf, HEED_F32, w, types[k], OUT * IN);
            for (int64_t i = 0; i < N * OUT; i++) y[i] = ref[i] = -1.0f; /* row 0 is outside [1, OUT): untouched */
            for (int64_t t = 0; t < n; t++)
                for (int64_t j = 1; j < OUT; j++) {
                    double s = 0;
                    for (int64_t i = 0; i < IN; i++) s += (double)x[t * IN + i] * wf[j * IN + i];
                    ref[t * OUT + j] = (float)s;
                }
            model_matvec_avx2(y, OUT, x, w, types[k], n, IN, 1, OUT);
            double e = t_max_abs(y, ref, N * OUT);
            CHECK(e <= 1e-5, "matvec %s n=%lld: max abs %.3g", heed_dtype_name(types[k]), (long long)n, e);
        }
}

/* gemma2 multiplies the embeddings by sqrt(hidden) as a tensor of the model dtype: with bf16 weights and
 * hidden 72 the factor is bf16(8.485...) = 8.5. A one-layer random gemma2 of hidden 72 written here. */
static void test_embed_scale_dtype(heed_ctx *ctx)
{
    enum { D = 72, V = 16, F = 32, HD = 8 };
    char dir[] = "/tmp/heed_gemma_XXXXXX", path[256], cmd[256];
    if (!mkdtemp(dir)) return;
    static const struct { const char *name; int64_t r, c; } T[] = {
        {"model.embed_tokens.weight", V, D}, {"model.norm.weight", D, 0},
        {"model.layers.0.input_layernorm.weight", D, 0}, {"model.layers.0.post_attention_layernorm.weight", D, 0},
        {"model.layers.0.pre_feedforward_layernorm.weight", D, 0},
        {"model.layers.0.post_feedforward_layernorm.weight", D, 0},
        {"model.layers.0.self_attn.q_proj.weight", 2 * HD, D}, {"model.layers.0.self_attn.k_proj.weight", HD, D},
        {"model.layers.0.self_attn.v_proj.weight", HD, D}, {"model.layers.0.self_attn.o_proj.weight", D, 2 * HD},
        {"model.layers.0.mlp.gate_proj.weight", F, D}, {"model.layers.0.mlp.up_proj.weight", F, D},
        {"model.layers.0.mlp.down_proj.weight", D, F}};
    enum { NT = sizeof T / sizeof T[0] };
    heed_st_entry e[NT];
    uint16_t *bufs[NT];
    float tmp[F * D]; /* the largest tensor */
    t_rng r = {5};
    for (int i = 0; i < NT; i++) {
        int64_t n = T[i].r * (T[i].c ? T[i].c : 1);
        t_fill_normal(&r, tmp, n, 0.2f);
        bufs[i] = malloc(2 * (size_t)n);
        heed_convert(bufs[i], HEED_BF16, tmp, HEED_F32, (size_t)n);
        e[i] = (heed_st_entry){T[i].name, HEED_BF16, T[i].c ? 2 : 1, {T[i].r, T[i].c}, bufs[i]};
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK_OK(ctx, heed_st_write(ctx, path, e, NT));
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "{\"model_type\": \"gemma2\", \"hidden_size\": %d, \"intermediate_size\": %d, "
                   "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"num_key_value_heads\": 1, "
                   "\"head_dim\": %d, \"vocab_size\": %d, \"sliding_window\": 4, \"query_pre_attn_scalar\": 8}",
                D, F, HD, V);
        fclose(f);
    }
    heed_model *m = NULL;
    CHECK_OK(ctx, heed_model_load(ctx, &m, dir));
    if (m) {
        int32_t ids[3] = {3, 7, 11};
        float h0[3 * D], want[3 * D], logits[3 * V];
        float *hidden[2] = {h0, NULL};
        heed_model_trace tr = {NULL, hidden};
        CHECK_OK(ctx, heed_model_forward(ctx, m, logits, &tr, ids, NULL, 3, 0, 0));
        for (int t = 0; t < 3; t++) heed_convert(want + t * D, HEED_F32, bufs[0] + ids[t] * D, HEED_BF16, D);
        for (int i = 0; i < 3 * D; i++) want[i] *= 8.5f;
        CHECK(t_max_abs(h0, want, 3 * D) == 0.0, "gemma2 bf16 embedding scale: max abs %.3g from x 8.5",
              t_max_abs(h0, want, 3 * D));
        heed_model_free(m);
    }
    for (int i = 0; i < NT; i++) free(bufs[i]);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "%s", cmd);
}

int main(void)
{
    heed_ctx *ctx = NULL;
    CHECK_OK(NULL, heed_ctx_create(&ctx, 2));
    if (!ctx) return t_done("test_model");
    for (size_t i = 0; i < sizeof MODELS / sizeof MODELS[0]; i++) test_model(ctx, MODELS[i]);
    test_errors(ctx);
    test_matvec();
    test_embed_scale_dtype(ctx);
    test_half_weights(ctx, "llama3-old", HEED_F16);
    test_half_weights(ctx, "qwen3", HEED_BF16);
    test_half_weights(ctx, "gpt2", HEED_F16);   /* Conv1D layout */
    test_half_weights(ctx, "gpt2", HEED_BF16);
    heed_ctx_free(ctx);
    return t_done("test_model");
}
