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
/* The value of a command's --threads option (arg NULL: not given, *n left as it is). Returns 1 when valid,
 * 0 after printing "heed CMD: --threads: ...". */
int cli_threads_option(int *n, const char *arg, const char *cmd);
/* Creates *ctx with n_threads threads (0: one per CPU). Returns 1, or 0 after printing "heed CMD: ...". */
int cli_create_ctx(heed_ctx **ctx, int n_threads, const char *cmd);

/* Loads MODEL/tokenizer.json into *tok when the file exists (else *tok = NULL). Returns 1 on success,
 * 0 after printing "heed CMD: ..." when it exists but does not load, or when required and absent. */
int cli_load_tokenizer(heed_tokenizer **tok, heed_ctx *ctx, const char *model, int required, const char *cmd);

/* The input of a model command from exactly one of text (encoded with tok as Hugging Face `encode`
 * does: special tokens added, no truncation or padding) and ids_arg (comma-separated ids): *ids [*n],
 * malloc'd (the caller frees it, also on failure). Returns 1 on success, 0 after printing why. */
int cli_input_ids(int32_t **ids, int64_t *n, heed_ctx *ctx, const heed_tokenizer *tok, const char *text,
                  const char *ids_arg, const char *cmd);

/* The id of one token, given as exactly one of text (a token string: encoded without special tokens, it
 * must give exactly one id; needs tok) and id_arg (a decimal id), checked against vocab. opt names the
 * option in messages (--OPT / --OPT-id). Returns 1 (*id set), or 0 after printing "heed CMD: ...". */
int cli_token_id(int32_t *id, heed_ctx *ctx, const heed_tokenizer *tok, const char *text, const char *id_arg,
                 int64_t vocab, const char *opt, const char *cmd);

/* The BOS tok's post-processor puts in front of a text (encoding with special tokens gives exactly one id
 * more, in front), or -1 when it adds none, adds more than one, or only appends. */
int32_t cli_tokenizer_bos(heed_ctx *ctx, const heed_tokenizer *tok);

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

/* The --intervene SPECs of a model command (at most CLI_MAX_INTERVENE), in the order given:
 *   bos:L.H  act:L.H[:beta]  var:L.H:a-b[:frac]  steer:L.H:a-b[:alpha]  inhibit:L.H[:tau]  mean:L.H  ablate:L.H
 *   scale:L.H:x
 * (heed_intervention; ablate and scale multiply the head's output by 0 or x through heed_model_set_head_scale;
 * a head given twice gets the product). */
#define CLI_MAX_INTERVENE 64
typedef struct cli_interventions {
    heed_intervention iv[CLI_MAX_INTERVENE];
    const char *iv_spec[CLI_MAX_INTERVENE];   /* the SPEC of each edit, for messages */
    int64_t scaled[CLI_MAX_INTERVENE][2];     /* (layer, head) of each ablate / scale */
    float scale_by[CLI_MAX_INTERVENE];        /* its factor: 0 for ablate */
    const char *scale_spec[CLI_MAX_INTERVENE];
    int n_iv, n_scale;
} cli_interventions;
/* The usage lines of --intervene, for the commands' help. */
#define CLI_INTERVENE_HELP                                                                                       \
    "  --intervene SPEC (repeatable): edit the attention of head H of layer L (docs/analysis.md):\n"             \
    "    bos:L.H all attention on the first token; ablate:L.H zero the head's output;\n"                         \
    "    act:L.H[:beta] scale hidden-sink columns (s_j > 0.1) by beta (0.4), freed mass to the other keys;\n"    \
    "    var:L.H:a-b[:frac] move frac (0.5) of the first token's attention to keys [a, b);\n"                  \
    "    steer:L.H:a-b[:alpha] (1 - alpha) p + alpha p restricted to [a, b), renormalised (alpha 0.5);\n"       \
    "    inhibit:L.H[:tau] zero probabilities below tau (0.01) times the row's largest, renormalise;\n"          \
    "    mean:L.H the head's output at position i replaced by its mean over positions 0..i;\n"                \
    "    scale:L.H:x the head's output times x (any finite number).\n"
/* Adds spec (the value of --intervene, NULL when missing; kept, not copied) to *x. Returns 1 when well formed, 0 after printing
 * "heed CMD: --intervene SPEC: why". */
int cli_add_intervention(cli_interventions *x, const char *spec, const char *cmd);
/* Sets the interventions of *x on m (none: nothing). Returns 1 on success, 0 after printing
 * "heed CMD: --intervene SPEC: why" (e.g. no such head in this model). */
int cli_apply_interventions(const cli_interventions *x, heed_ctx *ctx, heed_model *m, const char *cmd);

#endif
