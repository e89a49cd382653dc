/* fuzz_probe_data.c — libFuzzer target for the labelled sets of `heed probe` (JSON Lines): any byte string is
 * parsed; when accepted, every example is checked against the parser's promises (exactly one of text and ids,
 * a non-empty text or id list, ids >= 0, each class the index of its label among the sorted distinct labels). */
#include "heed.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static heed_ctx *ctx;
    if (!ctx && heed_ctx_create(&ctx, 1) != HEED_OK) return 0;
    heed_probe_data *d = NULL;
    if (heed_probe_data_parse(ctx, &d, (const char *)data, size, "fuzz.jsonl") != HEED_OK) return 0;
    if (d->n < 1 || d->n_classes < 2 || d->n_classes > d->n) __builtin_trap();
    for (int64_t c = 1; c < d->n_classes; c++)
        if (d->labels[c - 1] >= d->labels[c]) __builtin_trap();
    for (int64_t i = 0; i < d->n; i++) {
        const heed_probe_example *e = &d->ex[i];
        if (!e->text == !e->ids || (e->text && !e->text[0]) || (e->ids && e->n_ids < 1)) __builtin_trap();
        for (int64_t t = 0; e->ids && t < e->n_ids; t++)
            if (e->ids[t] < 0) __builtin_trap();
        if (e->cls < 0 || e->cls >= d->n_classes || d->labels[e->cls] != e->label || e->line < 1) __builtin_trap();
        if (e->text && strlen(e->text) > size) __builtin_trap();
    }
    heed_probe_data_free(d);
    return 0;
}
