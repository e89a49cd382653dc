/* optim.c — the optimizer step of the trainer: global-norm gradient clipping and AdamW (decoupled
 * weight decay on matrices only), as torch's clip_grad_norm_ and AdamW compute them, plus the
 * warmup + cosine learning-rate schedule. Deterministic for any thread count. */
#include "train/trainer.h"

#include <math.h>
#include <stdlib.h>

void heed_optim_init(heed_optim *o)
{
    o->beta1 = 0.9f;
    o->beta2 = 0.95f;
    o->eps = 1e-8f;
    o->weight_decay = 0.1f;
    o->clip = 1.0f;
}

float heed_lr_schedule(int64_t step, int64_t warmup, int64_t total, float lr_max, float lr_min)
{
    if (step < warmup) return lr_max * (float)(step + 1) / (float)warmup;
    if (step >= total) return lr_min;
    double r = (double)(step - warmup) / (double)(total - warmup);
    return (float)(lr_min + 0.5 * (lr_max - lr_min) * (1.0 + cos(3.141592653589793 * r)));
}

#define OPT_CHUNK 16384 /* floats per task */

/* A task of the optimizer: floats [lo, hi) of the flat buffers, all inside one parameter. */
typedef struct opt_task {
    int64_t lo, hi;
    int decay;                /* 1: a matrix (weight decay applies) */
} opt_task;

typedef struct opt_job {
    heed_trainer *tr;
    const opt_task *tasks;
    double *sq;               /* [n_tasks] sums of squared gradients */
    float scale, lr, wd, b1, b2, eps, bc1, bc2;
} opt_job;

static void sq_task(void *arg, int64_t task, int thread)
{
    (void)thread;
    opt_job *J = arg;
    const float *g = J->tr->grad;
    double s = 0;
    for (int64_t i = J->tasks[task].lo; i < J->tasks[task].hi; i++) s += (double)g[i] * (double)g[i];
    J->sq[task] = s;
}

/* torch.optim.AdamW: p *= 1 - lr wd; m, v updated; p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps).
 * The gradient is multiplied by the clip coefficient first and zeroed after. */
static void adam_task(void *arg, int64_t task, int thread)
{
    (void)thread;
    opt_job *J = arg;
    heed_trainer *tr = J->tr;
    const opt_task *t = &J->tasks[task];
    float *p = tr->data, *g = tr->grad, *m = tr->m, *v = tr->v;
    float decay = t->decay ? 1.0f - J->lr * J->wd : 1.0f, step = J->lr / J->bc1, rbc2 = 1.0f / sqrtf(J->bc2);
    for (int64_t i = t->lo; i < t->hi; i++) {
        float gi = g[i] * J->scale;
        m[i] = J->b1 * m[i] + (1.0f - J->b1) * gi;
        v[i] = J->b2 * v[i] + (1.0f - J->b2) * gi * gi;
        p[i] = p[i] * decay - step * m[i] / (sqrtf(v[i]) * rbc2 + J->eps);
        g[i] = 0.0f;
    }
}

heed_status heed_trainer_step(heed_ctx *ctx, heed_trainer *tr, const heed_optim *o, float lr, float *grad_norm)
{
    if (!tr || !o) return heed_fail(ctx, HEED_ERR_INVALID, "heed_trainer_step: NULL argument");
    if (!(lr >= 0) || !isfinite(lr) || !(o->beta1 >= 0 && o->beta1 < 1) || !(o->beta2 >= 0 && o->beta2 < 1) ||
        !(o->eps > 0) || !(o->weight_decay >= 0))
        return heed_fail(ctx, HEED_ERR_INVALID, "optimizer: lr >= 0, betas in [0, 1), eps > 0 and weight decay "
                         ">= 0 expected");
    int64_t n_tasks = 0;
    for (int64_t i = 0; i < tr->n_params; i++) n_tasks += (tr->params[i].n + OPT_CHUNK - 1) / OPT_CHUNK;
    opt_task *tasks = malloc(sizeof *tasks * (size_t)n_tasks);
    double *sq = malloc(sizeof *sq * (size_t)n_tasks);
    if (!tasks || !sq) {
        free(tasks);
        free(sq);
        return heed_fail(ctx, HEED_ERR_NOMEM, "optimizer: out of memory");
    }
    int64_t k = 0;
    for (int64_t i = 0; i < tr->n_params; i++) {
        const train_param *p = &tr->params[i];
        for (int64_t lo = 0; lo < p->n; lo += OPT_CHUNK)
            tasks[k++] = (opt_task){p->off + lo, p->off + (lo + OPT_CHUNK < p->n ? lo + OPT_CHUNK : p->n),
                                    p->n_dims >= 2};
    }
    opt_job J = {tr, tasks, sq, 1.0f, lr, o->weight_decay, o->beta1, o->beta2, o->eps, 0, 0};
    heed_parallel(ctx, n_tasks, sq_task, &J);
    double total = 0;
    for (int64_t i = 0; i < n_tasks; i++) total += sq[i]; /* in task order: the same sum on any thread count */
    float norm = (float)sqrt(total);
    if (grad_norm) *grad_norm = norm;
    heed_status s = HEED_OK;
    if (!isfinite(norm)) s = heed_fail(ctx, HEED_ERR_INVALID, "optimizer: the gradient norm is not finite (%g); "
                                       "the step is skipped and the gradients are kept", (double)norm);
    else {
        if (o->clip > 0) { /* torch: coef = max_norm / (norm + 1e-6), clamped to 1 */
            float coef = o->clip / (norm + 1e-6f);
            J.scale = coef < 1.0f ? coef : 1.0f;
        }
        tr->step++;
        J.bc1 = 1.0f - powf(o->beta1, (float)tr->step);
        J.bc2 = 1.0f - powf(o->beta2, (float)tr->step);
        heed_parallel(ctx, n_tasks, adam_task, &J);
    }
    free(tasks);
    free(sq);
    return s;
}
