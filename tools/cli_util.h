/* cli_util.h — small parsers shared by the CLI subcommands. */
#ifndef HEED_TOOLS_CLI_UTIL_H
#define HEED_TOOLS_CLI_UTIL_H

#include <stdint.h>

/* Parses comma-separated decimal ids ("1,2,3"; "" is the empty list) into *ids [*n], malloc'd (the
 * caller frees it, also on failure). Returns 1 when well formed, 0 otherwise (a stray comma, a
 * non-number, a value outside int32). */
int cli_parse_ids(int32_t **ids, int64_t *n, const char *s);

#endif
