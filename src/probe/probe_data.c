/* probe_data.c — the labelled sets of the linear probes (heed probe): JSON Lines, one object per line with
 * "label" and "text" or "ids", parsed with cJSON line by line so every error names its line. */
#include "core/core.h"
#include "io/io.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROBE_DATA_MAX_BYTES ((size_t)256 << 20)

void heed_probe_data_free(heed_probe_data *d)
{
    if (!d) return;
    for (int64_t i = 0; i < d->n; i++) {
        free(d->ex[i].text);
        free(d->ex[i].ids);
    }
    free(d->ex);
    free(d->labels);
    free(d);
}

/* An integer held exactly by item (a JSON number without a fraction) within [lo, hi], into *v. */
static int integer_in(double *v, const cJSON *item, double lo, double hi)
{
    if (!cJSON_IsNumber(item)) return 0;
    *v = item->valuedouble;
    return isfinite(*v) && *v == floor(*v) && *v >= lo && *v <= hi;
}

/* Fills ex from the object of one line; on failure writes why into why [n_why] and returns 0. */
static int parse_object(heed_probe_example *ex, char *why, size_t n_why, const cJSON *obj)
{
    if (!cJSON_IsObject(obj)) {
        snprintf(why, n_why, "expected a JSON object {\"text\": ..., \"label\": ...}");
        return 0;
    }
    const cJSON *label = cJSON_GetObjectItemCaseSensitive(obj, "label");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(obj, "text");
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(obj, "ids");
    double v;
    if (!label) {
        snprintf(why, n_why, "no \"label\"");
        return 0;
    }
    if (!integer_in(&v, label, INT32_MIN, INT32_MAX)) {
        snprintf(why, n_why, "\"label\" must be an integer within int32");
        return 0;
    }
    ex->label = (int32_t)v;
    if (!text == !ids) {
        snprintf(why, n_why, "give exactly one of \"text\" and \"ids\"");
        return 0;
    }
    if (text) {
        if (!cJSON_IsString(text) || !text->valuestring[0]) {
            snprintf(why, n_why, "\"text\" must be a non-empty string");
            return 0;
        }
        if (!(ex->text = strdup(text->valuestring))) {
            snprintf(why, n_why, "out of memory");
            return 0;
        }
        return 1;
    }
    const int n = cJSON_IsArray(ids) ? cJSON_GetArraySize(ids) : 0;
    if (n < 1) {
        snprintf(why, n_why, "\"ids\" must be a non-empty array of token ids");
        return 0;
    }
    if (!(ex->ids = malloc(sizeof(int32_t) * (size_t)n))) {
        snprintf(why, n_why, "out of memory");
        return 0;
    }
    const cJSON *id;
    cJSON_ArrayForEach(id, ids) {
        if (!integer_in(&v, id, 0, INT32_MAX)) {
            snprintf(why, n_why, "\"ids\"[%lld] is not an integer id 0..2147483647", (long long)ex->n_ids);
            return 0;
        }
        ex->ids[ex->n_ids++] = (int32_t)v;
    }
    return 1;
}

static int cmp_i32(const void *a, const void *b)
{
    const int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* What the JSON Lines walk fills: the set, its capacity, and where messages point. */
typedef struct probe_parse {
    heed_ctx *ctx;
    heed_probe_data *d;
    size_t cap;
    const char *name;
} probe_parse;

static heed_status add_example(void *arg, const cJSON *obj, int64_t line)
{
    probe_parse *pp = arg;
    heed_probe_data *d = pp->d;
    heed_probe_example *grown = heed_grow(d->ex, &pp->cap, (size_t)d->n, sizeof *d->ex, 64);
    if (!grown) return heed_fail(pp->ctx, HEED_ERR_NOMEM, "%s:%lld: out of memory", pp->name, (long long)line);
    d->ex = grown;
    heed_probe_example *ex = &d->ex[d->n++];
    *ex = (heed_probe_example){.line = line};
    char why[128];
    if (!parse_object(ex, why, sizeof why, obj))
        return heed_fail(pp->ctx, HEED_ERR_FORMAT, "%s:%lld: %s", pp->name, (long long)line, why);
    return HEED_OK;
}

heed_status heed_probe_data_parse(heed_ctx *ctx, heed_probe_data **out, const char *buf, size_t len,
                                  const char *name)
{
    if (!out || (!buf && len)) return heed_fail(ctx, HEED_ERR_INVALID, "heed_probe_data_parse: NULL argument");
    *out = NULL;
    if (!name) name = "probe data";
    heed_probe_data *d = calloc(1, sizeof *d);
    if (!d) return heed_fail(ctx, HEED_ERR_NOMEM, "%s: out of memory", name);
    probe_parse pp = {ctx, d, 0, name};
    const heed_status s = heed_jsonl_each(ctx, NULL, buf, len, name, add_example, &pp);
    if (s != HEED_OK) {
        heed_probe_data_free(d);
        return s;
    }
    if (d->n == 0) {
        heed_probe_data_free(d);
        return heed_fail(ctx, HEED_ERR_FORMAT, "%s: no examples (expected one JSON object per line)", name);
    }
    if (!(d->labels = malloc(sizeof(int32_t) * (size_t)d->n))) {
        heed_probe_data_free(d);
        return heed_fail(ctx, HEED_ERR_NOMEM, "%s: out of memory", name);
    }
    for (int64_t i = 0; i < d->n; i++) d->labels[i] = d->ex[i].label;
    qsort(d->labels, (size_t)d->n, sizeof(int32_t), cmp_i32);
    for (int64_t i = 0; i < d->n; i++)
        if (i == 0 || d->labels[i] != d->labels[d->n_classes - 1]) d->labels[d->n_classes++] = d->labels[i];
    if (d->n_classes < 2) {
        const int32_t only = d->labels[0];
        heed_probe_data_free(d);
        return heed_fail(ctx, HEED_ERR_FORMAT, "%s: every example has label %d: a probe needs at least 2 classes", name,
                         only);
    }
    for (int64_t i = 0; i < d->n; i++) {
        const int32_t *at = bsearch(&d->ex[i].label, d->labels, (size_t)d->n_classes, sizeof(int32_t), cmp_i32);
        d->ex[i].cls = (int32_t)(at - d->labels);
    }
    *out = d;
    return HEED_OK;
}

heed_status heed_probe_data_load(heed_ctx *ctx, heed_probe_data **out, const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    heed_status s = heed_read_file(ctx, &buf, &len, path, PROBE_DATA_MAX_BYTES);
    if (s == HEED_OK) s = heed_probe_data_parse(ctx, out, buf, len, path);
    free(buf);
    return s;
}
