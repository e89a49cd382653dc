/* test_core.c — the core services: conversions (exhaustive for f16, against the CPU's own F16C where
 * present), the bulk converter's SIMD path against the scalar one, the thread pool, scratch and the
 * context's ISA control. */
#include "core/core.h"
#include "harness.h"

#include <stdatomic.h>

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("f16c"))) static uint16_t hw_f32_to_f16(float x)
{
    return (uint16_t)_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT);
}
#endif

static void test_f16(void)
{
    int bad_roundtrip = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = heed_f16_to_f32((uint16_t)h);
        uint16_t back = heed_f32_to_f16(f);
        if (isnan(f) ? !(back & 0x3ff) || (back & 0x7c00) != 0x7c00 : back != h) bad_roundtrip++;
    }
    CHECK(bad_roundtrip == 0, "%d halves do not survive f16 -> f32 -> f16", bad_roundtrip);
    CHECK(heed_f16_to_f32(0x3c00) == 1.0f && heed_f16_to_f32(0xc000) == -2.0f, "1.0 and -2.0");
    CHECK(heed_f16_to_f32(0x0001) == ldexpf(1.0f, -24), "smallest subnormal");
    CHECK(heed_f32_to_f16(65504.0f) == 0x7bff && heed_f32_to_f16(65520.0f) == 0x7c00, "max / overflow");
    CHECK(heed_f32_to_f16(1.0f + ldexpf(1.0f, -11)) == 0x3c00, "tie rounds to even (down)");
    CHECK(heed_f32_to_f16(1.0f + 3 * ldexpf(1.0f, -11)) == 0x3c02, "tie rounds to even (up)");
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) {
        t_rng r = {12345};
        int mismatch = 0;
        for (int n = 0; n < 2000000; n++) {
            uint32_t bits = (uint32_t)t_next(&r);
            float f = heed_bits_to_f32(bits);
            if (isnan(f)) continue;
            if (heed_f32_to_f16(f) != hw_f32_to_f16(f)) mismatch++;
        }
        CHECK(mismatch == 0, "%d random floats round differently from F16C", mismatch);
    }
#endif
}

static void test_bf16(void)
{
    CHECK(heed_f32_to_bf16(1.0f) == 0x3f80, "1.0");
    CHECK(heed_bf16_to_f32(0x3f80) == 1.0f, "1.0 back");
    /* 1 + 2^-8 is halfway between bf16 1.0 and 1.0078125: even is 1.0 */
    CHECK(heed_f32_to_bf16(1.0f + ldexpf(1.0f, -8)) == 0x3f80, "tie to even");
    CHECK(heed_f32_to_bf16(1.0f + 3 * ldexpf(1.0f, -8)) == 0x3f82, "tie to even up");
    CHECK(isnan(heed_bf16_to_f32(heed_f32_to_bf16(NAN))), "NaN stays NaN");
    CHECK(isinf(heed_bf16_to_f32(heed_f32_to_bf16(INFINITY))), "Inf stays Inf");
}

static void test_convert_bulk(void)
{
    enum { N = 1003 };
    static float src[N], back[N], ref_back[N];
    static uint16_t half[N], ref_half[N];
    t_rng r = {7};
    t_fill_normal(&r, src, N, 100.0f);
    src[5] = NAN;
    src[6] = INFINITY;
    src[7] = 1e-6f;
    const heed_dtype types[2] = {HEED_F16, HEED_BF16};
    for (int k = 0; k < 2; k++) {
        heed_convert(half, types[k], src, HEED_F32, N);
        for (int i = 0; i < N; i++) ref_half[i] = k == 0 ? heed_f32_to_f16(src[i]) : heed_f32_to_bf16(src[i]);
        int bad = 0;
        for (int i = 0; i < N; i++) bad += half[i] != ref_half[i];
        CHECK(bad == 0, "%s: %d elements differ from the scalar rule", heed_dtype_name(types[k]), bad);
        heed_convert(back, HEED_F32, half, types[k], N);
        for (int i = 0; i < N; i++) ref_back[i] = k == 0 ? heed_f16_to_f32(half[i]) : heed_bf16_to_f32(half[i]);
        bad = 0;
        for (int i = 0; i < N; i++) bad += memcmp(&back[i], &ref_back[i], 4) != 0;
        CHECK(bad == 0, "%s -> f32: %d elements differ", heed_dtype_name(types[k]), bad);
    }
    double d[4];
    float f4[4] = {1.5f, -2.0f, 0.25f, 3.0f};
    heed_convert(d, HEED_F64, f4, HEED_F32, 4);
    CHECK(d[0] == 1.5 && d[3] == 3.0, "f32 -> f64");
}

typedef struct {
    atomic_int *hits;
    atomic_int max_thread;
} pool_job;

static void count_task(void *arg, int64_t task, int thread)
{
    pool_job *j = arg;
    atomic_fetch_add(&j->hits[task], 1);
    int m = atomic_load(&j->max_thread);
    while (thread > m && !atomic_compare_exchange_weak(&j->max_thread, &m, thread)) {}
}

static void test_pool(void)
{
    for (int threads = 1; threads <= 4; threads++) {
        heed_ctx *ctx = NULL;
        CHECK(heed_ctx_create(&ctx, threads) == HEED_OK, "ctx with %d threads", threads);
        if (!ctx) continue;
        CHECK(heed_ctx_n_threads(ctx) == threads, "n_threads");
        enum { TASKS = 517 };
        static atomic_int hits[TASKS];
        int bad = 0;
        pool_job job = {hits, 0};
        for (int rep = 0; rep < 200; rep++) {
            for (int i = 0; i < TASKS; i++) atomic_store(&hits[i], 0);
            int64_t n = rep % 7 == 0 ? 1 : TASKS - rep;
            heed_parallel(ctx, n, count_task, &job);
            for (int i = 0; i < TASKS; i++) bad += atomic_load(&hits[i]) != (i < n ? 1 : 0);
        }
        CHECK(bad == 0, "%d tasks not run exactly once with %d threads", bad, threads);
        CHECK(atomic_load(&job.max_thread) < threads, "thread index out of range");
        heed_parallel(ctx, 0, count_task, &job); /* no tasks: returns at once */
        CHECK(heed_scratch_reserve(ctx, 1000) == HEED_OK, "scratch");
        for (int t = 0; t < threads; t++) {
            CHECK(heed_scratch(ctx, t) && ((uintptr_t)heed_scratch(ctx, t) & 63) == 0, "scratch aligned");
            memset(heed_scratch(ctx, t), 1, 1000);
        }
        heed_ctx_free(ctx);
    }
    heed_ctx_free(NULL);
}

static void test_ctx(void)
{
    heed_ctx *ctx = NULL;
    CHECK_OK(ctx, heed_ctx_create(&ctx, 0));
    CHECK(heed_ctx_n_threads(ctx) == heed_cpu_count(), "default thread count");
    CHECK(heed_ctx_isa(ctx) == heed_cpu_isa(), "default isa");
    CHECK_OK(ctx, heed_ctx_set_isa(ctx, HEED_ISA_SCALAR));
    CHECK(heed_ctx_isa(ctx) == HEED_ISA_SCALAR, "isa capped");
    if (heed_cpu_isa() < HEED_ISA_AVX512) {
        CHECK(heed_ctx_set_isa(ctx, HEED_ISA_AVX512) == HEED_ERR_UNSUPPORTED, "avx512 refused");
        CHECK(strstr(heed_ctx_error(ctx), "avx512") != NULL, "message names the isa: %s", heed_ctx_error(ctx));
    }
    CHECK(heed_ctx_set_isa(ctx, (heed_isa)9) == HEED_ERR_INVALID, "bad isa value");
    heed_ctx_free(ctx);

    heed_tensor t = heed_tensor_4d(NULL, HEED_F16, 2, 3, 5, 7);
    CHECK(t.nb[3] == 2 && t.nb[2] == 14 && t.nb[1] == 70 && t.nb[0] == 210, "tensor_4d strides");
    CHECK(!strcmp(heed_status_name(HEED_ERR_UNSUPPORTED), "unsupported"), "status names");
    CHECK(heed_dtype_size(HEED_BF16) == 2 && heed_dtype_size(HEED_F64) == 8, "dtype sizes");
    CHECK(!strcmp(heed_version(), HEED_VERSION), "version");
    int *arr = NULL;
    size_t cap = 0, n = 0;
    for (int i = 0; i < 1000; i++) {
        int *grown = heed_grow(arr, &cap, n, sizeof *arr, 4);
        CHECK(grown != NULL, "heed_grow at %zu", n);
        if (!grown) break;
        arr = grown;
        arr[n++] = i;
    }
    CHECK(n == 1000 && cap == 1024 && arr[999] == 999 && arr[0] == 0, "grown array: n=%zu cap=%zu", n, cap);
    CHECK(heed_grow(arr, &cap, n, sizeof *arr, 4) == arr, "no reallocation while there is room");
    size_t huge_cap = SIZE_MAX / 2 + 1;
    CHECK(heed_grow(arr, &huge_cap, huge_cap, sizeof *arr, 4) == NULL && huge_cap == SIZE_MAX / 2 + 1,
          "overflowing growth refused, capacity unchanged");
    free(arr);
    void *p = heed_alloc(100);
    CHECK(p && ((uintptr_t)p & 63) == 0, "heed_alloc aligned");
    heed_free(p);
    heed_free(NULL);
}

int main(void)
{
    test_f16();
    test_bf16();
    test_convert_bulk();
    test_pool();
    test_ctx();
    return t_done("test_core");
}
