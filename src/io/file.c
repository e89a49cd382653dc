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
