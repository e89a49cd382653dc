/* run.c — `heed run`: prefill the prompt, then decode one token at a time through the KV cache, greedy or
 * sampled (heed_sample), until EOS or N new tokens; the text is streamed as generated, the prompt and
 * generation speeds go to stderr, and --print-ids ends stdout with the generated ids as one JSON array. */
#include "cli_util.h"
#include "commands.h"
#include "heed.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int usage(FILE *f, int rc)
{
    fprintf(f, "usage: heed run [-m MODEL] (-p TEXT | --ids IDS) [-n N] [--greedy] [--temp T] [--top-k K] [--top-p P]\n"
               "                [--min-p M] [--repeat-penalty R] [--seed S] [--kv full] [--print-ids] [--threads N]\n"
               "                [--rope-base THETA] [--attn-log-scale N0] [--intervene SPEC]...\n"
               "  Generates up to N (default 128) tokens after the prompt, stopping at EOS. -p needs\n"
               "  MODEL/tokenizer.json (special tokens added as Hugging Face `encode` does); --ids does not\n"
               "  (without a tokenizer no text is printed). Defaults come from generation_config.json:\n"
               "  greedy unless do_sample. Any of --temp/--top-k/--top-p/--min-p/--seed turns sampling on\n"
               "  (--temp 0 and --greedy turn it off); --repeat-penalty applies to both. Without --seed the\n"
               "  seed is random and printed on stderr. --print-ids: the generated ids (prompt excluded, EOS\n"
               "  included when reached) as one JSON array on the last stdout line.\n"
               "  --rope-base THETA: the RoPE base instead of config.json's rope_theta (context extension).\n"
               "  --attn-log-scale N0: attention logits of position p times max(1, log(p+1)/log(N0)).\n"
               CLI_INTERVENE_HELP);
    return rc;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Incremental detokenisation: text is printed only once the ids decode to it for good. Decoding a window
 * that starts a few tokens back keeps what decoders do at the start of a text (SentencePiece drops the
 * first space) out of the difference; text ending in U+FFFD is an unfinished UTF-8 character and waits;
 * so does a run of byte-fallback tokens (<0xNN>), which decodes as one group: "<0x39>" alone is "9", but
 * "<0x39><0xA1>" is two U+FFFD. */
typedef struct {
    const heed_tokenizer *tok;
    heed_ctx *ctx;
    int32_t *ids;         /* [n] the ids so far that name a token (decoding skips the others, as tokenizers does) */
    int64_t n;
    int64_t prefix, read; /* ids [prefix, read) decode to text already printed */
    int last;             /* the last byte printed, or -1 */
} stream;

static void stream_add(stream *s, int32_t id)
{
    if (heed_tokenizer_token(s->tok, id)) s->ids[s->n++] = id;
}

/* Prints what ids [prefix, n) add to ids [prefix, read); at the end (final) also an unfinished tail. */
static int stream_step(stream *s, int final)
{
    int64_t n = s->n;
    if (n == s->read) return 1;
    char *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    if (heed_detokenize(s->ctx, &a, &la, s->tok, s->ids + s->prefix, s->read - s->prefix, 1) != HEED_OK ||
        heed_detokenize(s->ctx, &b, &lb, s->tok, s->ids + s->prefix, n - s->prefix, 1) != HEED_OK) {
        fprintf(stderr, "heed run: %s\n", heed_ctx_error(s->ctx));
        free(a);
        return 0;
    }
    const char *last_tok = heed_tokenizer_token(s->tok, s->ids[n - 1]);
    int byte_run = last_tok && strlen(last_tok) == 6 && !strncmp(last_tok, "<0x", 3) && last_tok[5] == '>';
    int unfinished = byte_run || (lb >= 3 && !memcmp(b + lb - 3, "\xef\xbf\xbd", 3));
    if (lb > la && (final || !unfinished)) {
        size_t start = la;
        while (start < lb && ((unsigned char)b[start] & 0xc0) == 0x80) start++; /* never half a character */
        if (start < lb) {
            fwrite(b + start, 1, lb - start, stdout);
            fflush(stdout);
            s->last = (unsigned char)b[lb - 1];
        }
        s->prefix = s->read;
        s->read = n;
    }
    free(a);
    free(b);
    return 1;
}

int cmd_run(int argc, char **argv)
{
    const char *model = NULL, *text = NULL, *ids_arg = NULL, *kv = NULL;
    /* NAN: not given */
    double n_new = 128, temp = NAN, top_k = NAN, top_p = NAN, min_p = NAN, penalty = 1, seed = NAN, threads = 0,
           rope_base = NAN, log_n0 = NAN;
    int greedy = 0, print_ids = 0, sampling = 0;
    cli_interventions iv = {0};
    const struct {
        const char *name;
        double *v;
        int samples; /* giving it turns sampling on */
    } nums[] = {{"-n", &n_new, 0},        {"--threads", &threads, 0}, {"--repeat-penalty", &penalty, 0},
                {"--temp", &temp, 1},     {"--top-k", &top_k, 1},     {"--top-p", &top_p, 1},
                {"--min-p", &min_p, 1},   {"--seed", &seed, 1},       {"--rope-base", &rope_base, 0},
                {"--attn-log-scale", &log_n0, 0}};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(stdout, 0);
        if (!strcmp(a, "--greedy")) {
            greedy = 1;
            continue;
        }
        if (!strcmp(a, "--print-ids")) {
            print_ids = 1;
            continue;
        }
        if (!strcmp(a, "--intervene")) {
            if (!cli_add_intervention(&iv, v, "run")) return usage(stderr, 2);
            i++;
            continue;
        }
        const char **str = !strcmp(a, "-m") || !strcmp(a, "--model") ? &model
                           : !strcmp(a, "-p") || !strcmp(a, "--prompt") ? &text
                           : !strcmp(a, "--ids") ? &ids_arg
                           : !strcmp(a, "--kv") ? &kv
                           : NULL;
        size_t k = 0;
        while (!str && k < sizeof nums / sizeof nums[0] && strcmp(a, nums[k].name)) k++;
        int known = str || k < sizeof nums / sizeof nums[0];
        i++; /* the value */
        if (!known || !v || (!str && !cli_parse_num(nums[k].v, v))) {
            fprintf(stderr, "heed run: %s '%s'%s%s\n",
                    !known ? "unknown option" : v ? "not a number after" : "no value after", a, known && v ? ": " : "",
                    known && v ? v : "");
            return usage(stderr, 2);
        }
        if (str) *str = v;
        else sampling |= nums[k].samples;
    }
    if (!(n_new >= 0 && n_new <= 1e7) || n_new != floor(n_new) || !(threads >= 0 && threads <= 1024) ||
        threads != floor(threads) || !(penalty > 0) || !(isnan(temp) || temp >= 0) ||
        !(isnan(top_k) || (top_k >= 0 && top_k <= 1e9 && top_k == floor(top_k))) ||
        !(isnan(seed) || (seed >= 0 && seed <= 1.8e19 && seed == floor(seed)))) {
        fprintf(stderr, "heed run: -n (<= 10^7), --threads, --top-k and --seed take whole numbers >= 0, --temp a "
                        "number >= 0, --repeat-penalty a number > 0\n");
        return 2;
    }
    if (!cli_check_model_kv(&model, kv, "run")) return 2;
    heed_ctx *ctx = NULL;
    heed_model *m = NULL;
    heed_tokenizer *tok = NULL;
    int32_t *prompt = NULL, *all = NULL, *text_ids = NULL;
    float *logits = NULL;
    int64_t T = 0;
    int rc = 1;
    if (!cli_create_ctx(&ctx, (int)threads, "run")) goto done;
    if (!cli_load_model(&m, ctx, model, rope_base, log_n0, "run") || !cli_apply_interventions(&iv, ctx, m, "run"))
        goto done;
    const heed_config *c = heed_model_config(m);
    const heed_gen_config *gen = heed_model_gen_config(m);
    if (!heed_model_has_lm_head(m)) {
        fprintf(stderr, "heed run: %s is an encoder without an LM head: it cannot generate\n", c->model_type);
        goto done;
    }
    if (!cli_load_tokenizer(&tok, ctx, model, text != NULL, "run") ||
        !cli_input_ids(&prompt, &T, ctx, tok, text, ids_arg, "run"))
        goto done;
    if (T == 0 && gen->bos_id < 0) {
        fprintf(stderr, "heed run: the prompt is empty and the model has no bos_token_id to start from\n");
        goto done;
    }
    if (T == 0) {
        free(prompt);
        if (!(prompt = malloc(sizeof *prompt))) goto done;
        prompt[T++] = (int32_t)gen->bos_id;
    }
    int64_t N = (int64_t)n_new;
    if (c->pos == HEED_POS_LEARNED && T + N - 1 > c->max_pos) {
        N = c->max_pos - T + 1 > 0 ? c->max_pos - T + 1 : 0;
        fprintf(stderr, "heed run: note: %lld learned positions: at most %lld new tokens\n", (long long)c->max_pos,
                (long long)N);
    }

    heed_sample_params sp;
    heed_sample_params_init(&sp, gen);
    if (sampling) sp.greedy = 0;
    if (!isnan(temp)) sp.temperature = temp;
    if (!isnan(top_k)) sp.top_k = (int64_t)top_k;
    if (!isnan(top_p)) sp.top_p = top_p;
    if (!isnan(min_p)) sp.min_p = min_p;
    sp.repeat_penalty = penalty;
    if (greedy || temp == 0) sp.greedy = 1;
    uint64_t rng = !isnan(seed) ? (uint64_t)seed : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    if (!sp.greedy && isnan(seed)) fprintf(stderr, "heed run: seed %llu\n", (unsigned long long)rng);

    logits = malloc(sizeof(float) * (size_t)c->vocab);
    all = malloc(sizeof(int32_t) * (size_t)(T + N));
    text_ids = malloc(sizeof(int32_t) * (size_t)(T + N));
    if (!logits || !all || !text_ids) {
        fprintf(stderr, "heed run: out of memory\n");
        goto done;
    }
    memcpy(all, prompt, sizeof(int32_t) * (size_t)T);
    stream st = {tok, ctx, text_ids, 0, 0, 0, -1};
    for (int64_t i = 0; tok && i < T; i++) stream_add(&st, prompt[i]);
    st.prefix = st.n > 5 ? st.n - 5 : 0;
    st.read = st.n;
    double t0 = now_s();
    if (heed_model_forward(ctx, m, logits, NULL, prompt, NULL, T, 0, HEED_FWD_LAST_LOGITS) != HEED_OK) {
        fprintf(stderr, "heed run: %s\n", heed_ctx_error(ctx));
        goto done;
    }
    double t1 = now_s();
    int64_t n = T;
    while (n < T + N) {
        int32_t next;
        if (heed_sample(ctx, &next, logits, c->vocab, all, n, &sp, &rng) != HEED_OK) {
            fprintf(stderr, "heed run: %s\n", heed_ctx_error(ctx));
            goto done;
        }
        all[n++] = next;
        if (tok) stream_add(&st, next);
        if (tok && !stream_step(&st, 0)) goto done;
        int eos = 0;
        for (int e = 0; e < gen->n_eos; e++) eos |= next == gen->eos_ids[e];
        if (eos || n == T + N) break;
        if (heed_model_forward(ctx, m, logits, NULL, &next, NULL, 1, n - 1, HEED_FWD_LAST_LOGITS) != HEED_OK) {
            fprintf(stderr, "heed run: %s\n", heed_ctx_error(ctx));
            goto done;
        }
    }
    if (tok && !stream_step(&st, 1)) goto done;
    double t2 = now_s();
    if (st.last >= 0 && st.last != '\n') putchar('\n');
    if (!tok) fprintf(stderr, "heed run: note: %s has no tokenizer.json: no text printed\n", model);
    fprintf(stderr, "heed run: prompt %lld tokens in %.3f s (%.1f tokens/s); generation %lld tokens in %.3f s "
                    "(%.1f tokens/s)\n",
            (long long)T, t1 - t0, (double)T / (t1 - t0 > 0 ? t1 - t0 : 1e-9), (long long)(n - T), t2 - t1,
            (double)(n - T) / (t2 - t1 > 0 ? t2 - t1 : 1e-9));
    if (print_ids) {
        putchar('[');
        for (int64_t i = T; i < n; i++) printf("%s%d", i > T ? ", " : "", all[i]);
        printf("]\n");
    }
    rc = 0;
done:
    free(prompt);
    free(all);
    free(text_ids);
    free(logits);
    heed_tokenizer_free(tok);
    heed_model_free(m);
    heed_ctx_free(ctx);
    return rc;
}
