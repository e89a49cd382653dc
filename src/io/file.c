/* file.c — whole-file reads and path helpers shared by the safetensors and config readers.
 * Reads are bounded so a hostile or mistaken path (a device, a huge file) cannot exhaust memory. */
#include "io/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

heed_status heed_open_regular(heed_ctx *ctx, int *fd, size_t *size, const char *path)
{
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0) return heed_fail(ctx, HEED_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(*fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(*fd);
        *fd = -1;
        return heed_fail(ctx, HEED_ERR_IO, "%s: not a regular file", path);
    }
    *size = (size_t)sb.st_size;
    return HEED_OK;
}

heed_status heed_read_file(heed_ctx *ctx, char **out, size_t *len, const char *path, size_t max_bytes)
{
    *out = NULL;
    *len = 0;
    int fd;
    size_t n;
    heed_status s = heed_open_regular(ctx, &fd, &n, path);
    if (s != HEED_OK) return s;
    if (n > max_bytes) {
        close(fd);
        return heed_fail(ctx, HEED_ERR_FORMAT, "%s: %zu bytes, expected at most %zu", path, n, max_bytes);
    }
    char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return heed_fail(ctx, HEED_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, n + 1);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = r < 0 ? errno : 0;
            free(buf);
            close(fd);
            return heed_fail(ctx, HEED_ERR_IO, "%s: read failed after %zu of %zu bytes%s%s", path, got, n,
                             e ? ": " : "", e ? strerror(e) : "");
        }
        got += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return HEED_OK;
}

char *heed_path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (a > 0 && dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

int heed_is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

int heed_is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

heed_status heed_write_atomic(heed_ctx *ctx, const char *path, const void *const *bufs, const size_t *lens,
                              int64_t n_bufs)
{
    char *tmp = malloc(strlen(path) + 16);
    if (!tmp) return heed_fail(ctx, HEED_ERR_NOMEM, "%s: out of memory", path);
    sprintf(tmp, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        heed_status s = heed_fail(ctx, HEED_ERR_IO, "%s: cannot create a temporary file next to it: %s", path,
                                  strerror(errno));
        free(tmp);
        return s;
    }
    int bad = 0;
    for (int64_t i = 0; i < n_bufs && !bad; i++) bad = lens[i] > 0 && write_all(fd, bufs[i], lens[i]);
    bad = bad || fchmod(fd, 0644) != 0 || fsync(fd) != 0;
    int e = errno;
    if (close(fd) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (!bad && rename(tmp, path) != 0) {
        bad = 1;
        e = errno;
    }
    heed_status s = HEED_OK;
    if (bad) {
        unlink(tmp);
        s = heed_fail(ctx, HEED_ERR_IO, "%s: write failed: %s", path, strerror(e));
    }
    free(tmp);
    return s;
}

heed_status heed_write_file(heed_ctx *ctx, const char *path, const void *data, size_t len)
{
    if (!path || (!data && len)) return heed_fail(ctx, HEED_ERR_INVALID, "heed_write_file: NULL path or data");
    return heed_write_atomic(ctx, path, &data, &len, 1);
}
