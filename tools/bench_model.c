/* bench_model.c — `heed bench model`: prefill and decode speed of the model runtime on a random
 * Llama-architecture checkpoint written to a temporary directory (f32 and bf16 weights) or on a model
 * given with -m, against this machine's sgemm peak (prefill) and read bandwidth (decode). */
#include "bench_peak.h"
#include "cli_util.h"
#include "commands.h"
#include "heed.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The random model's shape; head_dim is hidden / heads. */
typedef struct model_shape {
    int64_t hidden, layers, heads, kv_heads, inter, vocab;
} model_shape;

static const model_shape full_shape = {2048, 6, 16, 4, 5632, 32000};   /* ~400M params */
static const model_shape quick_shape = {512, 2, 8, 2, 1408, 4096};     /* ~10M params */

typedef struct bench_opts {
    int json, quick, n_threads;
    const char *model;
    int64_t prompt, n_decode;
} bench_opts;

/* What the checkpoint holds, counted from its tensors. */
typedef struct weight_count {
    int64_t params;        /* every tensor */
    int64_t matmul_params; /* weights multiplied per token: all but the lookup tables (a tied embedding
                              counts, the LM head reads it whole) */
    double decode_bytes;   /* bytes of weights read per decoded token: matmul weights, norms, one row of
                              each lookup table */
    heed_st_dtype dtype;   /* the dtype of the largest tensor */
} weight_count;

/* 1: a token embedding (the LM head when tied), 2: another lookup table, 0: a weight read whole. */
static int lookup_kind(const char *name)
{
    static const char *const tails[] = {"embed_tokens.weight", "wte.weight", "wpe.weight",
                                        "word_embeddings.weight", "position_embeddings.weight",
                                        "token_type_embeddings.weight"};
    const size_t n = strlen(name);
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
        const size_t k = strlen(tails[i]);
        if (n >= k && !strcmp(name + n - k, tails[i])) return i < 2 ? 1 : 2;
    }
    return 0;
}

static int count_weights(weight_count *w, heed_ctx *ctx, const char *dir, int tied)
{
    heed_st *st = NULL;
    if (heed_st_open(ctx, &st, dir) != HEED_OK) return 0;
    *w = (weight_count){0};
    int64_t largest = -1;
    for (int64_t i = 0; i < heed_st_count(st); i++) {
        const heed_st_tensor *t = heed_st_at(st, i);
        w->params += t->n_elems;
        const int kind = lookup_kind(t->name);
        if (kind == 2 || (kind == 1 && !tied)) {
            w->decode_bytes += t->n_dims == 2 ? (double)t->n_bytes / (double)t->shape[0] : 0.0;
        } else {
            w->decode_bytes += (double)t->n_bytes;
            if (t->n_dims >= 2) w->matmul_params += t->n_elems;
        }
        if (t->n_elems > largest) largest = t->n_elems, w->dtype = t->dtype;
    }
    heed_st_close(st);
    return 1;
}

/* path = dir/file; 0 when it does not fit. */
static int dir_file(char *path, size_t size, const char *dir, const char *file)
{
    const int n = snprintf(path, size, "%s/%s", dir, file);
    return n >= 0 && (size_t)n < size;
}

/* xorshift64*: uniform in [-a, a]. */
static float uniform(uint64_t *s, float a)
{
    *s ^= *s >> 12, *s ^= *s << 25, *s ^= *s >> 27;
    return a * ((float)((*s * 2685821657736338717ull) >> 40) * (2.0f / 16777216.0f) - 1.0f);
}

/* Writes a random llama checkpoint of shape sh with weights of dtype dt into dir (config.json and
 * model.safetensors). Weights are uniform with scale 1/sqrt(fan-in), norms 1, so activations stay O(1). */
static int write_random_model(heed_ctx *ctx, const char *dir, const model_shape *sh, heed_dtype dt)
{
    const int64_t D = sh->hidden, HD = sh->hidden / sh->heads, KV = sh->kv_heads * HD;
    enum { PER_LAYER = 9 };
    const int64_t n_t = 3 + PER_LAYER * sh->layers;
    heed_st_entry *e = calloc((size_t)n_t, sizeof *e);
    char (*names)[96] = calloc((size_t)n_t, sizeof *names);
    void **bufs = calloc((size_t)n_t, sizeof *bufs);
    int ok = e && names && bufs;
    static const char *const lnames[PER_LAYER] = {
        "input_layernorm", "post_attention_layernorm", "self_attn.q_proj", "self_attn.k_proj",
        "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
    const int64_t lshape[PER_LAYER][2] = {{D, 0}, {D, 0}, {D, D}, {KV, D}, {KV, D}, {D, D},
                                          {sh->inter, D}, {sh->inter, D}, {D, sh->inter}};
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int64_t i = 0; i < n_t && ok; i++) {
        int64_t r, c;
        if (i == 0) snprintf(names[i], sizeof names[i], "model.embed_tokens.weight"), r = sh->vocab, c = D;
        else if (i == 1) snprintf(names[i], sizeof names[i], "model.norm.weight"), r = D, c = 0;
        else if (i == 2) snprintf(names[i], sizeof names[i], "lm_head.weight"), r = sh->vocab, c = D;
        else {
            const int64_t l = (i - 3) / PER_LAYER, k = (i - 3) % PER_LAYER;
            snprintf(names[i], sizeof names[i], "model.layers.%lld.%s.weight", (long long)l, lnames[k]);
            r = lshape[k][0], c = lshape[k][1];
        }
        const size_t n = (size_t)(r * (c ? c : 1));
        float *f = malloc(n * sizeof(float));
        bufs[i] = dt == HEED_F32 ? (void *)f : malloc(n * 2);
        if (!f || !bufs[i]) {
            if (bufs[i] != f) free(f);
            ok = 0;
            break;
        }
        const float a = c ? 1.0f / sqrtf((float)c) : 0.0f;
        for (size_t j = 0; j < n; j++) f[j] = c ? uniform(&seed, a) : 1.0f;
        if (dt != HEED_F32) heed_convert(bufs[i], dt, f, HEED_F32, n), free(f);
        e[i] = (heed_st_entry){names[i], dt, c ? 2 : 1, {r, c}, bufs[i]};
    }
    char path[4096];
    if (!ok) {
        fprintf(stderr, "heed bench model: out of memory building the random model\n");
    } else if (!dir_file(path, sizeof path, dir, "model.safetensors")) {
        fprintf(stderr, "heed bench model: temporary path too long: %s\n", dir);
        ok = 0;
    } else if (heed_st_write(ctx, path, e, n_t) != HEED_OK) {
        fprintf(stderr, "heed bench model: %s\n", heed_ctx_error(ctx));
        ok = 0;
    }
    for (int64_t i = 0; bufs && i < n_t; i++) free(bufs[i]);
    free(e), free(names), free(bufs);
    FILE *f = ok && dir_file(path, sizeof path, dir, "config.json") ? fopen(path, "w") : NULL;
    if (!f) return 0;
    fprintf(f, "{\"model_type\": \"llama\", \"hidden_size\": %lld, \"intermediate_size\": %lld, "
               "\"num_hidden_layers\": %lld, \"num_attention_heads\": %lld, \"num_key_value_heads\": %lld, "
               "\"vocab_size\": %lld, \"max_position_embeddings\": 4096, \"rms_norm_eps\": 1e-5, "
               "\"rope_theta\": 10000.0, \"tie_word_embeddings\": false}\n",
            (long long)D, (long long)sh->inter, (long long)sh->layers, (long long)sh->heads,
            (long long)sh->kv_heads, (long long)sh->vocab);
    return fclose(f) == 0;
}

static void remove_dir(const char *dir)
{
    char path[4096];
    if (dir_file(path, sizeof path, dir, "model.safetensors")) unlink(path);
    if (dir_file(path, sizeof path, dir, "config.json")) unlink(path);
    rmdir(dir);
}

typedef struct peaks {
    double sgemm_gflops, read_gbps;
} peaks;

/* One line of output; ratios are taken at print time against the final peaks. */
typedef struct result {
    const char *name;     /* prefill | decode */
    const char *dtype;    /* of the largest tensor */
    int64_t params, tokens;
    double tok_s, gflops, gbps;
    double stream_gbps, paired; /* decode: the streaming reads paired with the steps (their median GB/s,
                                 * and the median of read time / step time); 0 for prefill */
} result;

/* Both peaks, keeping the best of this and earlier measurements. 0 when memory ran out. */
static int measure_peaks(peaks *p, heed_ctx *ctx, int quick)
{
    const double g = bench_sgemm_peak_gflops(heed_ctx_n_threads(ctx), quick ? 0.05 : 0.3);
    const double b = bench_read_bw_gbps(ctx, (size_t)(quick ? 64 : 1024) << 20, quick ? 3 : 10);
    if (g <= 0 || b <= 0) {
        fprintf(stderr, "heed bench model: out of memory measuring the machine's peaks\n");
        return 0;
    }
    p->sgemm_gflops = g > p->sgemm_gflops ? g : p->sgemm_gflops;
    p->read_gbps = b > p->read_gbps ? b : p->read_gbps;
    return 1;
}

static void print_case(const result *r, const peaks *p, int json)
{
    const double peak_ratio = r->gflops / p->sgemm_gflops, bw_ratio = r->gbps / p->read_gbps;
    if (json) {
        printf("{\"case\": \"%s\", \"dtype\": \"%s\", \"params\": %lld, \"tokens\": %lld, \"tok_per_s\": %.3f, "
               "\"gflops\": %.2f, \"sgemm_peak_gflops\": %.2f, \"peak_ratio\": %.4f, \"gbps\": %.3f, "
               "\"read_bw_gbps\": %.3f, \"bw_ratio\": %.4f",
               r->name, r->dtype, (long long)r->params, (long long)r->tokens, r->tok_s, r->gflops,
               p->sgemm_gflops, peak_ratio, r->gbps, p->read_gbps, bw_ratio);
        if (r->paired > 0) printf(", \"stream_gbps\": %.3f, \"paired_bw_ratio\": %.4f", r->stream_gbps, r->paired);
        printf("}\n");
    } else {
        printf("%-8s %-5s %8.1fM %6lld %10.2f %9.1f %6.1f%% %8.2f %6.1f%%", r->name, r->dtype,
               (double)r->params * 1e-6, (long long)r->tokens, r->tok_s, r->gflops, 100 * peak_ratio, r->gbps,
               100 * bw_ratio);
        if (r->paired > 0) printf(" %6.1f%%", 100 * r->paired);
        printf("\n");
    }
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Loads dir and times a prefill of o->prompt tokens, then o->n_decode single-token steps after it;
 * appends two results to out and adds 2 to *n_out. */
static int bench_dir(result *out, int *n_out, heed_ctx *ctx, const char *dir, const bench_opts *o)
{
    heed_model *m = NULL;
    weight_count w;
    if (heed_model_load(ctx, &m, dir) != HEED_OK ||
        !count_weights(&w, ctx, dir, heed_model_config(m)->tie_embeddings)) {
        fprintf(stderr, "heed bench model: %s\n", heed_ctx_error(ctx));
        heed_model_free(m);
        return 1;
    }
    const heed_config *c = heed_model_config(m);
    if (!heed_model_has_lm_head(m) || !c->causal) {
        fprintf(stderr, "heed bench model: %s has no LM head to decode with\n", dir);
        heed_model_free(m);
        return 1;
    }
    const int64_t T = o->prompt, N = o->n_decode;
    int32_t *ids = malloc((size_t)(T + N) * sizeof *ids);
    float *logits = malloc((size_t)c->vocab * sizeof *logits);
    int rc = ids && logits ? 0 : 1;
    uint64_t s = 7;
    for (int64_t i = 0; i < T + N && !rc; i++) ids[i] = (int32_t)(heed_rng_next(&s) % (uint64_t)c->vocab);
    /* warm-up: touches every weight page once, so that neither case times page faults */
    rc = rc || heed_model_forward(ctx, m, logits, NULL, ids, NULL, 8, 0, HEED_FWD_LAST_LOGITS) != HEED_OK;
    const double t0 = bench_now();
    rc = rc || heed_model_forward(ctx, m, logits, NULL, ids, NULL, T, 0, HEED_FWD_LAST_LOGITS) != HEED_OK;
    const double t_prefill = bench_now() - t0;
    /* decode: the best of the single steps (the KV cache grows by one position per step, which is
     * noise next to the weights); the mean is what `heed run` reports and is printed too. Each step
     * follows a streaming read of as many bytes as it reads, on the same threads: the median of
     * (read time / step time) is a bandwidth ratio that the machine's swings do not move. */
    double best = INFINITY, total = 0.0, ratios[64], reads[64];
    bench_stream st = {0};
    const size_t step_bytes = (size_t)w.decode_bytes;
    const char *oom = "out of memory for the paired streaming reads", *why = NULL;
    if (!rc && bench_stream_init(&st, step_bytes > ((size_t)256 << 20) ? step_bytes : (size_t)256 << 20))
        rc = 1, why = oom;
    for (int64_t i = 0; i < N && !rc; i++) {
        const double rd = bench_stream_read(ctx, &st, step_bytes);
        if (rd < 0) {
            rc = 1, why = oom;
            break;
        }
        const double t1 = bench_now();
        rc = heed_model_forward(ctx, m, logits, NULL, ids + T + i, NULL, 1, T + i, HEED_FWD_LAST_LOGITS) != HEED_OK;
        const double dt = bench_now() - t1;
        total += dt;
        if (dt < best) best = dt;
        ratios[i % 64] = rd / dt;
        reads[i % 64] = rd;
    }
    if (st.buf) bench_stream_free(&st);
    if (rc) {
        fprintf(stderr, "heed bench model: %s\n", why ? why : ids && logits ? heed_ctx_error(ctx) : "out of memory");
    } else {
        /* causal attention: QK^T and PV over T(T+1)/2 visible pairs per head. A prefill's GB/s counts
         * the weights once (what an ideal prefill reads), so its bw_ratio says how far from memory-bound
         * it is, not a bandwidth reached. */
        const double attn_flops = 4.0 * (double)c->n_layers * (double)c->n_heads * (double)c->head_dim *
                                  (double)T * (double)(T + 1) / 2.0;
        const double flops = 2.0 * (double)w.matmul_params * (double)T + attn_flops;
        const char *dt = heed_st_dtype_name(w.dtype);
        out[0] = (result){"prefill", dt, w.params, T, (double)T / t_prefill, flops / t_prefill * 1e-9,
                          w.decode_bytes / t_prefill * 1e-9, 0.0, 0.0};
        const int nr = N < 64 ? (int)N : 64;
        qsort(ratios, (size_t)nr, sizeof ratios[0], cmp_double);
        qsort(reads, (size_t)nr, sizeof reads[0], cmp_double);
        out[1] = (result){"decode", dt, w.params, N, 1.0 / best, 2.0 * (double)w.matmul_params / best * 1e-9,
                          w.decode_bytes / best * 1e-9, w.decode_bytes / reads[nr / 2] * 1e-9, ratios[nr / 2]};
        *n_out += 2;
        if (!o->json)
            fprintf(stderr, "  decode %s: best step %.2f ms, mean %.2f ms (%.2f tok/s)\n", dt, best * 1e3,
                    total / (double)N * 1e3, (double)N / total);
    }
    free(ids), free(logits);
    heed_model_free(m);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: heed bench model [--json] [-m MODEL] [--quick] [--threads N]\n\n"
               "Prefill (a 256-token prompt) and decode (single tokens after it) speed of the model runtime.\n"
               "Without -m: a random Llama-architecture model (hidden 2048, 6 layers, GQA 16/4 heads,\n"
               "vocab 32000), written with f32 and then bf16 weights to a temporary directory and loaded\n"
               "like a checkpoint. Prefill GFLOP/s (2 x matmul params x tokens + attention) is reported\n"
               "against the OpenBLAS sgemm peak, decode GB/s (bytes of weights read per token / time of the\n"
               "best step) against the streaming read bandwidth, both measured in the same run; %%read pairs\n"
               "each step with a streaming read of as many bytes just before it (median of read / step time).\n\n"
               "  --json       one JSON object per case and line\n"
               "  -m MODEL     a model directory instead of the random model\n"
               "  --quick      a small random model (seconds)\n"
               "  --threads N  threads for heed, sgemm and the bandwidth test (default: all CPUs)\n");
}

int bench_model(int argc, char **argv)
{
    bench_opts o = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) o.json = 1;
        else if (!strcmp(argv[i], "--quick")) o.quick = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "-m") && i + 1 < argc) {
            o.model = argv[++i];
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            if (!cli_parse_threads(&o.n_threads, argv[++i])) {
                fprintf(stderr, "heed bench model: --threads '%s': expected an integer from 1 to 4096\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "heed bench model: unknown or incomplete option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    o.prompt = o.quick ? 64 : 256;
    o.n_decode = o.quick ? 8 : 16;
    heed_ctx *ctx;
    if (!cli_create_ctx(&ctx, o.n_threads, "bench model")) return 1;
    const int nt = heed_ctx_n_threads(ctx);
    peaks p = {0.0, 0.0};
    if (!measure_peaks(&p, ctx, o.quick)) {
        heed_ctx_free(ctx);
        return 1;
    }
    /* Cases run before printing, so that every ratio uses the best peaks measured on both sides of
     * them: a peak depressed by another job on a shared machine cannot inflate the ratios. */
    result results[4]; /* prefill and decode of each dtype */
    int n_results = 0;
    int rc = 0;
    if (o.model) {
        rc = bench_dir(results, &n_results, ctx, o.model, &o);
    } else {
        static const heed_dtype dtypes[] = {HEED_F32, HEED_BF16};
        const char *tmp = getenv("TMPDIR");
        for (size_t k = 0; k < sizeof dtypes / sizeof dtypes[0] && !rc; k++) {
            char dir[4096];
            snprintf(dir, sizeof dir, "%s/heed_bench_model_XXXXXX", tmp && *tmp ? tmp : "/tmp");
            if (!mkdtemp(dir)) {
                fprintf(stderr, "heed bench model: cannot create a temporary directory in %s\n",
                        tmp && *tmp ? tmp : "/tmp");
                rc = 1;
                break;
            }
            rc = write_random_model(ctx, dir, o.quick ? &quick_shape : &full_shape, dtypes[k])
                     ? bench_dir(results + n_results, &n_results, ctx, dir, &o) : 1;
            remove_dir(dir);
        }
    }
    if (!rc && !measure_peaks(&p, ctx, o.quick)) rc = 1;
    if (!rc && !o.json)
        printf("heed bench model: %d threads, isa %s, sgemm peak %.1f GFLOP/s, read bandwidth %.2f GB/s\n"
               "%-8s %-5s %9s %6s %10s %9s %7s %8s %7s %7s\n",
               nt, heed_isa_name(heed_ctx_isa(ctx)), p.sgemm_gflops, p.read_gbps, "case", "dtype", "params",
               "tokens", "tok/s", "GFLOP/s", "peak", "GB/s", "bw", "%read");
    for (int i = 0; i < n_results && !rc; i++) print_case(&results[i], &p, o.json);
    heed_ctx_free(ctx);
    return rc;
}
