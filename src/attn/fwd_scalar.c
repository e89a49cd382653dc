/* fwd_scalar.c — the forward attention kernel (fwd_kernel.h) in portable C, one float per "vector":
 * the path for CPUs without AVX2 and the baseline the tests compare the SIMD paths with. */
#define HEED_SIMD_LEVEL 0
#include "core/simd.h"
#define FWD_NAME(x) x##_scalar
#define FWD_MR 4
#define FWD_NK 4
#define FWD_NKV 2
#define FWD_ACC 16
#include "attn/fwd_kernel.h"
