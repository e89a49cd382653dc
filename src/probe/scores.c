/* scores.c — head scores from captured attention maps and streaming statistics: sink importance and
 * Sink^eps, ACT hidden sinks, TransformerLens pattern scores (previous token, duplicate, induction),
 * active/dormant measures, map similarity and the retrieval-head copy count. Definitions: docs/analysis.md. */
#include "core/core.h"

#include <math.h>

void heed_score_sink_alpha(float *alpha, const float *recv, int64_t T, int causal)
{
    for (int64_t k = 0; k < T; k++) alpha[k] = (float)((double)recv[k] / (double)(causal ? T - k : T));
}

double heed_score_sink_eps(const float *alpha, int64_t n, double eps)
{
    int64_t above = 0;
    for (int64_t i = 0; i < n; i++) above += alpha[i] > eps;
    return n > 0 ? (double)above / (double)n : 0.0;
}

int64_t heed_score_hidden_sinks(int64_t *sinks, const float *s, int64_t T, double threshold)
{
    int64_t n = 0;
    for (int64_t j = 1; j < T; j++)
        if (s[j] > threshold) sinks[n++] = j;
    return n;
}

/* P[i][j] of heed_pattern kind over tokens. */
static int pattern_at(heed_pattern kind, const int32_t *tokens, int64_t i, int64_t j)
{
    switch (kind) {
    case HEED_PATTERN_PREV_TOKEN: return j == i - 1;
    case HEED_PATTERN_DUPLICATE: return j < i && tokens[j] == tokens[i];
    case HEED_PATTERN_INDUCTION: return j >= 1 && j <= i && tokens[j - 1] == tokens[i];
    }
    return 0;
}

double heed_score_pattern(double *row_mean, const float *A, const int32_t *tokens, int64_t T, heed_pattern kind)
{
    double hit = 0.0, total = 0.0, rows = 0.0;
    int64_t n_rows = 0;
    for (int64_t i = 0; i < T; i++) {
        double row = 0.0;
        int any = 0;
        for (int64_t j = 0; j < T; j++) {
            total += A[i * T + j];
            if (pattern_at(kind, tokens, i, j)) row += A[i * T + j], any = 1;
        }
        hit += row;
        if (any) rows += row, n_rows++;
    }
    if (row_mean) *row_mean = n_rows ? rows / (double)n_rows : 0.0;
    return total != 0.0 ? hit / total : 0.0;
}

void heed_induction_input(int32_t *ids, int32_t bos, int64_t n, int32_t lo, int32_t hi, uint64_t seed)
{
    uint64_t state = seed;
    ids[0] = bos;
    for (int64_t i = 0; i < n; i++) {
        int32_t r;
        do r = lo + (int32_t)(heed_rng_next(&state) % (uint64_t)(hi - lo));
        while (r == bos);
        ids[1 + i] = ids[1 + n + i] = r;
    }
}

double heed_score_first_ratio(const float *x, int64_t n)
{
    double rest = 0.0;
    for (int64_t i = 1; i < n; i++) rest += x[i];
    rest /= (double)(n - 1);
    return rest != 0.0 ? x[0] / rest : 0.0;
}

double heed_score_output_change(const float *a, const float *b, int64_t n, int64_t d)
{
    double sum = 0.0;
    for (int64_t t = 0; t < n; t++) {
        double diff = 0.0, ref = 0.0;
        for (int64_t i = 0; i < d; i++) {
            double e = (double)b[t * d + i] - a[t * d + i];
            diff += e * e;
            ref += (double)a[t * d + i] * a[t * d + i];
        }
        if (ref > 0.0) sum += sqrt(diff / ref);
    }
    return n > 0 ? sum / (double)n : 0.0;
}

double heed_score_cosine(const float *x, const float *y, int64_t n)
{
    double xy = 0.0, xx = 0.0, yy = 0.0;
    for (int64_t i = 0; i < n; i++) xy += (double)x[i] * y[i], xx += (double)x[i] * x[i], yy += (double)y[i] * y[i];
    return xx > 0.0 && yy > 0.0 ? xy / sqrt(xx * yy) : 0.0;
}

void heed_score_retrieval_step(float *score, const int32_t *top1, int64_t n, const int32_t *prompt,
                               int64_t needle_start, int64_t needle_len, int32_t generated)
{
    for (int64_t h = 0; h < n; h++) {
        int64_t j = top1[h];
        if (j >= needle_start && j < needle_start + needle_len && prompt[j] == generated)
            score[h] += (float)(1.0 / (double)needle_len);
    }
}
