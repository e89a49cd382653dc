/* fwd_avx512.c — the forward attention kernel (fwd_kernel.h) for AVX-512: 4 query rows x 4 keys of
 * scores (16 accumulators of 32 zmm) and 24 accumulators of output (4 rows x 96 columns, or fewer
 * rows with wider strips). */
#define HEED_SIMD_LEVEL 2
#include "core/simd.h"
#define FWD_NAME(x) x##_avx512
#define FWD_MR 4
#define FWD_NK 4
#define FWD_NKV 2
#define FWD_ACC 24
#include "attn/fwd_kernel.h"
