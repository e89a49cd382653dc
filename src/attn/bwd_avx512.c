/* bwd_avx512.c — the attention backward's tile products compiled for AVX-512 (body: bwd_body.h).
 * Called only when heed_ctx_isa says the CPU has AVX-512. */
#define BWD_KERNELS attn_bwd_kernels_avx512
#define BWD_VBYTES 64
#include "attn/bwd_body.h"
