/* ops.c — the trainer's layer operations (contract in ops.h): linear layers through OpenBLAS sgemm,
 * the row-wise ops (RMSNorm, RoPE, SwiGLU, embedding, cross-entropy) over heed_parallel with plain
 * contiguous inner loops for the compiler to vectorise. Nothing here allocates. */
#include "train/ops.h"

#include <math.h>

/* Rows per task of the row-parallel ops: enough work per task to amortise the hand-out. */
#define ROWS_PER_TASK 16
/* Tasks of train_xent: a fixed count (independent of the thread count) so that the per-task partial
 * sums, combined in task order, give the same loss with any number of threads. */
#define XENT_MAX_TASKS 256

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
/* One past the last row of a row-parallel task (its rows start at task * ROWS_PER_TASK). */
static int64_t rows_end(int64_t task, int64_t N)
{
    return (task + 1) * ROWS_PER_TASK < N ? (task + 1) * ROWS_PER_TASK : N;
}

/* --- column sums: dst[row(n)] += sum over n in order of a[n] (* b[n] * s[n]) ------------------------ */

/* Each task owns a chunk of columns and walks every row in order, so each column's sum is formed in
 * the same order whatever the chunking or thread count: deterministic, and no two tasks write the same
 * element. row(n) = ids[n] when ids is not NULL, else 0. When b is not NULL, s must be too. */
typedef struct {
    float *dst;                    /* [*, C] */
    const float *a, *b, *s;        /* a, b [N, C]; s [N] */
    const int32_t *ids;            /* [N] or NULL */
    int64_t N, C, chunk;
} colsum_job;

static void colsum_task(void *arg, int64_t task, int thread)
{
    const colsum_job *J = arg;
    const int64_t c0 = task * J->chunk, c1 = c0 + J->chunk < J->C ? c0 + J->chunk : J->C, C = J->C;
    for (int64_t n = 0; n < J->N; n++) {
        float *restrict d = J->dst + (J->ids ? (int64_t)J->ids[n] : 0) * C;
        const float *restrict a = J->a + n * C;
        if (J->b) {
            const float *restrict b = J->b + n * C;
            const float sn = J->s[n];
            for (int64_t c = c0; c < c1; c++) d[c] += a[c] * b[c] * sn;
        } else {
            for (int64_t c = c0; c < c1; c++) d[c] += a[c];
        }
    }
}

static void colsum(heed_ctx *ctx, float *dst, const float *a, const float *b, const float *s, const int32_t *ids,
                   int64_t N, int64_t C)
{
    if (N <= 0 || C <= 0) return;
    /* about 4 chunks per thread, multiples of 16 columns (whole cache lines for aligned rows) */
    int64_t chunk = ceil_div(ceil_div(C, 4 * (int64_t)ctx->n_threads), 16) * 16;
    colsum_job J = {dst, a, b, s, ids, N, C, chunk};
    heed_parallel(ctx, ceil_div(C, chunk), colsum_task, &J);
}

/* --- linear ----------------------------------------------------------------------------------------- */

typedef struct {
    float *out;
    const float *bias;
    int64_t N, O;
} bias_job;

static void bias_task(void *arg, int64_t task, int thread)
{
    const bias_job *J = arg;
    const int64_t n1 = rows_end(task, J->N);
    const float *restrict b = J->bias;
    for (int64_t n = task * ROWS_PER_TASK; n < n1; n++) {
        float *restrict o = J->out + n * J->O;
        for (int64_t j = 0; j < J->O; j++) o[j] += b[j];
    }
}

/* C [m, n] = op(A) op(B) + beta C (row-major) on the context's threads (heed_gemm: fixed slabs, so the
 * results do not depend on the thread count); f32 operands, so it cannot fail. */
static void gemm(heed_ctx *ctx, int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                 const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    (void)heed_gemm(ctx, ta, tb, m, n, k, a, lda, b, HEED_F32, ldb, beta, c, ldc);
}

void train_linear_fwd(heed_ctx *ctx, float *out, const float *inp, const float *w, const float *bias,
                      int64_t N, int64_t In, int64_t O)
{
    if (N <= 0 || O <= 0) return;
    if (In > 0) gemm(ctx, 0, 1, N, O, In, inp, In, w, In, 0.0f, out, O);
    else memset(out, 0, (size_t)(N * O) * sizeof(float));
    if (bias) {
        bias_job J = {out, bias, N, O};
        heed_parallel(ctx, ceil_div(N, ROWS_PER_TASK), bias_task, &J);
    }
}

void train_linear_bwd(heed_ctx *ctx, float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                      const float *w, int64_t N, int64_t In, int64_t O)
{
    if (N <= 0 || O <= 0) return;
    if (dinp && In > 0) gemm(ctx, 0, 0, N, In, O, dout, O, w, In, 1.0f, dinp, In); /* dinp [N, In] += dout w */
    if (dw && In > 0) gemm(ctx, 1, 0, O, In, N, dout, O, inp, In, 1.0f, dw, In);   /* dw [O, In] += dout^T inp */
    if (dbias) colsum(ctx, dbias, dout, NULL, NULL, NULL, N, O);
}

/* --- RMSNorm ---------------------------------------------------------------------------------------- */

typedef struct {
    float *out, *rstd;             /* forward outputs */
    float *dx;                     /* backward output */
    const float *x, *w, *dout, *rstd_in;
    int64_t N, C;
    float eps;
} rms_job;

/* sum_i a[i] b[i] in f32 with 8 partial sums (a fixed order, and vectorisable without -ffast-math). */
static float dot8(const float *restrict a, const float *restrict b, int64_t n)
{
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += a[i + k] * b[i + k];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static void rms_fwd_task(void *arg, int64_t task, int thread)
{
    const rms_job *J = arg;
    const int64_t C = J->C, n1 = rows_end(task, J->N);
    const float *restrict w = J->w;
    for (int64_t n = task * ROWS_PER_TASK; n < n1; n++) {
        const float *restrict x = J->x + n * C;
        float *restrict o = J->out + n * C;
        const float r = 1.0f / sqrtf(dot8(x, x, C) / (float)C + J->eps);
        J->rstd[n] = r;
        for (int64_t i = 0; i < C; i++) o[i] = (x[i] * r) * w[i];
    }
}

/* out_i = x_i r w_i with r = (mean(x^2) + eps)^(-1/2), dr/dx_j = -r^3 x_j / C, so
 * dx_j = r w_j dout_j - x_j (r^3 / C) sum_i dout_i w_i x_i. */
static void rms_bwd_task(void *arg, int64_t task, int thread)
{
    const rms_job *J = arg;
    const int64_t C = J->C, n1 = rows_end(task, J->N);
    const float *restrict w = J->w;
    for (int64_t n = task * ROWS_PER_TASK; n < n1; n++) {
        const float *restrict x = J->x + n * C, *restrict dy = J->dout + n * C;
        float *restrict dx = J->dx + n * C;
        const float r = J->rstd_in[n];
        float acc[8] = {0}, dot = 0.0f;
        int64_t i = 0;
        for (; i + 8 <= C; i += 8)
            for (int k = 0; k < 8; k++) acc[k] += dy[i + k] * w[i + k] * x[i + k];
        for (; i < C; i++) dot += dy[i] * w[i] * x[i];
        dot += ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        const float k = r * r * r * dot / (float)C;
        for (i = 0; i < C; i++) dx[i] += r * w[i] * dy[i] - k * x[i];
    }
}

void train_rmsnorm_fwd(heed_ctx *ctx, float *out, float *rstd, const float *x, const float *w, int64_t N,
                       int64_t C, float eps)
{
    rms_job J = {.out = out, .rstd = rstd, .x = x, .w = w, .N = N, .C = C, .eps = eps};
    heed_parallel(ctx, ceil_div(N, ROWS_PER_TASK), rms_fwd_task, &J);
}

void train_rmsnorm_bwd(heed_ctx *ctx, float *dx, float *dw, const float *dout, const float *x, const float *w,
                       const float *rstd, int64_t N, int64_t C)
{
    if (dx) {
        rms_job J = {.dx = dx, .x = x, .w = w, .dout = dout, .rstd_in = rstd, .N = N, .C = C};
        heed_parallel(ctx, ceil_div(N, ROWS_PER_TASK), rms_bwd_task, &J);
    }
    if (dw) colsum(ctx, dw, dout, x, rstd, NULL, N, C); /* dw_i += sum_n dout_ni x_ni r_n */
}

/* --- RoPE ------------------------------------------------------------------------------------------- */

typedef struct {
    float *x;
    const float *cos_t, *sin_t;
    int64_t stride, N, T, H, D;
    float sign; /* +1 rotates by the angle (forward), -1 by its inverse (backward) */
} rope_job;

static void rope_task(void *arg, int64_t task, int thread)
{
    const rope_job *J = arg;
    const int64_t half = J->D / 2, n1 = rows_end(task, J->N);
    for (int64_t n = task * ROWS_PER_TASK; n < n1; n++) {
        const float *restrict cs = J->cos_t + (n % J->T) * half, *restrict sn = J->sin_t + (n % J->T) * half;
        for (int64_t h = 0; h < J->H; h++) {
            float *restrict x1 = J->x + n * J->stride + h * J->D, *restrict x2 = x1 + half;
            for (int64_t i = 0; i < half; i++) {
                const float a = x1[i], b = x2[i], s = J->sign * sn[i];
                x1[i] = a * cs[i] - b * s;
                x2[i] = b * cs[i] + a * s;
            }
        }
    }
}

static void rope(heed_ctx *ctx, float *x, int64_t row_stride, const float *cos_t, const float *sin_t, int64_t N,
                 int64_t T, int64_t H, int64_t D, float sign)
{
    rope_job J = {x, cos_t, sin_t, row_stride, N, T, H, D, sign};
    heed_parallel(ctx, ceil_div(N, ROWS_PER_TASK), rope_task, &J);
}

void train_rope_fwd(heed_ctx *ctx, float *x, int64_t row_stride, const float *cos_t, const float *sin_t,
                    int64_t N, int64_t T, int64_t H, int64_t D)
{
    rope(ctx, x, row_stride, cos_t, sin_t, N, T, H, D, 1.0f);
}

/* The rotation is orthogonal, so its transpose (the backward) is the rotation by the opposite angle. */
void train_rope_bwd(heed_ctx *ctx, float *dx, int64_t row_stride, const float *cos_t, const float *sin_t,
                    int64_t N, int64_t T, int64_t H, int64_t D)
{
    rope(ctx, dx, row_stride, cos_t, sin_t, N, T, H, D, -1.0f);
}

/* --- SwiGLU ----------------------------------------------------------------------------------------- */

typedef struct {
    float *h, *dg, *du;
    const float *g, *u, *dh;
    int64_t N, F;
} swiglu_job;

static void swiglu_fwd_task(void *arg, int64_t task, int thread)
{
    const swiglu_job *J = arg;
    const int64_t n1 = rows_end(task, J->N);
    const int64_t i0 = task * ROWS_PER_TASK * J->F, i1 = n1 * J->F;
    const float *restrict g = J->g, *restrict u = J->u;
    float *restrict h = J->h;
    for (int64_t i = i0; i < i1; i++) h[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* silu(g) = g s with s = sigmoid(g); silu'(g) = s (1 + g (1 - s)). */
static void swiglu_bwd_task(void *arg, int64_t task, int thread)
{
    const swiglu_job *J = arg;
    const int64_t n1 = rows_end(task, J->N);
    const int64_t i0 = task * ROWS_PER_TASK * J->F, i1 = n1 * J->F;
    const float *restrict g = J->g, *restrict u = J->u, *restrict dh = J->dh;
    float *restrict dg = J->dg, *restrict du = J->du;
    for (int64_t i = i0; i < i1; i++) {
        const float s = 1.0f / (1.0f + expf(-g[i]));
        if (dg) dg[i] += dh[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
        if (du) du[i] += dh[i] * g[i] * s;
    }
}

void train_swiglu_fwd(heed_ctx *ctx, float *h, const float *g, const float *u, int64_t N, int64_t F)
{
    swiglu_job J = {.h = h, .g = g, .u = u, .N = N, .F = F};
    heed_parallel(ctx, ceil_div(N, ROWS_PER_TASK), swiglu_fwd_task, &J);
}

void train_swiglu_bwd(heed_ctx *ctx, float *dg, float *du, const float *dh, const float *g, const float *u,
                      int64_t N, int64_t F)
{
    if (!dg && !du) return;
    swiglu_job J = {.dg = dg, .du = du, .g = g, .u = u, .dh = dh, .N = N, .F = F};
    heed_parallel(ctx, ceil_div(N, ROWS_PER_TASK), swiglu_bwd_task, &J);
}

/* --- embedding -------------------------------------------------------------------------------------- */

typedef struct {
    float *out;
    const float *wte;
    const int32_t *ids;
    int64_t N, C;
} embed_job;

static void embed_task(void *arg, int64_t task, int thread)
{
    const embed_job *J = arg;
    const int64_t n1 = rows_end(task, J->N);
    for (int64_t n = task * ROWS_PER_TASK; n < n1; n++)
        memcpy(J->out + n * J->C, J->wte + (int64_t)J->ids[n] * J->C, (size_t)J->C * sizeof(float));
}

void train_embed_fwd(heed_ctx *ctx, float *out, const float *wte, const int32_t *ids, int64_t N, int64_t C)
{
    embed_job J = {out, wte, ids, N, C};
    heed_parallel(ctx, ceil_div(N, ROWS_PER_TASK), embed_task, &J);
}

void train_embed_bwd(heed_ctx *ctx, float *dwte, const float *dout, const int32_t *ids, int64_t N, int64_t C,
                     int64_t V)
{
    if (dwte) colsum(ctx, dwte, dout, NULL, NULL, ids, N, C);
}

/* --- cross-entropy ---------------------------------------------------------------------------------- */

typedef struct {
    float *dlogits;                /* may alias logits */
    const float *logits;
    const int32_t *targets;
    int64_t N, V, rows;            /* rows per task */
    float scale;
    double loss[XENT_MAX_TASKS];   /* per-task partial sums */
    int64_t counted[XENT_MAX_TASKS];
} xent_job;

static void xent_task(void *arg, int64_t task, int thread)
{
    xent_job *J = arg;
    const int64_t V = J->V, n0 = task * J->rows, n1 = n0 + J->rows < J->N ? n0 + J->rows : J->N;
    double loss = 0.0;
    int64_t counted = 0;
    for (int64_t n = n0; n < n1; n++) {
        const int32_t t = J->targets[n];
        const float *x = J->logits + n * V; /* no restrict: d may be x */
        float *d = J->dlogits ? J->dlogits + n * V : NULL;
        if (t < 0) {
            if (d) memset(d, 0, (size_t)V * sizeof(float));
            continue;
        }
        float m = x[0];
        for (int64_t i = 1; i < V; i++) m = x[i] > m ? x[i] : m;
        const float xt = x[t]; /* read before d overwrites it */
        float sum = 0.0f;
        if (d) {
            for (int64_t i = 0; i < V; i++) {
                d[i] = expf(x[i] - m);
                sum += d[i];
            }
            const float k = J->scale / sum;
            for (int64_t i = 0; i < V; i++) d[i] *= k;
            d[t] -= J->scale;
        } else {
            for (int64_t i = 0; i < V; i++) sum += expf(x[i] - m);
        }
        loss += (double)m + log((double)sum) - (double)xt; /* -log softmax(x)_t */
        counted++;
    }
    J->loss[task] = loss;
    J->counted[task] = counted;
}

double train_xent(heed_ctx *ctx, float *dlogits, int64_t *n_counted, const float *logits, const int32_t *targets,
                  int64_t N, int64_t V, float grad_scale)
{
    xent_job J = {.dlogits = dlogits, .logits = logits, .targets = targets, .N = N, .V = V, .scale = grad_scale};
    J.rows = N > 0 ? ceil_div(N, XENT_MAX_TASKS) : 1;
    const int64_t tasks = N > 0 ? ceil_div(N, J.rows) : 0;
    heed_parallel(ctx, tasks, xent_task, &J);
    double loss = 0.0;
    int64_t counted = 0;
    for (int64_t k = 0; k < tasks; k++) {
        loss += J.loss[k];
        counted += J.counted[k];
    }
    *n_counted = counted;
    return loss;
}
