/* bench_attn.c — `heed bench attn`: times heed_attn_forward on the shapes the papers use (prefill,
 * decode, sliding window, 2D neighborhood, S2) and reports each against this machine's sgemm peak and
 * read bandwidth measured in the same process, and each sparse mask against dense at the same shape. */
#include "bench_peak.h"
#include "cli_util.h"
#include "commands.h"
#include "heed.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One benchmark case. Queries are the last Tq of Tk positions (q_offset = Tk - Tq), so Tq = 1 is a
 * decode step that sees the whole cache. */
typedef struct bench_case {
    const char *name; /* prefill | decode | window | neighborhood2d | s2 */
    int64_t B, Hq, Hkv, D, Tq, Tk;
    heed_dtype kv;
    heed_mask mask;
} bench_case;

#define CAUSAL {.kind = HEED_MASK_CAUSAL}
#define WINDOW(w) {.kind = HEED_MASK_WINDOW, .left = (w) - 1, .right = 0}
#define NEIGH2D(k, rows, cols) \
    {.kind = HEED_MASK_NEIGHBOR_2D, .kernel = {k, k}, .dilation = {1, 1}, .grid = {rows, cols}}
#define S2(blk, local, stride) \
    {.kind = HEED_MASK_S2, .block = blk, .local_blocks = local, .vert_stride = stride}

/* The full list (`heed bench attn`): minutes. The dense causal runs that the sparse cases compare
 * against are cached by shape, so window T=8192 reuses the prefill T=8192 measurement. */
static const bench_case full_cases[] = {
    {"prefill", 1, 8, 8, 64, 512, 512, HEED_F16, CAUSAL},
    {"prefill", 1, 32, 8, 64, 2048, 2048, HEED_F16, CAUSAL},
    {"prefill", 1, 16, 4, 64, 4096, 4096, HEED_F16, CAUSAL},
    {"prefill", 1, 8, 8, 128, 512, 512, HEED_F16, CAUSAL},
    {"prefill", 1, 32, 8, 128, 2048, 2048, HEED_F16, CAUSAL},
    {"prefill", 1, 8, 2, 128, 4096, 4096, HEED_F16, CAUSAL},
    {"prefill", 1, 8, 2, 128, 4096, 4096, HEED_BF16, CAUSAL},
    {"prefill", 1, 8, 2, 128, 4096, 4096, HEED_F32, CAUSAL},
    {"prefill", 1, 8, 8, 128, 8192, 8192, HEED_F16, CAUSAL},
    {"decode", 1, 32, 8, 128, 1, 4096, HEED_F16, CAUSAL},
    {"decode", 1, 32, 8, 128, 1, 16384, HEED_F16, CAUSAL},
    {"decode", 1, 32, 8, 128, 1, 65536, HEED_F16, CAUSAL},
    {"decode", 1, 32, 8, 128, 1, 16384, HEED_BF16, CAUSAL},
    {"decode", 1, 32, 8, 128, 1, 65536, HEED_BF16, CAUSAL},
    {"decode", 1, 32, 32, 128, 1, 4096, HEED_F16, CAUSAL},
    {"decode", 1, 32, 32, 128, 1, 16384, HEED_F16, CAUSAL},
    {"decode", 1, 32, 32, 128, 1, 16384, HEED_BF16, CAUSAL},
    {"window", 1, 8, 8, 128, 8192, 8192, HEED_F16, WINDOW(1024)},
    {"window", 1, 2, 2, 128, 32768, 32768, HEED_F16, WINDOW(1024)},
    {"neighborhood2d", 1, 8, 8, 64, 4096, 4096, HEED_F16, NEIGH2D(7, 64, 64)},
    {"s2", 1, 16, 16, 128, 8192, 8192, HEED_F16, S2(64, 8, 16)},
};

/* --quick: the same kinds of case at sizes that finish in seconds (`make run`, the CLI test). */
static const bench_case quick_cases[] = {
    {"prefill", 1, 8, 2, 64, 512, 512, HEED_F16, CAUSAL},
    {"prefill", 1, 8, 2, 128, 1024, 1024, HEED_F16, CAUSAL},
    {"decode", 1, 32, 8, 128, 1, 4096, HEED_F16, CAUSAL},
    {"decode", 1, 32, 8, 128, 1, 4096, HEED_BF16, CAUSAL},
    {"window", 1, 2, 2, 64, 4096, 4096, HEED_F16, WINDOW(1024)},
    {"neighborhood2d", 1, 4, 4, 64, 1024, 1024, HEED_F16, NEIGH2D(7, 32, 32)},
    {"s2", 1, 16, 16, 128, 2048, 2048, HEED_F16, S2(64, 8, 16)},
};

static const char *const case_names[] = {"prefill", "decode", "window", "neighborhood2d", "s2"};

typedef struct bench_opts {
    int json, quick, n_threads;
    const char *only; /* NULL: every case */
    double min_time;  /* seconds of timed repetitions per measurement, at least */
    int min_reps;
    size_t cold_bytes; /* decode: K/V copies cycled through so each step reads from memory, not L3 */
} bench_opts;

/* A mask is causal when no key after the query is ever visible; its dense counterpart is then the
 * causal mask (and the full one otherwise): that is what a sparse pattern is meant to replace. */
static int mask_causal(const heed_mask *m)
{
    switch (m->kind) {
    case HEED_MASK_CAUSAL: case HEED_MASK_PREFIX_BIDIR: case HEED_MASK_S2: return 1;
    case HEED_MASK_WINDOW: return m->right == 0;
    case HEED_MASK_BLOCKS: return m->causal != 0;
    default: return 0;
    }
}

static int mask_sparse(const heed_mask *m)
{
    return m->kind != HEED_MASK_NONE && m->kind != HEED_MASK_CAUSAL;
}

static void mask_describe(char *buf, size_t n, const heed_mask *m)
{
    switch (m->kind) {
    case HEED_MASK_CAUSAL: snprintf(buf, n, "causal"); break;
    case HEED_MASK_WINDOW: snprintf(buf, n, "window %lld", (long long)(m->left + 1)); break;
    case HEED_MASK_NEIGHBOR_2D:
        snprintf(buf, n, "nbhd %dx%d/%lldx%lld", m->kernel[0], m->kernel[1], (long long)m->grid[0],
                 (long long)m->grid[1]);
        break;
    case HEED_MASK_S2:
        snprintf(buf, n, "s2 b%d l%d v%d", m->block, m->local_blocks, m->vert_stride);
        break;
    default: snprintf(buf, n, "none"); break;
    }
}

/* Exact number of visible (query, key) pairs over all batches and query heads, from the one
 * definition of visibility. Returns -1 when out of memory. */
static int64_t visible_pairs(const bench_case *c)
{
    const heed_mask *m = &c->mask;
    heed_span *spans = malloc((size_t)heed_mask_max_spans(m, c->Tk) * sizeof *spans);
    if (!spans) return -1;
    int64_t pairs = 0;
    for (int64_t h = 0; h < c->Hq; h++)
        for (int64_t t = 0; t < c->Tq; t++) {
            const int64_t n = heed_mask_row_spans(spans, m, c->Tk - c->Tq + t, h, 0, c->Tk);
            for (int64_t s = 0; s < n; s++) pairs += spans[s].hi - spans[s].lo;
        }
    free(spans);
    return pairs * c->B;
}

/* Uniform values in [-1, 1) converted to dtype t, through a small f32 staging buffer so that
 * gigabyte-sized K/V caches need no f32 copy. */
static int fill_random(void *dst, heed_dtype t, size_t n, uint64_t *state)
{
    enum { CHUNK = 1 << 16 };
    float *tmp = heed_alloc(CHUNK * sizeof(float));
    if (!tmp) return -1;
    for (size_t at = 0; at < n; at += CHUNK) {
        const size_t m = n - at < CHUNK ? n - at : CHUNK;
        for (size_t i = 0; i < m; i++) {
            *state ^= *state << 13, *state ^= *state >> 7, *state ^= *state << 17; /* xorshift64 */
            tmp[i] = (float)(*state >> 40) * (2.0f / 16777216.0f) - 1.0f;
        }
        heed_convert((char *)dst + at * heed_dtype_size(t), t, tmp, HEED_F32, m);
    }
    heed_free(tmp);
    return 0;
}

/* The operands of one case: Q and O, and n_copies independent K/V caches. */
typedef struct bench_data {
    float *q, *o;   /* [B, Hq, Tq, D] f32 */
    void *kv;       /* n_copies x (K [B, Hkv, Tk, D], V [B, Hkv, Tk, D]) of dtype c->kv */
    int n_copies;
    size_t kv_elems; /* elements of one K (= one V) */
} bench_data;

static void data_free(bench_data *d)
{
    heed_free(d->q), heed_free(d->o), heed_free(d->kv);
    memset(d, 0, sizeof *d);
}

static int data_alloc(bench_data *d, const bench_case *c, const bench_opts *o)
{
    const size_t q_elems = (size_t)(c->B * c->Hq * c->Tq * c->D);
    d->kv_elems = (size_t)(c->B * c->Hkv * c->Tk * c->D);
    const size_t copy_bytes = 2 * d->kv_elems * heed_dtype_size(c->kv);
    /* A decode step reads a cache that the other layers have long since pushed out of L3. */
    d->n_copies = c->Tq == 1 ? (int)((o->cold_bytes + copy_bytes - 1) / copy_bytes) : 1;
    d->q = heed_alloc(q_elems * sizeof(float));
    d->o = heed_alloc(q_elems * sizeof(float));
    d->kv = heed_alloc(copy_bytes * (size_t)d->n_copies);
    uint64_t state = 0x9E3779B97F4A7C15ull;
    if (!d->q || !d->o || !d->kv || fill_random(d->q, HEED_F32, q_elems, &state) ||
        fill_random(d->kv, c->kv, 2 * d->kv_elems * (size_t)d->n_copies, &state)) {
        data_free(d);
        return -1;
    }
    memset(d->o, 0, q_elems * sizeof(float));
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median over a sorted copy of x [n] (n >= 1). */
static double median_of(double *x, int n)
{
    qsort(x, (size_t)n, sizeof x[0], cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

/* A case's timing: the median call, and, when each call was paired with a reference run just before
 * it (a streaming read of the case's bytes, or the dense mask on the same operands), the reference's
 * median time and the median over calls of (reference time / call time). */
typedef struct timing {
    double sec;
    double ref_sec, ratio; /* 0 when not paired */
} timing;

/* Times heed_attn_forward on case c: one warm-up call, then repetitions until both min_reps and
 * min_time are reached, cycling through the K/V copies. Each call follows its reference, on the same
 * threads and operands: with st, a streaming read of `bytes`; with dense, the same call under that
 * mask (so a sparse pattern and its dense counterpart see the same moments of a shared machine). */
static heed_status time_forward(timing *tm, heed_ctx *ctx, const bench_case *c, const bench_data *d,
                                const bench_opts *o, bench_stream *st, size_t bytes, const heed_mask *dense)
{
    enum { MAX_REPS = 200 };
    double times[MAX_REPS], refs[MAX_REPS], ratios[MAX_REPS];
    heed_attn_desc desc;
    heed_attn_desc_init(&desc);
    desc.q = heed_tensor_4d(d->q, HEED_F32, c->B, c->Hq, c->Tq, c->D);
    desc.q_offset = c->Tk - c->Tq;
    heed_tensor out = heed_tensor_4d(d->o, HEED_F32, c->B, c->Hq, c->Tq, c->D);
    const size_t kv_bytes = d->kv_elems * heed_dtype_size(c->kv);
    int reps = 0;
    double spent = 0.0;
    for (int call = 0; call <= MAX_REPS && (reps < o->min_reps || spent < o->min_time); call++) {
        char *k = (char *)d->kv + (size_t)(call % d->n_copies) * 2 * kv_bytes;
        desc.k = heed_tensor_4d(k, c->kv, c->B, c->Hkv, c->Tk, c->D);
        desc.v = heed_tensor_4d(k + kv_bytes, c->kv, c->B, c->Hkv, c->Tk, c->D);
        double ref = 0.0;
        if (st && (ref = bench_stream_read(ctx, st, bytes)) < 0) return HEED_ERR_NOMEM;
        if (dense) {
            desc.mask = *dense;
            const double t0 = bench_now();
            const heed_status s = heed_attn_forward(ctx, &out, NULL, &desc);
            ref = bench_now() - t0;
            if (s != HEED_OK) return s;
        }
        desc.mask = c->mask;
        const double t0 = bench_now();
        const heed_status s = heed_attn_forward(ctx, &out, NULL, &desc);
        const double dt = bench_now() - t0;
        if (s != HEED_OK) return s;
        if (call == 0) continue; /* warm-up: first touch of O, scratch growth, thread wake-up */
        refs[reps] = ref;
        ratios[reps] = ref / dt;
        times[reps++] = dt;
        spent += dt;
    }
    const int paired = st || dense;
    *tm = (timing){median_of(times, reps), paired ? median_of(refs, reps) : 0.0, paired ? median_of(ratios, reps) : 0.0};
    return HEED_OK;
}

/* The dense mask a sparse pattern replaces: causal, or full when the pattern is not causal. */
static heed_mask dense_mask(const heed_mask *m)
{
    heed_mask dense;
    memset(&dense, 0, sizeof dense);
    dense.kind = mask_causal(m) ? HEED_MASK_CAUSAL : HEED_MASK_NONE;
    return dense;
}

typedef struct machine {
    double sgemm_gflops, read_gbps; /* the best of the measurements before and after the cases */
    double load[2];                 /* 1-minute load average before and after */
    int n_threads;
    const char *isa;
} machine;

/* Measures the machine's peaks (again) and keeps the best so far: on a shared machine another job
 * can depress one measurement, and a peak that is too low would inflate every ratio. */
static int measure_machine(machine *mc, heed_ctx *ctx, int after, const bench_opts *o)
{
    const size_t bw_bytes = (size_t)(o->quick ? 256 : 1024) << 20;
    const double bw = bench_read_bw_gbps(ctx, bw_bytes, o->quick ? 5 : 10);
    const double gf = bench_sgemm_peak_gflops(mc->n_threads, o->quick ? 0.05 : 0.3);
    /* OpenBLAS's workers keep spinning for about 2^28 cycles after a call: let them fall asleep
     * before anything else is timed. */
    nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = 250000000}, NULL);
    getloadavg(&mc->load[after], 1);
    if (bw <= 0 || gf <= 0) return -1;
    if (bw > mc->read_gbps) mc->read_gbps = bw;
    if (gf > mc->sgemm_gflops) mc->sgemm_gflops = gf;
    return 0;
}

typedef struct result {
    double sec, gflops, gbps;
    double stream_gbps, paired; /* the paired streaming read: its GB/s, and median(read time / call time) */
    int64_t pairs;
    double dense_sec, speedup, ideal; /* sparse cases only (dense_sec > 0) */
} result;

static void print_header(const machine *mc, const bench_opts *o)
{
    if (o->json) return;
    /* other work on the machine skews every number below: say how much there was */
    printf("heed bench attn: %d threads, %s kernels; sgemm peak %.1f GFLOP/s, read bandwidth %.1f GB/s; "
           "load average %.2f before, %.2f after\n"
           "FLOPs = 4 * visible pairs * D; bytes = Q + O + K + V once%s\n\n",
           mc->n_threads, mc->isa, mc->sgemm_gflops, mc->read_gbps, mc->load[0], mc->load[1],
           o->quick ? " (--quick: small sizes)" : "");
    printf("%-14s %2s %7s %4s %6s %6s %4s %-18s %9s %8s %6s %7s %6s %6s %8s %6s\n", "case", "B", "Hq/Hkv", "D",
           "Tq", "Tk", "kv", "mask", "ms", "GFLOP/s", "%peak", "GB/s", "%bw", "%read", "speedup", "ideal");
}

static void print_result(const bench_case *c, const result *r, const machine *mc, const bench_opts *o)
{
    char mask[64];
    mask_describe(mask, sizeof mask, &c->mask);
    if (!o->json) {
        char heads[32];
        snprintf(heads, sizeof heads, "%lld/%lld", (long long)c->Hq, (long long)c->Hkv);
        printf("%-14s %2lld %7s %4lld %6lld %6lld %4s %-18s %9.3f %8.1f %5.1f%% %7.1f %5.1f%%", c->name,
               (long long)c->B, heads, (long long)c->D, (long long)c->Tq, (long long)c->Tk,
               heed_dtype_name(c->kv), mask, r->sec * 1e3, r->gflops, 100.0 * r->gflops / mc->sgemm_gflops,
               r->gbps, 100.0 * r->gbps / mc->read_gbps);
        if (r->paired > 0) printf(" %5.1f%%", 100.0 * r->paired);
        else printf(" %6s", "");
        if (r->dense_sec > 0) printf(" %7.2fx %5.2fx", r->speedup, r->ideal);
        printf("\n");
    } else {
        printf("{\"case\":\"%s\",\"B\":%lld,\"Hq\":%lld,\"Hkv\":%lld,\"D\":%lld,\"Tq\":%lld,\"Tk\":%lld,"
               "\"causal\":%d,\"kv_dtype\":\"%s\",\"mask\":\"%s\",\"gflops\":%.3f,\"gbps\":%.3f,"
               "\"sgemm_peak_gflops\":%.3f,\"read_bw_gbps\":%.3f,\"peak_ratio\":%.4f,\"bw_ratio\":%.4f,"
               "\"ms\":%.4f,\"visible_pairs\":%lld,\"threads\":%d,\"isa\":\"%s\","
               "\"load_before\":%.2f,\"load_after\":%.2f",
               c->name, (long long)c->B, (long long)c->Hq, (long long)c->Hkv, (long long)c->D,
               (long long)c->Tq, (long long)c->Tk, mask_causal(&c->mask), heed_dtype_name(c->kv), mask,
               r->gflops, r->gbps, mc->sgemm_gflops, mc->read_gbps, r->gflops / mc->sgemm_gflops,
               r->gbps / mc->read_gbps, r->sec * 1e3, (long long)r->pairs, mc->n_threads, mc->isa,
               mc->load[0], mc->load[1]);
        if (r->paired > 0) printf(",\"stream_gbps\":%.3f,\"paired_bw_ratio\":%.4f", r->stream_gbps, r->paired);
        if (r->dense_sec > 0)
            printf(",\"dense_ms\":%.4f,\"speedup_vs_dense\":%.4f,\"ideal_speedup\":%.4f", r->dense_sec * 1e3,
                   r->speedup, r->ideal);
        printf("}\n");
    }
    fflush(stdout);
}

/* Bytes a call moves at least: Q and O (f32) and K and V once. */
static double case_bytes(const bench_case *c)
{
    return 2.0 * (double)(c->B * c->Hq * c->Tq * c->D) * sizeof(float) +
           2.0 * (double)(c->B * c->Hkv * c->Tk * c->D) * (double)heed_dtype_size(c->kv);
}

/* Measures one case into *r, each call paired with a streaming read of its bytes from st (dense
 * masks) or with the dense mask it replaces (sparse ones); on failure prints why and returns non-zero. */
static int run_case(result *r, heed_ctx *ctx, const bench_case *c, const bench_opts *o, bench_stream *st)
{
    char mask[64];
    mask_describe(mask, sizeof mask, &c->mask);
    heed_status s = heed_mask_check(ctx, &c->mask);
    if (s != HEED_OK) {
        fprintf(stderr, "heed bench attn: case %s (%s): %s\n", c->name, mask, heed_ctx_error(ctx));
        return 1;
    }
    bench_data d;
    *r = (result){0};
    if (data_alloc(&d, c, o)) {
        fprintf(stderr, "heed bench attn: case %s: out of memory for its operands\n", c->name);
        return 1;
    }
    const double bytes = case_bytes(c);
    const int sparse = mask_sparse(&c->mask);
    const heed_mask dense = dense_mask(&c->mask);
    timing tm = {0};
    r->pairs = visible_pairs(c);
    if (r->pairs < 0) s = HEED_ERR_NOMEM;
    else s = time_forward(&tm, ctx, c, &d, o, sparse ? NULL : st, (size_t)bytes, sparse ? &dense : NULL);
    if (s == HEED_OK && sparse) {
        bench_case dc = *c;
        dc.mask = dense;
        const int64_t dense_pairs = visible_pairs(&dc);
        if (dense_pairs < 0) s = HEED_ERR_NOMEM;
        r->dense_sec = tm.ref_sec;
        r->speedup = tm.ratio;
        r->ideal = (double)dense_pairs / (double)r->pairs;
    }
    data_free(&d);
    if (s != HEED_OK) {
        fprintf(stderr, "heed bench attn: case %s (%s): %s: %s\n", c->name, mask, heed_status_name(s),
                s == HEED_ERR_NOMEM ? "out of memory" : heed_ctx_error(ctx));
        return 1;
    }
    r->sec = tm.sec;
    r->gflops = 4.0 * (double)r->pairs * (double)c->D / r->sec * 1e-9;
    r->gbps = bytes / r->sec * 1e-9;
    if (!sparse) {
        r->stream_gbps = bytes / tm.ref_sec * 1e-9;
        r->paired = tm.ratio;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: heed bench attn [--json] [--quick] [--case NAME] [--threads N]\n\n"
            "Times heed_attn_forward (f32 queries, f16/bf16/f32 K/V) on prefill, decode, sliding-window,\n"
            "2D-neighborhood and S2 shapes, against this machine's OpenBLAS sgemm peak and streaming read\n"
            "bandwidth measured in the same run. Dense cases pair each call with a streaming read of its\n"
            "bytes just before it (%%read: median of read time / call time). Sparse cases report their\n"
            "speedup over dense attention at the same shape, timed in back-to-back pairs, and the ideal\n"
            "speedup (dense visible pairs / sparse pairs).\n\n"
            "  --json       one JSON object per case and line\n"
            "  --quick      small sizes (seconds), for smoke runs\n"
            "  --case NAME  only cases named prefill | decode | window | neighborhood2d | s2\n"
            "  --threads N  threads for heed, sgemm and the bandwidth test (default: all CPUs)\n");
}

static int bench_attn(int argc, char **argv)
{
    bench_opts o = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) o.json = 1;
        else if (!strcmp(argv[i], "--quick")) o.quick = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--case") && i + 1 < argc) {
            o.only = argv[++i];
            int known = 0;
            for (size_t k = 0; k < sizeof case_names / sizeof case_names[0]; k++)
                known |= !strcmp(o.only, case_names[k]);
            if (!known) {
                fprintf(stderr, "heed bench attn: --case '%s': expected prefill, decode, window, "
                                "neighborhood2d or s2\n", o.only);
                return 2;
            }
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            if (!cli_parse_threads(&o.n_threads, argv[++i])) {
                fprintf(stderr, "heed bench attn: --threads '%s': expected an integer from 1 to 4096\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "heed bench attn: unknown or incomplete option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    o.min_time = o.quick ? 0.05 : 0.3;
    o.min_reps = o.quick ? 2 : 3;
    o.cold_bytes = (size_t)(o.quick ? 64 : 256) << 20;

    heed_ctx *ctx;
    heed_status s = heed_ctx_create(&ctx, o.n_threads);
    if (s != HEED_OK) {
        fprintf(stderr, "heed bench attn: cannot create a context: %s\n", heed_status_name(s));
        return 1;
    }
    machine mc = {0};
    mc.n_threads = heed_ctx_n_threads(ctx);
    mc.isa = heed_isa_name(heed_ctx_isa(ctx));
    const bench_case *cases = o.quick ? quick_cases : full_cases;
    const size_t n_cases = o.quick ? sizeof quick_cases / sizeof quick_cases[0]
                                   : sizeof full_cases / sizeof full_cases[0];
    result results[sizeof full_cases / sizeof full_cases[0]];
    const int progress = isatty(STDERR_FILENO);
    /* the paired reads' source: twice the largest case's traffic, and well above the last-level cache */
    double most = 0.0;
    for (size_t i = 0; i < n_cases; i++) most = case_bytes(&cases[i]) > most ? case_bytes(&cases[i]) : most;
    bench_stream st;
    int rc = bench_stream_init(&st, (size_t)(2.0 * most) > o.cold_bytes ? (size_t)(2.0 * most) : o.cold_bytes);
    if (rc == 0) rc = measure_machine(&mc, ctx, 0, &o);
    for (size_t i = 0; i < n_cases && rc == 0; i++)
        if (!o.only || !strcmp(o.only, cases[i].name)) {
            if (progress) fprintf(stderr, "\rheed bench attn: case %zu of %zu ", i + 1, n_cases);
            rc = run_case(&results[i], ctx, &cases[i], &o, &st);
        }
    bench_stream_free(&st);
    if (progress) fprintf(stderr, "\r%40s\r", "");
    if (rc == 0) rc = measure_machine(&mc, ctx, 1, &o);
    heed_ctx_free(ctx);
    if (rc < 0) {
        fprintf(stderr, "heed bench attn: out of memory measuring the machine's peaks\n");
        return 1;
    }
    if (rc) return rc;
    /* Printed at the end, so that every ratio uses the peaks measured on both sides of the cases. */
    print_header(&mc, &o);
    for (size_t i = 0; i < n_cases; i++)
        if (!o.only || !strcmp(o.only, cases[i].name)) print_result(&cases[i], &results[i], &mc, &o);
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "attn")) return bench_attn(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "model")) return bench_model(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "train")) return bench_train(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "heed bench: expected a benchmark name: attn, model or train (heed bench attn --help)\n");
    return 2;
}
