/* test_safetensors.c — the safetensors reader and writer: round trips through the writer, sharded
 * checkpoints, and every kind of malformed file (truncated, lying header length, bad JSON, wrong
 * types, offsets out of range, overlaps, gaps, sizes that disagree with dtype and shape), each of
 * which must give HEED_ERR_FORMAT or HEED_ERR_IO with a message naming the file or tensor. */
#include "harness.h"
#include "core/core.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

static const char *tpath(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot create %s", path);
    if (!f) return;
    CHECK(fwrite(p, 1, n, f) == n, "short write to %s", path);
    fclose(f);
}

/* A safetensors image: 8-byte length, header text, then data [n_data]. Free with free(). */
static uint8_t *image(size_t *size, const char *header, const void *data, size_t n_data)
{
    size_t h = strlen(header);
    uint8_t *p = malloc(8 + h + n_data + 1);
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(p + 8, header, h);
    if (n_data) memcpy(p + 8 + h, data, n_data);
    *size = 8 + h + n_data;
    return p;
}

/* Opens an image from memory (and, to exercise the mmap path, from a file); both must agree. */
static heed_status open_image(heed_ctx *ctx, const uint8_t *p, size_t n)
{
    heed_st *st = NULL;
    /* an exact-size copy so ASan sees any read past the end */
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, p, n);
    heed_status s = heed_st_open_mem(ctx, &st, copy, n, "mem.safetensors");
    CHECK((s == HEED_OK) == (st != NULL), "open_mem: *out set exactly on success");
    heed_st_close(st);
    free(copy);
    write_bytes(tpath("x.safetensors"), p, n);
    char msg[HEED_ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%s", heed_ctx_error(ctx));
    heed_status s2 = heed_st_open(ctx, &st, tpath("x.safetensors"));
    CHECK(s2 == s, "file and memory disagree: %s vs %s (%s)", heed_status_name(s2), heed_status_name(s), msg);
    heed_st_close(st);
    return s;
}

#define CHECK_BAD(ctx, hdr, data, n, needle)                                                                     \
    do {                                                                                                         \
        size_t sz_;                                                                                              \
        uint8_t *im_ = image(&sz_, hdr, data, n);                                                                \
        heed_status s_ = open_image(ctx, im_, sz_);                                                              \
        CHECK(s_ == HEED_ERR_FORMAT && strstr(heed_ctx_error(ctx), needle), "header %s -> %s \"%s\", expected "  \
              "malformed input naming \"%s\"", hdr, heed_status_name(s_), heed_ctx_error(ctx), needle);           \
        free(im_);                                                                                               \
    } while (0)

static void test_roundtrip(heed_ctx *ctx)
{
    float a[6] = {1, -2, 3.5f, 4, 5, 6}, s0 = 42;
    uint16_t b[4], h[6];
    for (int i = 0; i < 4; i++) b[i] = heed_f32_to_bf16((float)i - 1.5f);
    for (int i = 0; i < 6; i++) h[i] = heed_f32_to_f16((float)i * 0.25f);
    double d[3] = {1e300, -0.5, 3};
    heed_st_entry e[] = {
        {"model.layers.0.weight", HEED_F32, 2, {2, 3}, a},
        {"bf", HEED_BF16, 1, {4}, b},
        {"half \"quoted\"", HEED_F16, 3, {3, 1, 2}, h},
        {"empty", HEED_F32, 2, {0, 5}, NULL},
        {"scalar", HEED_F32, 0, {0}, &s0},
        {"f64", HEED_F64, 1, {3}, d},
    };
    const char *path = tpath("rt.safetensors");
    CHECK_OK(ctx, heed_st_write(ctx, path, e, 6));
    heed_st *st = NULL;
    CHECK_OK(ctx, heed_st_open(ctx, &st, path));
    if (!st) return;
    CHECK(heed_st_count(st) == 6, "count %lld", (long long)heed_st_count(st));
    for (int i = 0; i < 6; i++) {
        const heed_st_tensor *t = heed_st_find(st, e[i].name);
        CHECK(t != NULL, "find %s", e[i].name);
        if (!t) continue;
        CHECK((int)t->dtype == (int)e[i].dtype && t->n_dims == e[i].n_dims, "%s: dtype/rank", e[i].name);
        size_t bytes = heed_dtype_size(e[i].dtype);
        for (int k = 0; k < t->n_dims; k++) {
            CHECK(t->shape[k] == e[i].shape[k], "%s: shape[%d]", e[i].name, k);
            bytes *= (size_t)e[i].shape[k];
        }
        CHECK(t->n_bytes == bytes && (bytes == 0 || memcmp(t->data, e[i].data, bytes) == 0), "%s: data", e[i].name);
        CHECK((uintptr_t)t->data % heed_dtype_size(e[i].dtype) == 0, "%s: aligned", e[i].name);
    }
    CHECK(heed_st_find(st, "nope") == NULL, "absent name");
    for (int64_t i = 1; i < heed_st_count(st); i++)
        CHECK(strcmp(heed_st_at(st, i - 1)->name, heed_st_at(st, i)->name) < 0, "sorted by name");
    CHECK(heed_st_at(st, 6) == NULL && heed_st_at(st, -1) == NULL, "at out of range");
    const char *fmt = heed_st_metadata(st, "format");
    CHECK(fmt && strcmp(fmt, "pt") == 0, "metadata format=pt");

    const heed_st_tensor *t;
    int64_t want[2] = {2, 3}, any[2] = {-1, 3}, wrong[2] = {3, 2};
    CHECK_OK(ctx, heed_st_get(ctx, &t, st, "model.layers.0.weight", 2, want));
    CHECK_OK(ctx, heed_st_get(ctx, &t, st, "model.layers.0.weight", 2, any));
    CHECK(heed_st_get(ctx, &t, st, "model.layers.0.weight", 2, wrong) == HEED_ERR_FORMAT &&
          strstr(heed_ctx_error(ctx), "[2, 3], expected [3, 2]") && strstr(heed_ctx_error(ctx), "rt.safetensors"),
          "wrong shape message: %s", heed_ctx_error(ctx));
    CHECK(heed_st_get(ctx, &t, st, "missing.weight", 0, NULL) == HEED_ERR_FORMAT &&
          strstr(heed_ctx_error(ctx), "missing.weight"), "missing tensor message: %s", heed_ctx_error(ctx));
    CHECK(heed_st_get(ctx, &t, st, "f64", 0, NULL) == HEED_ERR_FORMAT && strstr(heed_ctx_error(ctx), "F64"),
          "f64 weight refused: %s", heed_ctx_error(ctx));
    heed_tensor v;
    CHECK_OK(ctx, heed_st_get(ctx, &t, st, "half \"quoted\"", 3, (int64_t[]){3, 1, 2}));
    CHECK_OK(ctx, heed_st_view(ctx, &v, t));
    CHECK(v.dtype == HEED_F16 && v.ne[0] == 1 && v.ne[1] == 3 && v.ne[2] == 1 && v.ne[3] == 2 && v.nb[3] == 2 &&
          v.nb[0] == 12 && v.data == t->data, "view right-aligned");
    CHECK(heed_st_view(ctx, &v, heed_st_find(st, "scalar")) == HEED_ERR_UNSUPPORTED, "no view of a scalar");
    heed_st_close(st);

    /* Writer errors: nothing is written and an existing file survives. */
    heed_st_entry dup[] = {{"x", HEED_F32, 1, {1}, a}, {"x", HEED_BF16, 1, {1}, b}};
    CHECK(heed_st_write(ctx, path, dup, 2) == HEED_ERR_INVALID && strstr(heed_ctx_error(ctx), "twice"), "duplicate names");
    heed_st_entry meta[] = {{"__metadata__", HEED_F32, 1, {1}, a}};
    CHECK(heed_st_write(ctx, path, meta, 1) == HEED_ERR_INVALID, "reserved name");
    heed_st_entry neg[] = {{"n", HEED_F32, 1, {-1}, a}};
    CHECK(heed_st_write(ctx, path, neg, 1) == HEED_ERR_INVALID, "negative shape");
    heed_st_entry huge[] = {{"n", HEED_F32, 2, {INT64_C(1) << 40, INT64_C(1) << 40}, a}};
    CHECK(heed_st_write(ctx, path, huge, 1) == HEED_ERR_INVALID, "overflowing shape");
    CHECK_OK(ctx, heed_st_open(ctx, &st, path));
    CHECK(heed_st_count(st) == 6, "the earlier file is untouched");
    heed_st_close(st);
    CHECK(heed_st_write(ctx, tpath("no/such/dir/out.safetensors"), e, 1) == HEED_ERR_IO, "unwritable path");
    /* No temporary file is left behind. */
    DIR *dir = opendir(tmpdir);
    int leftovers = 0;
    for (struct dirent *de; dir && (de = readdir(dir));) leftovers += strstr(de->d_name, ".tmp.") != NULL;
    if (dir) closedir(dir);
    CHECK(leftovers == 0, "%d temporary files left", leftovers);
    /* An empty checkpoint is valid. */
    CHECK_OK(ctx, heed_st_write(ctx, tpath("empty.safetensors"), NULL, 0));
    CHECK_OK(ctx, heed_st_open(ctx, &st, tpath("empty.safetensors")));
    CHECK(st && heed_st_count(st) == 0, "empty file");
    heed_st_close(st);
}

static void test_malformed(heed_ctx *ctx)
{
    float data[4] = {1, 2, 3, 4};
    const char *T = "\"t\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}";
    char hdr[512];
#define H(...) (snprintf(hdr, sizeof hdr, __VA_ARGS__), hdr)
    /* a valid image first, so the failures below are due to the one thing each changes */
    size_t n;
    uint8_t *ok = image(&n, H("{%s}", T), data, 8);
    CHECK(open_image(ctx, ok, n) == HEED_OK, "valid image: %s", heed_ctx_error(ctx));

    /* Every truncation of a valid image is rejected. */
    int bad = 0;
    for (size_t k = 0; k < n; k++) bad += open_image(ctx, ok, k) != HEED_ERR_FORMAT;
    CHECK(bad == 0, "%d truncations accepted", bad);
    CHECK(open_image(ctx, ok, 0) == HEED_ERR_FORMAT && strstr(heed_ctx_error(ctx), "too short"), "empty file");
    free(ok);

    /* header length lies */
    uint8_t lie[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '{', '}'};
    CHECK(open_image(ctx, lie, 10) == HEED_ERR_FORMAT && strstr(heed_ctx_error(ctx), "exceeds"), "huge header length");
    uint8_t lie2[16] = {9, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    CHECK(open_image(ctx, lie2, 10) == HEED_ERR_FORMAT && strstr(heed_ctx_error(ctx), "exceeds"), "header past end");

    CHECK_BAD(ctx, "{\"t\": ", data, 0, "JSON");
    CHECK_BAD(ctx, "not json at all", data, 0, "JSON");
    CHECK_BAD(ctx, "[1, 2]", data, 0, "object");
    CHECK_BAD(ctx, "{}  x", data, 0, "after the JSON");
    CHECK_BAD(ctx, H("{%s}", T), data, 12, "tensors end at byte 8");
    CHECK_BAD(ctx, "{\"t\": 5}", data, 0, "tensor t");
    CHECK_BAD(ctx, "{\"t\": {\"shape\": [2], \"data_offsets\": [0, 8]}}", data, 8, "dtype");
    CHECK_BAD(ctx, "{\"t\": {\"dtype\": \"F8_E4M3\", \"shape\": [2], \"data_offsets\": [0, 2]}}", data, 2, "F8_E4M3");
    CHECK_BAD(ctx, "{\"t\": {\"dtype\": 4, \"shape\": [2], \"data_offsets\": [0, 8]}}", data, 8, "dtype");
    CHECK_BAD(ctx, "{\"t\": {\"dtype\": \"F32\", \"shape\": 2, \"data_offsets\": [0, 8]}}", data, 8, "shape");
    CHECK_BAD(ctx, "{\"t\": {\"dtype\": \"F32\", \"shape\": [-2], \"data_offsets\": [0, 8]}}", data, 8, "shape[0]");
    CHECK_BAD(ctx, "{\"t\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 8]}}", data, 8, "shape[0]");
    CHECK_BAD(ctx, "{\"t\": {\"dtype\": \"F32\", \"shape\": [\"2\"], \"data_offsets\": [0, 8]}}", data, 8, "shape[0]");
    CHECK_BAD(ctx, "{\"t\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}}", data, 4,
              "9 dimensions");
    CHECK_BAD(ctx, "{\"t\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 4294967296], "
                   "\"data_offsets\": [0, 8]}}", data, 8, "overflows");
    CHECK_BAD(ctx, "{\"t\": {\"dtype\": \"F32\", \"shape\": [9007199254740992], \"data_offsets\": [0, 8]}}", data, 8,
              "do not fit");
    CHECK_BAD(ctx, "{\"t\": {\"dtype\": \"F32\", \"shape\": [2]}}", data, 8, "data_offsets");
    CHECK_BAD(ctx, "{\"t\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8, 9]}}", data, 8, "data_offsets");
    CHECK_BAD(ctx, "{\"t\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 0]}}", data, 8, "outside");
    CHECK_BAD(ctx, "{\"t\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]}}", data, 8, "outside");
    CHECK_BAD(ctx, "{\"t\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 1e300]}}", data, 8, "data_offsets");
    CHECK_BAD(ctx, "{\"t\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", data, 12, "expected 12");
    CHECK_BAD(ctx, "{\"t\": {\"dtype\": \"BF16\", \"shape\": [2], \"data_offsets\": [0, 8]}}", data, 8, "expected 4");
    CHECK_BAD(ctx, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, "
                   "\"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", data, 12, "overlaps");
    CHECK_BAD(ctx, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, "
                   "\"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}", data, 12, "gaps");
    CHECK_BAD(ctx, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, "
                   "\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", data, 8, "twice");
    CHECK_BAD(ctx, H("{\"__metadata__\": {\"format\": 1}, %s}", T), data, 8, "__metadata__");
    CHECK_BAD(ctx, H("{\"__metadata__\": [], %s}", T), data, 8, "__metadata__");
    CHECK_BAD(ctx, "{}", data, 4, "tensors end at byte 0 of a 4-byte");
#undef H

    /* A tensor at an offset that is not a multiple of its element size is copied, still readable. */
    uint8_t raw[9] = {7};
    float two[2] = {1.25f, -3};
    memcpy(raw + 1, two, 8);
    /* header of 60 bytes: 8 + 60 = 68, so the F32 data sits at 68 + 1, misaligned for floats */
    const char *mis = "{\"u\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                      "\"f\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[1,9]}}";
    char padded[256];
    snprintf(padded, sizeof padded, "%-*s", (int)((strlen(mis) + 3) / 4 * 4), mis);
    uint8_t *im = image(&n, padded, raw, 9);
    heed_st *st = NULL;
    CHECK_OK(ctx, heed_st_open_mem(ctx, &st, im, n, "mis"));
    const heed_st_tensor *f = st ? heed_st_find(st, "f") : NULL;
    CHECK(f && (uintptr_t)f->data % 4 == 0 && memcmp(f->data, two, 8) == 0, "misaligned tensor copied and aligned");
    CHECK(f && ((const uint8_t *)f->data < im || (const uint8_t *)f->data >= im + n), "the copy is outside the image");
    const heed_st_tensor *u = st ? heed_st_find(st, "u") : NULL;
    CHECK(u && (const uint8_t *)u->data == im + 8 + strlen(padded), "an aligned tensor points into the image");
    heed_st_close(st);
    free(im);

    /* Random corruption of a valid header never crashes (results checked under the sanitizer build). */
    heed_st_entry e[] = {{"a.weight", HEED_F32, 2, {2, 2}, data}, {"b", HEED_F16, 1, {2}, data}};
    CHECK_OK(ctx, heed_st_write(ctx, tpath("good.safetensors"), e, 2));
    FILE *fp = fopen(tpath("good.safetensors"), "rb");
    uint8_t good[512];
    size_t gn = fp ? fread(good, 1, sizeof good, fp) : 0;
    if (fp) fclose(fp);
    t_rng rng = {12345};
    int accepted = 0;
    for (int trial = 0; trial < 3000; trial++) {
        uint8_t *c = malloc(gn);
        memcpy(c, good, gn);
        int flips = (int)t_int(&rng, 1, 3);
        for (int k = 0; k < flips; k++) c[t_int(&rng, 0, (int64_t)gn - 1)] = (uint8_t)t_next(&rng);
        heed_status s = heed_st_open_mem(ctx, &st, c, gn, "fuzz");
        accepted += s == HEED_OK;
        CHECK(s == HEED_OK || s == HEED_ERR_FORMAT, "corruption gave %s", heed_status_name(s));
        heed_st_close(st);
        free(c);
    }
    printf("random corruption: %d of 3000 still valid (changes inside tensor data or JSON whitespace)\n", accepted);
}

static void test_sharded(heed_ctx *ctx)
{
    float a[4] = {1, 2, 3, 4}, b[2] = {5, 6};
    heed_st_entry s1[] = {{"embed.weight", HEED_F32, 2, {2, 2}, a}};
    heed_st_entry s2[] = {{"lm_head.weight", HEED_F32, 1, {2}, b}, {"extra", HEED_F32, 1, {1}, b}};
    mkdir(tpath("sharded"), 0755);
    CHECK_OK(ctx, heed_st_write(ctx, tpath("sharded/model-00001-of-00002.safetensors"), s1, 1));
    CHECK_OK(ctx, heed_st_write(ctx, tpath("sharded/model-00002-of-00002.safetensors"), s2, 2));
    const char *index = "{\"metadata\": {\"total_size\": 24}, \"weight_map\": {"
                        "\"embed.weight\": \"model-00001-of-00002.safetensors\", "
                        "\"lm_head.weight\": \"model-00002-of-00002.safetensors\", "
                        "\"extra\": \"model-00002-of-00002.safetensors\"}}";
    write_bytes(tpath("sharded/model.safetensors.index.json"), index, strlen(index));
    for (int via = 0; via < 2; via++) {
        heed_st *st = NULL;
        CHECK_OK(ctx, heed_st_open(ctx, &st, via ? tpath("sharded/model.safetensors.index.json") : tpath("sharded")));
        if (!st) continue;
        CHECK(heed_st_count(st) == 3, "3 tensors across shards");
        const heed_st_tensor *t = heed_st_find(st, "lm_head.weight");
        CHECK(t && ((const float *)t->data)[1] == 6 && strstr(t->file, "00002"), "tensor from shard 2");
        t = heed_st_find(st, "embed.weight");
        CHECK(t && ((const float *)t->data)[3] == 4 && strstr(t->file, "00001"), "tensor from shard 1");
        heed_st_close(st);
    }
    /* A single-file directory works too. */
    mkdir(tpath("single"), 0755);
    CHECK_OK(ctx, heed_st_write(ctx, tpath("single/model.safetensors"), s1, 1));
    heed_st *st = NULL;
    CHECK_OK(ctx, heed_st_open(ctx, &st, tpath("single")));
    CHECK(st && heed_st_count(st) == 1, "single file directory");
    heed_st_close(st);

    struct {
        const char *index, *needle;
        heed_status want;
    } bad[] = {
        {"{\"weight_map\": {\"embed.weight\": \"model-00003-of-00002.safetensors\"}}", "model-00003-of-00002", HEED_ERR_IO},
        {"{\"weight_map\": {\"nope\": \"model-00001-of-00002.safetensors\"}}", "nope", HEED_ERR_FORMAT},
        {"{\"weight_map\": {\"embed.weight\": \"model-00002-of-00002.safetensors\", "
         "\"lm_head.weight\": \"model-00002-of-00002.safetensors\"}}", "embed.weight", HEED_ERR_FORMAT},
        {"{\"weight_map\": {\"embed.weight\": \"../x.safetensors\"}}", "same folder", HEED_ERR_FORMAT},
        {"{\"weight_map\": {\"embed.weight\": 3}}", "same folder", HEED_ERR_FORMAT},
        {"{\"weight_map\": {}}", "empty", HEED_ERR_FORMAT},
        {"{\"metadata\": {}}", "weight_map", HEED_ERR_FORMAT},
        {"{\"weight_map\": ", "JSON", HEED_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_bytes(tpath("sharded/bad.index.json"), bad[i].index, strlen(bad[i].index));
        heed_status s = heed_st_open(ctx, &st, tpath("sharded/bad.index.json"));
        CHECK(s == bad[i].want && st == NULL && strstr(heed_ctx_error(ctx), bad[i].needle),
              "index %s -> %s \"%s\"", bad[i].index, heed_status_name(s), heed_ctx_error(ctx));
    }
    /* The same tensor in two shards. */
    CHECK_OK(ctx, heed_st_write(ctx, tpath("sharded/dup.safetensors"), s1, 1));
    const char *dup = "{\"weight_map\": {\"embed.weight\": \"model-00001-of-00002.safetensors\", "
                      "\"x\": \"dup.safetensors\"}}";
    write_bytes(tpath("sharded/bad.index.json"), dup, strlen(dup));
    CHECK(heed_st_open(ctx, &st, tpath("sharded/bad.index.json")) == HEED_ERR_FORMAT &&
          strstr(heed_ctx_error(ctx), "appears twice"), "duplicate across shards: %s", heed_ctx_error(ctx));

    CHECK(heed_st_open(ctx, &st, tpath("missing.safetensors")) == HEED_ERR_IO &&
          strstr(heed_ctx_error(ctx), "missing.safetensors"), "missing file: %s", heed_ctx_error(ctx));
    mkdir(tpath("emptydir"), 0755);
    CHECK(heed_st_open(ctx, &st, tpath("emptydir")) == HEED_ERR_IO && strstr(heed_ctx_error(ctx), "emptydir"),
          "empty directory: %s", heed_ctx_error(ctx));
}

/* Removes the temporary tree (two levels deep is all the tests make). */
static void cleanup(const char *path, int depth)
{
    DIR *d = opendir(path);
    for (struct dirent *de; d && (de = readdir(d));) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char sub[1024];
        if (snprintf(sub, sizeof sub, "%s/%s", path, de->d_name) >= (int)sizeof sub) continue;
        if (unlink(sub) != 0 && depth > 0) cleanup(sub, depth - 1);
    }
    if (d) closedir(d);
    rmdir(path);
}

int main(void)
{
    heed_ctx *ctx = NULL;
    CHECK_OK(ctx, heed_ctx_create(&ctx, 1));
    snprintf(tmpdir, sizeof tmpdir, "/tmp/heed_st_XXXXXX");
    CHECK(mkdtemp(tmpdir) != NULL, "mkdtemp");
    test_roundtrip(ctx);
    test_malformed(ctx);
    test_sharded(ctx);
    cleanup(tmpdir, 2);
    heed_ctx_free(ctx);
    return t_done("test_safetensors");
}
