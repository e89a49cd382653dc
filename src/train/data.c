/* data.c — training data: the token file (write atomically, map and validate on open; the format is in
 * heed.h) and the batch loader over a token stream, random windows of its train part and consecutive
 * windows of its held-out tail, all drawn from a splitmix64 state so a seed reproduces every batch. */
#include "io/io.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char TOK_MAGIC[8] = {'H', 'E', 'E', 'D', 'T', 'O', 'K', '\0'};

struct heed_tokfile {
    const uint8_t *ids;  /* the id section: count ids of bits / 8 little-endian bytes each */
    int64_t count;
    int bits;
    int32_t max_id;
    void *map;           /* the mapping (NULL for heed_tokfile_open_mem) */
    size_t map_size;
};

/* Where a heed_data reads its ids: an int32 array in memory, or a token file's id section. */
struct heed_data {
    const int32_t *mem;
    const heed_tokfile *file;
    int64_t n, n_train;
};

uint64_t heed_rng_below(uint64_t *state, uint64_t n)
{
    if (n <= 1) return 0;
    /* Reject the top 2^64 mod n values so every residue is equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = heed_rng_next(state);
    while (x >= limit);
    return x % n;
}

static uint32_t rd32(const uint8_t *p) { return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

heed_status heed_tokfile_write(heed_ctx *ctx, const char *path, const int32_t *ids, int64_t n)
{
    if (!path || n < 0 || (!ids && n > 0)) return heed_fail(ctx, HEED_ERR_INVALID, "heed_tokfile_write: NULL path or ids, or n < 0");
    int32_t max_id = 0;
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0)
            return heed_fail(ctx, HEED_ERR_INVALID, "%s: id %lld is %d, expected >= 0", path, (long long)i, ids[i]);
        if (ids[i] > max_id) max_id = ids[i];
    }
    int bytes = max_id < 65536 ? 2 : 4;
    if ((uint64_t)n > (SIZE_MAX - HEED_TOKFILE_HEADER) / (uint64_t)bytes)
        return heed_fail(ctx, HEED_ERR_INVALID, "%s: %lld ids do not fit in memory", path, (long long)n);
    uint8_t hdr[HEED_TOKFILE_HEADER];
    memcpy(hdr, TOK_MAGIC, 8);
    wr32(hdr + 8, HEED_TOKFILE_VERSION);
    wr32(hdr + 12, (uint32_t)bytes * 8);
    wr32(hdr + 16, (uint32_t)((uint64_t)n & 0xffffffffu));
    wr32(hdr + 20, (uint32_t)((uint64_t)n >> 32));
    uint8_t *body = malloc((size_t)n * (size_t)bytes + 1);
    if (!body) return heed_fail(ctx, HEED_ERR_NOMEM, "%s: cannot allocate %lld ids", path, (long long)n);
    for (int64_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)ids[i];
        for (int k = 0; k < bytes; k++) body[i * bytes + k] = (uint8_t)(v >> (8 * k));
    }
    const void *bufs[2] = {hdr, body};
    size_t lens[2] = {sizeof hdr, (size_t)n * (size_t)bytes};
    heed_status s = heed_write_atomic(ctx, path, bufs, lens, 2);
    free(body);
    return s;
}

/* Validates the image data [size] and fills f (not its mapping fields). */
static heed_status tokfile_parse(heed_ctx *ctx, heed_tokfile *f, const uint8_t *data, size_t size, const char *name)
{
    if (size < HEED_TOKFILE_HEADER)
        return heed_fail(ctx, HEED_ERR_FORMAT, "%s: %zu bytes, shorter than the %d-byte token file header", name,
                         size, HEED_TOKFILE_HEADER);
    if (memcmp(data, TOK_MAGIC, 8) != 0) return heed_fail(ctx, HEED_ERR_FORMAT, "%s: not a heed token file (bad magic)", name);
    uint32_t version = rd32(data + 8), bits = rd32(data + 12);
    uint64_t count = rd64(data + 16);
    if (version != HEED_TOKFILE_VERSION)
        return heed_fail(ctx, HEED_ERR_FORMAT, "%s: token file version %u, expected %d", name, version,
                         HEED_TOKFILE_VERSION);
    if (bits != 16 && bits != 32)
        return heed_fail(ctx, HEED_ERR_FORMAT, "%s: %u bits per id, expected 16 or 32", name, bits);
    uint64_t body = size - HEED_TOKFILE_HEADER, bytes = bits / 8;
    if (count > body / bytes || count * bytes != body)
        return heed_fail(ctx, HEED_ERR_FORMAT, "%s: header says %llu ids of %u bits (%llu bytes), the file holds %llu bytes after the header",
                         name, (unsigned long long)count, bits, count > body / bytes ? 0ull : (unsigned long long)(count * bytes),
                         (unsigned long long)body);
    f->ids = data + HEED_TOKFILE_HEADER;
    f->count = (int64_t)count;
    f->bits = (int)bits;
    f->max_id = -1;
    for (int64_t i = 0; i < f->count; i++) {
        uint32_t v = bits == 16 ? (uint32_t)(f->ids[2 * i] | f->ids[2 * i + 1] << 8) : rd32(f->ids + 4 * i);
        if (v > INT32_MAX)
            return heed_fail(ctx, HEED_ERR_FORMAT, "%s: id %lld is %u, expected < 2^31", name, (long long)i, v);
        if ((int32_t)v > f->max_id) f->max_id = (int32_t)v;
    }
    return HEED_OK;
}

heed_status heed_tokfile_open_mem(heed_ctx *ctx, heed_tokfile **out, const void *data, size_t size, const char *name)
{
    *out = NULL;
    if (!data && size) return heed_fail(ctx, HEED_ERR_INVALID, "%s: NULL data", name ? name : "token file");
    heed_tokfile *f = calloc(1, sizeof *f);
    if (!f) return heed_fail(ctx, HEED_ERR_NOMEM, "%s: out of memory", name ? name : "token file");
    heed_status s = tokfile_parse(ctx, f, data, size, name ? name : "token file");
    if (s != HEED_OK) {
        free(f);
        return s;
    }
    *out = f;
    return HEED_OK;
}

heed_status heed_tokfile_open(heed_ctx *ctx, heed_tokfile **out, const char *path)
{
    *out = NULL;
    if (!path) return heed_fail(ctx, HEED_ERR_INVALID, "heed_tokfile_open: NULL path");
    int fd;
    size_t size;
    heed_status s = heed_open_regular(ctx, &fd, &size, path);
    if (s != HEED_OK) return s;
    void *map = NULL;
    if (size > 0) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return heed_fail(ctx, HEED_ERR_IO, "%s: cannot map: %s", path, strerror(e));
        }
    }
    close(fd);
    s = heed_tokfile_open_mem(ctx, out, map, size, path);
    if (s != HEED_OK) {
        if (map) munmap(map, size);
        return s;
    }
    (*out)->map = map;
    (*out)->map_size = size;
    return HEED_OK;
}

void heed_tokfile_close(heed_tokfile *f)
{
    if (!f) return;
    if (f->map) munmap(f->map, f->map_size);
    free(f);
}

int64_t heed_tokfile_count(const heed_tokfile *f) { return f->count; }
int heed_tokfile_bits(const heed_tokfile *f) { return f->bits; }
int32_t heed_tokfile_max_id(const heed_tokfile *f) { return f->max_id; }

int32_t heed_tokfile_id(const heed_tokfile *f, int64_t i)
{
    const uint8_t *p = f->ids + i * (f->bits / 8);
    return f->bits == 16 ? (int32_t)(p[0] | p[1] << 8) : (int32_t)rd32(p);
}

/* Copies ids [start, start + n) of d into out [n]. */
static void data_read(int32_t *out, const heed_data *d, int64_t start, int64_t n)
{
    if (d->mem) {
        memcpy(out, d->mem + start, (size_t)n * sizeof *out);
        return;
    }
    for (int64_t i = 0; i < n; i++) out[i] = heed_tokfile_id(d->file, start + i);
}

/* The common part of the two constructors: the split. */
static heed_status data_new(heed_ctx *ctx, heed_data **out, const int32_t *mem, const heed_tokfile *file, int64_t n,
                            double heldout_frac)
{
    if (!(heldout_frac >= 0 && heldout_frac < 1))
        return heed_fail(ctx, HEED_ERR_INVALID, "heldout_frac %g, expected in [0, 1)", heldout_frac);
    heed_data *d = calloc(1, sizeof *d);
    if (!d) return heed_fail(ctx, HEED_ERR_NOMEM, "heed_data: out of memory");
    d->mem = mem;
    d->file = file;
    d->n = n;
    d->n_train = n - (int64_t)floor((double)n * heldout_frac);
    *out = d;
    return HEED_OK;
}

heed_status heed_data_create(heed_ctx *ctx, heed_data **out, const int32_t *ids, int64_t n, int64_t vocab,
                             double heldout_frac)
{
    *out = NULL;
    if (n < 0 || (!ids && n > 0) || vocab < 1)
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_data_create: n %lld, vocab %lld, ids %s", (long long)n,
                         (long long)vocab, ids ? "set" : "NULL");
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= vocab)
            return heed_fail(ctx, HEED_ERR_INVALID, "heed_data_create: id %lld is %d, expected in [0, %lld)",
                             (long long)i, ids[i], (long long)vocab);
    return data_new(ctx, out, ids, NULL, n, heldout_frac);
}

heed_status heed_data_create_tokfile(heed_ctx *ctx, heed_data **out, const heed_tokfile *f, int64_t vocab,
                                     double heldout_frac)
{
    *out = NULL;
    if (!f || vocab < 1) return heed_fail(ctx, HEED_ERR_INVALID, "heed_data_create_tokfile: NULL file or vocab %lld < 1", (long long)vocab);
    if (f->max_id >= vocab)
        return heed_fail(ctx, HEED_ERR_INVALID, "token file holds id %d, outside the vocabulary of %lld", f->max_id,
                         (long long)vocab);
    return data_new(ctx, out, NULL, f, f->count, heldout_frac);
}

void heed_data_free(heed_data *d) { free(d); }
int64_t heed_data_n_train(const heed_data *d) { return d->n_train; }
int64_t heed_data_n_heldout(const heed_data *d) { return d->n - d->n_train; }

static heed_status check_bt(heed_ctx *ctx, const char *fn, const int32_t *inputs, const int32_t *targets, int64_t B,
                            int64_t T)
{
    if (!inputs || !targets || B < 1 || T < 1)
        return heed_fail(ctx, HEED_ERR_INVALID, "%s: B %lld, T %lld (both >= 1), inputs and targets non-NULL", fn,
                         (long long)B, (long long)T);
    return HEED_OK;
}

heed_status heed_data_batch(heed_ctx *ctx, int32_t *inputs, int32_t *targets, const heed_data *d, int64_t B,
                            int64_t T, uint64_t *rng)
{
    heed_status s = check_bt(ctx, "heed_data_batch", inputs, targets, B, T);
    if (s != HEED_OK) return s;
    if (d->n_train < T + 1)
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_data_batch: the train part has %lld ids, a window of T = %lld needs %lld",
                         (long long)d->n_train, (long long)T, (long long)T + 1);
    for (int64_t b = 0; b < B; b++) {
        int64_t start = (int64_t)heed_rng_below(rng, (uint64_t)(d->n_train - T));
        data_read(inputs + b * T, d, start, T);
        data_read(targets + b * T, d, start + 1, T);
    }
    return HEED_OK;
}

int64_t heed_data_eval_windows(const heed_data *d, int64_t T)
{
    int64_t n_targets = d->n - d->n_train - 1;
    return n_targets < 1 || T < 1 ? 0 : (n_targets + T - 1) / T;
}

heed_status heed_data_eval_batch(heed_ctx *ctx, int32_t *inputs, int32_t *targets, const heed_data *d, int64_t B,
                                 int64_t T, int64_t first)
{
    heed_status s = check_bt(ctx, "heed_data_eval_batch", inputs, targets, B, T);
    if (s != HEED_OK) return s;
    if (first < 0) return heed_fail(ctx, HEED_ERR_INVALID, "heed_data_eval_batch: first window %lld < 0", (long long)first);
    int64_t n_targets = d->n - d->n_train - 1;
    for (int64_t b = 0; b < B; b++) {
        int32_t *in = inputs + b * T, *tg = targets + b * T;
        int64_t w = first + b;
        /* Positions of this row that have a target inside the held-out part: [0, m). */
        int64_t m = w < heed_data_eval_windows(d, T) ? n_targets - w * T : 0;
        if (m > T) m = T;
        if (m > 0) {
            int64_t start = d->n_train + w * T;
            data_read(in, d, start, m);
            data_read(tg, d, start + 1, m);
        }
        for (int64_t t = m; t < T; t++) {
            in[t] = 0;
            tg[t] = -1;
        }
    }
    return HEED_OK;
}
