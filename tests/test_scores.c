/* test_scores.c — the head scores of src/probe/scores.c on hand-built attention patterns whose answers are
 * known in closed form (a sink head, a hidden sink, a perfect induction head, a previous-token head, the
 * uniform causal map), each also against a slow recomputation straight from the definition; and the
 * induction input, the dormant measures, the cosine and the retrieval copy count on small cases. */
#include "harness.h"
#include "heed.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-6

/* Column sums of a [T, T] map, as heed_probe.recv accumulates them. */
static void col_sums(float *recv, const float *A, int64_t T)
{
    for (int64_t j = 0; j < T; j++) {
        double s = 0;
        for (int64_t i = 0; i < T; i++) s += A[i * T + j];
        recv[j] = (float)s;
    }
}

/* Sink head: row 0 all on key 0; row i >= 1 half on key 0, half spread over keys 1..i. alpha_0 =
 * (1 + (T-1)/2) / T; Sink^0.3 over a set of alphas; the bidirectional divisor. */
static void test_sink(void)
{
    enum { T = 16 };
    float A[T * T] = {0}, recv[T], alpha[T];
    A[0] = 1.0f;
    for (int64_t i = 1; i < T; i++) {
        A[i * T] = 0.5f;
        for (int64_t j = 1; j <= i; j++) A[i * T + j] = 0.5f / (float)i;
    }
    col_sums(recv, A, T);
    heed_score_sink_alpha(alpha, recv, T, 1);
    CHECK(fabs(alpha[0] - (1.0 + (T - 1) / 2.0) / T) < TOL, "alpha_0 %g", alpha[0]);
    for (int64_t k = 1; k < T; k++) { /* definition: mean over queries i >= k of A[i, k] */
        double s = 0;
        for (int64_t i = k; i < T; i++) s += A[i * T + k];
        CHECK(fabs(alpha[k] - s / (double)(T - k)) < TOL, "alpha_%lld %g vs %g", (long long)k, alpha[k], s / (T - k));
    }
    heed_score_sink_alpha(alpha, recv, T, 0);
    CHECK(fabs(alpha[0] - recv[0] / T) < TOL && fabs(alpha[T - 1] - recv[T - 1] / T) < TOL, "bidirectional alpha");
    const float heads[5] = {0.9f, 0.29f, 0.31f, 0.05f, 0.7f};
    CHECK(fabs(heed_score_sink_eps(heads, 5, 0.3) - 3.0 / 5.0) < TOL, "Sink^0.3 of 5 heads: %g",
          heed_score_sink_eps(heads, 5, 0.3));
    CHECK(heed_score_sink_eps(heads, 0, 0.3) == 0.0, "Sink^eps of no heads");
}

/* A hidden sink at key 3: every row i >= 3 gives it 0.3, key 0 gets 0.5, the rest spread evenly; ACT's
 * s_j (sum_i A_ij / (T - j)) picks {3}, never BOS although s_0 is the largest. */
static void test_hidden_sinks(void)
{
    enum { T = 24 };
    float A[T * T] = {0}, recv[T], s[T];
    for (int64_t i = 0; i < T; i++) {
        double rest = 1.0;
        A[i * T] = i ? 0.5f : 1.0f, rest -= A[i * T];
        if (i >= 3) A[i * T + 3] = 0.3f, rest -= 0.3;
        int64_t others = 0;
        for (int64_t j = 1; j <= i; j++) others += j != 3;
        for (int64_t j = 1; j <= i; j++)
            if (j != 3) A[i * T + j] = (float)(rest / (double)others);
    }
    col_sums(recv, A, T);
    heed_score_sink_alpha(s, recv, T, 1);
    int64_t sinks[T];
    int64_t n = heed_score_hidden_sinks(sinks, s, T, 0.1);
    CHECK(n == 1 && sinks[0] == 3, "hidden sinks: %lld found, first %lld", (long long)n, n ? (long long)sinks[0] : -1LL);
    CHECK(s[0] > s[3] && s[3] > 0.3 - TOL, "s_0 %g, s_3 %g", s[0], s[3]);
    CHECK(heed_score_hidden_sinks(sinks, s, T, 0.99) == 0, "threshold 0.99 found sinks");
}

/* head_detector's score straight from its definition: the pattern built as a matrix, then sum(A*P)/sum(A). */
static double pattern_ref(const float *A, const int32_t *tok, int64_t T, heed_pattern kind)
{
    double hit = 0, tot = 0;
    for (int64_t i = 0; i < T; i++)
        for (int64_t j = 0; j < T; j++) {
            int dup = j < i && tok[j] == tok[i];                             /* tril, diagonal removed */
            int dup_left = j >= 1 && j - 1 < i && tok[j - 1] == tok[i];       /* rolled right one key */
            int p = kind == HEED_PATTERN_PREV_TOKEN ? j == i - 1 : kind == HEED_PATTERN_DUPLICATE ? dup
                                                                 : dup_left && j <= i; /* tril again */
            hit += A[i * T + j] * p;
            tot += A[i * T + j];
        }
    return hit / tot;
}

/* On [BOS, r_1..r_n, r_1..r_n] (distinct r): a perfect induction head scores n / (2n + 1) (row mean 1),
 * a previous-token head (T - 1) / T and 0 as induction, a duplicate head its own n / (2n + 1); the
 * uniform causal map sum over the second half of 1/(i+1), over T. */
static void test_patterns(void)
{
    enum { N = 6, T = 2 * N + 1 };
    int32_t tok[T];
    tok[0] = 1;
    for (int i = 0; i < N; i++) tok[1 + i] = tok[1 + N + i] = 100 + 7 * i;
    float ind[T * T] = {0}, prev[T * T] = {0}, dup[T * T] = {0}, uni[T * T] = {0};
    for (int64_t i = 0; i < T; i++) {
        int64_t second = i >= N + 1;
        ind[i * T + (second ? i - N + 1 : 0)] = 1.0f;
        prev[i * T + (i ? i - 1 : 0)] = 1.0f;
        dup[i * T + (second ? i - N : 0)] = 1.0f;
        for (int64_t j = 0; j <= i; j++) uni[i * T + j] = 1.0f / (float)(i + 1);
    }
    double rm = -1, expect = (double)N / T;
    double s = heed_score_pattern(&rm, ind, tok, T, HEED_PATTERN_INDUCTION);
    CHECK(fabs(s - expect) < TOL && fabs(rm - 1.0) < TOL, "induction head: %g (row mean %g), expected %g", s, rm, expect);
    s = heed_score_pattern(&rm, prev, tok, T, HEED_PATTERN_PREV_TOKEN);
    CHECK(fabs(s - (T - 1.0) / T) < TOL && fabs(rm - 1.0) < TOL, "previous-token head: %g", s);
    s = heed_score_pattern(NULL, prev, tok, T, HEED_PATTERN_INDUCTION);
    CHECK(fabs(s) < TOL, "previous-token head as induction: %g", s);
    s = heed_score_pattern(NULL, dup, tok, T, HEED_PATTERN_DUPLICATE);
    CHECK(fabs(s - expect) < TOL, "duplicate head: %g", s);
    double u = 0;
    for (int64_t i = N + 1; i < T; i++) u += 1.0 / (double)(i + 1);
    s = heed_score_pattern(&rm, uni, tok, T, HEED_PATTERN_INDUCTION);
    CHECK(fabs(s - u / T) < TOL && fabs(rm - u / N) < TOL, "uniform map: %g (row mean %g), expected %g (%g)", s, rm, u / T,
          u / N);
    /* repeated tokens inside the sequence, every map and pattern against the definition */
    int32_t rep[T] = {1, 5, 5, 9, 5, 2, 9, 5, 5, 9, 5, 2, 9};
    const float *maps[4] = {ind, prev, dup, uni};
    for (int k = 0; k < 3; k++)
        for (int a = 0; a < 4; a++) {
            double got = heed_score_pattern(NULL, maps[a], rep, T, (heed_pattern)k);
            double ref = pattern_ref(maps[a], rep, T, (heed_pattern)k);
            CHECK(fabs(got - ref) < TOL, "pattern %d map %d: %g vs definition %g", k, a, got, ref);
        }
    float zero[T * T] = {0};
    CHECK(heed_score_pattern(&rm, zero, tok, T, HEED_PATTERN_INDUCTION) == 0.0 && rm == 0.0, "all-zero map");
}

/* The induction input: BOS, n ids in [lo, hi) other than BOS, the same n again; a seed reproduces it. */
static void test_induction_input(void)
{
    enum { N = 50 };
    int32_t a[2 * N + 1], b[2 * N + 1], c[2 * N + 1];
    heed_induction_input(a, 3, N, 2, 12, 7);
    heed_induction_input(b, 3, N, 2, 12, 7);
    heed_induction_input(c, 3, N, 2, 12, 8);
    int ok = a[0] == 3, seen[12] = {0};
    for (int i = 0; i < N; i++) {
        ok &= a[1 + i] == a[1 + N + i] && a[1 + i] >= 2 && a[1 + i] < 12 && a[1 + i] != 3;
        seen[a[1 + i]] = 1;
    }
    int distinct = 0;
    for (int i = 0; i < 12; i++) distinct += seen[i];
    CHECK(ok && distinct == 9, "induction input malformed (%d distinct ids of 9)", distinct);
    CHECK(!memcmp(a, b, sizeof a) && memcmp(a, c, sizeof a), "seeds: 7 twice differs or 7 and 8 agree");
}

/* Dormant measures, cosine, retrieval count on small known cases. */
static void test_small(void)
{
    const float v[4] = {1, 2, 4, 6};
    CHECK(fabs(heed_score_first_ratio(v, 4) - 0.25) < TOL, "first ratio %g", heed_score_first_ratio(v, 4));
    const float z[3] = {5, 0, 0};
    CHECK(heed_score_first_ratio(z, 3) == 0.0, "first ratio over zeros");
    const float a[6] = {3, 4, 0, 0, 0, 1}, b[6] = {3, 9, 1, 1, 0, 3};
    /* rows: |(0,5)|/|(3,4)| = 1; row 1 has a zero reference (counts 0); |(0,2)|/|(0,1)| = 2 -> mean 1 */
    CHECK(fabs(heed_score_output_change(a, b, 3, 2) - 1.0) < TOL, "output change %g", heed_score_output_change(a, b, 3, 2));
    const float x[3] = {1, 2, 3}, y[3] = {2, 4, 6}, o[3] = {3, 0, -1};
    CHECK(fabs(heed_score_cosine(x, y, 3) - 1.0) < TOL && fabs(heed_score_cosine(x, o, 3)) < TOL &&
              heed_score_cosine(x, z + 1, 2) == 0.0, "cosine");
    /* prompt with a needle at [4, 8): heads 0 and 2 copy, head 1 looks inside at the wrong token, head 3 outside */
    const int32_t prompt[10] = {1, 9, 9, 9, 40, 41, 42, 43, 9, 41};
    const int32_t top1[4] = {5, 6, 5, 9};
    float score[4] = {0};
    heed_score_retrieval_step(score, top1, 4, prompt, 4, 4, 41);
    heed_score_retrieval_step(score, top1, 4, prompt, 4, 4, 41);
    CHECK(score[0] == 0.5f && score[1] == 0.0f && score[2] == 0.5f && score[3] == 0.0f, "retrieval %g %g %g %g",
          score[0], score[1], score[2], score[3]);
}

int main(void)
{
    test_sink();
    test_hidden_sinks();
    test_patterns();
    test_induction_input();
    test_small();
    return t_done("test_scores");
}
