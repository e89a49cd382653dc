/* fuzz_config.c — libFuzzer target for config.json handling: any byte string is parsed as a model
 * config and as generation/tokenizer config; an accepted model config also has its RoPE frequencies
 * computed (at the trained length and beyond it, for "dynamic"). */
#include "heed.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static heed_ctx *ctx;
    if (!ctx && heed_ctx_create(&ctx, 1) != HEED_OK) return 0;
    heed_config cfg;
    if (heed_config_parse(ctx, &cfg, (const char *)data, size, "fuzz.json") == HEED_OK && cfg.pos == HEED_POS_ROPE) {
        float *inv = malloc((size_t)heed_rope_dim(&cfg) / 2 * sizeof *inv), af;
        if (inv) {
            (void)heed_rope_inv_freq(ctx, inv, &af, &cfg, 1);
            (void)heed_rope_inv_freq(ctx, inv, &af, &cfg, cfg.max_pos + 1000);
            free(inv);
        }
    }
    heed_gen_config gen;
    heed_gen_config_init(&gen);
    (void)heed_gen_config_parse(ctx, &gen, (const char *)data, size, "fuzz.json");
    return 0;
}
