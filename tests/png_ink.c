/* png_ink.c — a helper of viewer_browser_test.sh: decodes a PNG (a browser screenshot) with libpng and
 * prints "WIDTH HEIGHT INK COLOUR": the pixels that are not near-white, and those that are clearly coloured
 * (max - min channel > 40: the page's canvases, not its grey text). Exit 1 when it cannot decode.
 * Usage: png_ink FILE.png */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: png_ink FILE.png\n");
        return 2;
    }
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, argv[1])) {
        fprintf(stderr, "png_ink: %s: %s\n", argv[1], img.message);
        return 1;
    }
    img.format = PNG_FORMAT_RGB;
    png_bytep px = malloc(PNG_IMAGE_SIZE(img));
    if (!px || !png_image_finish_read(&img, NULL, px, 0, NULL)) {
        fprintf(stderr, "png_ink: %s: %s\n", argv[1], px ? img.message : "out of memory");
        free(px);
        return 1;
    }
    size_t ink = 0, colour = 0, n = (size_t)img.width * img.height;
    for (size_t i = 0; i < n; i++) {
        int r = px[3 * i], g = px[3 * i + 1], b = px[3 * i + 2];
        int mx = r > g ? (r > b ? r : b) : (g > b ? g : b), mn = r < g ? (r < b ? r : b) : (g < b ? g : b);
        ink += mn < 240;
        colour += mx - mn > 40;
    }
    printf("%u %u %zu %zu\n", img.width, img.height, ink, colour);
    free(px);
    return 0;
}
