/* test_train_data.c — the training data layer: token files round trip (16 and 32 bits) and damaged or
 * lying files are refused naming the file; the loader's windows are real consecutive slices of the
 * train part, its evaluation windows cover the held-out part exactly once; every synthetic task's rows
 * have the structure its definition states; everything is reproducible from a seed. */
#include "harness.h"
#include "heed.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/heed-test-data-XXXXXX";
static char path[256];

/* Writes the raw bytes [n] to path and expects heed_tokfile_open to refuse them with want. */
static void expect_refused(heed_ctx *ctx, const uint8_t *bytes, size_t n, heed_status want, const char *what)
{
    CHECK_OK(ctx, heed_write_file(ctx, path, bytes, n));
    heed_tokfile *f = NULL;
    heed_status s = heed_tokfile_open(ctx, &f, path);
    CHECK(s == want && !f, "%s: status %s", what, heed_status_name(s));
    CHECK(strstr(heed_ctx_error(ctx), path) != NULL, "%s: message '%s' does not name the file", what,
          heed_ctx_error(ctx));
    heed_tokfile_close(f);
}

static void test_tokfile(heed_ctx *ctx)
{
    int32_t ids[300];
    for (int bits = 16; bits <= 32; bits += 16) {
        for (int i = 0; i < 300; i++) ids[i] = (i * 7919) % 65536;
        if (bits == 32) ids[123] = 70000;
        CHECK_OK(ctx, heed_tokfile_write(ctx, path, ids, 300));
        heed_tokfile *f = NULL;
        CHECK_OK(ctx, heed_tokfile_open(ctx, &f, path));
        if (!f) return;
        CHECK(heed_tokfile_count(f) == 300 && heed_tokfile_bits(f) == bits, "count %lld bits %d",
              (long long)heed_tokfile_count(f), heed_tokfile_bits(f));
        int32_t mx = 0, same = 1;
        for (int i = 0; i < 300; i++) {
            mx = ids[i] > mx ? ids[i] : mx;
            same &= heed_tokfile_id(f, i) == ids[i];
        }
        CHECK(same, "%d-bit ids differ after the round trip", bits);
        CHECK(heed_tokfile_max_id(f) == mx, "max id %d, expected %d", heed_tokfile_max_id(f), mx);
        heed_tokfile_close(f);
    }
    /* An empty stream is a valid file. */
    CHECK_OK(ctx, heed_tokfile_write(ctx, path, NULL, 0));
    heed_tokfile *f = NULL;
    CHECK_OK(ctx, heed_tokfile_open(ctx, &f, path));
    CHECK(f && heed_tokfile_count(f) == 0 && heed_tokfile_max_id(f) == -1, "empty file");
    heed_tokfile_close(f);

    ids[5] = -3;
    CHECK(heed_tokfile_write(ctx, path, ids, 300) == HEED_ERR_INVALID, "a negative id is written");

    /* Damaged files: built from a good 16-bit image of 4 ids. */
    uint8_t good[HEED_TOKFILE_HEADER + 8] = {'H', 'E', 'E', 'D', 'T', 'O', 'K', 0, 1, 0, 0, 0, 16, 0, 0, 0, 4, 0, 0, 0,
                                             0, 0, 0, 0, 1, 0, 2, 0, 3, 0, 4, 1};
    uint8_t bad[sizeof good + 8];
    memcpy(bad, good, sizeof good);
    CHECK_OK(ctx, heed_write_file(ctx, path, good, sizeof good));
    CHECK_OK(ctx, heed_tokfile_open(ctx, &f, path));
    CHECK(f && heed_tokfile_count(f) == 4 && heed_tokfile_id(f, 3) == 260, "hand-made image: last id %d",
          f ? heed_tokfile_id(f, 3) : -1);
    heed_tokfile_close(f);
    expect_refused(ctx, good, sizeof good - 1, HEED_ERR_FORMAT, "truncated by one byte");
    expect_refused(ctx, good, 10, HEED_ERR_FORMAT, "shorter than the header");
    expect_refused(ctx, good, 0, HEED_ERR_FORMAT, "empty file");
    bad[16] = 5;
    expect_refused(ctx, bad, sizeof good, HEED_ERR_FORMAT, "count larger than the data");
    bad[16] = 3;
    expect_refused(ctx, bad, sizeof good, HEED_ERR_FORMAT, "count smaller than the data");
    bad[16] = 4;
    bad[23] = 0x80; /* a count near 2^63 must not overflow the size check */
    expect_refused(ctx, bad, sizeof good, HEED_ERR_FORMAT, "huge count");
    memcpy(bad, good, sizeof good);
    bad[0] = 'X';
    expect_refused(ctx, bad, sizeof good, HEED_ERR_FORMAT, "bad magic");
    memcpy(bad, good, sizeof good);
    bad[8] = 2;
    expect_refused(ctx, bad, sizeof good, HEED_ERR_FORMAT, "unknown version");
    memcpy(bad, good, sizeof good);
    bad[12] = 8;
    expect_refused(ctx, bad, sizeof good, HEED_ERR_FORMAT, "8 bits per id");
    memcpy(bad, good, sizeof good);
    bad[12] = 32; /* 4 ids of 32 bits = 16 bytes: lengthen the body and put 2^31 in the last id */
    memset(bad + HEED_TOKFILE_HEADER, 0, 16);
    bad[HEED_TOKFILE_HEADER + 15] = 0x80;
    expect_refused(ctx, bad, HEED_TOKFILE_HEADER + 16, HEED_ERR_FORMAT, "a 32-bit id of 2^31");
    unlink(path);
    CHECK(heed_tokfile_open(ctx, &f, path) == HEED_ERR_IO && strstr(heed_ctx_error(ctx), path), "missing file: %s",
          heed_ctx_error(ctx));
}

enum { N_IDS = 1000, BT = 64, TT = 16 };

static void test_loader(heed_ctx *ctx)
{
    /* ids[i] = i, so every id names its own position. */
    static int32_t ids[N_IDS], in[BT * TT], tg[BT * TT], in2[BT * TT], tg2[BT * TT];
    for (int i = 0; i < N_IDS; i++) ids[i] = i;
    heed_data *d = NULL;
    CHECK_OK(ctx, heed_data_create(ctx, &d, ids, N_IDS, N_IDS, 0.1));
    if (!d) return;
    CHECK(heed_data_n_train(d) == 900 && heed_data_n_heldout(d) == 100, "split %lld / %lld",
          (long long)heed_data_n_train(d), (long long)heed_data_n_heldout(d));

    /* Training windows: consecutive ids of the train part, targets shifted by one; the first and the last
     * possible start are both drawn over many rows. */
    uint64_t rng = 42;
    int ok = 1, seen_first = 0, seen_last = 0;
    for (int rep = 0; rep < 400; rep++) {
        CHECK_OK(ctx, heed_data_batch(ctx, in, tg, d, BT, TT, &rng));
        for (int b = 0; b < BT; b++) {
            int32_t s = in[b * TT];
            seen_first |= s == 0;
            seen_last |= s == 900 - TT - 1;
            for (int t = 0; t < TT; t++) ok &= in[b * TT + t] == s + t && tg[b * TT + t] == s + t + 1;
            ok &= s >= 0 && tg[b * TT + TT - 1] < 900;
        }
    }
    CHECK(ok, "a training window is not a consecutive slice of the train part");
    CHECK(seen_first && seen_last, "starts 0 and n_train - T - 1 drawn: %d %d", seen_first, seen_last);

    /* Determinism: the same seed gives the same batch, from memory or from a token file. */
    CHECK_OK(ctx, heed_tokfile_write(ctx, path, ids, N_IDS));
    heed_tokfile *f = NULL;
    heed_data *df = NULL;
    CHECK_OK(ctx, heed_tokfile_open(ctx, &f, path));
    if (f) CHECK_OK(ctx, heed_data_create_tokfile(ctx, &df, f, N_IDS, 0.1));
    if (df) {
        uint64_t r1 = 7, r2 = 7, r3 = 8;
        CHECK_OK(ctx, heed_data_batch(ctx, in, tg, d, BT, TT, &r1));
        CHECK_OK(ctx, heed_data_batch(ctx, in2, tg2, df, BT, TT, &r2));
        CHECK(!memcmp(in, in2, sizeof in) && !memcmp(tg, tg2, sizeof tg) && r1 == r2, "seed 7: memory and file differ");
        CHECK_OK(ctx, heed_data_batch(ctx, in2, tg2, df, BT, TT, &r3));
        CHECK(memcmp(in, in2, sizeof in) != 0, "seeds 7 and 8 give the same batch");
        heed_data *e = NULL;
        CHECK(heed_data_create_tokfile(ctx, &e, f, N_IDS - 1, 0.1) == HEED_ERR_INVALID && !e, "id 999 in vocab 999");
    }
    heed_data_free(df);
    heed_tokfile_close(f);
    unlink(path);

    /* Evaluation: ceil(99 / 16) = 7 windows, in batches of 3 (the last padded); every held-out id after the
     * first is a target exactly once, with its predecessor as input. */
    int64_t W = heed_data_eval_windows(d, TT);
    CHECK(W == 7, "%lld eval windows", (long long)W);
    int hits[N_IDS] = {0};
    ok = 1;
    for (int64_t first = 0; first < W; first += 3) {
        CHECK_OK(ctx, heed_data_eval_batch(ctx, in, tg, d, 3, TT, first));
        for (int i = 0; i < 3 * TT; i++) {
            if (tg[i] < 0) {
                ok &= in[i] == 0;
                continue;
            }
            ok &= tg[i] > 900 && tg[i] < N_IDS && in[i] == tg[i] - 1;
            if (tg[i] >= 0 && tg[i] < N_IDS) hits[tg[i]]++;
        }
    }
    CHECK(ok, "an eval position is not (id, next id) of the held-out part, or padding is not (0, -1)");
    int cover = 1;
    for (int i = 0; i < N_IDS; i++) cover &= hits[i] == (i > 900);
    CHECK(cover, "the eval windows do not cover ids 901..999 exactly once");

    /* Errors. */
    CHECK(heed_data_batch(ctx, in, tg, d, 1, 900, &rng) == HEED_ERR_INVALID, "a window longer than the train part");
    heed_data *e = NULL;
    CHECK(heed_data_create(ctx, &e, ids, N_IDS, N_IDS - 1, 0.1) == HEED_ERR_INVALID, "id out of the vocabulary");
    CHECK(heed_data_create(ctx, &e, ids, N_IDS, N_IDS, 1.0) == HEED_ERR_INVALID, "heldout_frac 1");
    CHECK(!e, "a refused create left an object");
    heed_data_free(d);
}

/* Runs the task p for B rows of length T with two equal seeds: the batches must agree. Returns the task. */
static heed_task *make_batch(heed_ctx *ctx, const heed_task_params *p, int32_t *in, int32_t *tg, int64_t B, int64_t T,
                             uint64_t seed)
{
    heed_task *task = NULL;
    CHECK_OK(ctx, heed_task_create(ctx, &task, p));
    if (!task) return NULL;
    int32_t *in2 = malloc(sizeof(int32_t) * (size_t)(B * T)), *tg2 = malloc(sizeof(int32_t) * (size_t)(B * T));
    uint64_t r1 = seed, r2 = seed;
    CHECK_OK(ctx, heed_task_batch(ctx, in, tg, task, B, T, &r1));
    CHECK_OK(ctx, heed_task_batch(ctx, in2, tg2, task, B, T, &r2));
    CHECK(!memcmp(in, in2, sizeof(int32_t) * (size_t)(B * T)) && !memcmp(tg, tg2, sizeof(int32_t) * (size_t)(B * T)),
          "task %d: the same seed gives different batches", (int)p->kind);
    int in_range = 1;
    for (int64_t i = 0; i < B * T; i++)
        in_range &= in[i] >= 0 && in[i] < heed_task_vocab(task) && tg[i] >= -1 && tg[i] < heed_task_vocab(task);
    CHECK(in_range, "task %d: an id outside [0, vocab)", (int)p->kind);
    free(in2);
    free(tg2);
    return task;
}

static void expect_invalid(heed_ctx *ctx, const heed_task_params *p, int64_t T, const char *field)
{
    heed_task *task = NULL;
    heed_status s = heed_task_create(ctx, &task, p);
    if (s == HEED_OK) {
        int32_t in[64], tg[64];
        uint64_t rng = 1;
        s = T <= 64 ? heed_task_batch(ctx, in, tg, task, 1, T, &rng) : HEED_OK;
    }
    CHECK(s == HEED_ERR_INVALID && strstr(heed_ctx_error(ctx), field), "%s: status %s, message '%s'", field,
          heed_status_name(s), heed_ctx_error(ctx));
    heed_task_free(task);
}

static void test_mqar(heed_ctx *ctx)
{
    enum { B = 200, T = 128 };
    static int32_t in[B * T], tg[B * T];
    heed_task_params p;
    heed_task_params_init(&p, HEED_TASK_MQAR);
    const int64_t V = p.vocab, N = p.mqar_pairs;
    heed_task *task = make_batch(ctx, &p, in, tg, B, T, 3);
    CHECK(task && heed_task_vocab(task) == 8192 && N == 8, "MQAR defaults");
    int ok = 1, first_slot = 0, last_slot = 0;
    for (int b = 0; b < B; b++) {
        const int32_t *x = in + b * T, *y = tg + b * T;
        int queried[8] = {0};
        for (int i = 0; i < N; i++) {
            ok &= x[2 * i] >= 1 && x[2 * i] < V / 2 && x[2 * i + 1] >= V / 2 && x[2 * i + 1] < V;
            for (int j = 0; j < i; j++) ok &= x[2 * i] != x[2 * j] && x[2 * i + 1] != x[2 * j + 1];
        }
        for (int t = 0; t < T; t++) {
            if (y[t] < 0) continue;
            ok &= t >= 2 * N && (t - 2 * N) % 2 == 0;
            int pair = -1;
            for (int i = 0; i < N; i++)
                if (x[2 * i] == x[t]) pair = i;
            ok &= pair >= 0 && y[t] == x[2 * pair + 1];
            if (pair >= 0) queried[pair]++;
            first_slot += t == 2 * N;
            last_slot += t == T - 2;
        }
        for (int i = 0; i < N; i++) ok &= queried[i] == 1;
    }
    CHECK(ok, "an MQAR row breaks keys in [1, V/2), values in [V/2, V), or one query per key with its value");
    /* p(g) ~ (g + 1)^-0.99: the first gap is drawn far more often than the last. */
    CHECK(first_slot > 4 * last_slot, "gap 0 drawn %d times, the last gap %d", first_slot, last_slot);
    heed_task_free(task);
    expect_invalid(ctx, &p, 30, "T 30");
    expect_invalid(ctx, &p, 33, "T 33");
    p.mqar_pairs = 4096; /* only 4095 keys in [1, 4096) */
    expect_invalid(ctx, &p, 0, "vocab");
}

static void test_backcopy(heed_ctx *ctx)
{
    enum { B = 32, T = 256 };
    static int32_t in[B * T], tg[B * T], in2[B * T], tg2[B * T];
    heed_task_params p;
    heed_task_params_init(&p, HEED_TASK_BACKCOPY);
    const int32_t K = (int32_t)p.bb_triggers;
    heed_task *task = make_batch(ctx, &p, in, tg, B, T, 5);
    CHECK(task && heed_task_vocab(task) == 64 && K == 3, "BACKCOPY defaults");
    int ok = 1, copies = 0;
    for (int b = 0; b < B; b++) {
        const int32_t *x = in + b * T, *y = tg + b * T;
        ok &= x[0] == 0 && x[1] > K;
        for (int t = 0; t < T; t++) {
            if (t > 0) ok &= x[t] != 0;
            if (t + 1 < T) ok &= y[t] == x[t + 1];
            if (t >= 1 && x[t] <= K && x[t] > 0) {
                ok &= y[t] == x[t - 1] && x[t - 1] > K;
                copies++;
            }
        }
    }
    CHECK(ok, "a BACKCOPY row breaks <s> first, targets = next token, or copy-after-trigger");
    CHECK(copies > 0, "no trigger in %d rows", B);
    heed_task_free(task);

    /* copies_only keeps the same rows and counts only the copies. */
    p.bb_copies_only = 1;
    task = make_batch(ctx, &p, in2, tg2, B, T, 5);
    ok = !memcmp(in, in2, sizeof in);
    for (int i = 0; i < B * T; i++) ok &= tg2[i] == (in[i] >= 1 && in[i] <= K ? tg[i] : -1);
    CHECK(ok, "copies_only: not the same rows with only the copies counted");
    heed_task_free(task);
    /* The transition table comes from its own seed: another table seed gives other rows. */
    p.bb_copies_only = 0;
    p.bb_table_seed = 2;
    task = make_batch(ctx, &p, in2, tg2, B, T, 5);
    CHECK(memcmp(in, in2, sizeof in) != 0, "table seeds 1 and 2 give the same rows");
    heed_task_free(task);
    p.vocab = 4;
    expect_invalid(ctx, &p, 0, "vocab");
}

static void test_bursty(heed_ctx *ctx)
{
    enum { B = 300 };
    heed_task_params p;
    heed_task_params_init(&p, HEED_TASK_BURSTY);
    const int64_t K = p.bursty_classes, E = p.bursty_exemplars, L = p.bursty_labels, N = p.bursty_pairs,
                  R = p.bursty_burstiness, T = 2 * N + 1;
    static int32_t in[B * 17], tg[B * 17];
    heed_task *task = make_batch(ctx, &p, in, tg, B, T, 9);
    CHECK(task && heed_task_vocab(task) == K * E + L && T == 17, "BURSTY defaults: vocab %lld",
          task ? (long long)heed_task_vocab(task) : -1LL);
    int ok = 1;
    for (int b = 0; b < B; b++) {
        const int32_t *x = in + b * T, *y = tg + b * T;
        int64_t q = x[2 * N] / E, same = 0, distinct = 0;
        for (int i = 0; i < N; i++) {
            int64_t c = x[2 * i] / E;
            ok &= x[2 * i] < K * E && x[2 * i + 1] == K * E + c % L;
            same += c == q;
            int first = 1;
            for (int j = 0; j < i; j++) first &= x[2 * j] / E != c;
            distinct += first;
        }
        ok &= same == R && distinct == N / R && x[2 * N] < K * E;
        for (int t = 0; t < T; t++) ok &= y[t] == (t == 2 * N ? K * E + q % L : -1);
    }
    CHECK(ok, "a bursty row: the query's class not B times in context, or the target not its label");
    heed_task_free(task);
    p.bursty_p = 0; /* iid rows still have the item-label structure */
    task = make_batch(ctx, &p, in, tg, B, T, 9);
    heed_task_free(task);
    expect_invalid(ctx, &p, T + 2, "T 19");
    p.bursty_burstiness = 3;
    expect_invalid(ctx, &p, 0, "bursty_burstiness");
}

static void test_repeat(heed_ctx *ctx)
{
    enum { B = 16, T = 64, H = T / 2 };
    static int32_t in[B * T], tg[B * T];
    heed_task_params p;
    heed_task_params_init(&p, HEED_TASK_REPEAT);
    p.vocab = 1000;
    heed_task *task = make_batch(ctx, &p, in, tg, B, T, 11);
    int ok = 1;
    for (int b = 0; b < B; b++) {
        const int32_t *x = in + b * T, *y = tg + b * T;
        for (int t = 0; t < H; t++) ok &= x[H + t] == x[t] && y[t] == -1;
        for (int t = H; t < T; t++) ok &= y[t] == x[(t + 1) % H] && (t + 1 == T || y[t] == x[t + 1]);
    }
    CHECK(ok, "a repeat row: second half differs from the first, or its targets are not the continuation");
    heed_task_free(task);
    expect_invalid(ctx, &p, 7, "T 7");
    p.kind = (heed_task_kind)9;
    expect_invalid(ctx, &p, 0, "kind");
}

int main(void)
{
    heed_ctx *ctx = NULL;
    if (heed_ctx_create(&ctx, 1) != HEED_OK || !mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/ids.tok", dir);
    test_tokfile(ctx);
    test_loader(ctx);
    test_mqar(ctx);
    test_backcopy(ctx);
    test_bursty(ctx);
    test_repeat(ctx);
    rmdir(dir);
    heed_ctx_free(ctx);
    return t_done("test_train_data");
}
