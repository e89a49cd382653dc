/* trainer.c — forward and backward of the trainer's Llama decoder over one micro-batch, layer by
 * layer (llm.c style): embedding, then per layer RMSNorm -> token mixer -> residual, RMSNorm -> SwiGLU
 * -> residual, then the final norm, the LM head and cross-entropy; the backward walks it in reverse.
 * The forward keeps what the backward needs in tr->a; the backward adds into tr->grad. */
#include "train/gconv.h"
#include "train/ops.h"
#include "train/trainer.h"

#include <math.h>
#include <stdlib.h>

/* A [B, H, T, D] view of token-major rows [B*T, H*D] (head h of token t at row t, column h*D). */
static heed_tensor heads_view(float *p, int64_t B, int64_t H, int64_t T, int64_t D)
{
    int64_t f = (int64_t)sizeof(float);
    heed_tensor t = {p, HEED_F32, {B, H, T, D}, {T * H * D * f, D * f, H * D * f, f}};
    return t;
}

/* The attention descriptor of layer L (views into the saved q, k, v). temp: [Hq] scratch for the
 * selective-attention slopes exp(-exp(beta)). */
static void attn_desc(heed_attn_desc *d, const heed_trainer *tr, int64_t L, int64_t B, int64_t T, float *temp)
{
    const heed_train_config *c = &tr->cfg;
    const train_layer *w = &tr->w.layer[L];
    heed_attn_desc_init(d);
    d->q = heads_view(tr->a.q[L], B, c->n_heads, T, c->head_dim);
    d->k = heads_view(tr->a.k[L], B, c->n_kv_heads, T, c->head_dim);
    d->v = heads_view(tr->a.v[L], B, c->n_kv_heads, T, c->head_dim);
    d->mask.kind = HEED_MASK_CAUSAL;
    if (c->window > 0) {
        d->mask.kind = HEED_MASK_WINDOW;
        d->mask.left = c->window - 1;
        d->mask.right = 0;
    } else if (c->s2_block > 0) {
        d->mask.kind = HEED_MASK_S2;
        d->mask.block = c->s2_block;
        d->mask.local_blocks = c->s2_local_blocks;
        d->mask.vert_stride = c->s2_vert_stride;
    }
    d->norm = c->norm;
    d->sink_logit = w->sinks;
    if (w->temp_beta) {
        for (int64_t h = 0; h < c->n_heads; h++) temp[h] = expf(-expf(w->temp_beta[h]));
        d->temp_scale = temp;
    }
}

/* MoH routing of layer L on its normalised input: router logits, then gates [N, H]. */
static heed_status moh_route(heed_ctx *ctx, heed_trainer *tr, int64_t L, int64_t B, int64_t T, float *balance)
{
    const heed_train_config *c = &tr->cfg;
    const train_layer *w = &tr->w.layer[L];
    train_acts *a = &tr->a;
    int64_t N = B * T, C = c->hidden, ns = c->moh_shared, nr = c->n_heads - ns;
    if (w->r_shared) train_linear_fwd(ctx, a->rlog_s[L], a->ln1[L], w->r_shared, NULL, N, C, ns);
    train_linear_fwd(ctx, a->rlog_r[L], a->ln1[L], w->r_routed, NULL, N, C, nr);
    if (w->r_alpha) train_linear_fwd(ctx, a->rlog_a[L], a->ln1[L], w->r_alpha, NULL, N, C, 2);
    /* every token is routed on its own, so the batch routes as one sequence of N tokens */
    return heed_moh_route(ctx, a->gates[L], balance, w->r_shared ? a->rlog_s[L] : NULL, a->rlog_r[L],
                          w->r_alpha ? a->rlog_a[L] : NULL, N, ns, nr, c->moh_top_k);
}

/* The token mixer of layer L: a->ln1[L] -> a->mix[L] (the o_proj input). */
static heed_status mixer_fwd(heed_ctx *ctx, heed_trainer *tr, int64_t L, int64_t B, int64_t T, float *aux_loss)
{
    const heed_train_config *c = &tr->cfg;
    const train_layer *w = &tr->w.layer[L];
    train_acts *a = &tr->a;
    int64_t N = B * T, C = c->hidden;
    if (c->mixer == HEED_MIXER_GCONV) {
        train_linear_fwd(ctx, a->cu[L], a->ln1[L], w->conv_u, NULL, N, C, C);
        train_linear_fwd(ctx, a->cg[L], a->ln1[L], w->conv_g, NULL, N, C, C);
        train_gconv_fwd(ctx, a->mix[L], a->cu[L], a->cg[L], w->conv_filter, N, T, C, c->conv_kernel);
        return HEED_OK;
    }
    int64_t H = c->n_heads, D = c->head_dim, qd = H * D, kd = c->n_kv_heads * D;
    train_linear_fwd(ctx, a->q[L], a->ln1[L], w->q, NULL, N, C, qd);
    train_linear_fwd(ctx, a->k[L], a->ln1[L], w->k, NULL, N, C, kd);
    train_linear_fwd(ctx, a->v[L], a->ln1[L], w->v, NULL, N, C, kd);
    if (c->mixer == HEED_MIXER_LINEAR) {
        heed_tensor q = heads_view(a->q[L], B, H, T, D), k = heads_view(a->k[L], B, H, T, D);
        heed_tensor v = heads_view(a->v[L], B, H, T, D), o = heads_view(a->mix[L], B, H, T, D);
        return heed_linear_attn(ctx, &o, &q, &k, &v, 1, HEED_LINEAR_PARALLEL);
    }
    train_rope_fwd(ctx, a->q[L], qd, tr->cos_t, tr->sin_t, N, T, H, D);
    train_rope_fwd(ctx, a->k[L], kd, tr->cos_t, tr->sin_t, N, T, c->n_kv_heads, D);
    heed_attn_desc d;
    float temp[TRAIN_MAX_HEADS];
    attn_desc(&d, tr, L, B, T, temp);
    heed_tensor o = heads_view(c->moh_top_k ? a->att[L] : a->mix[L], B, H, T, D);
    heed_status s = heed_attn_forward(ctx, &o, a->lse[L], &d);
    if (s != HEED_OK || !c->moh_top_k) return s;
    float balance = 0.0f;
    s = moh_route(ctx, tr, L, B, T, &balance);
    if (s != HEED_OK) return s;
    *aux_loss += c->moh_balance * balance;
    heed_tensor ho = heads_view(a->att[L], B, H, T, D);
    return heed_moh_combine(ctx, a->mix[L], &ho, a->gates[L]);
}

/* dmix (the gradient at the o_proj input) -> dln (the gradient at the mixer's normalised input), and
 * the mixer's parameter gradients; grad_scale weighs the MoH balance loss as it weighs the main loss. */
static heed_status mixer_bwd(heed_ctx *ctx, heed_trainer *tr, int64_t L, int64_t B, int64_t T, float grad_scale)
{
    const heed_train_config *c = &tr->cfg;
    const train_layer *w = &tr->w.layer[L];
    train_layer *g = &tr->g.layer[L];
    train_acts *a = &tr->a;
    int64_t N = B * T, C = c->hidden;
    memset(a->dln, 0, sizeof(float) * (size_t)(N * C));
    if (c->mixer == HEED_MIXER_GCONV) {
        float *du = a->dk, *dg = a->dv;
        memset(du, 0, sizeof(float) * (size_t)(N * C));
        memset(dg, 0, sizeof(float) * (size_t)(N * C));
        train_gconv_bwd(ctx, du, dg, g->conv_filter, a->dmix, a->cu[L], a->cg[L], w->conv_filter, N, T, C,
                        c->conv_kernel);
        train_linear_bwd(ctx, a->dln, g->conv_u, NULL, du, a->ln1[L], w->conv_u, N, C, C);
        train_linear_bwd(ctx, a->dln, g->conv_g, NULL, dg, a->ln1[L], w->conv_g, N, C, C);
        return HEED_OK;
    }
    int64_t H = c->n_heads, Hk = c->n_kv_heads, D = c->head_dim, qd = H * D, kd = Hk * D;
    heed_tensor dq = heads_view(a->dq, B, H, T, D), dk = heads_view(a->dk, B, Hk, T, D);
    heed_tensor dv = heads_view(a->dv, B, Hk, T, D);
    heed_status s = HEED_OK;
    if (c->mixer == HEED_MIXER_LINEAR) {
        heed_tensor q = heads_view(a->q[L], B, H, T, D), k = heads_view(a->k[L], B, H, T, D);
        heed_tensor v = heads_view(a->v[L], B, H, T, D), d_o = heads_view(a->dmix, B, H, T, D);
        s = heed_linear_attn_backward(ctx, &dq, &dk, &dv, &q, &k, &v, &d_o, 1);
    } else {
        float *datt = a->dmix;
        if (c->moh_top_k) { /* through the gated combination, then the routers */
            int64_t ns = c->moh_shared, nr = H - ns;
            heed_tensor d_ho = heads_view(a->datt, B, H, T, D), ho = heads_view(a->att[L], B, H, T, D);
            s = heed_moh_combine_backward(ctx, &d_ho, a->dgates, a->dmix, &ho, a->gates[L]);
            if (s == HEED_OK)
                s = heed_moh_route_backward(ctx, w->r_shared ? a->drs : NULL, a->drr, w->r_alpha ? a->dra : NULL,
                                            a->dgates, c->moh_balance * grad_scale, w->r_shared ? a->rlog_s[L] : NULL,
                                            a->rlog_r[L], w->r_alpha ? a->rlog_a[L] : NULL, N, ns, nr, c->moh_top_k);
            if (s != HEED_OK) return s;
            if (w->r_shared) train_linear_bwd(ctx, a->dln, g->r_shared, NULL, a->drs, a->ln1[L], w->r_shared, N, C, ns);
            train_linear_bwd(ctx, a->dln, g->r_routed, NULL, a->drr, a->ln1[L], w->r_routed, N, C, nr);
            if (w->r_alpha) train_linear_bwd(ctx, a->dln, g->r_alpha, NULL, a->dra, a->ln1[L], w->r_alpha, N, C, 2);
            datt = a->datt;
        }
        heed_attn_desc d;
        float temp[TRAIN_MAX_HEADS], dsink[TRAIN_MAX_HEADS], dtemp[TRAIN_MAX_HEADS];
        attn_desc(&d, tr, L, B, T, temp);
        heed_tensor o = heads_view(c->moh_top_k ? a->att[L] : a->mix[L], B, H, T, D);
        heed_tensor d_o = heads_view(datt, B, H, T, D);
        heed_attn_grads ag = {dq, dk, dv, w->sinks ? dsink : NULL, w->temp_beta ? dtemp : NULL};
        s = heed_attn_backward(ctx, &ag, &d, &o, a->lse[L], &d_o);
        if (s != HEED_OK) return s;
        for (int64_t h = 0; w->sinks && h < H; h++) g->sinks[h] += dsink[h];
        for (int64_t h = 0; w->temp_beta && h < H; h++) /* d/dbeta exp(-exp(beta)) = -temp * exp(beta) */
            g->temp_beta[h] += dtemp[h] * -temp[h] * expf(w->temp_beta[h]);
        train_rope_bwd(ctx, a->dq, qd, tr->cos_t, tr->sin_t, N, T, H, D);
        train_rope_bwd(ctx, a->dk, kd, tr->cos_t, tr->sin_t, N, T, Hk, D);
    }
    if (s != HEED_OK) return s;
    train_linear_bwd(ctx, a->dln, g->q, NULL, a->dq, a->ln1[L], w->q, N, C, qd);
    train_linear_bwd(ctx, a->dln, g->k, NULL, a->dk, a->ln1[L], w->k, N, C, kd);
    train_linear_bwd(ctx, a->dln, g->v, NULL, a->dv, a->ln1[L], w->v, N, C, kd);
    return HEED_OK;
}

static float *zeroed(float *p, int64_t n)
{
    memset(p, 0, sizeof(float) * (size_t)n);
    return p;
}

heed_status heed_trainer_forward_backward(heed_ctx *ctx, heed_trainer *tr, float *loss, int64_t *n_counted,
                                          float *logits, const int32_t *inputs, const int32_t *targets,
                                          int64_t B, int64_t T, float grad_scale)
{
    if (!tr || !loss || !inputs || !targets)
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_trainer_forward_backward: NULL argument");
    const heed_train_config *c = &tr->cfg;
    if (B < 1 || T < 1 || T > c->max_seq)
        return heed_fail(ctx, HEED_ERR_INVALID, "trainer: B=%lld T=%lld, expected B >= 1 and 1 <= T <= max_seq "
                         "(%lld)", (long long)B, (long long)T, (long long)c->max_seq);
    if (!isfinite(grad_scale)) return heed_fail(ctx, HEED_ERR_INVALID, "trainer: grad_scale is not finite");
    int64_t N = B * T, C = c->hidden, F = c->intermediate, V = c->vocab, nL = c->n_layers;
    for (int64_t i = 0; i < N; i++)
        if (inputs[i] < 0 || inputs[i] >= V || targets[i] >= V)
            return heed_fail(ctx, HEED_ERR_INVALID, "trainer: token %lld: input %d / target %d outside the "
                             "vocabulary of %lld", (long long)i, inputs[i], targets[i], (long long)V);
    heed_status s = train_reserve(ctx, tr, B, T);
    if (s != HEED_OK) return s;
    train_acts *a = &tr->a;
    const train_weights *w = &tr->w;
    int64_t qd = c->mixer == HEED_MIXER_GCONV ? C : c->n_heads * c->head_dim;
    float eps = (float)c->norm_eps, aux = 0.0f;

    /* forward */
    train_embed_fwd(ctx, a->x[0], w->embed, inputs, N, C);
    for (int64_t L = 0; L < nL; L++) {
        const train_layer *lw = &w->layer[L];
        train_rmsnorm_fwd(ctx, a->ln1[L], a->rstd1[L], a->x[L], lw->ln1, N, C, eps);
        if ((s = mixer_fwd(ctx, tr, L, B, T, &aux)) != HEED_OK) return s;
        train_linear_fwd(ctx, a->tmp, a->mix[L], lw->o, NULL, N, qd, C);
        for (int64_t i = 0; i < N * C; i++) a->xm[L][i] = a->x[L][i] + a->tmp[i];
        train_rmsnorm_fwd(ctx, a->ln2[L], a->rstd2[L], a->xm[L], lw->ln2, N, C, eps);
        train_linear_fwd(ctx, a->gate[L], a->ln2[L], lw->gate, NULL, N, C, F);
        train_linear_fwd(ctx, a->up[L], a->ln2[L], lw->up, NULL, N, C, F);
        train_swiglu_fwd(ctx, a->h[L], a->gate[L], a->up[L], N, F);
        train_linear_fwd(ctx, a->tmp, a->h[L], lw->down, NULL, N, F, C);
        for (int64_t i = 0; i < N * C; i++) a->x[L + 1][i] = a->xm[L][i] + a->tmp[i];
    }
    train_rmsnorm_fwd(ctx, a->lnf, a->rstdf, a->x[nL], w->final_norm, N, C, eps);
    train_linear_fwd(ctx, a->logits, a->lnf, w->lm_head, NULL, N, C, V);
    if (logits) memcpy(logits, a->logits, sizeof(float) * (size_t)(N * V));
    /* the backward starts from d(mean loss)/d(logits) = (softmax - onehot) * grad_scale / count */
    int64_t count = 0;
    for (int64_t i = 0; i < N; i++) count += targets[i] >= 0;
    float gs = count > 0 ? grad_scale / (float)count : 0.0f;
    int backward = grad_scale != 0.0f;
    double sum = train_xent(ctx, backward ? a->logits : NULL, &count, a->logits, targets, N, V, gs);
    *loss = (count > 0 ? (float)(sum / (double)count) : 0.0f) + aux;
    if (n_counted) *n_counted = count;
    if (!backward) return HEED_OK;

    /* backward */
    train_weights *g = &tr->g;
    train_linear_bwd(ctx, zeroed(a->dln, N * C), g->lm_head, NULL, a->logits, a->lnf, w->lm_head, N, C, V);
    train_rmsnorm_bwd(ctx, zeroed(a->dx, N * C), g->final_norm, a->dln, a->x[nL], w->final_norm, a->rstdf, N, C);
    for (int64_t L = nL - 1; L >= 0; L--) {
        const train_layer *lw = &w->layer[L];
        train_layer *lg = &g->layer[L];
        /* MLP branch: a->dx is the gradient of x[L+1], which is also the residual part of xm's */
        train_linear_bwd(ctx, zeroed(a->dh, N * F), lg->down, NULL, a->dx, a->h[L], lw->down, N, F, C);
        train_swiglu_bwd(ctx, zeroed(a->dgate, N * F), zeroed(a->dup, N * F), a->dh, a->gate[L], a->up[L], N, F);
        zeroed(a->dln, N * C);
        train_linear_bwd(ctx, a->dln, lg->gate, NULL, a->dgate, a->ln2[L], lw->gate, N, C, F);
        train_linear_bwd(ctx, a->dln, lg->up, NULL, a->dup, a->ln2[L], lw->up, N, C, F);
        train_rmsnorm_bwd(ctx, a->dx, lg->ln2, a->dln, a->xm[L], lw->ln2, a->rstd2[L], N, C);
        /* mixer branch: a->dx is now the gradient of xm */
        train_linear_bwd(ctx, zeroed(a->dmix, N * qd), lg->o, NULL, a->dx, a->mix[L], lw->o, N, qd, C);
        if ((s = mixer_bwd(ctx, tr, L, B, T, grad_scale)) != HEED_OK) return s;
        train_rmsnorm_bwd(ctx, a->dx, lg->ln1, a->dln, a->x[L], lw->ln1, a->rstd1[L], N, C);
    }
    train_embed_bwd(ctx, g->embed, a->dx, inputs, N, C, V);
    return HEED_OK;
}

double heed_trainer_flops_per_token(const heed_trainer *tr, int64_t T)
{
    const heed_train_config *c = &tr->cfg;
    double C = (double)c->hidden, F = (double)c->intermediate, V = (double)c->vocab, L = (double)c->n_layers;
    double D = (double)c->head_dim, H = (double)c->n_heads, Hk = (double)c->n_kv_heads;
    double mix_mm, mix_other; /* multiply-adds per token and layer: the mixer's projections, and its own work */
    if (c->mixer == HEED_MIXER_GCONV) {
        mix_mm = 3 * C * C;
        mix_other = C * (double)(c->conv_kernel < T ? c->conv_kernel : T) / 2; /* causal filter taps, averaged */
    } else {
        mix_mm = C * H * D * 2 + C * Hk * D * 2;
        /* q.k and p.v over the visible keys, averaged over the T positions of a causal sequence;
         * linear attention: the D x D state replaces the keys */
        double keys = (double)(T + 1) / 2.0;
        if (c->window > 0 && (double)c->window < keys) keys = (double)c->window;
        mix_other = 2 * H * D * (c->mixer == HEED_MIXER_LINEAR ? D : keys);
    }
    double fwd = 2.0 * (L * (mix_mm + mix_other + 3 * C * F) + V * C);
    return 3.0 * fwd;
}
