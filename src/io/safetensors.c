/* safetensors.c — the safetensors reader (mmap, full validation before use, sharded checkpoints via
 * model.safetensors.index.json) and writer (atomic: temporary file + rename).
 * Format: 8-byte little-endian header length N, N bytes of JSON, then the data section. */
#include "io/io.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Headers larger than this are refused, as by the reference implementation (100 MB). */
#define ST_MAX_HEADER (100u << 20)
/* JSON numbers are doubles: integers above 2^53 cannot be represented exactly. */
#define ST_MAX_INT 9007199254740992.0

typedef struct st_file {
    char *path;         /* for messages */
    void *map;          /* the mapping (NULL for heed_st_open_mem) */
    size_t map_size;
    cJSON *header;      /* parsed header; tensor names point into it */
    const cJSON *meta;  /* its __metadata__ object, or NULL */
} st_file;

struct heed_st {
    st_file *files;
    int n_files;
    heed_st_tensor *tensors; /* sorted by name once every file is read */
    uint64_t *begin;         /* [cap] while parsing: data offset of each tensor in its file */
    int64_t n, cap;
    void **copies;           /* aligned copies of misaligned tensors */
    int64_t n_copies;
};

static const struct {
    const char *name;
    size_t size;
} ST_DTYPES[] = {
    [HEED_ST_F32] = {"F32", 4}, [HEED_ST_F16] = {"F16", 2}, [HEED_ST_BF16] = {"BF16", 2},
    [HEED_ST_F64] = {"F64", 8}, [HEED_ST_I64] = {"I64", 8}, [HEED_ST_I32] = {"I32", 4},
    [HEED_ST_I8] = {"I8", 1},   [HEED_ST_U8] = {"U8", 1},   [HEED_ST_BOOL] = {"BOOL", 1},
};
#define ST_N_DTYPES ((int)(sizeof(ST_DTYPES) / sizeof(ST_DTYPES[0])))

const char *heed_st_dtype_name(heed_st_dtype t)
{
    return (int)t >= 0 && (int)t < ST_N_DTYPES ? ST_DTYPES[t].name : "?";
}

size_t heed_st_dtype_size(heed_st_dtype t)
{
    return (int)t >= 0 && (int)t < ST_N_DTYPES ? ST_DTYPES[t].size : 0;
}

void heed_st_close(heed_st *st)
{
    if (!st) return;
    for (int i = 0; i < st->n_files; i++) {
        if (st->files[i].map) munmap(st->files[i].map, st->files[i].map_size);
        cJSON_Delete(st->files[i].header);
        free(st->files[i].path);
    }
    for (int64_t i = 0; i < st->n_copies; i++) heed_free(st->copies[i]);
    free(st->copies);
    free(st->files);
    free(st->tensors);
    free(st->begin);
    free(st);
}

/* A non-negative integer stored in a JSON number, or -1 when it is not one. */
static int64_t json_uint(const cJSON *v)
{
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= ST_MAX_INT) || d != (double)(int64_t)d) return -1;
    return (int64_t)d;
}

typedef struct st_span {
    uint64_t begin, end;
    int64_t i;
} st_span;

static int cmp_by_begin(const void *a, const void *b)
{
    const st_span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int cmp_by_name(const void *a, const void *b)
{
    return strcmp(((const heed_st_tensor *)a)->name, ((const heed_st_tensor *)b)->name);
}

/* Parses one tensor entry of a header into *t and its data offset into *begin. */
static heed_status st_parse_entry(heed_ctx *ctx, heed_st_tensor *t, uint64_t *begin, const cJSON *e,
                                  const char *file, uint64_t data_size)
{
    const char *name = e->string;
    t->name = name;
    t->file = file;
    if (!cJSON_IsObject(e))
        return heed_fail(ctx, HEED_ERR_FORMAT, "%s: tensor %s: expected an object with dtype, shape and data_offsets",
                         file, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt))
        return heed_fail(ctx, HEED_ERR_FORMAT, "%s: tensor %s: missing \"dtype\" string", file, name);
    int d = 0;
    while (d < ST_N_DTYPES && strcmp(dt->valuestring, ST_DTYPES[d].name) != 0) d++;
    if (d == ST_N_DTYPES)
        return heed_fail(ctx, HEED_ERR_FORMAT,
                         "%s: tensor %s: dtype \"%.32s\" unknown (expected F32, F16, BF16, F64, I64, I32, I8, U8 "
                         "or BOOL)", file, name, dt->valuestring);
    t->dtype = (heed_st_dtype)d;
    if (!cJSON_IsArray(sh))
        return heed_fail(ctx, HEED_ERR_FORMAT, "%s: tensor %s: missing \"shape\" array", file, name);
    int nd = cJSON_GetArraySize(sh);
    if (nd > HEED_ST_MAX_DIMS)
        return heed_fail(ctx, HEED_ERR_FORMAT, "%s: tensor %s: %d dimensions, expected at most %d", file, name,
                         nd, HEED_ST_MAX_DIMS);
    t->n_dims = nd;
    uint64_t n_elems = 1;
    int i = 0;
    for (const cJSON *x = sh->child; x; x = x->next, i++) {
        int64_t v = json_uint(x);
        if (v < 0)
            return heed_fail(ctx, HEED_ERR_FORMAT, "%s: tensor %s: shape[%d] is not a non-negative integer", file,
                             name, i);
        t->shape[i] = v;
        if (__builtin_mul_overflow(n_elems, (uint64_t)v, &n_elems))
            return heed_fail(ctx, HEED_ERR_FORMAT, "%s: tensor %s: the product of its shape overflows", file, name);
    }
    for (; i < HEED_ST_MAX_DIMS; i++) t->shape[i] = 0;
    uint64_t n_bytes;
    if (__builtin_mul_overflow(n_elems, (uint64_t)ST_DTYPES[d].size, &n_bytes) || n_bytes > data_size)
        return heed_fail(ctx, HEED_ERR_FORMAT,
                         "%s: tensor %s: %llu elements of %s do not fit the %llu-byte data section", file, name,
                         (unsigned long long)n_elems, ST_DTYPES[d].name, (unsigned long long)data_size);
    t->n_elems = (int64_t)n_elems;
    t->n_bytes = (size_t)n_bytes;
    int64_t b = -1, en = -1;
    if (cJSON_IsArray(of) && cJSON_GetArraySize(of) == 2) {
        b = json_uint(of->child);
        en = json_uint(of->child->next);
    }
    if (b < 0 || en < 0)
        return heed_fail(ctx, HEED_ERR_FORMAT, "%s: tensor %s: \"data_offsets\" must be [begin, end], two "
                         "non-negative integers", file, name);
    if (b > en || (uint64_t)en > data_size)
        return heed_fail(ctx, HEED_ERR_FORMAT, "%s: tensor %s: data_offsets [%lld, %lld) outside the data section "
                         "[0, %llu)", file, name, (long long)b, (long long)en, (unsigned long long)data_size);
    if ((uint64_t)(en - b) != n_bytes)
        return heed_fail(ctx, HEED_ERR_FORMAT, "%s: tensor %s: data_offsets span %lld bytes, expected %llu "
                         "(%llu elements of %s)", file, name, (long long)(en - b), (unsigned long long)n_bytes,
                         (unsigned long long)n_elems, ST_DTYPES[d].name);
    *begin = (uint64_t)b;
    return HEED_OK;
}

/* Checks that the tensors [first, st->n) of one file tile its data section [0, data_size) exactly:
 * no overlap, no gap, nothing after the last tensor (the reference implementation's rule). */
static heed_status st_check_tiling(heed_ctx *ctx, const heed_st *st, int64_t first, const char *file,
                                   uint64_t data_size)
{
    int64_t n = st->n - first;
    st_span *sp = malloc((size_t)(n ? n : 1) * sizeof *sp);
    if (!sp) return heed_fail(ctx, HEED_ERR_NOMEM, "%s: out of memory sorting %lld tensors", file, (long long)n);
    for (int64_t i = 0; i < n; i++)
        sp[i] = (st_span){st->begin[first + i], st->begin[first + i] + st->tensors[first + i].n_bytes, first + i};
    qsort(sp, (size_t)n, sizeof *sp, cmp_by_begin);
    heed_status s = HEED_OK;
    uint64_t expect = 0;
    for (int64_t i = 0; i < n && s == HEED_OK; i++) {
        const char *name = st->tensors[sp[i].i].name;
        if (sp[i].begin < expect)
            s = heed_fail(ctx, HEED_ERR_FORMAT, "%s: tensor %s at bytes [%llu, %llu) overlaps tensor %s ending at %llu",
                          file, name, (unsigned long long)sp[i].begin, (unsigned long long)sp[i].end,
                          st->tensors[sp[i - 1].i].name, (unsigned long long)expect);
        else if (sp[i].begin > expect)
            s = heed_fail(ctx, HEED_ERR_FORMAT, "%s: tensor %s begins at byte %llu, expected %llu (tensors must "
                          "tile the data section without gaps)", file, name, (unsigned long long)sp[i].begin,
                          (unsigned long long)expect);
        expect = sp[i].end;
    }
    if (s == HEED_OK && expect != data_size)
        s = heed_fail(ctx, HEED_ERR_FORMAT, "%s: tensors end at byte %llu of a %llu-byte data section", file,
                      (unsigned long long)expect, (unsigned long long)data_size);
    free(sp);
    return s;
}

/* Parses and validates one safetensors image [size] (already owned by st->files[fi]) and appends
 * its tensors to st. */
static heed_status st_parse(heed_ctx *ctx, heed_st *st, int fi, const uint8_t *data, size_t size)
{
    st_file *f = &st->files[fi];
    const char *file = f->path;
    if (size < 8)
        return heed_fail(ctx, HEED_ERR_FORMAT, "%s: %zu bytes, too short for the 8-byte header length", file, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | data[i];
    if (hlen > size - 8)
        return heed_fail(ctx, HEED_ERR_FORMAT, "%s: header length %llu exceeds the %zu bytes that follow it", file,
                         (unsigned long long)hlen, size - 8);
    if (hlen > ST_MAX_HEADER)
        return heed_fail(ctx, HEED_ERR_FORMAT, "%s: header length %llu, expected at most %u", file,
                         (unsigned long long)hlen, ST_MAX_HEADER);
    /* A NUL-terminated copy of the header (small) so the JSON parser can never read past it. */
    char *text = malloc(hlen + 1);
    if (!text) return heed_fail(ctx, HEED_ERR_NOMEM, "%s: cannot allocate the %llu-byte header", file,
                                (unsigned long long)hlen);
    memcpy(text, data + 8, hlen);
    text[hlen] = '\0';
    const char *end = NULL;
    f->header = cJSON_ParseWithLengthOpts(text, hlen, &end, 0);
    heed_status s = HEED_OK;
    if (!f->header) {
        s = heed_fail(ctx, HEED_ERR_FORMAT, "%s: header is not valid JSON (error near byte %lld of %llu)", file,
                      end ? (long long)(end - text) : -1LL, (unsigned long long)hlen);
    } else {
        /* The writer pads the header with spaces; anything else after the JSON value is garbage. */
        for (const char *p = end; p < text + hlen && s == HEED_OK; p++)
            if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
                s = heed_fail(ctx, HEED_ERR_FORMAT, "%s: unexpected bytes after the JSON header (at byte %lld)",
                              file, (long long)(p - text));
        if (s == HEED_OK && !cJSON_IsObject(f->header))
            s = heed_fail(ctx, HEED_ERR_FORMAT, "%s: header must be a JSON object", file);
    }
    free(text);
    if (s != HEED_OK) return s;

    uint64_t data_size = size - 8 - hlen;
    int64_t first = st->n;
    for (const cJSON *e = f->header->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (!cJSON_IsObject(e))
                return heed_fail(ctx, HEED_ERR_FORMAT, "%s: __metadata__ must be an object of strings", file);
            for (const cJSON *m = e->child; m; m = m->next)
                if (!cJSON_IsString(m))
                    return heed_fail(ctx, HEED_ERR_FORMAT, "%s: __metadata__ value \"%.64s\" must be a string",
                                     file, m->string);
            f->meta = e;
            continue;
        }
        if (st->n == st->cap) {
            int64_t cap = st->cap ? 2 * st->cap : 64;
            heed_st_tensor *t = realloc(st->tensors, (size_t)cap * sizeof *t);
            if (t) st->tensors = t;
            uint64_t *b = t ? realloc(st->begin, (size_t)cap * sizeof *b) : NULL;
            if (!b) return heed_fail(ctx, HEED_ERR_NOMEM, "%s: out of memory for %lld tensors", file, (long long)cap);
            st->begin = b;
            st->cap = cap;
        }
        s = st_parse_entry(ctx, &st->tensors[st->n], &st->begin[st->n], e, file, data_size);
        if (s != HEED_OK) return s;
        st->n++;
    }
    s = st_check_tiling(ctx, st, first, file, data_size);
    if (s != HEED_OK) return s;

    /* Offsets become pointers; a tensor not aligned to its element size gets an aligned copy so
     * kernels may load its elements directly. */
    const uint8_t *base = data + 8 + hlen;
    for (int64_t i = first; i < st->n; i++) {
        heed_st_tensor *t = &st->tensors[i];
        const uint8_t *p = base + st->begin[i];
        size_t es = ST_DTYPES[t->dtype].size;
        if ((uintptr_t)p % es != 0 && t->n_bytes > 0) {
            void **c = realloc(st->copies, (size_t)(st->n_copies + 1) * sizeof *c);
            if (!c) return heed_fail(ctx, HEED_ERR_NOMEM, "%s: out of memory", file);
            st->copies = c;
            void *q = heed_alloc(t->n_bytes);
            if (!q) return heed_fail(ctx, HEED_ERR_NOMEM, "%s: tensor %s: cannot allocate an aligned copy of "
                                     "%zu bytes", file, t->name, t->n_bytes);
            memcpy(q, p, t->n_bytes);
            st->copies[st->n_copies++] = q;
            p = q;
        }
        t->data = p;
    }
    return HEED_OK;
}

/* Adds a file entry (path copied) to st; returns its index or -1 when out of memory. */
static int st_add_file(heed_st *st, const char *path)
{
    st_file *f = realloc(st->files, (size_t)(st->n_files + 1) * sizeof *f);
    if (!f) return -1;
    st->files = f;
    memset(&f[st->n_files], 0, sizeof *f);
    f[st->n_files].path = strdup(path);
    if (!f[st->n_files].path) return -1;
    return st->n_files++;
}

/* Maps and parses one file into st. */
static heed_status st_map_file(heed_ctx *ctx, heed_st *st, const char *path)
{
    int fi = st_add_file(st, path);
    if (fi < 0) return heed_fail(ctx, HEED_ERR_NOMEM, "%s: out of memory", path);
    int fd;
    size_t size;
    heed_status s = heed_open_regular(ctx, &fd, &size, path);
    if (s != HEED_OK) return s;
    if (size < 8) {
        close(fd);
        return heed_fail(ctx, HEED_ERR_FORMAT, "%s: %zu bytes, too short for the 8-byte header length", path, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) return heed_fail(ctx, HEED_ERR_IO, "%s: mmap of %zu bytes failed: %s", path, size, strerror(e));
    st->files[fi].map = map;
    st->files[fi].map_size = size;
    return st_parse(ctx, st, fi, map, size);
}

/* Sorts the tensors by name and rejects a name present twice (in one header or across shards). */
static heed_status st_finish(heed_ctx *ctx, heed_st *st)
{
    if (st->n > 1) qsort(st->tensors, (size_t)st->n, sizeof *st->tensors, cmp_by_name);
    for (int64_t i = 1; i < st->n; i++)
        if (strcmp(st->tensors[i - 1].name, st->tensors[i].name) == 0)
            return heed_fail(ctx, HEED_ERR_FORMAT, "tensor %s appears twice (in %s and %s)", st->tensors[i].name,
                             st->tensors[i - 1].file, st->tensors[i].file);
    return HEED_OK;
}

/* Opens the shards named by an index file's weight_map, each once, and checks the map against them. */
static heed_status st_open_index(heed_ctx *ctx, heed_st *st, const char *index_path)
{
    char *text = NULL;
    size_t len = 0;
    heed_status s = heed_read_file(ctx, &text, &len, index_path, 256u << 20);
    if (s != HEED_OK) return s;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) return heed_fail(ctx, HEED_ERR_FORMAT, "%s: not valid JSON", index_path);
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(wm)) {
        cJSON_Delete(root);
        return heed_fail(ctx, HEED_ERR_FORMAT, "%s: expected a \"weight_map\" object (tensor name -> file)", index_path);
    }
    /* Shards live next to the index. */
    char *dir = strdup(index_path);
    if (!dir) {
        cJSON_Delete(root);
        return heed_fail(ctx, HEED_ERR_NOMEM, "%s: out of memory", index_path);
    }
    char *slash = strrchr(dir, '/');
    if (slash) slash[1] = '\0';
    else strcpy(dir, ".");
    for (const cJSON *e = wm->child; e && s == HEED_OK; e = e->next) {
        if (!cJSON_IsString(e) || !e->valuestring[0] || strchr(e->valuestring, '/') ||
            strcmp(e->valuestring, "..") == 0 || strcmp(e->valuestring, ".") == 0) {
            s = heed_fail(ctx, HEED_ERR_FORMAT, "%s: weight_map[\"%.128s\"]: expected the file name of a shard in "
                          "the same folder", index_path, e->string);
            break;
        }
        char *path = heed_path_join(dir, e->valuestring);
        if (!path) {
            s = heed_fail(ctx, HEED_ERR_NOMEM, "%s: out of memory", index_path);
            break;
        }
        int seen = 0;
        for (int i = 0; i < st->n_files && !seen; i++) seen = strcmp(st->files[i].path, path) == 0;
        if (!seen) s = st_map_file(ctx, st, path);
        free(path);
    }
    free(dir);
    if (s == HEED_OK && st->n_files == 0) s = heed_fail(ctx, HEED_ERR_FORMAT, "%s: weight_map is empty", index_path);
    if (s == HEED_OK) s = st_finish(ctx, st);
    /* The index must not promise a tensor that its shard lacks. */
    for (const cJSON *e = wm->child; e && s == HEED_OK; e = e->next) {
        const heed_st_tensor *t = heed_st_find(st, e->string);
        const char *tf = t ? strrchr(t->file, '/') : NULL;
        tf = tf ? tf + 1 : t ? t->file : NULL;
        if (!t || strcmp(tf, e->valuestring) != 0)
            s = heed_fail(ctx, HEED_ERR_FORMAT, "%s: weight_map puts tensor %.200s in %.200s, but %s", index_path,
                          e->string, e->valuestring, t ? "it is in another shard" : "no shard holds it");
    }
    cJSON_Delete(root);
    return s;
}

static heed_status st_new(heed_ctx *ctx, heed_st **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? HEED_OK : heed_fail(ctx, HEED_ERR_NOMEM, "out of memory opening a checkpoint");
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

heed_status heed_st_open(heed_ctx *ctx, heed_st **out, const char *path)
{
    if (!out) return heed_fail(ctx, HEED_ERR_INVALID, "heed_st_open: out is NULL");
    *out = NULL;
    if (!path) return heed_fail(ctx, HEED_ERR_INVALID, "heed_st_open: path is NULL");
    heed_st *st;
    heed_status s = st_new(ctx, &st);
    if (s != HEED_OK) return s;
    if (heed_is_dir(path)) {
        char *index = heed_path_join(path, "model.safetensors.index.json");
        char *single = heed_path_join(path, "model.safetensors");
        if (!index || !single) s = heed_fail(ctx, HEED_ERR_NOMEM, "%s: out of memory", path);
        else if (heed_is_file(index)) s = st_open_index(ctx, st, index);
        else if (heed_is_file(single)) s = st_map_file(ctx, st, single);
        else s = heed_fail(ctx, HEED_ERR_IO, "%s: no model.safetensors or model.safetensors.index.json", path);
        free(index);
        free(single);
    } else if (ends_with(path, ".json")) {
        s = st_open_index(ctx, st, path);
    } else {
        s = st_map_file(ctx, st, path);
    }
    if (s == HEED_OK) s = st_finish(ctx, st); /* again after an index: sorting sorted names is cheap */
    if (s != HEED_OK) {
        heed_st_close(st);
        return s;
    }
    *out = st;
    return HEED_OK;
}

heed_status heed_st_open_mem(heed_ctx *ctx, heed_st **out, const void *data, size_t size, const char *name)
{
    if (!out) return heed_fail(ctx, HEED_ERR_INVALID, "heed_st_open_mem: out is NULL");
    *out = NULL;
    if (!data && size) return heed_fail(ctx, HEED_ERR_INVALID, "heed_st_open_mem: data is NULL");
    heed_st *st;
    heed_status s = st_new(ctx, &st);
    if (s != HEED_OK) return s;
    int fi = st_add_file(st, name ? name : "<memory>");
    s = fi < 0 ? heed_fail(ctx, HEED_ERR_NOMEM, "out of memory") : st_parse(ctx, st, fi, data, size);
    if (s == HEED_OK) s = st_finish(ctx, st);
    if (s != HEED_OK) {
        heed_st_close(st);
        return s;
    }
    *out = st;
    return HEED_OK;
}

int64_t heed_st_count(const heed_st *st) { return st ? st->n : 0; }

const heed_st_tensor *heed_st_at(const heed_st *st, int64_t i)
{
    return st && i >= 0 && i < st->n ? &st->tensors[i] : NULL;
}

const heed_st_tensor *heed_st_find(const heed_st *st, const char *name)
{
    if (!st || !name || st->n == 0) return NULL;
    heed_st_tensor key = {.name = name};
    return bsearch(&key, st->tensors, (size_t)st->n, sizeof key, cmp_by_name);
}

/* "[a, b, c]" into buf [cap]. */
static const char *shape_str(char *buf, size_t cap, int n_dims, const int64_t *shape)
{
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < n_dims && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
    return buf;
}

heed_status heed_st_get(heed_ctx *ctx, const heed_st_tensor **out, const heed_st *st, const char *name,
                        int n_dims, const int64_t *shape)
{
    if (!out || !st || !name) return heed_fail(ctx, HEED_ERR_INVALID, "heed_st_get: NULL argument");
    *out = NULL;
    const heed_st_tensor *t = heed_st_find(st, name);
    if (!t)
        return heed_fail(ctx, HEED_ERR_FORMAT, "tensor %s not found in %s%s", name, st->n_files ? st->files[0].path : "",
                         st->n_files > 1 ? " (or the other shards)" : "");
    if (t->dtype != HEED_ST_F32 && t->dtype != HEED_ST_F16 && t->dtype != HEED_ST_BF16)
        return heed_fail(ctx, HEED_ERR_FORMAT, "%s: tensor %s is %s, expected F32, F16 or BF16", t->file, name,
                         heed_st_dtype_name(t->dtype));
    if (shape) {
        int ok = t->n_dims == n_dims;
        for (int i = 0; ok && i < n_dims; i++) ok = shape[i] < 0 || shape[i] == t->shape[i];
        if (!ok) {
            char a[160], b[160];
            return heed_fail(ctx, HEED_ERR_FORMAT, "%s: tensor %s has shape %s, expected %s", t->file, name,
                             shape_str(a, sizeof a, t->n_dims, t->shape),
                             shape_str(b, sizeof b, n_dims < 0 ? 0 : n_dims > 8 ? 8 : n_dims, shape));
        }
    }
    *out = t;
    return HEED_OK;
}

heed_status heed_st_view(heed_ctx *ctx, heed_tensor *out, const heed_st_tensor *t)
{
    if (!out || !t) return heed_fail(ctx, HEED_ERR_INVALID, "heed_st_view: NULL argument");
    if ((int)t->dtype > HEED_ST_F64)
        return heed_fail(ctx, HEED_ERR_UNSUPPORTED, "%s: tensor %s is %s; views exist for F32, F16, BF16 and F64",
                         t->file, t->name, heed_st_dtype_name(t->dtype));
    if (t->n_dims < 1 || t->n_dims > 4)
        return heed_fail(ctx, HEED_ERR_UNSUPPORTED, "%s: tensor %s has %d dimensions; views hold 1 to 4", t->file,
                         t->name, t->n_dims);
    int64_t ne[4] = {1, 1, 1, 1};
    for (int i = 0; i < t->n_dims; i++) ne[4 - t->n_dims + i] = t->shape[i];
    /* The mapping is read-only: the view's data must only be read. */
    *out = heed_tensor_4d((void *)(uintptr_t)t->data, (heed_dtype)t->dtype, ne[0], ne[1], ne[2], ne[3]);
    return HEED_OK;
}

const char *heed_st_metadata(const heed_st *st, const char *key)
{
    if (!st || !key || st->n_files == 0 || !st->files[0].meta) return NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(st->files[0].meta, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---------------------------------------------------------------------------------------------- writer */

typedef struct st_order {
    const heed_st_entry *e;
    size_t es;
    uint64_t n_bytes;
} st_order;

/* Larger elements first, then by name: every tensor starts aligned to its element size. */
static int cmp_write_order(const void *a, const void *b)
{
    const st_order *x = a, *y = b;
    if (x->es != y->es) return x->es > y->es ? -1 : 1;
    return strcmp(x->e->name, y->e->name);
}

static int cmp_order_name(const void *a, const void *b)
{
    return strcmp(((const st_order *)a)->e->name, ((const st_order *)b)->e->name);
}

static cJSON *json_int_array(const int64_t *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) {
        char num[32];
        snprintf(num, sizeof num, "%lld", (long long)v[i]);
        cJSON *x = cJSON_CreateRaw(num);
        if (!x || !cJSON_AddItemToArray(a, x)) {
            cJSON_Delete(x);
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

/* The JSON header for the tensors in write order, padded with spaces to a multiple of 8 bytes. */
static heed_status st_header(heed_ctx *ctx, char **out, size_t *out_len, const st_order *ord, int64_t n,
                             const char *path)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *meta = root ? cJSON_AddObjectToObject(root, "__metadata__") : NULL;
    int ok = meta && cJSON_AddStringToObject(meta, "format", "pt");
    uint64_t off = 0;
    for (int64_t i = 0; ok && i < n; i++) {
        cJSON *t = cJSON_AddObjectToObject(root, ord[i].e->name);
        int64_t offs[2] = {(int64_t)off, (int64_t)(off + ord[i].n_bytes)};
        cJSON *sh = json_int_array(ord[i].e->shape, ord[i].e->n_dims), *of = json_int_array(offs, 2);
        ok = t && cJSON_AddStringToObject(t, "dtype", heed_st_dtype_name((heed_st_dtype)ord[i].e->dtype)) && sh && of;
        if (ok) {
            cJSON_AddItemToObject(t, "shape", sh);
            cJSON_AddItemToObject(t, "data_offsets", of);
        } else {
            cJSON_Delete(sh);
            cJSON_Delete(of);
        }
        off += ord[i].n_bytes;
    }
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text) return heed_fail(ctx, HEED_ERR_NOMEM, "%s: out of memory building the header", path);
    size_t len = strlen(text), padded = (len + 7) & ~(size_t)7;
    char *buf = realloc(text, padded + 1);
    if (!buf) {
        free(text);
        return heed_fail(ctx, HEED_ERR_NOMEM, "%s: out of memory building the header", path);
    }
    memset(buf + len, ' ', padded - len);
    buf[padded] = '\0';
    *out = buf;
    *out_len = padded;
    return HEED_OK;
}

heed_status heed_st_write(heed_ctx *ctx, const char *path, const heed_st_entry *entries, int64_t n)
{
    if (!path || n < 0 || (n > 0 && !entries))
        return heed_fail(ctx, HEED_ERR_INVALID, "heed_st_write: path and entries [n >= 0] are required");
    st_order *ord = malloc((size_t)(n ? n : 1) * sizeof *ord);
    if (!ord) return heed_fail(ctx, HEED_ERR_NOMEM, "%s: out of memory", path);
    heed_status s = HEED_OK;
    for (int64_t i = 0; i < n && s == HEED_OK; i++) {
        const heed_st_entry *e = &entries[i];
        ord[i].e = e;
        if (!e->name || !e->name[0] || strcmp(e->name, "__metadata__") == 0) {
            s = heed_fail(ctx, HEED_ERR_INVALID, "%s: entry %lld: a non-empty name other than __metadata__ is "
                          "required", path, (long long)i);
            break;
        }
        if ((int)e->dtype < HEED_F32 || (int)e->dtype > HEED_F64 || e->n_dims < 0 || e->n_dims > HEED_ST_MAX_DIMS) {
            s = heed_fail(ctx, HEED_ERR_INVALID, "%s: tensor %s: dtype must be f32, f16, bf16 or f64 and n_dims "
                          "0..%d", path, e->name, HEED_ST_MAX_DIMS);
            break;
        }
        uint64_t ne = 1;
        int bad = 0;
        for (int d = 0; d < e->n_dims; d++)
            bad |= e->shape[d] < 0 || __builtin_mul_overflow(ne, (uint64_t)e->shape[d], &ne);
        ord[i].es = heed_dtype_size(e->dtype);
        bad = bad || __builtin_mul_overflow(ne, (uint64_t)ord[i].es, &ord[i].n_bytes) ||
              ord[i].n_bytes > (uint64_t)INT64_MAX / 2;
        if (bad) s = heed_fail(ctx, HEED_ERR_INVALID, "%s: tensor %s: shape must be non-negative and its size "
                               "must not overflow", path, e->name);
        else if (ord[i].n_bytes > 0 && !e->data)
            s = heed_fail(ctx, HEED_ERR_INVALID, "%s: tensor %s: data is NULL", path, e->name);
    }
    if (s == HEED_OK && n > 0) {
        qsort(ord, (size_t)n, sizeof *ord, cmp_order_name);
        for (int64_t i = 1; i < n && s == HEED_OK; i++)
            if (strcmp(ord[i - 1].e->name, ord[i].e->name) == 0)
                s = heed_fail(ctx, HEED_ERR_INVALID, "%s: tensor name %s given twice", path, ord[i].e->name);
        qsort(ord, (size_t)n, sizeof *ord, cmp_write_order);
    }
    char *hdr = NULL;
    size_t hlen = 0;
    if (s == HEED_OK) s = st_header(ctx, &hdr, &hlen, ord, n, path);
    if (s == HEED_OK) {
        uint8_t len8[8];
        for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
        const void **bufs = malloc((size_t)(n + 2) * sizeof *bufs);
        size_t *lens = malloc((size_t)(n + 2) * sizeof *lens);
        if (!bufs || !lens) s = heed_fail(ctx, HEED_ERR_NOMEM, "%s: out of memory", path);
        if (s == HEED_OK) {
            bufs[0] = len8, lens[0] = 8;
            bufs[1] = hdr, lens[1] = hlen;
            for (int64_t i = 0; i < n; i++) bufs[i + 2] = ord[i].e->data, lens[i + 2] = (size_t)ord[i].n_bytes;
            s = heed_write_atomic(ctx, path, bufs, lens, n + 2);
        }
        free(bufs);
        free(lens);
    }
    free(hdr);
    free(ord);
    return s;
}
