/* mc_eval.c — multiple-choice evaluation of a model: the JSON Lines reader of labelled items, lm-eval style
 * log-probability scoring of each choice after its prompt, accuracy counts, and the ranking and selection
 * rule of ACT's head search (include/heed.h, docs/analysis.md "ACT head search"). */
#include "core/core.h"
#include "io/io.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void heed_mc_free(heed_mc_set *set)
{
    if (!set) return;
    for (int64_t i = 0; i < set->n_items; i++) {
        heed_mc_item *it = &set->items[i];
        free(it->prompt);
        for (int64_t c = 0; it->choice && c < it->n_choices; c++) free(it->choice[c]);
        free(it->choice);
        free(it->n_choice);
    }
    free(set->items);
    free(set);
}

/* Where parse messages point: the file and the line. */
typedef struct mc_where {
    heed_ctx *ctx;
    const char *name;
    int64_t line;
} mc_where;

/* ids [*n] out (malloc'd) from a JSON array of whole numbers in [0, 2^31) (what names the field). */
static heed_status parse_ids(const mc_where *w, int32_t **ids, int64_t *n, const cJSON *a, const char *what)
{
    if (!cJSON_IsArray(a))
        return heed_fail(w->ctx, HEED_ERR_FORMAT, "%s:%lld: %s: expected an array of token ids", w->name,
                         (long long)w->line, what);
    int64_t len = cJSON_GetArraySize(a), k = 0;
    *ids = malloc(sizeof(int32_t) * (size_t)(len > 0 ? len : 1));
    if (!*ids) return heed_fail(w->ctx, HEED_ERR_NOMEM, "%s:%lld: out of memory", w->name, (long long)w->line);
    for (const cJSON *x = a->child; x; x = x->next, k++) {
        double v = cJSON_IsNumber(x) ? x->valuedouble : -1.0;
        if (!(v >= 0.0 && v < 2147483648.0 && v == floor(v)))
            return heed_fail(w->ctx, HEED_ERR_FORMAT, "%s:%lld: %s[%lld]: expected a token id (a whole number 0 .. "
                             "2^31 - 1)", w->name, (long long)w->line, what, (long long)k);
        (*ids)[k] = (int32_t)v;
    }
    *n = k;
    return HEED_OK;
}

/* ids [*n] out (malloc'd) of the text of string x, encoded with tok (flags: heed_tokenize's). */
static heed_status encode(const mc_where *w, int32_t **ids, int64_t *n, const cJSON *x, const heed_tokenizer *tok,
                          unsigned flags, const char *what, const char *ids_key)
{
    if (!cJSON_IsString(x))
        return heed_fail(w->ctx, HEED_ERR_FORMAT, "%s:%lld: %s: expected a string", w->name, (long long)w->line, what);
    if (!tok)
        return heed_fail(w->ctx, HEED_ERR_FORMAT, "%s:%lld: %s is text, but there is no tokenizer (the model has no "
                         "tokenizer.json): give \"%s\"", w->name, (long long)w->line, what, ids_key);
    const char *s = x->valuestring;
    if (heed_tokenize(w->ctx, ids, n, tok, s, strlen(s), flags | HEED_TOK_NO_TRUNCATE | HEED_TOK_NO_PAD) != HEED_OK) {
        char why[HEED_ERRMSG_MAX];
        snprintf(why, sizeof why, "%s", heed_ctx_error(w->ctx));
        return heed_fail(w->ctx, HEED_ERR_FORMAT, "%s:%lld: %s: %s", w->name, (long long)w->line, what, why);
    }
    return HEED_OK;
}

/* The field of o named text_key or ids_key (exactly one): *text_val or *ids_val set, the other NULL. */
static heed_status either(const mc_where *w, const cJSON **text_val, const cJSON **ids_val, const cJSON *o,
                          const char *text_key, const char *ids_key)
{
    *text_val = cJSON_GetObjectItemCaseSensitive(o, text_key);
    *ids_val = cJSON_GetObjectItemCaseSensitive(o, ids_key);
    if (!*text_val == !*ids_val)
        return heed_fail(w->ctx, HEED_ERR_FORMAT, "%s:%lld: expected exactly one of \"%s\" and \"%s\"%s", w->name,
                         (long long)w->line, text_key, ids_key, *text_val ? ", got both" : "");
    return HEED_OK;
}

/* One item from the JSON object o into *it (zeroed on entry; partly filled on failure, freed by the caller). */
static heed_status parse_item(const mc_where *w, heed_mc_item *it, const cJSON *o, const heed_tokenizer *tok)
{
    heed_ctx *ctx = w->ctx;
    const char *name = w->name;
    long long line = (long long)w->line;
    if (!cJSON_IsObject(o)) return heed_fail(ctx, HEED_ERR_FORMAT, "%s:%lld: expected a JSON object", name, line);
    const cJSON *pt, *pi, *ct, *ci;
    heed_status s = either(w, &pt, &pi, o, "prompt", "prompt_ids");
    if (s == HEED_OK) s = either(w, &ct, &ci, o, "choices", "choice_ids");
    if (s != HEED_OK) return s;
    s = pt ? encode(w, &it->prompt, &it->n_prompt, pt, tok, HEED_TOK_SPECIAL, "\"prompt\"", "prompt_ids")
           : parse_ids(w, &it->prompt, &it->n_prompt, pi, "\"prompt_ids\"");
    if (s != HEED_OK) return s;
    if (it->n_prompt < 1)
        return heed_fail(ctx, HEED_ERR_FORMAT, "%s:%lld: the prompt has no tokens (the first choice token needs one "
                         "before it)", name, line);
    const cJSON *arr = ct ? ct : ci;
    const char *key = ct ? "choices" : "choice_ids";
    if (!cJSON_IsArray(arr))
        return heed_fail(ctx, HEED_ERR_FORMAT, "%s:%lld: \"%s\": expected an array", name, line, key);
    int64_t n = cJSON_GetArraySize(arr);
    if (n < 2)
        return heed_fail(ctx, HEED_ERR_FORMAT, "%s:%lld: \"%s\": %lld choice%s, expected at least 2", name, line, key,
                         (long long)n, n == 1 ? "" : "s");
    it->choice = calloc((size_t)n, sizeof *it->choice);
    it->n_choice = calloc((size_t)n, sizeof *it->n_choice);
    if (!it->choice || !it->n_choice) return heed_fail(ctx, HEED_ERR_NOMEM, "%s:%lld: out of memory", name, line);
    it->n_choices = n;
    int64_t c = 0;
    for (const cJSON *x = arr->child; x; x = x->next, c++) {
        char what[64];
        snprintf(what, sizeof what, "\"%s\"[%lld]", key, (long long)c);
        s = ct ? encode(w, &it->choice[c], &it->n_choice[c], x, tok, 0, what, "choice_ids")
               : parse_ids(w, &it->choice[c], &it->n_choice[c], x, what);
        if (s != HEED_OK) return s;
        if (it->n_choice[c] < 1)
            return heed_fail(ctx, HEED_ERR_FORMAT, "%s:%lld: %s is empty (no tokens)", name, line, what);
    }
    const cJSON *lab = cJSON_GetObjectItemCaseSensitive(o, "label");
    if (!lab)
        return heed_fail(ctx, HEED_ERR_FORMAT, "%s:%lld: no \"label\" (the index of the correct choice)", name, line);
    double v = cJSON_IsNumber(lab) ? lab->valuedouble : NAN;
    if (!(v == floor(v)) || v < 0.0 || v >= (double)n)
        return heed_fail(ctx, HEED_ERR_FORMAT, "%s:%lld: \"label\": expected a choice index 0..%lld", name, line,
                         (long long)n - 1);
    it->label = (int64_t)v;
    it->line = w->line;
    return HEED_OK;
}

/* What the JSON Lines walk fills: the set, its capacity, and where messages point. */
typedef struct mc_parse {
    mc_where w;
    heed_mc_set *set;
    size_t cap;
    const heed_tokenizer *tok;
} mc_parse;

static heed_status add_item(void *arg, const cJSON *o, int64_t line)
{
    mc_parse *mp = arg;
    heed_mc_set *set = mp->set;
    mp->w.line = line;
    heed_mc_item *items = heed_grow(set->items, &mp->cap, (size_t)set->n_items, sizeof *items, 16);
    if (!items) return heed_fail(mp->w.ctx, HEED_ERR_NOMEM, "%s: out of memory", mp->w.name);
    set->items = items;
    memset(&items[set->n_items], 0, sizeof *items);
    return parse_item(&mp->w, &items[set->n_items++], o, mp->tok);
}

heed_status heed_mc_parse(heed_ctx *ctx, heed_mc_set **out, const char *text, size_t len, const char *name,
                          const heed_tokenizer *tok)
{
    if (!out) return heed_fail(ctx, HEED_ERR_INVALID, "heed_mc_parse: NULL out");
    *out = NULL;
    if (!text && len) return heed_fail(ctx, HEED_ERR_INVALID, "heed_mc_parse: NULL text");
    if (!name) name = "(text)";
    heed_mc_set *set = calloc(1, sizeof *set);
    if (!set) return heed_fail(ctx, HEED_ERR_NOMEM, "%s: out of memory", name);
    mc_parse mp = {{ctx, name, 0}, set, 0, tok};
    heed_status s = heed_jsonl_each(ctx, NULL, text, len, name, add_item, &mp);
    if (s == HEED_OK && set->n_items == 0)
        s = heed_fail(ctx, HEED_ERR_FORMAT, "%s: no items (one JSON object per line)", name);
    if (s != HEED_OK) {
        heed_mc_free(set);
        return s;
    }
    *out = set;
    return HEED_OK;
}

heed_status heed_mc_load(heed_ctx *ctx, heed_mc_set **out, const char *path, const heed_tokenizer *tok)
{
    if (!out || !path) return heed_fail(ctx, HEED_ERR_INVALID, "heed_mc_load: NULL out or path");
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    heed_status s = heed_read_file(ctx, &text, &len, path, (size_t)1 << 30);
    if (s == HEED_OK) s = heed_mc_parse(ctx, out, text, len, path, tok);
    free(text);
    return s;
}

heed_status heed_mc_score(heed_ctx *ctx, heed_model *m, double *lp, const heed_mc_item *it)
{
    if (!m || !lp || !it || it->n_prompt < 1 || it->n_choices < 1)
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_mc_score: NULL model, lp or item, or an empty item");
    const int64_t V = heed_model_config(m)->vocab;
    int64_t longest = 0;
    for (int64_t c = 0; c < it->n_choices; c++) {
        if (it->n_choice[c] < 1)
            return heed_fail(ctx, HEED_ERR_INVALID, "line %lld: choice %lld has no tokens", (long long)it->line,
                             (long long)c);
        longest = it->n_choice[c] > longest ? it->n_choice[c] : longest;
    }
    for (int64_t t = 0; t < it->n_prompt; t++)
        if (it->prompt[t] < 0 || it->prompt[t] >= V)
            return heed_fail(ctx, HEED_ERR_INVALID, "line %lld: prompt id %d is outside the model's vocabulary "
                             "[0, %lld)", (long long)it->line, it->prompt[t], (long long)V);
    int64_t cap = it->n_prompt + longest;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)cap);
    float *logits = malloc(sizeof(float) * (size_t)(cap * V));
    heed_status s = ids && logits ? HEED_OK : heed_fail(ctx, HEED_ERR_NOMEM, "heed_mc_score: out of memory");
    if (s == HEED_OK) memcpy(ids, it->prompt, sizeof(int32_t) * (size_t)it->n_prompt);
    for (int64_t c = 0; c < it->n_choices && s == HEED_OK; c++) {
        const int64_t P = it->n_prompt, n = P + it->n_choice[c];
        for (int64_t t = 0; t < it->n_choice[c] && s == HEED_OK; t++) {
            ids[P + t] = it->choice[c][t];
            if (ids[P + t] < 0 || ids[P + t] >= V)
                s = heed_fail(ctx, HEED_ERR_INVALID, "line %lld: choice %lld id %d is outside the model's vocabulary "
                              "[0, %lld)", (long long)it->line, (long long)c, ids[P + t], (long long)V);
        }
        heed_status f = s == HEED_OK ? heed_model_forward(ctx, m, logits, NULL, ids, NULL, n, 0, 0) : HEED_OK;
        if (f != HEED_OK) { /* e.g. past a model's learned positions: name the item */
            char why[HEED_ERRMSG_MAX];
            snprintf(why, sizeof why, "%s", heed_ctx_error(ctx));
            s = heed_fail(ctx, f, "line %lld, choice %lld: %s", (long long)it->line, (long long)c, why);
        }
        double sum = 0.0;
        for (int64_t t = P; t < n && s == HEED_OK; t++)
            sum += heed_logprob(logits + (t - 1) * V, V, ids[t]); /* row t - 1 predicts ids[t] */
        lp[c] = sum;
    }
    free(ids);
    free(logits);
    return s;
}

int64_t heed_mc_argmax(const double *lp, const int64_t *n_tokens, int64_t n, int normalize)
{
    int64_t best = 0;
    double bv = -INFINITY;
    for (int64_t c = 0; c < n; c++) {
        double v = normalize ? lp[c] / (double)n_tokens[c] : lp[c];
        if (c == 0 || v > bv) best = c, bv = v;
    }
    return best;
}

void heed_mc_tally(heed_mc_stats *st, const double *lp, const heed_mc_item *it)
{
    double other = -INFINITY;
    for (int64_t c = 0; c < it->n_choices; c++)
        if (c != it->label && lp[c] > other) other = lp[c];
    st->n_items++;
    st->correct += heed_mc_argmax(lp, it->n_choice, it->n_choices, 0) == it->label;
    st->correct_norm += heed_mc_argmax(lp, it->n_choice, it->n_choices, 1) == it->label;
    st->margin_sum += lp[it->label] - other;
}

heed_status heed_mc_eval(heed_ctx *ctx, heed_model *m, heed_mc_stats *st, const heed_mc_set *set)
{
    if (!st || !set) return heed_fail(ctx, HEED_ERR_INVALID, "heed_mc_eval: NULL stats or set");
    memset(st, 0, sizeof *st);
    int64_t most = 0;
    for (int64_t i = 0; i < set->n_items; i++) most = set->items[i].n_choices > most ? set->items[i].n_choices : most;
    double *lp = malloc(sizeof(double) * (size_t)(most > 0 ? most : 1));
    if (!lp) return heed_fail(ctx, HEED_ERR_NOMEM, "heed_mc_eval: out of memory");
    heed_status s = HEED_OK;
    for (int64_t i = 0; i < set->n_items && s == HEED_OK; i++) {
        s = heed_mc_score(ctx, m, lp, &set->items[i]);
        if (s == HEED_OK) heed_mc_tally(st, lp, &set->items[i]);
    }
    free(lp);
    return s;
}

/* heed_act_rank's order: accuracy gain, then margin gain (both descending; the base is common to all, so the
 * raw counts compare the same), then layer and head ascending. */
static int rank_cmp(const void *pa, const void *pb)
{
    const heed_act_head *a = pa, *b = pb;
    if (a->st.correct != b->st.correct) return a->st.correct > b->st.correct ? -1 : 1;
    double ma = a->st.n_items ? a->st.margin_sum / (double)a->st.n_items : 0.0;
    double mb = b->st.n_items ? b->st.margin_sum / (double)b->st.n_items : 0.0;
    if (ma != mb) return ma > mb ? -1 : 1;
    if (a->layer != b->layer) return a->layer < b->layer ? -1 : 1;
    return (a->head > b->head) - (a->head < b->head);
}

int64_t heed_act_rank(heed_act_head *heads, int64_t n, const heed_mc_stats *base, double threshold)
{
    if (n <= 0) return 0;
    qsort(heads, (size_t)n, sizeof *heads, rank_cmp);
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t items = base->n_items > 0 ? base->n_items : 1;
        heads[i].selected = (double)(heads[i].st.correct - base->correct) / (double)items > threshold;
        k += heads[i].selected;
    }
    return k;
}
