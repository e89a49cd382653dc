/* fuzz_safetensors.c — libFuzzer target for the safetensors reader: any byte string is opened as a
 * checkpoint image; when accepted, every tensor is read end to end through the lookup, get and
 * view paths, so a header that lies about its data shows up as an out-of-bounds read. */
#include "heed.h"

#include <stdint.h>
#include <string.h>

/* Every byte of every accepted tensor is folded in here, so the reads cannot be optimised away. */
static volatile uint8_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static heed_ctx *ctx;
    if (!ctx && heed_ctx_create(&ctx, 1) != HEED_OK) return 0;
    heed_st *st = NULL;
    if (heed_st_open_mem(ctx, &st, data, size, "fuzz.safetensors") == HEED_OK) {
        for (int64_t i = 0; i < heed_st_count(st); i++) {
            const heed_st_tensor *t = heed_st_at(st, i);
            const uint8_t *p = t->data;
            for (size_t k = 0; k < t->n_bytes; k++) sink ^= p[k];
            const heed_st_tensor *u = heed_st_find(st, t->name);
            if (u != t) __builtin_trap();
            if (heed_st_get(ctx, &u, st, t->name, t->n_dims, t->shape) == HEED_OK) {
                heed_tensor v;
                (void)heed_st_view(ctx, &v, u);
            }
        }
        (void)heed_st_metadata(st, "format");
    }
    heed_st_close(st);
    return 0;
}
