/* bench_train.c — `heed bench train`: training throughput of the trainer (forward, backward and the
 * AdamW step on random tokens) as tokens/s and as model FLOPs utilisation against the sgemm peak
 * measured in the same process. */
#include "bench_peak.h"
#include "cli_util.h"
#include "heed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(FILE *f, int rc)
{
    fprintf(f, "usage: heed bench train [--json] [--quick] [--threads N] [--batch B] [--seq T] [--steps N]\n"
               "                        [--hidden C] [--layers L]\n"
               "  Trains the default model shape (hidden 256, 4 layers, 8 heads / 4 KV heads, MLP 768, vocab 4096;\n"
               "  --hidden C: C/32 heads of 32, half as many KV heads, MLP 3C)\n"
               "  on random tokens: B sequences of T tokens per step (default 8 x 256), N timed steps (default 4)\n"
               "  after one warm-up step. Reports tokens/s, model GFLOP/s (heed_trainer_flops_per_token) and\n"
               "  MFU = model GFLOP/s / the OpenBLAS sgemm peak measured in the same run. --quick: 1 x 64, 2 steps.\n");
    return rc;
}

int bench_train(int argc, char **argv)
{
    int json = 0, n_threads = 0;
    int64_t B = 8, T = 256, steps = 4, hidden = 256, layers = 4;
    for (int i = 1; i < argc; i++) {
        double v = 0;
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--quick")) B = 1, T = 64, steps = 2;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return usage(stdout, 0);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            if (!cli_parse_threads(&n_threads, argv[++i])) {
                fprintf(stderr, "heed bench train: --threads %s: expected 1..4096\n", argv[i]);
                return 2;
            }
        } else if ((!strcmp(argv[i], "--batch") || !strcmp(argv[i], "--seq") || !strcmp(argv[i], "--steps") ||
                    !strcmp(argv[i], "--hidden") || !strcmp(argv[i], "--layers")) && i + 1 < argc) {
            const char *flag = argv[i];
            int hid = !strcmp(flag, "--hidden");
            if (!cli_parse_num(&v, argv[++i]) || v < 1 || v > 1e6 || v != (double)(int64_t)v ||
                (hid && (int64_t)v % 64)) {
                fprintf(stderr, "heed bench train: %s %s: expected a whole number >= 1%s\n", flag, argv[i],
                        hid ? ", a multiple of 64" : "");
                return 2;
            }
            *(!strcmp(flag, "--batch") ? &B : !strcmp(flag, "--seq") ? &T : !strcmp(flag, "--steps") ? &steps
              : hid ? &hidden : &layers) = (int64_t)v;
        } else return usage(stderr, 2);
    }
    heed_ctx *ctx = NULL;
    heed_trainer *tr = NULL;
    heed_train_config c;
    heed_train_config_init(&c);
    c.max_seq = T;
    c.hidden = hidden;
    c.n_layers = layers;
    c.n_heads = hidden / 32;
    c.n_kv_heads = c.n_heads / 2;
    c.intermediate = 3 * hidden;
    int32_t *in = malloc(sizeof(int32_t) * (size_t)(2 * B * T));
    int rc = 1;
    heed_status s = in ? heed_ctx_create(&ctx, n_threads) : HEED_ERR_NOMEM;
    if (s == HEED_OK) s = heed_trainer_create(ctx, &tr, &c, 1);
    if (s != HEED_OK) {
        fprintf(stderr, "heed bench train: %s\n", ctx ? heed_ctx_error(ctx) : "out of memory");
        goto done;
    }
    uint64_t rng = 42;
    for (int64_t i = 0; i < 2 * B * T; i++) in[i] = (int32_t)(heed_rng_next(&rng) % (uint64_t)c.vocab);
    heed_optim o;
    heed_optim_init(&o);
    double t0 = 0;
    float loss = 0;
    for (int64_t step = 0; step <= steps && s == HEED_OK; step++) {
        if (step == 1) t0 = bench_now(); /* step 0 warms up: allocations, page faults, OpenBLAS buffers */
        s = heed_trainer_forward_backward(ctx, tr, &loss, NULL, NULL, in, in + B * T, B, T, 1.0f);
        if (s == HEED_OK) s = heed_trainer_step(ctx, tr, &o, 1e-3f, NULL);
    }
    if (s != HEED_OK) {
        fprintf(stderr, "heed bench train: %s\n", heed_ctx_error(ctx));
        goto done;
    }
    double secs = bench_now() - t0, tok_s = (double)(steps * B * T) / secs;
    double gflops = tok_s * heed_trainer_flops_per_token(tr, T) * 1e-9;
    double peak = bench_sgemm_peak_gflops(heed_ctx_n_threads(ctx), 0.3);
    if (json)
        printf("{\"case\": \"train\", \"hidden\": %lld, \"layers\": %lld, \"heads\": %lld, \"kv_heads\": %lld, "
               "\"vocab\": %lld, \"B\": %lld, \"T\": %lld, \"threads\": %d, \"tokens_per_s\": %.1f, \"gflops\": %.2f, "
               "\"sgemm_peak_gflops\": %.2f, \"mfu\": %.4f, \"loss\": %.4f}\n",
               (long long)c.hidden, (long long)c.n_layers, (long long)c.n_heads, (long long)c.n_kv_heads,
               (long long)c.vocab, (long long)B, (long long)T, heed_ctx_n_threads(ctx), tok_s, gflops, peak,
               gflops / peak, (double)loss);
    else
        printf("train hidden %lld, %lld layers, B=%lld T=%lld, %d threads: %.0f tokens/s, %.1f GFLOP/s, "
               "sgemm peak %.1f GFLOP/s, MFU %.1f%%\n", (long long)c.hidden, (long long)c.n_layers, (long long)B,
               (long long)T, heed_ctx_n_threads(ctx), tok_s, gflops, peak, 100.0 * gflops / peak);
    rc = 0;
done:
    heed_trainer_free(tr);
    heed_ctx_free(ctx);
    free(in);
    return rc;
}
