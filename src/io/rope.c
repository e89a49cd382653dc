/* rope.c — RoPE inverse frequencies for each rope type, exactly as transformers'
 * modeling_rope_utils computes them: the same f32 operations in the same order (torch computes
 * inv_freq in float32 with Python-double scalars cast to float), double where Python uses floats. */
#include "core/core.h"

#include <math.h>

int64_t heed_rope_dim(const heed_config *cfg)
{
    return cfg->head_dim;
}

/* inv_freq[i] = 1 / base^(2i / dim), in f32 as torch: base ** (arange(0, dim, 2).float() / dim). */
static void rope_default(float *inv_freq, double base, int64_t dim)
{
    for (int64_t i = 0; i < dim / 2; i++) inv_freq[i] = 1.0f / powf((float)base, (float)(2 * i) / (float)dim);
}

/* get_mscale of transformers' yarn. */
static double yarn_mscale(double scale, double mscale)
{
    return scale <= 1 ? 1.0 : 0.1 * mscale * log(scale) + 1.0;
}

static double yarn_correction_dim(double n_rot, int64_t dim, double base, double max_pos)
{
    return ((double)dim * log(max_pos / (n_rot * 2 * M_PI))) / (2 * log(base));
}

heed_status heed_rope_inv_freq(heed_ctx *ctx, float *inv_freq, float *attention_factor, const heed_config *cfg,
                               int64_t seq_len)
{
    if (!inv_freq || !attention_factor || !cfg)
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_rope_inv_freq: NULL argument");
    if (cfg->pos != HEED_POS_ROPE)
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_rope_inv_freq: model_type %s has no rotary embedding",
                         cfg->model_type);
    const heed_rope *r = &cfg->rope;
    int64_t dim = heed_rope_dim(cfg), half = dim / 2;
    double base = r->theta;
    *attention_factor = 1.0f;
    if (dim < 2 || !(base > 1)) return heed_fail(ctx, HEED_ERR_INVALID, "rope: dim %lld, theta %g", (long long)dim, base);
    switch (r->type) {
    case HEED_ROPE_DEFAULT:
        rope_default(inv_freq, base, dim);
        return HEED_OK;
    case HEED_ROPE_LINEAR:
        rope_default(inv_freq, base, dim);
        for (int64_t i = 0; i < half; i++) inv_freq[i] /= (float)r->factor;
        return HEED_OK;
    case HEED_ROPE_DYNAMIC: {
        if (dim <= 2) return heed_fail(ctx, HEED_ERR_INVALID, "rope dynamic: rotary dim %lld must exceed 2", (long long)dim);
        double max_pos = (double)cfg->max_pos, n = seq_len > cfg->max_pos ? (double)seq_len : max_pos;
        double b = base * pow((r->factor * n / max_pos) - (r->factor - 1), (double)dim / (double)(dim - 2));
        rope_default(inv_freq, b, dim);
        return HEED_OK;
    }
    case HEED_ROPE_YARN: {
        double factor = r->factor, orig = (double)cfg->max_pos;
        /* An explicit original length redefines the factor as the ratio of the two lengths. */
        if (r->original_max_pos > 0) {
            orig = (double)r->original_max_pos;
            factor = (double)cfg->max_pos / orig;
        }
        double af = r->attention_factor;
        if (af == 0)
            af = r->mscale != 0 && r->mscale_all_dim != 0
                     ? yarn_mscale(factor, r->mscale) / yarn_mscale(factor, r->mscale_all_dim)
                     : yarn_mscale(factor, 1.0);
        double beta_fast = r->beta_fast != 0 ? r->beta_fast : 32, beta_slow = r->beta_slow != 0 ? r->beta_slow : 1;
        double low = yarn_correction_dim(beta_fast, dim, base, orig);
        double high = yarn_correction_dim(beta_slow, dim, base, orig);
        if (r->truncate) {
            low = floor(low);
            high = ceil(high);
        }
        low = low > 0 ? low : 0;
        high = high < (double)(dim - 1) ? high : (double)(dim - 1);
        if (low == high) high += 0.001; /* transformers: prevent a singular ramp */
        for (int64_t i = 0; i < half; i++) {
            float pos = powf((float)base, (float)(2 * i) / (float)dim);
            float extra = 1.0f / pos, inter = 1.0f / ((float)factor * pos);
            float ramp = ((float)i - (float)low) / (float)(high - low);
            ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
            float extra_w = 1 - ramp;
            inv_freq[i] = inter * (1 - extra_w) + extra * extra_w;
        }
        *attention_factor = (float)af;
        return HEED_OK;
    }
    case HEED_ROPE_LLAMA3: {
        rope_default(inv_freq, base, dim);
        double old = (double)r->original_max_pos, lf = r->low_freq_factor, hf = r->high_freq_factor;
        float low_wl = (float)(old / lf), high_wl = (float)(old / hf);
        for (int64_t i = 0; i < half; i++) {
            float f = inv_freq[i], wavelen = (float)(2 * M_PI) / f;
            float scaled = wavelen > low_wl ? f / (float)r->factor : f;
            float smooth = ((float)old / wavelen - (float)lf) / (float)(hf - lf);
            float smoothed = (1 - smooth) * scaled / (float)r->factor + smooth * scaled;
            int medium = !(wavelen < high_wl) && !(wavelen > low_wl);
            inv_freq[i] = medium ? smoothed : scaled;
        }
        return HEED_OK;
    }
    }
    return heed_fail(ctx, HEED_ERR_INVALID, "rope: unknown type %d", (int)r->type);
}
