/* intervene.c — the attention-probability edits of heed_intervention (include/heed.h, docs/analysis.md):
 * pure functions on one query row of probabilities, used by the model runtime on the heads chosen with
 * heed_model_set_interventions. */
#include "model/model.h"

#include <math.h>

void heed_intervention_init(heed_intervention *iv, heed_edit kind, int64_t layer, int64_t head)
{
    static const double amount[] = {[HEED_EDIT_BOS] = 0.0, [HEED_EDIT_ACT] = 0.4, [HEED_EDIT_VAR] = 0.5,
                                    [HEED_EDIT_STEER] = 0.5, [HEED_EDIT_INHIBIT] = 0.01, [HEED_EDIT_MEAN] = 0.0};
    iv->kind = kind;
    iv->layer = layer;
    iv->head = head;
    iv->amount = amount[kind];
    iv->threshold = 0.1;
    iv->a = iv->b = 0;
}

/* The mass of p [Tk] on keys [a, min(b, Tk)). */
static double span_mass(const float *p, int64_t a, int64_t b, int64_t Tk)
{
    double m = 0.0;
    for (int64_t j = a; j < b && j < Tk; j++) m += p[j];
    return m;
}

void model_edit_row(float *p, const float *s, const uint8_t *sink, const heed_intervention *iv, int64_t Tk)
{
    const double x = iv->amount;
    switch (iv->kind) {
    case HEED_EDIT_BOS:
        if (s[0] == -INFINITY) return;
        for (int64_t j = 0; j < Tk; j++) p[j] = 0.0f;
        p[0] = 1.0f;
        return;
    case HEED_EDIT_ACT: {
        double freed = 0.0, rest = 0.0;
        for (int64_t j = 0; j < Tk; j++) {
            if (sink[j]) freed += (1.0 - x) * p[j];
            else rest += p[j];
        }
        if (rest <= 0.0 || freed <= 0.0) return;
        for (int64_t j = 0; j < Tk; j++)
            p[j] = (float)(sink[j] ? x * p[j] : p[j] + freed * p[j] / rest);
        return;
    }
    case HEED_EDIT_VAR: {
        const double mass = span_mass(p, iv->a, iv->b, Tk), move = x * p[0];
        if (mass <= 0.0 || move <= 0.0) return;
        p[0] = (float)(p[0] - move);
        for (int64_t j = iv->a; j < iv->b && j < Tk; j++) p[j] = (float)(p[j] + move * p[j] / mass);
        return;
    }
    case HEED_EDIT_STEER: {
        const double mass = span_mass(p, iv->a, iv->b, Tk);
        if (mass <= 0.0) return;
        for (int64_t j = 0; j < Tk; j++) {
            const int in = j >= iv->a && j < iv->b;
            p[j] = (float)((1.0 - x) * p[j] + (in ? x * p[j] / mass : 0.0));
        }
        return;
    }
    case HEED_EDIT_INHIBIT: {
        float mx = 0.0f;
        for (int64_t j = 0; j < Tk; j++) mx = p[j] > mx ? p[j] : mx;
        double sum = 0.0;
        for (int64_t j = 0; j < Tk; j++) {
            if (p[j] < x * mx) p[j] = 0.0f;
            sum += p[j];
        }
        for (int64_t j = 0; sum > 0.0 && j < Tk; j++) p[j] = (float)(p[j] / sum);
        return;
    }
    case HEED_EDIT_MEAN: /* edits the output, not p (model.c) */
        return;
    }
}
