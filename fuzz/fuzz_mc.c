/* fuzz_mc.c — libFuzzer target for the multiple-choice JSON Lines reader (heed_mc_parse, without a tokenizer:
 * the id fields): any byte string is parsed; when accepted, every item must hold what include/heed.h promises
 * (a prompt, at least two non-empty choices of ids >= 0, a label among them, increasing lines). */
#include "heed.h"

#include <stdint.h>
#include <stdlib.h>

/* Every id read is folded in here, so the reads cannot be optimised away. */
static volatile int32_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static heed_ctx *ctx;
    if (!ctx && heed_ctx_create(&ctx, 1) != HEED_OK) return 0;
    heed_mc_set *set = NULL;
    if (heed_mc_parse(ctx, &set, (const char *)data, size, "fuzz.jsonl", NULL) != HEED_OK) {
        if (set) __builtin_trap();
        return 0;
    }
    if (!set || set->n_items < 1) __builtin_trap();
    int64_t line = 0;
    for (int64_t i = 0; i < set->n_items; i++) {
        const heed_mc_item *it = &set->items[i];
        if (it->n_prompt < 1 || it->n_choices < 2 || it->label < 0 || it->label >= it->n_choices || it->line <= line)
            __builtin_trap();
        line = it->line;
        for (int64_t t = 0; t < it->n_prompt; t++) {
            if (it->prompt[t] < 0) __builtin_trap();
            sink ^= it->prompt[t];
        }
        for (int64_t c = 0; c < it->n_choices; c++) {
            if (it->n_choice[c] < 1) __builtin_trap();
            for (int64_t t = 0; t < it->n_choice[c]; t++) {
                if (it->choice[c][t] < 0) __builtin_trap();
                sink ^= it->choice[c][t];
            }
        }
    }
    heed_mc_free(set);
    return 0;
}
