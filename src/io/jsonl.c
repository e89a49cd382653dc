/* jsonl.c — JSON Lines: one JSON value per line, parsed by cJSON line by line so that every error names
 * its file and line. The labelled sets of heed probe and heed act-search are read through it. */
#include "io/io.h"

#include <cJSON.h>
#include <string.h>

static int blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

heed_status heed_jsonl_each(heed_ctx *ctx, int64_t *n_values, const char *text, size_t len, const char *name,
                            heed_jsonl_fn fn, void *arg)
{
    if (n_values) *n_values = 0;
    if ((!text && len) || !fn) return heed_fail(ctx, HEED_ERR_INVALID, "heed_jsonl_each: NULL text or callback");
    if (!name) name = "(text)";
    int64_t line = 0, n = 0;
    for (size_t at = 0; at < len;) {
        const char *start = text + at, *nl = memchr(start, '\n', len - at);
        const size_t size = nl ? (size_t)(nl - start) : len - at;
        at += size + (nl != NULL);
        line++;
        size_t lead = 0;
        while (lead < size && blank(start[lead])) lead++;
        if (lead == size) continue;
        const char *end = NULL;
        cJSON *value = cJSON_ParseWithLengthOpts(start, size, &end, 0);
        if (value) /* only white space may follow the value */
            while (end < start + size && blank(*end)) end++;
        if (!value || end < start + size) {
            cJSON_Delete(value);
            const long long col = end && end >= start && end <= start + size ? (long long)(end - start) + 1 : 1;
            return heed_fail(ctx, HEED_ERR_FORMAT, "%s:%lld: not valid JSON near column %lld (one JSON object per "
                             "line)", name, (long long)line, col);
        }
        const heed_status s = fn(arg, value, line);
        cJSON_Delete(value);
        if (s != HEED_OK) return s;
        n++;
        if (n_values) *n_values = n;
    }
    return HEED_OK;
}
