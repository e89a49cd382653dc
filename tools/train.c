/* train.c — `heed train`: trains a Llama-architecture model with a chosen token mixer on a text corpus
 * (through a tokenizer), a token file, or one of the synthetic tasks; progress on stderr, a CSV log of
 * loss and evaluation metrics, and checkpoints in the Hugging Face layout (resumable exactly). */
#include "cli_util.h"
#include "commands.h"
#include "heed.h"
#include "io/io.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int usage(FILE *f, int rc)
{
    fprintf(f,
        "usage: heed train -o DIR (--text FILE --tokenizer DIR | --data FILE.tok | --task KIND) [options]\n"
        "       heed train -o DIR --resume [--steps N ...]      continue the checkpoint in DIR exactly\n"
        "data:\n"
        "  --text FILE --tokenizer TOKDIR  a UTF-8 corpus encoded with TOKDIR/tokenizer.json; documents\n"
        "                      are separated by blank lines and each ends with EOS (tokenizer_config.json's\n"
        "                      eos_token); each row starts with BOS when the tokenizer adds one\n"
        "  --data FILE.tok     a token file (docs/training.md)\n"
        "  --heldout F         fraction of the corpus/token file held out for evaluation (0.01)\n"
        "  --repeat-frac P     share of text rows holding a span of 8..T/2 tokens twice in a row, at a random\n"
        "                      place (teaches copying from context; 0)\n"
        "  --repeat-shuffle    shuffle the span first, so that memorising the corpus cannot predict it\n"
        "  --task mqar|backcopy|bursty|repeat   a synthetic task with the papers' defaults, and\n"
        "  --task-vocab V --pairs N --triggers K --copies-only --classes K --labels L --burstiness B\n"
        "model (new runs):\n"
        "  --layers 4 --hidden 256 --heads 8 --kv-heads 4 --head-dim HIDDEN/HEADS --ffn 768 --seq 256\n"
        "  --rope-theta 10000 --untied\n"
        "  --mixer softmax|sigmoid|sink|selective|moh|window|s2|linear|gconv   (softmax)\n"
        "  --window W (64)  --s2 BLOCK,LOCAL,STRIDE (16,2,4)  --moh SHARED,TOPK (2,4) --moh-balance 0.01\n"
        "  --conv-kernel K (the sequence length)\n"
        "optimisation:\n"
        "  --steps N (1000) --batch B (8) --accum A (1) --lr 1e-3 --min-lr LR/10 --warmup N/20\n"
        "  --wd 0.1 --clip 1 --beta2 0.95 --seed 1 --threads N\n"
        "output:\n"
        "  --log FILE.csv  --eval-every N (N/10) --eval-batches K (8) --save-every N (at the end only)\n"
        "  --stop-after N  run at most N steps now, then save a resumable checkpoint and exit (for\n"
        "                  time-limited machines; the schedule stays that of --steps)\n"
        "  --bf16          save the final weights in bf16 (no optimizer state: not resumable)\n"
        "Progress (step, loss, lr, tokens/s, ETA) goes to stderr.\n");
    return rc;
}

typedef struct opts {
    const char *out, *text, *tokdir, *data, *task, *log, *mixer;
    int resume, untied, bf16, n_threads, copies_only, repeat_shuffle;
    double heldout, lr, min_lr, wd, clip, beta2, rope_theta, moh_balance, repeat_frac;
    int64_t layers, hidden, heads, kv_heads, head_dim, ffn, seq, window, conv_kernel, moh[2], s2[3];
    int64_t steps, batch, accum, warmup, seed, eval_every, eval_batches, save_every, stop_after;
    int64_t task_vocab, pairs, triggers, classes, labels, burstiness;
} opts;

/* A number flag: whole numbers in [lo, hi] (or any finite number in [lo, hi] when !whole). */
static int num_flag(double *v, const char *flag, const char *arg, double lo, double hi, int whole)
{
    if (!arg) {
        fprintf(stderr, "heed train: %s needs a value\n", flag);
        return 0;
    }
    if (!cli_parse_num(v, arg) || !(*v >= lo && *v <= hi) || (whole && *v != floor(*v))) {
        fprintf(stderr, "heed train: %s %s: expected %s in [%g, %g]\n", flag, arg, whole ? "a whole number" : "a number",
                lo, hi);
        return 0;
    }
    return 1;
}

/* Comma-separated whole numbers into out [n]. */
static int list_flag(int64_t *out, int n, const char *flag, const char *arg)
{
    const char *p = arg;
    for (int i = 0; i < n; i++) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < 0 || v > (1 << 24) || (i + 1 < n ? *end != ',' : *end != 0)) {
            fprintf(stderr, "heed train: %s %s: expected %d comma-separated whole numbers\n", flag, arg, n);
            return 0;
        }
        out[i] = v;
        p = end + 1;
    }
    return 1;
}

static int parse(opts *o, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double x;
        struct { const char *flag; int64_t *dst; double lo, hi; } ints[] = {
            {"--layers", &o->layers, 1, 512}, {"--hidden", &o->hidden, 1, 1 << 16}, {"--heads", &o->heads, 1, 512},
            {"--kv-heads", &o->kv_heads, 1, 512}, {"--head-dim", &o->head_dim, 2, 4096}, {"--ffn", &o->ffn, 1, 1 << 20},
            {"--seq", &o->seq, 2, 1 << 20}, {"--window", &o->window, 1, 1 << 20}, {"--conv-kernel", &o->conv_kernel, 1, 1 << 20},
            {"--steps", &o->steps, 0, 1e12}, {"--batch", &o->batch, 1, 1 << 20}, {"--accum", &o->accum, 1, 1 << 20},
            {"--warmup", &o->warmup, 0, 1e12}, {"--seed", &o->seed, 0, 9e15}, {"--eval-every", &o->eval_every, 0, 1e12},
            {"--eval-batches", &o->eval_batches, 0, 1 << 20}, {"--save-every", &o->save_every, 0, 1e12},
            {"--stop-after", &o->stop_after, 1, 1e12},
            {"--task-vocab", &o->task_vocab, 2, 1 << 24}, {"--pairs", &o->pairs, 1, 1 << 20},
            {"--triggers", &o->triggers, 1, 1 << 20}, {"--classes", &o->classes, 1, 1 << 20},
            {"--labels", &o->labels, 1, 1 << 20}, {"--burstiness", &o->burstiness, 1, 1 << 20}};
        struct { const char *flag; double *dst; double lo, hi; } reals[] = {
            {"--heldout", &o->heldout, 0, 0.99}, {"--lr", &o->lr, 0, 10}, {"--min-lr", &o->min_lr, 0, 10},
            {"--wd", &o->wd, 0, 10}, {"--clip", &o->clip, 0, 1e9}, {"--beta2", &o->beta2, 0, 0.99999},
            {"--rope-theta", &o->rope_theta, 1e-3, 1e12}, {"--moh-balance", &o->moh_balance, 0, 1e3},
            {"--repeat-frac", &o->repeat_frac, 0, 1}};
        struct { const char *flag; const char **dst; } strs[] = {
            {"-o", &o->out}, {"--text", &o->text}, {"--tokenizer", &o->tokdir}, {"--data", &o->data},
            {"--task", &o->task}, {"--log", &o->log}, {"--mixer", &o->mixer}};
        int done = 0;
        for (size_t k = 0; !done && k < sizeof ints / sizeof *ints; k++)
            if (!strcmp(a, ints[k].flag)) {
                if (!num_flag(&x, a, v, ints[k].lo, ints[k].hi, 1)) return 0;
                *ints[k].dst = (int64_t)x;
                done = 2;
            }
        for (size_t k = 0; !done && k < sizeof reals / sizeof *reals; k++)
            if (!strcmp(a, reals[k].flag)) {
                if (!num_flag(reals[k].dst, a, v, reals[k].lo, reals[k].hi, 0)) return 0;
                done = 2;
            }
        for (size_t k = 0; !done && k < sizeof strs / sizeof *strs; k++)
            if (!strcmp(a, strs[k].flag)) {
                if (!v) break;
                *strs[k].dst = v;
                done = 2;
            }
        if (done) {
            i++;
            continue;
        }
        if (!strcmp(a, "--resume")) o->resume = 1;
        else if (!strcmp(a, "--untied")) o->untied = 1;
        else if (!strcmp(a, "--bf16")) o->bf16 = 1;
        else if (!strcmp(a, "--copies-only")) o->copies_only = 1;
        else if (!strcmp(a, "--repeat-shuffle")) o->repeat_shuffle = 1;
        else if (!strcmp(a, "--threads") && v) {
            if (!cli_parse_threads(&o->n_threads, v)) {
                fprintf(stderr, "heed train: --threads %s: expected 1..4096\n", v);
                return 0;
            }
            i++;
        } else if (!strcmp(a, "--s2") && v) {
            if (!list_flag(o->s2, 3, a, v)) return 0;
            i++;
        } else if (!strcmp(a, "--moh") && v) {
            if (!list_flag(o->moh, 2, a, v)) return 0;
            i++;
        } else {
            fprintf(stderr, "heed train: unknown or incomplete argument %s (see heed train --help)\n", a);
            return 0;
        }
    }
    return 1;
}

/* Where batches come from: a token stream (text or token file) or a synthetic task. */
typedef struct source {
    heed_tokenizer *tok;
    heed_tokfile *tf;
    int32_t *ids;          /* the encoded text */
    heed_data *data;
    heed_task *task;
    int64_t vocab;         /* the vocabulary the data needs */
    int32_t bos;           /* prepended to every text row when >= 0 */
    int32_t eos;           /* appended to every document of a text when >= 0 */
    double repeat_frac;    /* share of text rows that repeat their first half (induction) */
    int repeat_shuffle;    /* shuffle that half first */
    int32_t *perm;         /* [T + 1] scratch: one row being built */
    int32_t *scratch_in, *scratch_tg;
} source;

static void source_free(source *s)
{
    heed_data_free(s->data);
    heed_task_free(s->task);
    heed_tokfile_close(s->tf);
    heed_tokenizer_free(s->tok);
    free(s->ids);
    free(s->scratch_in);
    free(s->scratch_tg);
    free(s->perm);
}

/* The whole file at path into *buf [*len], NUL-terminated (free with free()); 0 after printing why. */
static int read_all(heed_ctx *ctx, char **buf, size_t *len, const char *path)
{
    if (heed_read_file(ctx, buf, len, path, (size_t)1 << 31) == HEED_OK) return 1;
    fprintf(stderr, "heed train: %s\n", heed_ctx_error(ctx));
    return 0;
}

/* Encodes a text file into s->ids [*n]: documents are separated by a blank line; each is encoded
 * without special tokens and followed by EOS when the tokenizer has one (s->eos). */
static int encode_text(source *s, heed_ctx *ctx, const char *path, int64_t *n)
{
    size_t len;
    char *text;
    if (!read_all(ctx, &text, &len, path)) return 0;
    size_t cap = 0;
    *n = 0;
    heed_status st = HEED_OK;
    for (size_t at = 0; at < len && st == HEED_OK;) {
        const char *end = strstr(text + at, "\n\n");
        size_t doc_end = end ? (size_t)(end - text) + 1 : len; /* the document keeps its final newline */
        int32_t *ids = NULL;
        int64_t k = 0;
        st = heed_tokenize(ctx, &ids, &k, s->tok, text + at, doc_end - at, HEED_TOK_NO_TRUNCATE | HEED_TOK_NO_PAD);
        while (st == HEED_OK && (size_t)(*n + k + 1) > cap) {
            int32_t *grown = realloc(s->ids, sizeof(int32_t) * (cap = 2 * cap + (size_t)k + 4096));
            if (!grown) st = HEED_ERR_NOMEM;
            else s->ids = grown;
        }
        if (st == HEED_OK) {
            memcpy(s->ids + *n, ids, sizeof(int32_t) * (size_t)k);
            *n += k;
            if (s->eos >= 0 && k > 0) s->ids[(*n)++] = s->eos;
        }
        free(ids);
        at = doc_end;
        while (at < len && text[at] == '\n') at++; /* the blank line(s) between documents */
    }
    free(text);
    if (st != HEED_OK) fprintf(stderr, "heed train: %s: %s\n", path, st == HEED_ERR_NOMEM ? "out of memory" : heed_ctx_error(ctx));
    return st == HEED_OK;
}

/* The id of the token string named by key in TOKDIR/tokenizer_config.json (bos_token, eos_token), or -1. */
static int32_t config_token(heed_ctx *ctx, const heed_tokenizer *tok, const char *tokdir, int eos)
{
    char path[4096];
    size_t len;
    snprintf(path, sizeof path, "%s/tokenizer_config.json", tokdir);
    if (!heed_is_file(path)) return -1;
    char *json = NULL;
    read_all(ctx, &json, &len, path);
    heed_gen_config g;
    heed_gen_config_init(&g);
    int ok = json && heed_gen_config_parse(ctx, &g, json, len, path) == HEED_OK;
    free(json);
    const char *name = eos ? g.eos_token : g.bos_token;
    return ok && name[0] ? (int32_t)heed_tokenizer_token_id(tok, name) : -1;
}

static int task_kind(heed_task_kind *k, const char *name)
{
    static const char *const names[] = {"mqar", "backcopy", "bursty", "repeat"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, names[i])) {
            *k = (heed_task_kind)i;
            return 1;
        }
    fprintf(stderr, "heed train: --task %s: expected mqar, backcopy, bursty or repeat\n", name);
    return 0;
}

static int source_open(source *s, heed_ctx *ctx, const opts *o)
{
    s->bos = s->eos = -1;
    int n_src = !!o->text + !!o->data + !!o->task;
    if (n_src != 1 || (o->text && !o->tokdir)) {
        fprintf(stderr, "heed train: give exactly one of --text FILE (with --tokenizer DIR), --data FILE.tok, --task KIND\n");
        return 0;
    }
    heed_status st = HEED_OK;
    if (o->task) {
        heed_task_params p;
        heed_task_kind k;
        if (!task_kind(&k, o->task)) return 0;
        heed_task_params_init(&p, k);
        if (o->task_vocab) p.vocab = o->task_vocab;
        if (o->pairs) p.mqar_pairs = p.bursty_pairs = o->pairs;
        if (o->triggers) p.bb_triggers = o->triggers;
        if (o->copies_only) p.bb_copies_only = 1;
        if (o->classes) p.bursty_classes = o->classes;
        if (o->labels) p.bursty_labels = o->labels;
        if (o->burstiness) p.bursty_burstiness = o->burstiness;
        p.bb_table_seed = (uint64_t)o->seed;
        st = heed_task_create(ctx, &s->task, &p);
        if (st == HEED_OK) s->vocab = heed_task_vocab(s->task);
    } else if (o->data) {
        st = heed_tokfile_open(ctx, &s->tf, o->data);
        if (st == HEED_OK) s->vocab = (int64_t)heed_tokfile_max_id(s->tf) + 1;
        if (st == HEED_OK) st = heed_data_create_tokfile(ctx, &s->data, s->tf, s->vocab, o->heldout);
    } else {
        int64_t n = 0;
        st = heed_tokenizer_load(ctx, &s->tok, o->tokdir);
        if (st != HEED_OK) {
            fprintf(stderr, "heed train: %s\n", heed_ctx_error(ctx));
            return 0;
        }
        s->vocab = heed_tokenizer_n_ids(s->tok);
        s->bos = cli_tokenizer_bos(ctx, s->tok); /* the tokenizer's BOS, if its post-processor adds one */
        s->eos = config_token(ctx, s->tok, o->tokdir, 1);
        s->repeat_frac = o->repeat_frac;
        s->repeat_shuffle = o->repeat_shuffle;
        if (st == HEED_OK && !encode_text(s, ctx, o->text, &n)) return 0;
        if (st == HEED_OK)
        st = heed_data_create(ctx, &s->data, s->ids, n, s->vocab, o->heldout);
    }
    if (st != HEED_OK) fprintf(stderr, "heed train: %s\n", heed_ctx_error(ctx));
    return st == HEED_OK;
}

/* B training rows of T tokens. Text rows start with BOS (when the tokenizer has one), then T - 1
 * corpus tokens, as the runtime sees a prompt. With repeat_frac, that share of the rows (one draw each)
 * hold a span of L corpus tokens (L uniform in [8, (T - 1) / 2], at a uniform place) followed at once by
 * the same span again: the period and place vary, so only copying from context predicts the repeat
 * (with repeat_shuffle the span is shuffled first, so memorising the corpus cannot predict it either). */
static heed_status next_batch(source *s, heed_ctx *ctx, int32_t *in, int32_t *tg, int64_t B, int64_t T, uint64_t *rng)
{
    if (s->task) return heed_task_batch(ctx, in, tg, s->task, B, T, rng);
    if (s->bos < 0) return heed_data_batch(ctx, in, tg, s->data, B, T, rng);
    heed_status st = heed_data_batch(ctx, s->scratch_in, s->scratch_tg, s->data, B, T - 1, rng);
    int32_t *seq = s->perm; /* [T + 1]: BOS, the window, its next token */
    for (int64_t b = 0; st == HEED_OK && b < B; b++) {
        seq[0] = s->bos;
        memcpy(seq + 1, s->scratch_in + b * (T - 1), sizeof(int32_t) * (size_t)(T - 1));
        seq[T] = s->scratch_tg[b * (T - 1) + T - 2];
        int repeat = s->repeat_frac > 0 && T >= 17 && (double)(heed_rng_next(rng) >> 11) * 0x1p-53 < s->repeat_frac;
        if (repeat) {
            int64_t L = 8 + (int64_t)heed_rng_below(rng, (uint64_t)((T - 1) / 2 - 7));
            int64_t p = 1 + (int64_t)heed_rng_below(rng, (uint64_t)(T - 2 * L + 1)); /* p + 2L - 1 <= T */
            for (int64_t i = L - 1; s->repeat_shuffle && i > 0; i--) {
                int64_t j = (int64_t)heed_rng_below(rng, (uint64_t)i + 1);
                int32_t t = seq[p + i];
                seq[p + i] = seq[p + j];
                seq[p + j] = t;
            }
            memcpy(seq + p + L, seq + p, sizeof(int32_t) * (size_t)L);
        }
        memcpy(in + b * T, seq, sizeof(int32_t) * (size_t)T);
        memcpy(tg + b * T, seq + 1, sizeof(int32_t) * (size_t)T);
    }
    return st;
}

typedef struct eval_result {
    double loss, acc;      /* mean loss per counted target; share of counted targets predicted by argmax */
    int64_t counted;
} eval_result;

/* Held-out loss (text: the held-out windows, at most max_batches batches; tasks: max_batches fresh batches
 * drawn from a fixed evaluation seed) and accuracy of the argmax prediction on counted targets. */
static heed_status evaluate(eval_result *r, source *s, heed_ctx *ctx, heed_trainer *tr, int32_t *in, int32_t *tg,
                            float *logits, int64_t B, int64_t T, int64_t max_batches)
{
    memset(r, 0, sizeof *r);
    int64_t V = heed_trainer_config(tr)->vocab, n_batches = max_batches, correct = 0;
    uint64_t rng = 0x5eed;
    if (!s->task) {
        int64_t windows = heed_data_eval_windows(s->data, T);
        n_batches = (windows + B - 1) / B < max_batches ? (windows + B - 1) / B : max_batches;
    }
    double sum = 0;
    for (int64_t k = 0; k < n_batches; k++) {
        heed_status st = s->task ? heed_task_batch(ctx, in, tg, s->task, B, T, &rng)
                                 : heed_data_eval_batch(ctx, in, tg, s->data, B, T, k * B);
        float loss = 0;
        int64_t counted = 0;
        if (st == HEED_OK) st = heed_trainer_forward_backward(ctx, tr, &loss, &counted, logits, in, tg, B, T, 0.0f);
        if (st != HEED_OK) return st;
        sum += (double)loss * (double)counted;
        r->counted += counted;
        for (int64_t i = 0; i < B * T; i++) {
            if (tg[i] < 0) continue;
            const float *row = logits + i * V;
            int64_t best = 0;
            for (int64_t v = 1; v < V; v++) best = row[v] > row[best] ? v : best;
            correct += best == tg[i];
        }
    }
    if (r->counted) {
        r->loss = sum / (double)r->counted;
        r->acc = (double)correct / (double)r->counted;
    }
    return HEED_OK;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The model configuration of a new run from the flags and the data's vocabulary. */
static int model_config(heed_train_config *c, const opts *o, const source *s)
{
    heed_train_config_init(c);
    static const char *const mixers[] = {"softmax", "sigmoid", "sink", "selective", "moh", "window", "s2", "linear",
                                         "gconv"};
    int m = -1;
    for (int i = 0; i < 9; i++)
        if (!strcmp(o->mixer ? o->mixer : "softmax", mixers[i])) m = i;
    if (m < 0) {
        fprintf(stderr, "heed train: --mixer %s: expected one of softmax, sigmoid, sink, selective, moh, window, s2, "
                        "linear, gconv\n", o->mixer);
        return 0;
    }
    c->vocab = s->vocab;
    if (o->layers) c->n_layers = o->layers;
    if (o->hidden) c->hidden = o->hidden;
    if (o->heads) c->n_heads = o->heads;
    c->n_kv_heads = o->kv_heads ? o->kv_heads : o->heads ? o->heads : c->n_kv_heads;
    c->head_dim = o->head_dim ? o->head_dim : c->hidden / c->n_heads;
    if (o->ffn) c->intermediate = o->ffn;
    if (o->seq) c->max_seq = o->seq;
    if (o->rope_theta > 0) c->rope_theta = o->rope_theta;
    c->tie_embeddings = !o->untied;
    c->bos_id = s->bos;
    c->eos_id = s->eos;
    switch (m) {
    case 1: c->norm = HEED_NORM_SIGMOID; break;
    case 2: c->sink_logit = 1; break;
    case 3: c->selective = 1; break;
    case 4:
        c->moh_shared = o->moh[1] ? o->moh[0] : 2;
        c->moh_top_k = o->moh[1] ? o->moh[1] : 4;
        if (o->moh_balance >= 0) c->moh_balance = (float)o->moh_balance;
        break;
    case 5: c->window = o->window ? o->window : 64; break;
    case 6:
        c->s2_block = (int32_t)(o->s2[0] ? o->s2[0] : 16);
        c->s2_local_blocks = (int32_t)(o->s2[0] ? o->s2[1] : 2);
        c->s2_vert_stride = (int32_t)(o->s2[0] ? o->s2[2] : 4);
        break;
    case 7: c->mixer = HEED_MIXER_LINEAR, c->n_kv_heads = c->n_heads; break;
    case 8: c->mixer = HEED_MIXER_GCONV, c->conv_kernel = o->conv_kernel ? o->conv_kernel : c->max_seq; break;
    default: break;
    }
    return 1;
}

/* Copies TOKDIR/name into DIR/name when it exists. */
static int copy_file(heed_ctx *ctx, const char *from_dir, const char *to_dir, const char *name)
{
    char from[4096], to[4096];
    snprintf(from, sizeof from, "%s/%s", from_dir, name);
    snprintf(to, sizeof to, "%s/%s", to_dir, name);
    if (!heed_is_file(from)) return 1;
    size_t len;
    char *buf = NULL;
    read_all(ctx, &buf, &len, from);
    heed_status st = buf ? heed_write_file(ctx, to, buf, len) : HEED_ERR_IO;
    free(buf);
    if (buf && st != HEED_OK) fprintf(stderr, "heed train: copying %s: %s\n", from, heed_ctx_error(ctx));
    return st == HEED_OK;
}

static int save(heed_ctx *ctx, heed_trainer *tr, const opts *o, int bf16)
{
    heed_status st = heed_trainer_save(ctx, tr, o->out, bf16);
    if (st != HEED_OK) {
        fprintf(stderr, "heed train: saving %s: %s\n", o->out, heed_ctx_error(ctx));
        return 0;
    }
    return !o->tokdir || (copy_file(ctx, o->tokdir, o->out, "tokenizer.json") &&
                          copy_file(ctx, o->tokdir, o->out, "tokenizer_config.json"));
}

int cmd_train(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return usage(stdout, 0);
    opts o = {0};
    o.heldout = 0.01, o.lr = 1e-3, o.min_lr = -1, o.wd = 0.1, o.clip = 1.0, o.beta2 = 0.95, o.moh_balance = -1;
    o.steps = 1000, o.batch = 8, o.accum = 1, o.warmup = -1, o.seed = 1, o.eval_every = -1, o.eval_batches = 8;
    if (!parse(&o, argc, argv)) return 2;
    if (!o.out) {
        fprintf(stderr, "heed train: -o DIR is required (the checkpoint directory)\n");
        return 2;
    }
    if (o.min_lr < 0) o.min_lr = o.lr / 10;
    if (o.warmup < 0) o.warmup = o.steps / 20;
    if (o.eval_every < 0) o.eval_every = o.steps / 10 > 0 ? o.steps / 10 : 1;

    heed_ctx *ctx = NULL;
    heed_trainer *tr = NULL;
    source src = {0};
    FILE *log = NULL;
    float *logits = NULL;
    int32_t *in = NULL, *tg = NULL;
    int rc = 1;
    if (!cli_create_ctx(&ctx, o.n_threads, "train")) return 1;
    if (!source_open(&src, ctx, &o)) goto done;
    heed_status st;
    if (o.resume) {
        st = heed_trainer_load(ctx, &tr, o.out);
        if (st == HEED_OK && heed_trainer_config(tr)->vocab < src.vocab) {
            fprintf(stderr, "heed train: the data needs a vocabulary of %lld, the checkpoint has %lld\n",
                    (long long)src.vocab, (long long)heed_trainer_config(tr)->vocab);
            goto done;
        }
    } else {
        heed_train_config c;
        if (!model_config(&c, &o, &src)) goto done;
        st = heed_trainer_create(ctx, &tr, &c, (uint64_t)o.seed);
    }
    if (st != HEED_OK) {
        fprintf(stderr, "heed train: %s\n", heed_ctx_error(ctx));
        goto done;
    }
    const heed_train_config *c = heed_trainer_config(tr);
    int64_t B = o.batch, T = o.seq ? o.seq : c->max_seq, V = c->vocab;
    if (T > c->max_seq) {
        fprintf(stderr, "heed train: --seq %lld exceeds the model's %lld positions\n", (long long)T, (long long)c->max_seq);
        goto done;
    }
    in = malloc(sizeof(int32_t) * (size_t)(B * T));
    tg = malloc(sizeof(int32_t) * (size_t)(B * T));
    logits = malloc(sizeof(float) * (size_t)(B * T * V));
    src.scratch_in = malloc(sizeof(int32_t) * (size_t)(B * T));
    src.scratch_tg = malloc(sizeof(int32_t) * (size_t)(B * T));
    src.perm = malloc(sizeof(int32_t) * (size_t)(T + 1));
    if (!in || !tg || !logits || !src.scratch_in || !src.scratch_tg || !src.perm) {
        fprintf(stderr, "heed train: out of memory for a batch of %lld x %lld\n", (long long)B, (long long)T);
        goto done;
    }
    if (o.log) {
        log = fopen(o.log, o.resume ? "a" : "w");
        if (!log) {
            fprintf(stderr, "heed train: cannot write %s: %s\n", o.log, strerror(errno));
            goto done;
        }
        if (!o.resume) fprintf(log, "step,tokens,loss,lr,grad_norm,tokens_per_s,eval_loss,eval_ppl,eval_acc\n");
    }
    heed_optim opt;
    heed_optim_init(&opt);
    opt.weight_decay = (float)o.wd;
    opt.clip = (float)o.clip;
    opt.beta2 = (float)o.beta2;
    int64_t params = 0;
    for (int64_t i = 0; i < heed_trainer_n_params(tr); i++) params += heed_trainer_param(tr, i).n_elems;
    fprintf(stderr, "heed train: %lld parameters, vocab %lld, %lld layers, hidden %lld; %lld steps of %lld x %lld x %lld "
                    "tokens from step %lld\n", (long long)params, (long long)V, (long long)c->n_layers,
            (long long)c->hidden, (long long)o.steps, (long long)o.accum, (long long)B, (long long)T,
            (long long)heed_trainer_step_count(tr));
    double t_start = now_s(), t_last = t_start;
    int stopped = 0;
    int64_t first = heed_trainer_step_count(tr), print_every = o.steps / 100 > 0 ? o.steps / 100 : 1;
    for (int64_t step = first; step < o.steps; step++) {
        float lr = heed_lr_schedule(step, o.warmup, o.steps, (float)o.lr, (float)o.min_lr), loss_sum = 0, gn = 0;
        /* the batches of a step depend only on the seed and the step: a resumed run sees the same data */
        uint64_t rng = (uint64_t)o.seed * 0x9E3779B97F4A7C15ull + (uint64_t)step;
        for (int64_t k = 0; k < o.accum; k++) {
            float loss = 0;
            st = next_batch(&src, ctx, in, tg, B, T, &rng);
            if (st == HEED_OK)
                st = heed_trainer_forward_backward(ctx, tr, &loss, NULL, NULL, in, tg, B, T, 1.0f / (float)o.accum);
            if (st != HEED_OK) break;
            loss_sum += loss;
        }
        if (st == HEED_OK) st = heed_trainer_step(ctx, tr, &opt, lr, &gn);
        if (st != HEED_OK) {
            fprintf(stderr, "heed train: step %lld: %s\n", (long long)step, heed_ctx_error(ctx));
            goto done;
        }
        double t = now_s(), tok_s = (double)((step + 1 - first) * o.accum * B * T) / (t - t_start);
        float loss = loss_sum / (float)o.accum;
        eval_result ev = {NAN, NAN, 0};
        int do_eval = o.eval_batches > 0 && ((step + 1) % o.eval_every == 0 || step + 1 == o.steps);
        if (do_eval && (st = evaluate(&ev, &src, ctx, tr, in, tg, logits, B, T, o.eval_batches)) != HEED_OK) {
            fprintf(stderr, "heed train: evaluation: %s\n", heed_ctx_error(ctx));
            goto done;
        }
        if ((step + 1) % print_every == 0 || do_eval || step + 1 == o.steps || t - t_last > 30) {
            double eta = (double)(o.steps - step - 1) * (t - t_start) / (double)(step + 1 - first);
            fprintf(stderr, "step %lld/%lld  loss %.4f  lr %.2e  gnorm %.3f  %.0f tok/s  eta %.0fs", (long long)(step + 1),
                    (long long)o.steps, (double)loss, (double)lr, (double)gn, tok_s, eta);
            if (do_eval) fprintf(stderr, "  eval loss %.4f ppl %.2f acc %.3f", ev.loss, exp(ev.loss), ev.acc);
            fprintf(stderr, "\n");
            t_last = t;
        }
        if (log) {
            fprintf(log, "%lld,%lld,%.6f,%.6e,%.6f,%.1f", (long long)(step + 1),
                    (long long)((step + 1) * o.accum * B * T), (double)loss, (double)lr, (double)gn, tok_s);
            if (do_eval) fprintf(log, ",%.6f,%.4f,%.6f\n", ev.loss, exp(ev.loss), ev.acc);
            else fprintf(log, ",,,\n");
            fflush(log);
        }
        if (o.save_every > 0 && (step + 1) % o.save_every == 0 && step + 1 < o.steps && !save(ctx, tr, &o, 0)) goto done;
        if (o.stop_after > 0 && step + 1 - first >= o.stop_after && step + 1 < o.steps) {
            stopped = 1;
            break;
        }
    }
    if (!save(ctx, tr, &o, o.bf16 && !stopped)) goto done;
    fprintf(stderr, "heed train: saved %s\n", o.out);
    rc = 0;
done:
    if (log) fclose(log);
    free(in);
    free(tg);
    free(logits);
    source_free(&src);
    heed_trainer_free(tr);
    heed_ctx_free(ctx);
    return rc;
}
