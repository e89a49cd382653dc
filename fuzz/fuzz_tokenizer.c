/* fuzz_tokenizer.c — libFuzzer target for tokenizer.json loading: any byte string is parsed as a
 * tokenizer; one that loads encodes a fixed text (with and without special tokens, covering added
 * tokens, whitespace, digits, accents, CJK and emoji), decodes the result and every id alone. */
#include "heed.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static heed_ctx *ctx;
    static const char text[] = " Hello  world!\n\t12345 it's <s></s>[CLS]<|endoftext|> Caf\xc3\xa9 e\xcc\x81 "
                               "\xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd ##ing \xe2\x96\x81x <0x41>";
    if (!ctx && heed_ctx_create(&ctx, 1) != HEED_OK) return 0;
    heed_tokenizer *tok = NULL;
    if (heed_tokenizer_parse(ctx, &tok, (const char *)data, size, "fuzz.json") != HEED_OK) return 0;
    for (unsigned flags = 0; flags < 8; flags += 3) { /* 0, SPECIAL | NO_TRUNCATE, NO_PAD | ... */
        int32_t *ids = NULL;
        int64_t n = 0;
        if (heed_tokenize(ctx, &ids, &n, tok, text, sizeof text - 1, flags) == HEED_OK) {
            char *out = NULL;
            size_t len = 0;
            if (heed_detokenize(ctx, &out, &len, tok, ids, n, (int)(flags & 1)) == HEED_OK) free(out);
            free(ids);
        }
    }
    int64_t n_ids = heed_tokenizer_n_ids(tok);
    for (int32_t id = 0; id < n_ids && id < 512; id++) {
        char *out = NULL;
        size_t len = 0;
        if (heed_detokenize(ctx, &out, &len, tok, &id, 1, 0) == HEED_OK) free(out);
        (void)heed_tokenizer_token(tok, id);
    }
    heed_tokenizer_free(tok);
    return 0;
}
