/* linear.c — linear attention with phi(x) = elu(x) + 1 (Katharopoulos et al.): the parallel form
 * (the masked kernel matrix phi(Q) phi(K)^T, materialised a block of rows at a time, then normalised),
 * the recurrent form (walking the state S, z), and one-token decoding with a caller-owned state. */
#include "attn/attn.h"

#include <math.h>

/* Query rows of the kernel matrix materialised at once in PARALLEL mode: bounds the scratch to
 * QB x Tk floats per thread instead of T x Tk. */
#define QB 64

static inline float phi(float x) { return x > 0.0f ? x + 1.0f : expf(x); }

static void phi_map(float *out, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) out[i] = phi(x[i]);
}

/* The recurrent update S += phi(k) v^T, z += phi(k).
 * s: [D, Dv], z: [D], phik: [D] scratch; k: [D], v: [Dv]. */
static void state_add(float *s, float *z, float *phik, const float *k, const float *v, int64_t D, int64_t Dv)
{
    phi_map(phik, k, D);
    for (int64_t d = 0; d < D; d++) {
        float *srow = s + d * Dv;
        const float p = phik[d];
        z[d] += p;
        for (int64_t e = 0; e < Dv; e++) srow[e] += p * v[e];
    }
}

/* o = phi(q)^T S / (phi(q)^T z); a denominator that underflows to 0 gives o = 0, never NaN.
 * o: [Dv] out; phiq: [D] scratch; s: [D, Dv], z: [D], q: [D]. */
static void state_read(float *o, float *phiq, const float *s, const float *z, const float *q, int64_t D, int64_t Dv)
{
    phi_map(phiq, q, D);
    float den = 0.0f;
    for (int64_t e = 0; e < Dv; e++) o[e] = 0.0f;
    for (int64_t d = 0; d < D; d++) {
        const float p = phiq[d];
        const float *srow = s + d * Dv;
        den += p * z[d];
        for (int64_t e = 0; e < Dv; e++) o[e] += p * srow[e];
    }
    const float inv = den > 0.0f ? 1.0f / den : 0.0f;
    for (int64_t e = 0; e < Dv; e++) o[e] *= inv;
}

typedef struct linear_job {
    heed_tensor *o;
    const heed_tensor *q, *k, *v;
    int64_t H, T, Tk, D, Dv;
    int causal;
    heed_ctx *ctx;
} linear_job;

static size_t up64(size_t n) { return (n + 63) & ~(size_t)63; }

static size_t parallel_scratch(const linear_job *J)
{
    const size_t f = sizeof(float);
    return up64((size_t)(J->D * J->Tk) * f) + up64((size_t)(QB * J->D) * f) + up64((size_t)(QB * J->Tk) * f);
}

static size_t recurrent_scratch(const linear_job *J)
{
    return up64((size_t)(J->D * J->Dv) * sizeof(float)) + 2 * up64((size_t)J->D * sizeof(float));
}

/* PARALLEL: for a block of query rows, A = phi(Q_blk) phi(K)^T with the causal mask applied by
 * cutting row i at key i, then O_i = (A_i V) / (A_i 1). */
static void parallel_task(void *arg, int64_t task, int thread)
{
    const linear_job *J = arg;
    const int64_t b = task / J->H, h = task % J->H, T = J->T, Tk = J->Tk, D = J->D, Dv = J->Dv;
    char *m = heed_scratch(J->ctx, thread);
    float *kt = (float *)m;                                     /* [D][Tk]: phi(K) transposed */
    float *qb = (float *)(m + up64((size_t)(D * Tk) * sizeof(float)));     /* [QB][D] */
    float *a = (float *)((char *)qb + up64((size_t)(QB * D) * sizeof(float))); /* [QB][Tk] */

    for (int64_t j = 0; j < Tk; j++) {
        const float *kr = heed_row(J->k, b, h, j);
        for (int64_t d = 0; d < D; d++) kt[d * Tk + j] = phi(kr[d]);
    }
    for (int64_t t0 = 0; t0 < T; t0 += QB) {
        const int64_t nr = T - t0 < QB ? T - t0 : QB;
        for (int64_t r = 0; r < nr; r++) phi_map(qb + r * D, heed_row(J->q, b, h, t0 + r), D);
        for (int64_t r = 0; r < nr; r++) {
            const int64_t jn = J->causal ? t0 + r + 1 : Tk;
            float *ar = a + r * Tk;
            for (int64_t j = 0; j < jn; j++) ar[j] = 0.0f;
            for (int64_t d = 0; d < D; d++) {
                const float p = qb[r * D + d];
                const float *kd = kt + d * Tk;
                for (int64_t j = 0; j < jn; j++) ar[j] += p * kd[j];
            }
        }
        for (int64_t r = 0; r < nr; r++) {
            const int64_t jn = J->causal ? t0 + r + 1 : Tk;
            const float *ar = a + r * Tk;
            float *orow = heed_row(J->o, b, h, t0 + r);
            float den = 0.0f;
            for (int64_t e = 0; e < Dv; e++) orow[e] = 0.0f;
            for (int64_t j = 0; j < jn; j++) {
                const float *vr = heed_row(J->v, b, h, j);
                const float w = ar[j];
                den += w;
                for (int64_t e = 0; e < Dv; e++) orow[e] += w * vr[e];
            }
            const float inv = den > 0.0f ? 1.0f / den : 0.0f;
            for (int64_t e = 0; e < Dv; e++) orow[e] *= inv;
        }
    }
}

/* RECURRENT: causal interleaves "add key t" and "read query t"; non-causal adds every key first. */
static void recurrent_task(void *arg, int64_t task, int thread)
{
    const linear_job *J = arg;
    const int64_t b = task / J->H, h = task % J->H, D = J->D, Dv = J->Dv;
    char *m = heed_scratch(J->ctx, thread);
    float *s = (float *)m;                                                /* [D][Dv] */
    float *z = (float *)(m + up64((size_t)(D * Dv) * sizeof(float)));     /* [D] */
    float *ph = (float *)((char *)z + up64((size_t)D * sizeof(float)));   /* [D] */
    memset(s, 0, (size_t)(D * Dv) * sizeof(float));
    memset(z, 0, (size_t)D * sizeof(float));
    if (!J->causal)
        for (int64_t j = 0; j < J->Tk; j++)
            state_add(s, z, ph, heed_row(J->k, b, h, j), heed_row(J->v, b, h, j), D, Dv);
    for (int64_t t = 0; t < J->T; t++) {
        if (J->causal) state_add(s, z, ph, heed_row(J->k, b, h, t), heed_row(J->v, b, h, t), D, Dv);
        state_read(heed_row(J->o, b, h, t), ph, s, z, heed_row(J->q, b, h, t), D, Dv);
    }
}

heed_status linear_check_qkv(heed_ctx *ctx, const heed_tensor *q, const heed_tensor *k, const heed_tensor *v,
                             int causal)
{
    heed_status s;
    if ((s = attn_check_view(ctx, "q", q, 0, -1, -1, -1, -1)) != HEED_OK) return s;
    const int64_t B = q->ne[0], H = q->ne[1], T = q->ne[2], D = q->ne[3];
    if ((s = attn_check_view(ctx, "k", k, 0, B, H, -1, D)) != HEED_OK) return s;
    if (causal && k->ne[2] != T)
        return heed_fail(ctx, HEED_ERR_INVALID, "k: Tk=%lld, causal linear attention needs Tk == T (%lld)",
                         (long long)k->ne[2], (long long)T);
    return attn_check_view(ctx, "v", v, 0, B, H, k->ne[2], -1);
}

heed_status heed_linear_attn(heed_ctx *ctx, heed_tensor *o, const heed_tensor *q, const heed_tensor *k,
                             const heed_tensor *v, int causal, heed_linear_mode mode)
{
    heed_status s;
    if (!ctx) return HEED_ERR_INVALID;
    if (mode != HEED_LINEAR_PARALLEL && mode != HEED_LINEAR_RECURRENT)
        return heed_fail(ctx, HEED_ERR_INVALID, "mode: %d, expected HEED_LINEAR_PARALLEL or HEED_LINEAR_RECURRENT",
                         (int)mode);
    if ((s = linear_check_qkv(ctx, q, k, v, causal)) != HEED_OK) return s;
    const int64_t B = q->ne[0], H = q->ne[1], T = q->ne[2], D = q->ne[3], Tk = k->ne[2], Dv = v->ne[3];
    if ((s = attn_check_view(ctx, "o", o, 1, B, H, T, Dv)) != HEED_OK) return s;

    linear_job J = {o, q, k, v, H, T, Tk, D, Dv, causal != 0, ctx};
    const int par = mode == HEED_LINEAR_PARALLEL;
    if ((s = heed_scratch_reserve(ctx, par ? parallel_scratch(&J) : recurrent_scratch(&J))) != HEED_OK) return s;
    heed_parallel(ctx, B * H, par ? parallel_task : recurrent_task, &J);
    return HEED_OK;
}

typedef struct step_job {
    heed_tensor *o;
    float *s, *z;
    const heed_tensor *q, *k, *v;
    int64_t H, D, Dv;
    heed_ctx *ctx;
} step_job;

static void step_task(void *arg, int64_t task, int thread)
{
    const step_job *J = arg;
    const int64_t b = task / J->H, h = task % J->H;
    float *s = J->s + task * J->D * J->Dv, *z = J->z + task * J->D, *ph = heed_scratch(J->ctx, thread);
    state_add(s, z, ph, heed_row(J->k, b, h, 0), heed_row(J->v, b, h, 0), J->D, J->Dv);
    state_read(heed_row(J->o, b, h, 0), ph, s, z, heed_row(J->q, b, h, 0), J->D, J->Dv);
}

heed_status heed_linear_attn_step(heed_ctx *ctx, heed_tensor *o, float *s, float *z, const heed_tensor *q,
                                  const heed_tensor *k, const heed_tensor *v)
{
    heed_status st;
    if (!ctx) return HEED_ERR_INVALID;
    if ((st = attn_check_view(ctx, "q", q, 0, -1, -1, 1, -1)) != HEED_OK) return st;
    const int64_t B = q->ne[0], H = q->ne[1], D = q->ne[3];
    if ((st = attn_check_view(ctx, "k", k, 0, B, H, 1, D)) != HEED_OK) return st;
    if ((st = attn_check_view(ctx, "v", v, 0, B, H, 1, -1)) != HEED_OK) return st;
    const int64_t Dv = v->ne[3];
    if ((st = attn_check_view(ctx, "o", o, 1, B, H, 1, Dv)) != HEED_OK) return st;
    if (!s || !z) return heed_fail(ctx, HEED_ERR_INVALID, "%s: NULL recurrent state", s ? "z" : "s");

    step_job J = {o, s, z, q, k, v, H, D, Dv, ctx};
    if ((st = heed_scratch_reserve(ctx, (size_t)D * sizeof(float))) != HEED_OK) return st;
    heed_parallel(ctx, B * H, step_task, &J);
    return HEED_OK;
}
