/* cli_util.c — small parsers shared by the CLI subcommands. */
#include "cli_util.h"

#include <stdlib.h>

int cli_parse_ids(int32_t **ids, int64_t *n, const char *s)
{
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    *ids = malloc(cap * sizeof **ids);
    *n = 0;
    if (!*ids) return 0;
    if (!*s) return 1;
    for (const char *p = s;;) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < INT32_MIN || v > INT32_MAX || (*end && *end != ',')) return 0;
        (*ids)[(*n)++] = (int32_t)v;
        if (!*end) return 1;
        p = end + 1;
    }
}
