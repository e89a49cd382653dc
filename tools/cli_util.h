/* cli_util.h — small parsers and loaders shared by the CLI subcommands. */
#ifndef HEED_TOOLS_CLI_UTIL_H
#define HEED_TOOLS_CLI_UTIL_H

#include "heed.h"

#include <stdint.h>

/* Parses comma-separated decimal ids ("1,2,3"; "" is the empty list) into *ids [*n], malloc'd (the
 * caller frees it, also on failure). Returns 1 when well formed, 0 otherwise (a stray comma, a
 * non-number, a value outside int32). */
int cli_parse_ids(int32_t **ids, int64_t *n, const char *s);

/* Parses a whole decimal number (strtod syntax) into *v. Returns 1 when well formed, 0 otherwise. */
int cli_parse_num(double *v, const char *s);
/* Parses a thread count: a whole number from 1 to 4096. Returns 1 when valid (*n set), else 0. */
int cli_parse_threads(int *n, const char *s);

/* Loads MODEL/tokenizer.json into *tok when the file exists (else *tok = NULL). Returns 1 on success,
 * 0 after printing "heed CMD: ..." when it exists but does not load, or when required and absent. */
int cli_load_tokenizer(heed_tokenizer **tok, heed_ctx *ctx, const char *model, int required, const char *cmd);

/* The input of a model command from exactly one of text (encoded with tok as Hugging Face `encode`
 * does: special tokens added, no truncation or padding) and ids_arg (comma-separated ids): *ids [*n],
 * malloc'd (the caller frees it, also on failure). Returns 1 on success, 0 after printing why. */
int cli_input_ids(int32_t **ids, int64_t *n, heed_ctx *ctx, const heed_tokenizer *tok, const char *text,
                  const char *ids_arg, const char *cmd);

/* The embedded default model (models/default, trained by heed train; models/default/README.md): the
 * directory named by $HEED_MODEL, else the source tree's models/default, else the installed copy
 * (DATADIR/heed/models/default). NULL after printing why when none exists. */
const char *cli_default_model(const char *cmd);

/* The checks every model command makes on -m and --kv: a missing MODEL (*model NULL) becomes the
 * default model, and `full` is the only KV cache policy so far (kv NULL: full). Returns 1 when both
 * are fine, 0 after printing why. */
int cli_check_model_kv(const char **model, const char *kv, const char *cmd);

/* Loads the model directory dir into *m and applies the runtime options that are not NAN: rope_base
 * (--rope-base) and log_n0 (--attn-log-scale). Returns 1 on success, 0 after printing "heed CMD: ..."
 * (*m is then NULL). */
int cli_load_model(heed_model **m, heed_ctx *ctx, const char *dir, double rope_base, double log_n0,
                   const char *cmd);

#endif
