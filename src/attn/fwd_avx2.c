/* fwd_avx2.c — the forward attention kernel (fwd_kernel.h) for AVX2 + FMA + F16C: 4 query rows x
 * 3 keys of scores (12 accumulators of 16 ymm), and 12 accumulators of output (4 rows x 24 columns
 * down to 1 row x 64 columns for decode). */
#define HEED_SIMD_LEVEL 1
#include "core/simd.h"
#define FWD_NAME(x) x##_avx2
#define FWD_MR 4
#define FWD_NK 3
#define FWD_NKV 2
#define FWD_ACC 12
#include "attn/fwd_kernel.h"
