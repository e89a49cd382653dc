/* io.h — internal helpers of the model-file readers (src/io/): whole-file reads with a size cap and
 * path joining. The tokenizer reader may use them too. */
#ifndef HEED_IO_H
#define HEED_IO_H

#include "core/core.h"

/* Reads the file at path into a NUL-terminated heap buffer *out [*len + 1] (free with free()).
 * HEED_ERR_IO naming the file when it cannot be read; HEED_ERR_FORMAT when it is larger than
 * max_bytes (a JSON file that large is not a config file). */
heed_status heed_read_file(heed_ctx *ctx, char **out, size_t *len, const char *path, size_t max_bytes);
/* Opens path read-only and checks it is a regular file; *fd (caller closes) and *size on success. */
heed_status heed_open_regular(heed_ctx *ctx, int *fd, size_t *size, const char *path);

/* Writes the concatenation of bufs[i] [lens[i]] for i < n_bufs to path atomically: a temporary file
 * next to path, fsynced, renamed over path only when complete; on error nothing is left behind and an
 * existing file at path is untouched. (heed_write_file in heed.h is the one-buffer form.) */
heed_status heed_write_atomic(heed_ctx *ctx, const char *path, const void *const *bufs, const size_t *lens,
                              int64_t n_bufs);

/* JSON Lines: calls fn(arg, value, line) for each non-blank line of text [len] (lines are separated by
 * "\n" and counted from 1), parsed by cJSON as exactly one JSON value with only white space around it;
 * value is freed after the call. A line that is not one JSON value is HEED_ERR_FORMAT "NAME:LINE: not
 * valid JSON near column C"; fn's first error status stops the walk and is returned. *n_values (may be
 * NULL) out: the values passed to fn that returned HEED_OK. */
struct cJSON;
typedef heed_status (*heed_jsonl_fn)(void *arg, const struct cJSON *value, int64_t line);
heed_status heed_jsonl_each(heed_ctx *ctx, int64_t *n_values, const char *text, size_t len, const char *name,
                            heed_jsonl_fn fn, void *arg);

/* dir + "/" + name in a new heap string (free with free()), or NULL when out of memory. */
char *heed_path_join(const char *dir, const char *name);

/* 1 when path names an existing regular file or directory respectively. */
int heed_is_file(const char *path);
int heed_is_dir(const char *path);

#endif /* HEED_IO_H */
