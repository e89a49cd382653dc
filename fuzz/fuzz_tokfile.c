/* fuzz_tokfile.c — libFuzzer target for the token-file reader: any byte string is opened as a token
 * file image; when accepted, every id is read back and a loader is built over it and asked for its
 * training and evaluation windows, so a header that lies about its size shows up as an out-of-bounds read. */
#include "heed.h"

#include <stdint.h>
#include <stdlib.h>

/* Every id read is folded in here, so the reads cannot be optimised away. */
static volatile int32_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static heed_ctx *ctx;
    if (!ctx && heed_ctx_create(&ctx, 1) != HEED_OK) return 0;
    heed_tokfile *f = NULL;
    if (heed_tokfile_open_mem(ctx, &f, data, size, "fuzz.tok") != HEED_OK) return 0;
    int64_t n = heed_tokfile_count(f);
    int32_t mx = -1;
    for (int64_t i = 0; i < n; i++) {
        int32_t id = heed_tokfile_id(f, i);
        if (id < 0) __builtin_trap();
        mx = id > mx ? id : mx;
        sink ^= id;
    }
    if (mx != heed_tokfile_max_id(f)) __builtin_trap();
    heed_data *d = NULL;
    if (heed_data_create_tokfile(ctx, &d, f, (int64_t)mx + 1, 0.25) == HEED_OK) {
        enum { B = 2, T = 4 };
        int32_t in[B * T], tg[B * T];
        uint64_t rng = (uint64_t)size;
        if (heed_data_n_train(d) > T) (void)heed_data_batch(ctx, in, tg, d, B, T, &rng);
        for (int64_t w = 0; w < heed_data_eval_windows(d, T); w += B) {
            (void)heed_data_eval_batch(ctx, in, tg, d, B, T, w);
            for (int i = 0; i < B * T; i++) sink ^= in[i] ^ tg[i];
        }
    }
    heed_data_free(d);
    heed_tokfile_close(f);
    return 0;
}
