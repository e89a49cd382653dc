/* heed.h — the public API of libheed: attention, in C.
 * This header is the manual. Every function returns a heed_status (or a value that cannot fail),
 * never exits, never prints, and leaves a human-readable message in its heed_ctx on error. */
#ifndef HEED_H
#define HEED_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HEED_VERSION_MAJOR 0
#define HEED_VERSION_MINOR 1
#define HEED_VERSION_PATCH 0
#define HEED_VERSION "0.1.0"

/* The library version string, e.g. "0.1.0". */
const char *heed_version(void);

/* ------------------------------------------------------------------------------------------------
 * Status codes. HEED_OK is 0; every error is non-zero. heed_status_name never returns NULL. */
typedef enum heed_status {
    HEED_OK = 0,
    HEED_ERR_INVALID = 1,     /* an argument is wrong: shape, stride, dtype, flag, NULL pointer */
    HEED_ERR_NOMEM = 2,       /* an allocation failed */
    HEED_ERR_UNSUPPORTED = 3, /* a valid request this backend does not implement; it never guesses */
    HEED_ERR_IO = 4,          /* a file could not be opened, read or written */
    HEED_ERR_FORMAT = 5,      /* a file or string is malformed */
    HEED_ERR_INTERNAL = 6     /* a bug in heed: please report */
} heed_status;

const char *heed_status_name(heed_status s);

/* ------------------------------------------------------------------------------------------------
 * Element types. Accumulation is always f32 (f64 in the references). */
typedef enum heed_dtype { HEED_F32 = 0, HEED_F16 = 1, HEED_BF16 = 2, HEED_F64 = 3 } heed_dtype;

/* Size of one element in bytes; 0 for an unknown value. */
size_t heed_dtype_size(heed_dtype t);
/* "f32", "f16", "bf16", "f64"; "?" for an unknown value. */
const char *heed_dtype_name(heed_dtype t);

/* IEEE half and bfloat16 conversions, round-to-nearest-even, NaN and Inf preserved. */
uint16_t heed_f32_to_f16(float x);
float heed_f16_to_f32(uint16_t h);
uint16_t heed_f32_to_bf16(float x);
float heed_bf16_to_f32(uint16_t h);
/* dst[i] = src[i] for i < n, converting between any two of f32/f16/bf16/f64. dst and src must not
 * overlap. Uses the best SIMD path of this CPU. */
void heed_convert(void *dst, heed_dtype dst_type, const void *src, heed_dtype src_type, size_t n);

/* ------------------------------------------------------------------------------------------------
 * CPU instruction sets. The library is built for all of them and picks one at run time. */
typedef enum heed_isa {
    HEED_ISA_SCALAR = 0, /* portable C */
    HEED_ISA_AVX2 = 1,   /* AVX2 + FMA + F16C */
    HEED_ISA_AVX512 = 2  /* AVX-512 F/BW/VL/DQ (+ BF16 instructions where present) */
} heed_isa;

/* The best instruction set this CPU (and its OS) supports. */
heed_isa heed_cpu_isa(void);
/* 1 when the CPU has the AVX-512 BF16 dot-product instructions, else 0. */
int heed_cpu_has_avx512_bf16(void);
/* "scalar", "avx2", "avx512". */
const char *heed_isa_name(heed_isa isa);

/* ------------------------------------------------------------------------------------------------
 * Context: owns a thread pool (threads are created once, not per call), the instruction set used,
 * and the message of the last error. One context is used by one calling thread at a time. */
typedef struct heed_ctx heed_ctx;

/* Creates a context with n_threads workers (n_threads <= 0: one per online CPU).
 * On success *out owns the context (free with heed_ctx_free); on failure *out is NULL. */
heed_status heed_ctx_create(heed_ctx **out, int n_threads);
/* Frees a context; NULL is a no-op. */
void heed_ctx_free(heed_ctx *ctx);
int heed_ctx_n_threads(const heed_ctx *ctx);
/* Restricts kernels to instruction sets up to isa (tests and benchmarks use it to compare paths).
 * HEED_ERR_UNSUPPORTED when the CPU lacks isa. */
heed_status heed_ctx_set_isa(heed_ctx *ctx, heed_isa isa);
heed_isa heed_ctx_isa(const heed_ctx *ctx);
/* The message of the last failed call on this context ("" if none). Valid until the next call. */
const char *heed_ctx_error(const heed_ctx *ctx);

/* Writes data [len] to path atomically: a temporary file next to path is renamed over it only when
 * complete, so on error (HEED_ERR_IO naming the file) nothing is half-written and an existing file is
 * untouched. */
heed_status heed_write_file(heed_ctx *ctx, const char *path, const void *data, size_t len);

/* Aligned allocation (64 bytes): heed_free(NULL) is a no-op. Returns NULL when out of memory. */
void *heed_alloc(size_t bytes);
void heed_free(void *p);

/* ------------------------------------------------------------------------------------------------
 * Tensor views. A view does not own its data. Dimensions are listed outermost first:
 * ne[0..3] = [B, H, T, D] for attention operands; nb[] are byte strides of each dimension.
 * The innermost dimension must be contiguous (nb[3] == element size). A stride of 0 broadcasts. */
typedef struct heed_tensor {
    void *data;
    heed_dtype dtype;
    int64_t ne[4];
    int64_t nb[4];
} heed_tensor;

/* A contiguous row-major view of data with shape [n0, n1, n2, n3]. */
heed_tensor heed_tensor_4d(void *data, heed_dtype dtype, int64_t n0, int64_t n1, int64_t n2, int64_t n3);

/* ------------------------------------------------------------------------------------------------
 * Masks: which keys each query sees. Positions are absolute and >= 0: query row t sits at position
 * i = q_offset + t, key row j at position k_offset + j. Visibility is defined in exactly one place
 * (heed_mask_row_spans); the reference, the fast kernels and the tests all derive from it. */
typedef enum heed_mask_kind {
    HEED_MASK_NONE = 0,         /* every key */
    HEED_MASK_CAUSAL = 1,       /* j <= i */
    HEED_MASK_WINDOW = 2,       /* j - i <= right and (i - j <= left or j < n_sink); extent < 0 = unbounded.
                                   A causal window of W keys with S sinks: left = W-1, right = 0, n_sink = S */
    HEED_MASK_PREFIX_BIDIR = 3, /* j <= i, or both i and j in [prefix_begin, prefix_end) */
    HEED_MASK_NEIGHBOR_1D = 4,  /* NATTEN 1D: kernel[0] keys (odd) around i among positions of i's
                                   dilation group (p % dilation[0] == i % dilation[0]), shifted inward
                                   at the borders so every query sees exactly kernel[0] keys.
                                   The axis is the key positions [0, seq_len); needs seq_len >= kernel*dilation */
    HEED_MASK_NEIGHBOR_2D = 5,  /* NATTEN 2D on a grid[0] x grid[1] (rows x cols) image, position
                                   p = r * grid[1] + c; the 1D rule on each axis, kernel[0] x kernel[1] keys */
    HEED_MASK_S2 = 6,           /* S2-Attention / DKernel strided shards, blocks of `block` positions:
                                   j <= i and (i/b - j/b < local_blocks or (j/b + h + head_offset) % vert_stride == 0),
                                   h = query head index */
    HEED_MASK_BLOCKS = 7        /* explicit lists: key block kb is visible to query block qb (blocks of
                                   `block` positions) iff kb is in block_idx[block_ptr[qb] .. block_ptr[qb+1])
                                   (strictly ascending within each query block);
                                   query blocks >= n_qblocks see nothing; with causal != 0 also j <= i */
} heed_mask_kind;

typedef struct heed_mask {
    heed_mask_kind kind;
    int64_t left, right, n_sink;       /* WINDOW */
    int64_t prefix_begin, prefix_end;  /* PREFIX_BIDIR */
    int32_t kernel[2], dilation[2];    /* NEIGHBOR_1D uses [0]; NEIGHBOR_2D uses [0] rows, [1] cols */
    int64_t seq_len;                   /* NEIGHBOR_1D: length of the axis (usually Tk) */
    int64_t grid[2];                   /* NEIGHBOR_2D: rows, cols (rows * cols = sequence length) */
    int32_t block;                     /* S2, BLOCKS: block size in positions */
    int32_t local_blocks, vert_stride, head_offset; /* S2 */
    const int32_t *block_ptr;          /* BLOCKS: [n_qblocks + 1], non-decreasing */
    const int32_t *block_idx;          /* BLOCKS: [block_ptr[n_qblocks]] key block indices */
    int64_t n_qblocks;                 /* BLOCKS */
    int causal;                        /* BLOCKS: also require j <= i */
} heed_mask;

/* A half-open interval [lo, hi) of key positions. */
typedef struct heed_span {
    int64_t lo, hi;
} heed_span;

/* Checks a mask's parameters (kernel odd and >= 1, dilation >= 1, grid sizes, block > 0, CSR list
 * well formed, ...). HEED_ERR_INVALID with a message in ctx (ctx may be NULL) when wrong. */
heed_status heed_mask_check(heed_ctx *ctx, const heed_mask *m);
/* Upper bound on the number of spans heed_mask_row_spans can return for keys [0, n_keys). */
int64_t heed_mask_max_spans(const heed_mask *m, int64_t n_keys);
/* The visible keys of query position i in query head h, restricted to key positions [k_lo, k_hi),
 * as sorted, disjoint, non-empty spans (touching ones merged) written to out[0 .. return value). out must hold
 * heed_mask_max_spans(m, k_hi) entries. The mask must have passed heed_mask_check. */
int64_t heed_mask_row_spans(heed_span *out, const heed_mask *m, int64_t i, int64_t h, int64_t k_lo, int64_t k_hi);
/* 1 when key position j is visible to query position i in head h, else 0 (derived from row spans). */
int heed_mask_visible(const heed_mask *m, int64_t i, int64_t j, int64_t h);

/* ------------------------------------------------------------------------------------------------
 * The attention descriptor. Zero-initialise it, or call heed_attn_desc_init, then fill in what the
 * call needs. Scores are computed in this order, for query position i, key position j, head h:
 *   s  = (q_i . k_j) * scale                         scale == 0 means 1/sqrt(D)
 *   s *= 1 + temp_scale[h] * log(i + 1)              selective attention (if temp_scale)
 *   s  = softcap * tanh(s / softcap)                 (if softcap > 0)
 *   s += -alibi_slopes[h] * (i - j)                  (if alibi_slopes)
 *   s += bias[b, h, t, j]                            (if bias; -inf masks a key)
 *   s  = -inf where the mask hides j
 * then the normalizer:
 *   SOFTMAX: p = exp(s - lse), lse = log(sum_j exp(s_j) [+ exp(sink_logit[h])])
 *            the learned sink logit is an extra logit with no value vector (gpt-oss)
 *   SIGMOID: p = 1 / (1 + exp(-(s + sigmoid_bias))), no row normalisation
 *            sigmoid_bias = NaN (the default from heed_attn_desc_init) means -log(number of keys Tk);
 *            lse = log(sum_j p_j), so partials merge by adding
 * O_t = sum_j p_j v_j. A row that sees no key gives O = 0 and lse = -inf (or sink_logit[h] when a
 * sink logit is given), never NaN. */
typedef enum heed_norm { HEED_NORM_SOFTMAX = 0, HEED_NORM_SIGMOID = 1 } heed_norm;

typedef struct heed_attn_desc {
    heed_tensor q;              /* [B, Hq, Tq, D]  f32 (q, k, v may be f64 for the references only) */
    heed_tensor k;              /* [B, Hkv, Tk, D] f32 | f16 | bf16; Hq % Hkv == 0 (GQA/MQA) */
    heed_tensor v;              /* [B, Hkv, Tk, Dv], same dtype as k */
    int64_t q_offset;           /* absolute position of query row 0 (decode, chunked prefill) */
    int64_t k_offset;           /* absolute position of key row 0 (split-KV partials, shards) */
    heed_mask mask;
    const heed_tensor *bias;    /* optional additive f32 [B|1, Hq|1, Tq, Tk] (stride 0 broadcasts) */
    float scale;                /* 0: 1/sqrt(D) */
    float softcap;              /* 0: off */
    const float *temp_scale;    /* optional [Hq]: selective-attention temperature slope per head */
    const float *alibi_slopes;  /* optional [Hq] */
    const float *sink_logit;    /* optional [Hq], softmax only */
    heed_norm norm;
    float sigmoid_bias;         /* SIGMOID only; NaN: -log(Tk) */
} heed_attn_desc;

/* Zero-fills *d and sets the defaults (softmax, no mask, default scale, sigmoid_bias = NaN,
 * mask.dilation = {1, 1}). */
void heed_attn_desc_init(heed_attn_desc *d);

/* Checks every shape, stride, dtype and parameter of d. HEED_ERR_INVALID with a message naming the
 * field when wrong. Every entry point below calls it first. */
heed_status heed_attn_check(heed_ctx *ctx, const heed_attn_desc *d);

/* Forward attention on the CPU (fastest path this CPU supports, all context threads).
 *   o:   [B, Hq, Tq, Dv] f32, written completely (may have any strides, innermost contiguous)
 *   lse: [B, Hq, Tq] f32 contiguous, or NULL */
heed_status heed_attn_forward(heed_ctx *ctx, heed_tensor *o, float *lse, const heed_attn_desc *d);

/* The slow, obviously correct reference: materialises every score, accumulates in f64.
 * Same contract as heed_attn_forward, single-threaded. */
heed_status heed_attn_forward_ref(heed_ctx *ctx, heed_tensor *o, float *lse, const heed_attn_desc *d);

/* Exact merge of partial results computed over disjoint key sets (split-KV, KV shards, MPI):
 *   o:        [B, Hq, Tq, Dv] f32 out
 *   lse:      [B, Hq, Tq] f32 out, or NULL
 *   parts_o:  n_parts views [B, Hq, Tq, Dv] f32, each computed without the sink logit
 *   parts_lse: n_parts arrays [B, Hq, Tq]
 *   sink_logit: optional [Hq], applied once here (softmax)
 * SOFTMAX: lse = log(sum_p exp(lse_p) [+ exp(sink)]), o = sum_p exp(lse_p - lse) o_p.
 * SIGMOID: o = sum_p o_p, lse = log(sum_p exp(lse_p)). parts_o may alias o only as parts_o[0]. */
heed_status heed_attn_merge(heed_ctx *ctx, heed_tensor *o, float *lse, const heed_tensor *parts_o,
                            const float *const *parts_lse, int n_parts, const float *sink_logit,
                            heed_norm norm);

/* ------------------------------------------------------------------------------------------------
 * Backward. Probabilities are recomputed from the saved lse (no T x T matrix is stored).
 * Inputs: the descriptor of the forward call (k, v must be f32), its output o and lse (SOFTMAX;
 * for SIGMOID lse may be NULL), and the gradient d_o [B, Hq, Tq, Dv] f32.
 * Outputs (all f32, written completely; dK and dV sum over the query heads of a GQA group):
 *   dq [B, Hq, Tq, D], dk [B, Hkv, Tk, D], dv [B, Hkv, Tk, Dv],
 *   d_sink_logit [Hq] (NULL to skip), d_temp_scale [Hq] (NULL to skip); both are summed over B. */
typedef struct heed_attn_grads {
    heed_tensor dq, dk, dv;
    float *d_sink_logit;
    float *d_temp_scale;
} heed_attn_grads;

heed_status heed_attn_backward(heed_ctx *ctx, heed_attn_grads *g, const heed_attn_desc *d,
                               const heed_tensor *o, const float *lse, const heed_tensor *d_o);
/* The reference backward: f64, materialised scores. Same contract. */
heed_status heed_attn_backward_ref(heed_ctx *ctx, heed_attn_grads *g, const heed_attn_desc *d,
                                   const heed_tensor *o, const float *lse, const heed_tensor *d_o);

/* ------------------------------------------------------------------------------------------------
 * Linear attention with feature map phi(x) = elu(x) + 1 (Katharopoulos et al.):
 *   non-causal: O_i = phi(q_i)^T S / (phi(q_i)^T z), S = sum_j phi(k_j) v_j^T, z = sum_j phi(k_j)
 *   causal:     the same with S_i, z_i summed over j <= i.
 * q [B,H,T,D], k [B,H,Tk,D], v [B,H,Tk,Dv] f32 (Tk == T when causal); o [B,H,T,Dv] f32.
 * mode PARALLEL materialises the (masked) kernel matrix; RECURRENT walks the state. Both are exact.
 * A row whose denominator phi(q_i)^T z_i underflows to 0 in f32 (e.g. every q below -104) gives O = 0, not NaN. */
typedef enum heed_linear_mode { HEED_LINEAR_PARALLEL = 0, HEED_LINEAR_RECURRENT = 1 } heed_linear_mode;

heed_status heed_linear_attn(heed_ctx *ctx, heed_tensor *o, const heed_tensor *q, const heed_tensor *k,
                             const heed_tensor *v, int causal, heed_linear_mode mode);

/* Recurrent state of causal linear attention for decoding one token at a time.
 * s: [B, H, D, Dv] f32, z: [B, H, D] f32, both contiguous and zeroed by the caller at the start.
 * heed_linear_attn_step adds phi(k) v^T to the state, then writes o = phi(q)^T S / phi(q)^T z.
 * q, k: [B, H, 1, D]; v: [B, H, 1, Dv]; o: [B, H, 1, Dv]. */
heed_status heed_linear_attn_step(heed_ctx *ctx, heed_tensor *o, float *s, float *z, const heed_tensor *q,
                                  const heed_tensor *k, const heed_tensor *v);

/* The backward of heed_linear_attn: from d_o [B,H,T,Dv] (the gradient of O) and the forward's inputs,
 * dq [B,H,T,D], dk [B,H,Tk,D], dv [B,H,Tk,Dv] f32, written completely (=, not accumulated); shapes,
 * views and causal as in heed_linear_attn. A row whose denominator is not > 0 in f32 (O = 0 in the
 * recurrent forward) contributes no gradient. Recomputes the state: O(T * D * Dv) per (b, h). */
heed_status heed_linear_attn_backward(heed_ctx *ctx, heed_tensor *dq, heed_tensor *dk, heed_tensor *dv,
                                      const heed_tensor *q, const heed_tensor *k, const heed_tensor *v,
                                      const heed_tensor *d_o, int causal);

/* Agent attention (Han et al.): agents A [n_agents, D] are Q average-pooled over the token axis
 * (adaptive pooling: agent a averages tokens [floor(a*T/n), ceil((a+1)*T/n))), then
 *   V_A = softmax(A K^T * scale) V,   O = softmax(Q A^T * scale) V_A,   scale == 0 means 1/sqrt(D).
 * q [B,H,T,D] f32; k [B,Hkv,Tk,D], v [B,Hkv,Tk,Dv] f32 | f16 | bf16 (H % Hkv == 0, as in heed_attn_desc);
 * o [B,H,T,Dv] f32; 1 <= n_agents <= T. Both softmax attentions run through heed_attn_forward. */
heed_status heed_agent_attn(heed_ctx *ctx, heed_tensor *o, const heed_tensor *q, const heed_tensor *k,
                            const heed_tensor *v, int64_t n_agents, float scale);

/* Mixture-of-Head attention (Jin et al., MoH), routing and output combination.
 * Per token t, from router logits:
 *   shared heads h < n_shared:  g_h = alpha1 * n_shared * softmax(shared_logits[t])_h  (the factor
 *                               n_shared is in the authors' code, not the paper: a uniform router
 *                               then gives every head weight 1, as plain multi-head attention does)
 *   routed heads h >= n_shared: p = softmax(routed_logits[t]); the top_k largest are kept,
 *                               renormalised to sum 1 and multiplied by top_k; g_h = alpha2 * that (else 0)
 *   [alpha1, alpha2] = 2 * softmax(alpha_logits[t])
 * gates:          [T, H] out, H = n_shared + n_routed (heads ordered shared first)
 * shared_logits:  [T, n_shared]; routed_logits: [T, n_routed]; alpha_logits: [T, 2]
 * balance_loss:   out, or NULL: n_routed^2 * mean_h(P_h f_h), P_h the mean routed probability of
 *                 head h over tokens, f_h the share of tokens that route to h.
 * With n_shared == 0 the alpha terms are skipped (g = the routed weights; alpha_logits may be NULL);
 * with n_shared <= 1 shared_logits may be NULL. Logits must be finite; 1 <= top_k <= n_routed.
 * Ties pick the lower index. */
heed_status heed_moh_route(heed_ctx *ctx, float *gates, float *balance_loss, const float *shared_logits,
                           const float *routed_logits, const float *alpha_logits, int64_t T,
                           int64_t n_shared, int64_t n_routed, int64_t top_k);
/* out[b, t, h*Dv + d] = gates[b, t, h] * head_out[b, h, t, d]: the gated concatenation that the output
 * projection W_O then turns into sum_h g_h H_h W_O^h.
 * out: [B, T, H*Dv] f32 contiguous; head_out: [B, H, T, Dv] f32 view; gates: [B, T, H] contiguous. */
heed_status heed_moh_combine(heed_ctx *ctx, float *out, const heed_tensor *head_out, const float *gates);
/* The backward of heed_moh_combine: from d_out [B, T, H*Dv] (contiguous), head_out and gates as given to
 * the forward, d_head_out [B, H, T, Dv] f32 view and d_gates [B, T, H] contiguous, both written (=). */
heed_status heed_moh_combine_backward(heed_ctx *ctx, heed_tensor *d_head_out, float *d_gates, const float *d_out,
                                      const heed_tensor *head_out, const float *gates);
/* The backward of heed_moh_route: the gradient of sum(gates * d_gates) + balance_weight * balance_loss
 * with respect to the router logits, written (=): d_shared_logits [T, n_shared], d_routed_logits
 * [T, n_routed], d_alpha_logits [T, 2]; each may be NULL (not computed) and must be NULL when its input
 * is NULL (zeros where the input has no effect: n_shared == 1, or alpha with n_shared == 0).
 * d_gates [T, H]; the other arguments as given to heed_moh_route. The top-K choice and f_h are piecewise
 * constant and carry no gradient (as in the Switch Transformer's loss); P_h does. */
heed_status heed_moh_route_backward(heed_ctx *ctx, float *d_shared_logits, float *d_routed_logits,
                                    float *d_alpha_logits, const float *d_gates, float balance_weight,
                                    const float *shared_logits, const float *routed_logits, const float *alpha_logits,
                                    int64_t T, int64_t n_shared, int64_t n_routed, int64_t top_k);

/* ================================================================================================
 * Model files: safetensors and config
 * ------------------------------------------------------------------------------------------------
 * safetensors: a checkpoint (one file, or shards listed by model.safetensors.index.json) is mmapped
 * read-only and validated completely before any tensor is handed out: header length inside the
 * file, header is a JSON object, every tensor has a known dtype, a shape and data_offsets [begin,
 * end) inside the data section with end - begin == product(shape) * dtype size, and the tensors
 * tile the data section without gaps or overlaps. Tensor data is never copied (except a tensor
 * whose offset is not a multiple of its element size, which is copied once to aligned memory). */
#define HEED_ST_MAX_DIMS 8

/* The dtypes of the safetensors format. The first four equal the heed_dtype values, so a weight
 * heed computes with (F32, F16, BF16) converts with a cast; the others are recognised, not used. */
typedef enum heed_st_dtype {
    HEED_ST_F32 = 0, HEED_ST_F16 = 1, HEED_ST_BF16 = 2, HEED_ST_F64 = 3,
    HEED_ST_I64 = 4, HEED_ST_I32 = 5, HEED_ST_I8 = 6, HEED_ST_U8 = 7, HEED_ST_BOOL = 8
} heed_st_dtype;

/* One tensor of an opened checkpoint: a view into the mapping, valid until heed_st_close. */
typedef struct heed_st_tensor {
    const char *name;
    const char *file;                    /* the file (shard) it lives in, for messages */
    heed_st_dtype dtype;
    int n_dims;                          /* 0 (a scalar) .. HEED_ST_MAX_DIMS */
    int64_t shape[HEED_ST_MAX_DIMS];     /* outermost first */
    int64_t n_elems;
    const void *data;                    /* [n_elems] of dtype */
    size_t n_bytes;
} heed_st_tensor;

typedef struct heed_st heed_st;          /* an opened checkpoint */

/* "F32", "F16", ... as the format spells them; "?" for an unknown value. Size in bytes (0: unknown). */
const char *heed_st_dtype_name(heed_st_dtype t);
size_t heed_st_dtype_size(heed_st_dtype t);

/* Opens a checkpoint. path is a .safetensors file, a model.safetensors.index.json (each shard in
 * its weight_map is opened once, relative to the index's folder), or a model directory holding one
 * of model.safetensors / model.safetensors.index.json. HEED_ERR_IO when a file cannot be read,
 * HEED_ERR_FORMAT (naming the file, the tensor and what was expected) when a file is malformed.
 * On failure *out is NULL. */
heed_status heed_st_open(heed_ctx *ctx, heed_st **out, const char *path);
/* The same for a safetensors image already in memory: data [size] is not copied and must outlive
 * the checkpoint. name is used in messages. */
heed_status heed_st_open_mem(heed_ctx *ctx, heed_st **out, const void *data, size_t size, const char *name);
/* Unmaps and frees; NULL is a no-op. */
void heed_st_close(heed_st *st);

/* Tensors sorted by name: index i in [0, heed_st_count). */
int64_t heed_st_count(const heed_st *st);
const heed_st_tensor *heed_st_at(const heed_st *st, int64_t i);
/* The tensor called name, or NULL. */
const heed_st_tensor *heed_st_find(const heed_st *st, const char *name);
/* A weight: the tensor called name, which must be F32, F16 or BF16 and, when shape is not NULL,
 * have exactly n_dims dimensions equal to shape[0 .. n_dims) (an entry of -1 matches any size).
 * HEED_ERR_FORMAT naming the tensor, its file, and what was expected otherwise. */
heed_status heed_st_get(heed_ctx *ctx, const heed_st_tensor **out, const heed_st *st, const char *name,
                        int n_dims, const int64_t *shape);
/* A heed_tensor view of a weight of 1 to 4 dimensions (shape right-aligned into ne[], leading 1s). */
heed_status heed_st_view(heed_ctx *ctx, heed_tensor *out, const heed_st_tensor *t);
/* The value of key in the __metadata__ of the (first) file, or NULL. */
const char *heed_st_metadata(const heed_st *st, const char *key);

/* One tensor to write: data [product(shape)] of dtype (F32, F16, BF16 or F64), contiguous. */
typedef struct heed_st_entry {
    const char *name;
    heed_dtype dtype;
    int n_dims;
    int64_t shape[HEED_ST_MAX_DIMS];
    const void *data;
} heed_st_entry;

/* Writes a safetensors file (with __metadata__ {"format": "pt"}) atomically: everything goes to a
 * temporary file next to path which is renamed over path only when complete; on error nothing is
 * left behind and an existing file at path is untouched. Names must be unique and non-empty. */
heed_status heed_st_write(heed_ctx *ctx, const char *path, const heed_st_entry *entries, int64_t n);

/* ------------------------------------------------------------------------------------------------
 * config.json: the architecture of a model, read through a table of what each family uses (see
 * docs/models.md for the keys each family reads and their defaults, which are transformers'). */
#define HEED_CONFIG_MAX_LAYERS 512
#define HEED_MAX_EOS 8

typedef enum heed_arch {
    HEED_ARCH_LLAMA = 0, HEED_ARCH_MISTRAL, HEED_ARCH_QWEN2, HEED_ARCH_QWEN3, HEED_ARCH_GEMMA2,
    HEED_ARCH_GPT2, HEED_ARCH_BERT
} heed_arch;
typedef enum heed_ln_kind { HEED_LN_RMS = 0, HEED_LN_LAYER = 1 } heed_ln_kind; /* normalisation layers */
typedef enum heed_pos_kind { HEED_POS_ROPE = 0, HEED_POS_LEARNED = 1 } heed_pos_kind;
typedef enum heed_mlp_kind {
    HEED_MLP_GATED = 0, /* down(act(gate(x)) * up(x)) */
    HEED_MLP_PLAIN = 1  /* fc2(act(fc1(x))) */
} heed_mlp_kind;
typedef enum heed_act {
    HEED_ACT_SILU = 0,      /* "silu", "swish" */
    HEED_ACT_GELU = 1,      /* "gelu": exact, with erf */
    HEED_ACT_GELU_TANH = 2, /* "gelu_new", "gelu_pytorch_tanh", "gelu_fast": the tanh approximation */
    HEED_ACT_RELU = 3
} heed_act;
typedef enum heed_rope_type {
    HEED_ROPE_DEFAULT = 0, HEED_ROPE_LINEAR, HEED_ROPE_DYNAMIC, HEED_ROPE_YARN, HEED_ROPE_LLAMA3
} heed_rope_type;

/* RoPE parameters, from either rope_theta + rope_scaling or rope_parameters. */
typedef struct heed_rope {
    heed_rope_type type;
    double theta;                  /* the whole head is rotated (transformers 5 ignores a top-level
                                      partial_rotary_factor for these families) */
    double factor;                 /* linear, dynamic, yarn, llama3 */
    double low_freq_factor, high_freq_factor;   /* llama3 */
    int64_t original_max_pos;      /* llama3; yarn (0: absent) */
    double attention_factor;       /* yarn; 0: absent (derived from factor, mscale, mscale_all_dim) */
    double beta_fast, beta_slow;   /* yarn; 0: absent (32, 1) */
    double mscale, mscale_all_dim; /* yarn; 0: absent */
    int truncate;                  /* yarn: round the correction range (default 1) */
} heed_rope;

/* A training variant written by heed's trainer: heed_* keys of a llama/mistral config.json (see
 * docs/training.md). All zero for a standard checkpoint; the runtime refuses other variants. */
typedef struct heed_variant {
    int mixer;                 /* "heed_mixer": 0 "attention", 1 "linear", 2 "gconv" (heed_mixer) */
    int sigmoid;               /* "heed_attn_norm": "softmax" (0) or "sigmoid" (1) */
    int sink_logit, selective; /* "heed_sink_logit", "heed_selective": booleans */
    int32_t s2_block, s2_local_blocks, s2_vert_stride; /* "heed_s2_block", ... (block 0: no S2) */
    int64_t moh_shared, moh_top_k; /* "heed_moh_shared", "heed_moh_top_k" (top_k 0: no MoH) */
    double moh_balance;        /* "heed_moh_balance" */
    int64_t conv_kernel;       /* "heed_conv_kernel" (gconv) */
} heed_variant;

typedef struct heed_config {
    heed_arch arch;
    char model_type[32];
    /* what the family uses (from the architecture table, not from the file) */
    heed_ln_kind norm;
    int norm_add_one;        /* RMSNorm scales by (1 + w) (gemma2) */
    int post_norms;          /* extra norms after attention and MLP outputs (gemma2) */
    int post_ln;             /* LayerNorm after each residual add (bert); else pre-norm */
    heed_pos_kind pos;
    heed_mlp_kind mlp;
    int qk_norm;             /* per-head RMSNorm of q and k (qwen3) */
    int causal;              /* 0 for encoders (bert) */
    int embed_scale;         /* embeddings multiplied by sqrt(hidden) (gemma2) */
    int fused_qkv;           /* one c_attn Conv1D [d, 3d] (gpt2) */
    int qkv_bias, o_bias, mlp_bias, norm_bias;
    /* sizes */
    int64_t hidden, n_layers, n_heads, n_kv_heads, head_dim, intermediate, vocab, max_pos;
    int64_t type_vocab;      /* bert token types; 0 otherwise */
    double norm_eps;
    heed_act act;
    int tie_embeddings;
    heed_rope rope;          /* pos == HEED_POS_ROPE */
    /* attention */
    double attn_scale;       /* multiplier of q.k (1/sqrt(head_dim), or 1/sqrt(query_pre_attn_scalar)) */
    int scale_by_inverse_layer; /* gpt2 scale_attn_by_inverse_layer_idx: layer L also divides by L+1 */
    double attn_softcap, final_softcap; /* 0: off (gemma2) */
    int64_t sliding_window;  /* keys a windowed layer sees, its own position included; 0: none */
    uint8_t layer_window[HEED_CONFIG_MAX_LAYERS]; /* 1 where layer L uses the sliding window */
    heed_variant variant;    /* llama and mistral only */
} heed_config;

/* Parses config.json text json [len]. name is used in messages. Unknown model_type:
 * HEED_ERR_UNSUPPORTED naming it; a missing required key or a value of the wrong type or out of
 * range: HEED_ERR_FORMAT naming the key. */
heed_status heed_config_parse(heed_ctx *ctx, heed_config *cfg, const char *json, size_t len, const char *name);

/* Generation defaults and special tokens (-1 / 0 where unknown). */
typedef struct heed_gen_config {
    int64_t bos_id, pad_id;
    int64_t eos_ids[HEED_MAX_EOS];
    int n_eos;
    int do_sample;
    double temperature, top_p; /* 1.0 unless given */
    int64_t top_k;             /* 50 unless given, as transformers */
    int add_bos, add_eos;      /* tokenizer_config.json add_bos_token/add_eos_token; -1: not given */
    char bos_token[128], eos_token[128]; /* token strings from tokenizer_config.json, "" if absent */
} heed_gen_config;

/* Sets the defaults above. */
void heed_gen_config_init(heed_gen_config *gen);
/* Reads the fields present in json [len] (config.json, generation_config.json or
 * tokenizer_config.json: bos/eos/pad_token_id (eos an int or a list), do_sample, temperature, top_k,
 * top_p, bos_token/eos_token (a string or an AddedToken object), add_bos_token, add_eos_token) over
 * gen, leaving the others as they are. */
heed_status heed_gen_config_parse(heed_ctx *ctx, heed_gen_config *gen, const char *json, size_t len,
                                  const char *name);
/* Reads dir/config.json (required), then dir/generation_config.json and dir/tokenizer_config.json
 * when present (in that order, later files override). gen may be NULL. */
heed_status heed_config_load(heed_ctx *ctx, heed_config *cfg, heed_gen_config *gen, const char *dir);

/* RoPE rotary dimension: head_dim. */
int64_t heed_rope_dim(const heed_config *cfg);
/* The inverse frequencies and the cos/sin multiplier (attention_factor) exactly as transformers'
 * modeling_rope_utils computes them (in f32, the same operations in the same order).
 *   inv_freq: [heed_rope_dim(cfg) / 2] out
 *   seq_len:  the current sequence length, used by "dynamic" only (<= max_pos: the default rope) */
heed_status heed_rope_inv_freq(heed_ctx *ctx, float *inv_freq, float *attention_factor, const heed_config *cfg,
                               int64_t seq_len);
/* ================================================================================================ */

/* ================================================================================================
 * Tokenizers: Hugging Face tokenizer.json, encoded and decoded exactly as the `tokenizers` library does.
 * Models BPE (byte-level, SentencePiece-style with byte fallback) and WordPiece; added and special
 * tokens; normalizers, pre-tokenizers, post-processors and decoders as docs/tokenizers.md lists. A step
 * heed does not implement is refused with HEED_ERR_UNSUPPORTED naming it, never skipped. A loaded
 * tokenizer is read-only: several threads may use one at once (each with its own context). */
typedef struct heed_tokenizer heed_tokenizer;

/* Parses a tokenizer.json held in json [len]; name is used in error messages. */
heed_status heed_tokenizer_parse(heed_ctx *ctx, heed_tokenizer **out, const char *json, size_t len,
                                 const char *name);
/* Loads path: a tokenizer.json file, or a model directory that holds one. */
heed_status heed_tokenizer_load(heed_ctx *ctx, heed_tokenizer **out, const char *path);
/* NULL is a no-op. */
void heed_tokenizer_free(heed_tokenizer *tok);
/* One more than the largest id of the vocabulary and the added tokens. */
int64_t heed_tokenizer_n_ids(const heed_tokenizer *tok);
/* The id of a token (vocabulary or added token, matched exactly), or -1. */
int64_t heed_tokenizer_token_id(const heed_tokenizer *tok, const char *token);
/* The string of id (as stored: byte-level tokens are not decoded), or NULL when no token has it. */
const char *heed_tokenizer_token(const heed_tokenizer *tok, int64_t id);
/* 1 when id is a special added token, else 0. */
int heed_tokenizer_is_special(const heed_tokenizer *tok, int64_t id);

/* heed_tokenize flags. HEED_TOK_SPECIAL: add the post-processor's special tokens (BOS, CLS/SEP, ...), as
 * `encode(text)` does by default. The truncation and padding that tokenizer.json may set are applied as
 * `encode` applies them unless HEED_TOK_NO_TRUNCATE / HEED_TOK_NO_PAD (a model runtime wants neither). */
#define HEED_TOK_SPECIAL 1u
#define HEED_TOK_NO_TRUNCATE 2u
#define HEED_TOK_NO_PAD 4u
/* Encodes text [len] (UTF-8; invalid UTF-8 is an error) as `encode(text, add_special_tokens)` does.
 * On success *ids [*n_ids] is allocated with malloc (free it with free(); an empty result is a valid
 * non-NULL pointer). */
heed_status heed_tokenize(heed_ctx *ctx, int32_t **ids, int64_t *n_ids, const heed_tokenizer *tok,
                          const char *text, size_t len, unsigned flags);
/* Decodes ids [n_ids] as `decode(ids, skip_special_tokens)` does. On success *text [*len] is allocated
 * with malloc and NUL-terminated (free it with free()). An id that names no token is an error. */
heed_status heed_detokenize(heed_ctx *ctx, char **text, size_t *len, const heed_tokenizer *tok,
                            const int32_t *ids, int64_t n_ids, int skip_special);

/* Training a byte-level BPE tokenizer (src/tok/bpe_train.c; docs/tokenizers.md "Training").
 * Ids: the special tokens in the order given (0 .. n_special-1), then the 256 bytes in byte order
 * (byte b is id n_special + b, written as GPT-2's byte-level character), then one id per merge. */
typedef struct heed_bpe_train_opts {
    int64_t vocab_size;          /* total ids, specials included; >= n_special + 256 */
    int64_t min_frequency;       /* a pair is merged only if it occurs at least this often (>= 1) */
    const char *const *special;  /* [n_special] special tokens: non-empty UTF-8, distinct, not one byte-level
                                  * character (see docs/tokenizers.md on decoding them) */
    int n_special;
    const char *bos, *eos;       /* NULL, or one of special: tokenizer_config.json's bos_token/eos_token */
    int add_bos;                 /* 1: the post-processor prepends bos to every encoding (needs bos) */
} heed_bpe_train_opts;

/* vocab_size 4096, min_frequency 2, no special tokens, add_bos 0. */
void heed_bpe_train_opts_init(heed_bpe_train_opts *o);
/* Trains on text [len] (UTF-8; invalid UTF-8 is HEED_ERR_FORMAT naming the offset) and returns a
 * complete tokenizer.json in *json [*json_len] (malloc'd, NUL-terminated; free with free()). Special
 * tokens found in text are cut out and never split or learned from; the rest is pre-tokenized with the
 * Llama 3 regex (a Split pre-tokenizer, then ByteLevel) and the most frequent adjacent pair is merged
 * until vocab_size ids exist. Ties go to the pair with the smaller left id, then the smaller right id,
 * so the output is a function of the input bytes and options alone. A merge whose result equals an
 * existing token reuses its id (no id is added); a merge that would spell a special token is skipped.
 * Training stops early, with fewer ids, when no pair occurs min_frequency times. Bad options are
 * HEED_ERR_INVALID naming the field. */
heed_status heed_bpe_train(heed_ctx *ctx, char **json, size_t *json_len, const char *text, size_t len,
                           const heed_bpe_train_opts *o);
/* The tokenizer_config.json that goes with it (bos_token, eos_token, add_bos_token, add_eos_token false,
 * tokenizer_class PreTrainedTokenizerFast), in *json [*json_len] as above. */
heed_status heed_bpe_train_config(heed_ctx *ctx, char **json, size_t *json_len, const heed_bpe_train_opts *o);
/* ================================================================================================ */

/* ================================================================================================
 * Models: a Hugging Face model directory (config.json + safetensors) run for inference. One forward
 * function serves every family of heed_config; tensor names come from a per-family table. Weights
 * stay mmapped in their file dtype (f32, f16, bf16; never widened whole); activations are f32. A model
 * holds its run state and KV cache (f32), so one model is used by one thread at a time. */
typedef struct heed_model heed_model;

/* Loads dir (config.json, generation_config.json, tokenizer_config.json, the safetensors). An unknown
 * model_type is HEED_ERR_UNSUPPORTED naming it; a missing or misshapen tensor HEED_ERR_FORMAT naming it. */
heed_status heed_model_load(heed_ctx *ctx, heed_model **out, const char *dir);
/* NULL is a no-op. */
void heed_model_free(heed_model *m);
const heed_config *heed_model_config(const heed_model *m);
const heed_gen_config *heed_model_gen_config(const heed_model *m);
/* 1 when the model has an LM head (decoders), 0 for encoders (bert: hidden states only). */
int heed_model_has_lm_head(const heed_model *m);
/* The number of positions held by the KV cache. */
int64_t heed_model_n_cached(const heed_model *m);
/* Overrides the RoPE base (rope_theta; a runtime option for context extension) of a model with RoPE;
 * the rope scaling of config.json still applies on top. theta must be finite and > 0. Empties the KV
 * cache, whose keys were rotated with the old base. */
heed_status heed_model_set_rope_theta(heed_ctx *ctx, heed_model *m, double theta);
/* Entropy-aware attention scaling for context extension: the attention logits of the query at position
 * p are multiplied by max(1, log(p + 1) / log(n0)) (before any softcap), done by scaling q. n0 > 1 and
 * finite turns it on, 0 turns it off. The KV cache is unaffected (keys are not scaled). */
heed_status heed_model_set_attn_log_scale(heed_ctx *ctx, heed_model *m, double n0);

/* Optional outputs of a forward pass, as transformers' output_attentions / output_hidden_states:
 *   attn:   NULL or [n_layers] pointers, each NULL or [n_heads, n, pos + n] f32 out: layer L's
 *           post-softmax probabilities (masked keys exactly 0)
 *   hidden: NULL or [n_layers + 1] pointers, each NULL or [n, hidden] f32 out: 0 is the embedding
 *           output, L the output of layer L-1, n_layers the last_hidden_state (after the final norm
 *           where the family has one) */
typedef struct heed_model_trace {
    float *const *attn;
    float *const *hidden;
} heed_model_trace;

#define HEED_FWD_LAST_LOGITS 1u /* logits of the last token only: [1, vocab] */
#define HEED_FWD_BIDIRECTIONAL 2u /* no causal mask nor sliding window (a decoder run as an encoder, for
                                   * embeddings); pos must be 0 */

/* Runs tokens ids [n] at positions pos .. pos + n - 1 with the first pos positions taken from the KV
 * cache (pos = 0 starts a new sequence; 0 <= pos <= heed_model_n_cached), then caches them.
 *   logits:      [n, vocab] f32 out (final softcap applied), [1, vocab] with HEED_FWD_LAST_LOGITS, or NULL
 *   trace:       NULL or the optional outputs above
 *   token_types: NULL (all 0) or [n], bert only
 * Ids outside the vocabulary, positions past learned position tables, pos != 0 for an encoder, and
 * logits from a model without an LM head are errors. */
heed_status heed_model_forward(heed_ctx *ctx, heed_model *m, float *logits, const heed_model_trace *trace,
                               const int32_t *ids, const int32_t *token_types, int64_t n, int64_t pos,
                               unsigned flags);

/* ================================================================================================
 * Probe: observing attention heads inside heed_model_forward (heed_model_set_probe), and the minimal
 * interventions the head scores need. Only selected (layer, query head) pairs are observed; every output
 * is optional (NULL: not captured) and only the slots of selected heads are written. The statistics are
 * recomputed row by row from q, k and the kernel's log-sum-exp (p = exp(s - lse)), so no [n, T] map is
 * built unless probs or scores ask for it: they work at long context. With no probe the forward does
 * nothing more than before. Shapes: NL = n_layers, H = n_heads (query heads), D = head_dim, n = tokens
 * of the call, T = pos + n keys; slot (L, h) of an [NL, H, ...] array starts at (L * H + h) times the
 * size of the trailing dimensions (see docs/analysis.md). */
typedef struct heed_probe {
    const uint8_t *select;   /* NULL (every head) or [NL, H]: nonzero observes (L, h) */
    float *const *probs;     /* NULL or [NL * H] pointers, each NULL or [n, T] out: post-softmax probabilities
                              * (masked keys exactly 0) */
    float *const *scores;    /* NULL or [NL * H] pointers, each NULL or [n, T] out: the logits the kernel used
                              * (scaled, softcapped; masked keys -INFINITY) */
    float *head_out;         /* NULL or [NL, H, n, D] out: the head's attention output as o_proj reads it
                              * (after heed_model_set_head_scale) */
    float *q_norm;           /* NULL or [NL, H, n] out: L2 norm of q as the kernel reads it (q norm, RoPE,
                              * log scale applied) */
    float *k_norm, *v_norm;  /* NULL or [NL, H, n] out: L2 norms of the key / value (value state) of each new
                              * token in the KV head that h reads */
    float *lse;              /* NULL or [NL, H, n] out: log-sum-exp of each query's logits */
    float *entropy;          /* NULL or [NL, H, n] out: -sum_j p_j log p_j of each query (nats) */
    int32_t *top1;           /* NULL or [NL, H, n] out: the key with the largest p (the first on ties) */
    float *recv;             /* NULL or [NL, H, recv_len] in/out: recv[j] += sum over this call's queries of
                              * p[i, j] (received attention; zero it before a sequence, keep it over decode) */
    int64_t recv_len;        /* >= pos + n when recv is set */
    float *resid_norm;       /* NULL or [NL + 1, n] out: L2 norm of each token's residual stream entering
                              * layer L (L < NL); L = NL: the last layer's output, before the final norm */
} heed_probe;

/* Observes every later heed_model_forward of m with a copy of *probe (its buffers are borrowed: they must
 * stay valid while it is set); probe NULL stops observing. */
heed_status heed_model_set_probe(heed_ctx *ctx, heed_model *m, const heed_probe *probe);

/* Scales the attention output of query head h of layer L by scale[L * H + h] before o_proj (0 ablates
 * the head) in every later forward; scale NULL restores 1 everywhere. Values must be finite. */
heed_status heed_model_set_head_scale(heed_ctx *ctx, heed_model *m, const float *scale);

/* Attention-probability interventions (docs/analysis.md, "Interventions"): the rows of a chosen head are
 * recomputed as p = exp(s - lse) (the probe's rows), edited into p', and the head's output becomes
 * O = sum_j p'_j v_j (then heed_model_set_head_scale applies). Other heads keep the kernel's output. The
 * edits, for one query row p over its visible keys (masked keys stay 0; a row whose edit has nothing to
 * work on, e.g. a span without mass, is left as it is):
 *   BOS:     all the mass on key 0 (O = v_0).
 *   ACT:     hidden sinks are the keys j >= 1 with s_j = sum_i p_ij / (T - j) > threshold (T - j queries
 *            see key j; T when bidirectional), the sums over the original rows of the sequence so far;
 *            p'_ij = beta p_ij on sinks, the freed mass given to the other keys in proportion to p_ij. The
 *            first query row is untouched. With the KV cache, s_j sums the rows seen so far (prefill and
 *            earlier steps, kept on the model; a forward must continue at the cached end or restart at 0),
 *            which for the newest row is the same set as a full-sequence forward.
 *   VAR:     a fraction frac of p_0 (the first token, the sink) moved to the keys of [a, b), a >= 1, in
 *            proportion to their p.
 *   STEER:   p' = (1 - alpha) p + alpha p|span / sum(p|span), span [a, b).
 *   INHIBIT: p_j < tau max(p) set to 0 and the row renormalised.
 * and one edit of the output rather than of p:
 *   MEAN:    mean ablation: the output row of query i replaced by the mean of the head's unedited outputs
 *            over positions 0 .. i (the positions it sees; all rows when bidirectional), the sums kept on the
 *            model across calls as ACT's. */
typedef enum heed_edit {
    HEED_EDIT_BOS, HEED_EDIT_ACT, HEED_EDIT_VAR, HEED_EDIT_STEER, HEED_EDIT_INHIBIT, HEED_EDIT_MEAN
} heed_edit;
typedef struct heed_intervention {
    heed_edit kind;
    int64_t layer, head;  /* query head */
    double amount;        /* ACT beta, VAR frac, STEER alpha, INHIBIT tau: in [0, 1] (BOS, MEAN: unused) */
    double threshold;     /* ACT: hidden-sink threshold on s_j (0.1 in the paper) */
    int64_t a, b;         /* VAR, STEER: key span [a, b), 0 <= a < b, VAR a >= 1 (keys past the row's end are
                           * ignored) */
} heed_intervention;
/* heed_intervention defaults of kind (ACT beta 0.4, threshold 0.1; VAR frac 0.5; STEER alpha 0.5; INHIBIT tau
 * 0.01) for (layer, head), span [0, 0). */
void heed_intervention_init(heed_intervention *iv, heed_edit kind, int64_t layer, int64_t head);
/* Applies list [n] in every later forward (copied; n = 0 or list NULL removes them). At most one per
 * (layer, head); out-of-range heads, amounts or spans are HEED_ERR_INVALID naming the entry. Resets the ACT
 * and MEAN sums (a new sequence must start at pos 0). */
heed_status heed_model_set_interventions(heed_ctx *ctx, heed_model *m, const heed_intervention *list, int64_t n);
/* Activation patching (docs/analysis.md, "Activation patching"): in every later forward, the output row of
 * query head h of layer L at absolute position p, as o_proj reads it (after the interventions and
 * heed_model_set_head_scale: what heed_probe.head_out captures), is replaced by out's slot (L, h, p) wherever
 * select[(L * H + h) * len + p] is nonzero. select [NL, H, len] (copied), out [NL, H, len, D] (borrowed: it must
 * stay valid while set); a forward must stay within pos + n <= len. select and out NULL remove the patch. */
heed_status heed_model_set_head_patch(heed_ctx *ctx, heed_model *m, const uint8_t *select, const float *out,
                                      int64_t len);
/* v [T, D] out: the cached value vectors of positions [0, T) in the KV head that query head h of layer L
 * reads (what the edits above weigh). T <= heed_model_n_cached. */
heed_status heed_model_cached_values(heed_ctx *ctx, const heed_model *m, float *v, int64_t L, int64_t h, int64_t T);
/* Logit lens: logits [n, vocab] out = the LM head (final norm, unembedding, final softcap) applied to
 * residual-stream rows x [n, hidden] (e.g. heed_model_trace.hidden[L]). Models without an LM head are
 * HEED_ERR_UNSUPPORTED. Uses the model's run state (not the KV cache). */
heed_status heed_model_unembed(heed_ctx *ctx, heed_model *m, float *logits, const float *x, int64_t n);

/* Linear probes per layer (Concept Depth; src/probe/linear_probe.c, docs/analysis.md "Linear probes"):
 * multinomial logistic regression with an L2 penalty on standardised features, trained full batch by
 * L-BFGS from zero weights. Everything is f64 and sequential: a fit is a function of its inputs alone. */

/* The objective at w [k, d + 1] (row c: the d weights of class c, then its bias) on rows x [n, d] with
 * classes y [n] in [0, k):
 *   f(w) = (1/n) sum_i -log softmax(W x_i + b)[y_i] + (l2 / 2) sum_{c, j} W[c, j]^2   (biases not penalised)
 * grad [k, d + 1] out: its gradient (NULL: not wanted). n >= 1, d >= 1, k >= 2, l2 >= 0. */
double heed_linear_probe_objective(double *grad, const double *w, const float *x, const int32_t *y, int64_t n,
                                   int64_t d, int64_t k, double l2);

typedef struct heed_linear_probe {
    int64_t d, k;
    double *mean;      /* [d] feature means over the training rows */
    double *inv_std;   /* [d] 1 / their standard deviation (population); 0 for a constant feature */
    double *w;         /* [k, d + 1] the weights of the standardised features z = (x - mean) * inv_std, then
                        * the bias; the biases sum to 0 (softmax is unchanged by a common shift) */
    double objective;  /* f(w) on the standardised training rows */
    double grad_max;   /* max |gradient| there: about 0 at the optimum */
    int64_t iters;     /* L-BFGS iterations run (at most 1000; fewer when grad_max <= 1e-9 or f stalls) */
    double train_acc;  /* accuracy on the training rows */
} heed_linear_probe;

/* Fits *p (its arrays malloc'd; heed_linear_probe_release frees them, also after a failure) on x [n, d]
 * and y [n] in [0, k). n >= 1, d >= 1, k >= 2, l2 >= 0 and finite, finite x; otherwise HEED_ERR_INVALID
 * saying what is wrong. With l2 = 0 on separable rows there is no minimum: the fit stops at the iteration
 * budget with growing weights. */
heed_status heed_linear_probe_fit(heed_ctx *ctx, heed_linear_probe *p, const float *x, const int32_t *y, int64_t n,
                                  int64_t d, int64_t k, double l2);
/* The class of each row of x [n, p->d]: pred [n] out, the argmax of W z + b (the smallest class on ties);
 * prob NULL or [n, p->k] out: the softmax. */
void heed_linear_probe_predict(int32_t *pred, double *prob, const heed_linear_probe *p, const float *x, int64_t n);
/* The share of rows of x [n, p->d] predicted as y [n]; 0 when n is 0. */
double heed_linear_probe_accuracy(const heed_linear_probe *p, const float *x, const int32_t *y, int64_t n);
/* Frees p's arrays and zeroes it; NULL is a no-op. */
void heed_linear_probe_release(heed_linear_probe *p);

/* A stratified split: is_test [n] out marks round(test_frac * n_c) rows of each class c (n_c rows of y [n] in
 * [0, k)), kept in [1, n_c - 1] when n_c >= 2 (0 when n_c = 1), chosen uniformly by selection sampling
 * over the class's rows in order (heed_rng_next's splitmix64 from seed, one state for all classes).
 * 0 < test_frac < 1. Returns the number of test rows. */
int64_t heed_probe_split(uint8_t *is_test, const int32_t *y, int64_t n, int64_t k, double test_frac, uint64_t seed);

/* Concept Depth's figures of a probe-accuracy curve acc [n] over layers 0 .. n - 1 (docs/analysis.md):
 *   jump:     the first layer L >= 1 whose accuracy rises by at least 10% over layer L - 1's
 *             (acc[L] >= 1.1 acc[L - 1]); -1 when none does
 *   converge: the first layer reaching the largest accuracy of the curve (no later layer does better)
 *   best_acc: that largest accuracy */
typedef struct heed_concept_depth {
    int64_t jump, converge;
    double best_acc;
} heed_concept_depth;
heed_concept_depth heed_concept_depth_of(const double *acc, int64_t n);

/* A labelled set for the probes, from JSON Lines: one object per non-blank line with "label" (an integer
 * within int32) and exactly one of "text" (a non-empty string) and "ids" (a non-empty array of integers
 * 0 .. 2^31 - 1); other keys are ignored. The distinct labels, ascending, are the classes 0 .. n_classes - 1. */
typedef struct heed_probe_example {
    char *text;        /* NUL-terminated, or NULL when the line gave ids */
    int32_t *ids;      /* [n_ids], or NULL when the line gave text */
    int64_t n_ids;
    int32_t label;     /* as written */
    int32_t cls;       /* its class: the index of label in labels */
    int64_t line;      /* 1-based line number, for messages */
} heed_probe_example;
typedef struct heed_probe_data {
    heed_probe_example *ex;  /* [n] */
    int64_t n;
    int32_t *labels;         /* [n_classes] the distinct labels, ascending */
    int64_t n_classes;
} heed_probe_data;
/* Parses buf [len] (name: for messages). Bad JSON, a missing or wrong-typed field, a non-integer label, an
 * empty text or id list, no examples or fewer than 2 distinct labels are HEED_ERR_FORMAT as
 * "name:LINE: what is wrong". */
heed_status heed_probe_data_parse(heed_ctx *ctx, heed_probe_data **out, const char *buf, size_t len,
                                  const char *name);
/* Reads and parses the file at path (at most 256 MiB). */
heed_status heed_probe_data_load(heed_ctx *ctx, heed_probe_data **out, const char *path);
/* NULL is a no-op. */
void heed_probe_data_free(heed_probe_data *d);

/* Multiple-choice evaluation (src/probe/mc_eval.c; docs/analysis.md, "ACT head search"): a labelled set of
 * items, each a prompt and n >= 2 choices, scored as lm-eval scores loglikelihood tasks (the log-probability of
 * each choice's tokens after the prompt) under whatever interventions are set on the model. */
typedef struct heed_mc_item {
    int32_t *prompt;     /* [n_prompt] ids, n_prompt >= 1 */
    int64_t n_prompt;
    int32_t **choice;    /* [n_choices] pointers, choice c [n_choice[c]] ids, n_choice[c] >= 1 */
    int64_t *n_choice;   /* [n_choices] */
    int64_t n_choices;   /* >= 2 */
    int64_t label;       /* the correct choice, 0 <= label < n_choices */
    int64_t line;        /* the item's line in its file (1-based), for messages */
} heed_mc_item;
typedef struct heed_mc_set {
    heed_mc_item *items; /* [n_items], n_items >= 1 */
    int64_t n_items;
} heed_mc_set;
/* Parses JSON Lines text [len] (name: the file, for messages) into *out (free with heed_mc_free; NULL on
 * failure). One item per non-blank line, an object with
 *   "prompt": text or "prompt_ids": [ids]       (exactly one; text is encoded with tok, special tokens added)
 *   "choices": [texts] or "choice_ids": [[ids]] (exactly one; text encoded with tok, no special tokens)
 *   "label": the index of the correct choice
 * and any other keys ignored. Text with tok NULL, bad JSON, a missing or mistyped field, an id outside
 * [0, 2^31), fewer than 2 choices, an empty prompt or choice (no tokens) and a label outside the choices are
 * HEED_ERR_FORMAT naming name and the line; no item at all too. */
heed_status heed_mc_parse(heed_ctx *ctx, heed_mc_set **out, const char *text, size_t len, const char *name,
                          const heed_tokenizer *tok);
/* heed_mc_parse of the file at path (at most 1 GiB; HEED_ERR_IO naming it when unreadable). */
heed_status heed_mc_load(heed_ctx *ctx, heed_mc_set **out, const char *path, const heed_tokenizer *tok);
/* NULL is a no-op. */
void heed_mc_free(heed_mc_set *set);
/* lp [n_choices] out: lp[c] = the sum over the tokens t of choice c of log softmax(logits at position
 * n_prompt + t - 1)[choice c's token t] (f64), from one heed_model_forward of prompt + choice c at pos 0 (the
 * KV cache restarts; m's interventions and head scales apply). The prompt is run again for every choice: an
 * ACT edit's sink sums cover all the rows of the forward, so a prompt run once and continued from the cache
 * would edit the prompt's rows differently. An id outside the model's vocabulary or a choice without tokens is
 * HEED_ERR_INVALID naming the item's line; a failed forward (e.g. past a model's learned positions) keeps its
 * status and its message gets the line and choice in front. */
heed_status heed_mc_score(heed_ctx *ctx, heed_model *m, double *lp, const heed_mc_item *item);
/* The prediction from lp [n]: the index of the largest lp[c], or with normalize of lp[c] / n_tokens[c] (the
 * mean per token); the first on ties. n >= 1; n_tokens [n] (>= 1 each) is read only with normalize. */
int64_t heed_mc_argmax(const double *lp, const int64_t *n_tokens, int64_t n, int normalize);
/* Accuracy counts of a set under one configuration of the model. The mean margin is margin_sum / n_items. */
typedef struct heed_mc_stats {
    int64_t n_items;
    int64_t correct;      /* items whose heed_mc_argmax (plain) is the label */
    int64_t correct_norm; /* items whose heed_mc_argmax (per-token mean) is the label */
    double margin_sum;    /* sum over items of lp[label] - max over c != label of lp[c] (> 0: right) */
} heed_mc_stats;
/* Adds item's scores lp [item->n_choices] (heed_mc_score) to *st. */
void heed_mc_tally(heed_mc_stats *st, const double *lp, const heed_mc_item *item);
/* *st out: the counts of every item of set scored by heed_mc_score on m as it is set up. */
heed_status heed_mc_eval(heed_ctx *ctx, heed_model *m, heed_mc_stats *st, const heed_mc_set *set);
/* ACT's head search (docs/analysis.md): one entry per candidate head, st its counts with ACT on that head
 * alone. heed_act_rank sorts heads [n] by accuracy gain over base (correct - base->correct), descending, ties
 * by mean margin gain, descending, then by layer and head, ascending; it marks selected the heads whose accuracy
 * gain over the set, (correct - base->correct) / base->n_items, is above threshold, and returns their count
 * (they come first). */
typedef struct heed_act_head {
    int64_t layer, head;
    heed_mc_stats st;
    int selected;
} heed_act_head;
int64_t heed_act_rank(heed_act_head *heads, int64_t n, const heed_mc_stats *base, double threshold);

/* Head scores (src/probe/scores.c): pure functions of captured maps and statistics, as the papers define
 * them (docs/analysis.md). A, B: [T, T] attention maps of one head, row i the query, column j the key. */

/* Mean received attention alpha [T] out: the mean of A[i, k] over the queries that see key k, from recv [T]
 * the column sums of the map (heed_probe.recv): recv[k] / (T - k) when causal (queries i >= k), else
 * recv[k] / T. This is sink importance alpha_k (When Attention Sink Emerges) and ACT's hidden-sink s_j. */
void heed_score_sink_alpha(float *alpha, const float *recv, int64_t T, int causal);
/* Sink^eps: the share of the n values alpha [n] (alpha_k of every layer and head for one k) above eps. */
double heed_score_sink_eps(const float *alpha, int64_t n, double eps);
/* ACT hidden sinks: the positions j >= 1 (BOS excluded) with s[j] > threshold (0.1 in the paper), in
 * increasing order, into sinks [T]; returns their count. s [T] from heed_score_sink_alpha. */
int64_t heed_score_hidden_sinks(int64_t *sinks, const float *s, int64_t T, double threshold);

/* TransformerLens head_detector patterns of tokens [T]: P[i][j] = 1 when
 *   PREV_TOKEN: j = i - 1;   DUPLICATE: j < i and tokens[j] = tokens[i];
 *   INDUCTION:  1 <= j <= i and tokens[j - 1] = tokens[i] (the token after an earlier copy of tokens[i];
 *               DUPLICATE shifted one key to the right, as head_detector rolls it). */
typedef enum heed_pattern { HEED_PATTERN_PREV_TOKEN, HEED_PATTERN_DUPLICATE, HEED_PATTERN_INDUCTION } heed_pattern;
/* head_detector's score (error_measure "mul", no exclusions): sum(A * P) / sum(A) over A [T, T]. row_mean
 * (NULL: not wanted) out: the mean over the rows i where P has an entry of sum_j A[i, j] P[i, j] (on
 * [BOS, r, r] the second half: 1 for a perfect head, where the score is at most n / (2n + 1)); 0 when no
 * row has one. Returns 0 when sum(A) is 0. */
double heed_score_pattern(double *row_mean, const float *A, const int32_t *tokens, int64_t T, heed_pattern kind);
/* The induction test input ids [2n + 1] out: bos, then n ids drawn uniformly from [lo, hi) other than bos
 * (splitmix64 from seed), then the same n again. hi - lo >= 2. */
void heed_induction_input(int32_t *ids, int32_t bos, int64_t n, int32_t lo, int32_t hi, uint64_t seed);

/* x[0] / mean(x[1 .. n-1]) for x [n], n >= 2 (0 when that mean is 0): the first token's norm against the
 * others', i.e. value-state drain (v norms of one head; small: a drained value) and residual peak
 * (residual norms of one layer; large: a peak). */
double heed_score_first_ratio(const float *x, int64_t n);
/* The mean over rows t of ||b[t] - a[t]|| / ||a[t]|| for a, b [n, d] (rows with ||a[t]|| = 0 count 0): how
 * much an intervention moved the outputs a to b. */
double heed_score_output_change(const float *a, const float *b, int64_t n, int64_t d);
/* Cosine similarity of x and y [n] flattened (EchoAtt compares attention maps of layers so); 0 when either
 * is all zeros. */
double heed_score_cosine(const float *x, const float *y, int64_t n);
/* One greedy decoding step of the retrieval-head test: for each of n heads, score[h] += 1 / needle_len
 * when top1[h] (the key it attends most) lies in [needle_start, needle_start + needle_len) and
 * prompt[top1[h]] == generated. score [n] in/out, top1 [n], prompt [>= needle_start + needle_len]. */
void heed_score_retrieval_step(float *score, const int32_t *top1, int64_t n, const int32_t *prompt,
                               int64_t needle_start, int64_t needle_len, int32_t generated);

/* Needle in a haystack (src/probe/needle.c; docs/analysis.md, "heed needle"). */
/* The prompt of one grid cell, prompt [ctx_len] out: [bos when bos >= 0] + filler[0, p) + needle [n_needle]
 * + filler[p, F) + question [n_question], where the filler is the haystack hay [n_hay] repeated from its start
 * (filler[i] = hay[i % n_hay]) to F = ctx_len - (bos >= 0) - n_needle - n_question tokens, and p the needle's
 * place: q = round(depth / 100 * F), moved back to the largest p <= q that is 0, F, or a break
 * (breaks[p % n_hay] nonzero; breaks [n_hay], NULL: every position is one). *needle_at out: the needle's
 * first index in prompt. depth in [0, 100], F >= 1, n_hay >= 1, n_needle >= 1, n_question >= 0; otherwise
 * HEED_ERR_INVALID saying what is wrong. */
heed_status heed_needle_prompt(heed_ctx *ctx, int32_t *prompt, int64_t *needle_at, const int32_t *hay,
                               const uint8_t *breaks, int64_t n_hay, const int32_t *needle, int64_t n_needle,
                               const int32_t *question, int64_t n_question, int32_t bos, int64_t ctx_len,
                               double depth);
/* ROUGE-1 recall of ref [n_ref] by cand [n_cand] over ids: the ref ids matched one to one by equal cand ids
 * (clipped unigram counts, the sum over distinct ids of min(count in ref, count in cand)) over n_ref; 0 when
 * n_ref is 0. */
double heed_rouge1_recall(const int32_t *ref, int64_t n_ref, const int32_t *cand, int64_t n_cand);
/* The same over the words of two NUL-terminated texts, split as rouge_score's default tokenizer splits them
 * (without its optional stemmer): runs of ASCII letters and digits, compared case-insensitively; every other
 * byte separates words. */
double heed_rouge1_recall_text(const char *ref, const char *cand);
/* Greedy decoding observed for the Retrieval-Head score: prefills prompt [T - 1] at pos 0 (T >= 1; the KV
 * cache restarts), then up to n_gen steps, step s running the last id so far and writing the argmax of its
 * logits (heed_sample, greedy, no penalty) to gen [n_gen]; with stop_eos it stops after one of the model's EOS
 * ids. score NULL: plain decoding; else [NL * H] in/out, every step adding heed_score_retrieval_step(score,
 * top1 of every head, NL * H, prompt, needle_at, needle_len, gen[s]), needle [needle_at, needle_at +
 * needle_len) inside the prompt. *n_out: the ids generated. Any probe set on m is removed. The model's
 * interventions and head scales apply. */
heed_status heed_retrieval_decode(heed_ctx *ctx, heed_model *m, int32_t *gen, int64_t *n_out, float *score,
                                  const int32_t *prompt, int64_t T, int64_t needle_at, int64_t needle_len,
                                  int64_t n_gen, int stop_eos);

/* Choosing the next token, as transformers' generate: the repetition penalty (divide a positive logit,
 * multiply a negative one, once per distinct id already present), then greedy argmax, or temperature,
 * top-k (keep logits >= the k-th largest), top-p (keep a token while the mass ranked above it is
 * < top_p), min-p (keep probabilities >= min_p times the largest) and one draw. */
typedef struct heed_sample_params {
    int greedy;            /* 1: argmax after the penalty; temperature and the filters are ignored */
    double temperature;    /* > 0 */
    int64_t top_k;         /* 0: off */
    double top_p;          /* in (0, 1]; 1: off */
    double min_p;          /* in [0, 1]; 0: off */
    double repeat_penalty; /* > 0; 1: off */
} heed_sample_params;

/* Defaults of gen (greedy unless do_sample, its temperature, top_k, top_p), or transformers' own
 * defaults when gen is NULL; min_p 0, repeat_penalty 1. */
void heed_sample_params_init(heed_sample_params *p, const heed_gen_config *gen);
/* The next 64 random bits of the deterministic generator (splitmix64) whose state is *state (any seed). */
uint64_t heed_rng_next(uint64_t *state);
/* Picks *out from logits [vocab] (overwritten: penalised, scaled). prev [n_prev]: the ids so far (prompt
 * and generated; NULL when n_prev is 0). rng: the generator state, advanced by one draw unless greedy. */
heed_status heed_sample(heed_ctx *ctx, int32_t *out, float *logits, int64_t vocab, const int32_t *prev,
                        int64_t n_prev, const heed_sample_params *p, uint64_t *rng);
/* log softmax(logits [vocab])[id], accumulated in f64 around the row's largest logit (what perplexity
 * and multiple-choice scoring sum). id must be in [0, vocab). */
double heed_logprob(const float *logits, int64_t vocab, int32_t id);
/* ================================================================================================ */

/* ================================================================================================
 * Trainer: a Llama-architecture decoder trained with hand-written forward and backward passes
 * (embedding, RMSNorm, RoPE, a token mixer, SwiGLU MLP, tied or untied head), cross-entropy, AdamW.
 * Parameters, gradients and optimizer moments are f32. The token mixer of every layer is chosen per
 * run; attention variants run through heed_attn_forward / heed_attn_backward. Checkpoints use the
 * Hugging Face layout the runtime reads (docs/training.md). One trainer is used by one thread at a
 * time; results are identical for any thread count. */
typedef enum heed_mixer {
    HEED_MIXER_ATTENTION = 0, /* softmax or sigmoid attention with the options of heed_train_config */
    HEED_MIXER_LINEAR = 1,    /* causal linear attention, phi = elu + 1 (no RoPE; n_kv_heads == n_heads) */
    HEED_MIXER_GCONV = 2      /* gated causal convolution (Zoology's non-attention baseline) */
} heed_mixer;

typedef struct heed_train_config {
    int64_t vocab, hidden, n_layers, n_heads, n_kv_heads, head_dim, intermediate;
    int64_t max_seq;           /* the longest sequence trained or evaluated (RoPE tables) */
    double rope_theta, norm_eps;
    int tie_embeddings;
    int64_t bos_id, eos_id;    /* written to config.json; -1: none */
    heed_mixer mixer;
    /* HEED_MIXER_ATTENTION */
    heed_norm norm;            /* softmax, or sigmoid with bias -log(n) */
    int sink_logit;            /* a learned sink logit per head (softmax only) */
    int selective;             /* selective attention: logits * (1 + exp(-exp(beta_h)) log(i+1)), beta learned */
    int64_t window;            /* > 0: sliding window of `window` keys (own position included) */
    int32_t s2_block, s2_local_blocks, s2_vert_stride; /* s2_block > 0: S2 strided shards (head offset 0) */
    int64_t moh_shared, moh_top_k; /* moh_top_k > 0: Mixture-of-Head routing, heads [0, moh_shared) shared */
    float moh_balance;         /* weight of the MoH load-balance loss */
    /* HEED_MIXER_GCONV */
    int64_t conv_kernel;       /* filter length K (<= max_seq) */
} heed_train_config;

/* A small Llama (vocab 4096, hidden 256, 4 layers, 8 heads, 4 KV heads, MLP 768, 256 positions, softmax). */
void heed_train_config_init(heed_train_config *c);

/* AdamW with decoupled weight decay on matrices (parameters of 2 or more dimensions) only, as
 * torch.optim.AdamW with two parameter groups; global-norm gradient clipping as clip_grad_norm_. */
typedef struct heed_optim {
    float beta1, beta2, eps, weight_decay;
    float clip;                /* max global gradient norm; <= 0: no clipping */
} heed_optim;
/* beta1 0.9, beta2 0.95, eps 1e-8, weight decay 0.1, clip 1.0 */
void heed_optim_init(heed_optim *o);
/* Linear warmup for `warmup` steps, then cosine from lr_max to lr_min at step `total`:
 * step < warmup: lr_max (step + 1) / warmup; else lr_min + (lr_max - lr_min)(1 + cos(pi (step - warmup) /
 * (total - warmup))) / 2 (lr_min once step >= total). */
float heed_lr_schedule(int64_t step, int64_t warmup, int64_t total, float lr_max, float lr_min);

typedef struct heed_trainer heed_trainer;

/* A new model with parameters drawn from seed (normal, std 0.02; output projections of each block
 * scaled by 1/sqrt(2 n_layers); norms 1), gradients and moments zero. HEED_ERR_INVALID naming the field
 * of a bad configuration. */
heed_status heed_trainer_create(heed_ctx *ctx, heed_trainer **out, const heed_train_config *cfg, uint64_t seed);
/* A trainer from a checkpoint directory written by heed_trainer_save (config.json, model.safetensors)
 * or any llama checkpoint of f32/f16/bf16 weights; the optimizer state (train_state.safetensors) is
 * restored when present, so training resumes exactly. */
heed_status heed_trainer_load(heed_ctx *ctx, heed_trainer **out, const char *dir);
/* NULL is a no-op. */
void heed_trainer_free(heed_trainer *tr);
const heed_train_config *heed_trainer_config(const heed_trainer *tr);
/* Optimizer steps taken so far. */
int64_t heed_trainer_step_count(const heed_trainer *tr);

/* Parameters in a fixed order, named as Hugging Face names them (model.layers.0.self_attn.q_proj.weight).
 * i in [0, heed_trainer_n_params). data and grad are [n_elems] f32 owned by the trainer (grad is
 * writable through this view for tests; it is what heed_trainer_step reads). */
typedef struct heed_param {
    const char *name;
    int n_dims;
    int64_t shape[2];
    int64_t n_elems;
    float *data, *grad;
} heed_param;
int64_t heed_trainer_n_params(const heed_trainer *tr);
heed_param heed_trainer_param(const heed_trainer *tr, int64_t i);

/* One micro-batch: forward and backward of inputs [B, T] against targets [B, T] (a target < 0 is not
 * counted), T <= max_seq. *loss: the mean cross-entropy over counted targets (plus the MoH balance loss
 * when on). Gradients of this mean times grad_scale are ADDED to the parameters' gradients, so k
 * micro-batches with grad_scale 1/k accumulate the gradient of their average. logits: NULL or
 * [B, T, vocab] out. With grad_scale == 0 only the forward runs (evaluation). *n_counted: NULL or out. */
heed_status heed_trainer_forward_backward(heed_ctx *ctx, heed_trainer *tr, float *loss, int64_t *n_counted,
                                          float *logits, const int32_t *inputs, const int32_t *targets,
                                          int64_t B, int64_t T, float grad_scale);
/* Clips the accumulated gradient to o->clip (global norm), applies one AdamW step with learning rate lr,
 * then zeroes the gradients. *grad_norm: NULL or out, the norm before clipping. */
heed_status heed_trainer_step(heed_ctx *ctx, heed_trainer *tr, const heed_optim *o, float lr, float *grad_norm);
/* Model FLOPs of one training token at sequence length T (forward + backward = 3x the forward's
 * matrix products, attention counted over the causal pairs it computes). */
double heed_trainer_flops_per_token(const heed_trainer *tr, int64_t T);

/* Writes dir (created if missing): config.json (model_type llama for plain softmax attention, mistral
 * with a sliding window; other variants add heed_* fields that the runtime refuses), model.safetensors
 * (f32, or bf16 when bf16 is set), train_state.safetensors (moments and step; skipped when bf16), and
 * generation_config.json. Each file is written atomically. */
heed_status heed_trainer_save(heed_ctx *ctx, const heed_trainer *tr, const char *dir, int bf16);
/* ================================================================================================ */

/* ================================================================================================
 * Training data: token files, a batch loader over them, and the synthetic tasks of the papers.
 * Inputs and targets are int32 [B, T]; targets[b, t] is the token that should
 * follow inputs[b, t], or -1 where the loss does not count (heed_trainer_forward_backward skips it).
 * Everything random is drawn from a splitmix64 state (heed_rng_next): a seed reproduces every batch.
 *
 * Token file (".tok"), all integers little-endian:
 *   bytes 0..7    magic "HEEDTOK\0"
 *   bytes 8..11   u32 version, 1
 *   bytes 12..15  u32 bits per id: 16 or 32
 *   bytes 16..23  u64 count n
 *   bytes 24..    n ids, unsigned, of that width (32-bit ids are < 2^31)
 * The file is exactly 24 + n * bits / 8 bytes long. */
#define HEED_TOKFILE_VERSION 1
#define HEED_TOKFILE_HEADER 24

/* The uniform integer in [0, n) from the generator state *state, without modulo bias (0 when n <= 1). */
uint64_t heed_rng_below(uint64_t *state, uint64_t n);

/* Writes ids [n] (each in [0, 2^31)) to path atomically (temporary file + rename), 16 bits per id when
 * every id is below 65536, else 32. HEED_ERR_INVALID naming the first negative id. */
heed_status heed_tokfile_write(heed_ctx *ctx, const char *path, const int32_t *ids, int64_t n);

typedef struct heed_tokfile heed_tokfile;
/* Maps path read-only and validates it (magic, version, width, count against the file length, every
 * 32-bit id < 2^31). HEED_ERR_IO or HEED_ERR_FORMAT naming the file and what is wrong. */
heed_status heed_tokfile_open(heed_ctx *ctx, heed_tokfile **out, const char *path);
/* The same over an image in memory, data [size] (borrowed: it must outlive the token file); name is for
 * messages. */
heed_status heed_tokfile_open_mem(heed_ctx *ctx, heed_tokfile **out, const void *data, size_t size,
                                  const char *name);
/* NULL is a no-op. */
void heed_tokfile_close(heed_tokfile *f);
int64_t heed_tokfile_count(const heed_tokfile *f);
/* 16 or 32. */
int heed_tokfile_bits(const heed_tokfile *f);
/* The largest id in the file (-1 when it is empty). */
int32_t heed_tokfile_max_id(const heed_tokfile *f);
/* Id i, 0 <= i < count. */
int32_t heed_tokfile_id(const heed_tokfile *f, int64_t i);

/* A token stream split into a train part (ids [0, n_train)) and a held-out part (the tail, ids
 * [n_train, n)), n_heldout = floor(n * heldout_frac). It borrows its ids. */
typedef struct heed_data heed_data;
/* Over ids [n] in memory. Every id must be in [0, vocab): HEED_ERR_INVALID naming the first that is not;
 * heldout_frac in [0, 1). */
heed_status heed_data_create(heed_ctx *ctx, heed_data **out, const int32_t *ids, int64_t n, int64_t vocab,
                             double heldout_frac);
/* Over the ids of an open token file (borrowed). HEED_ERR_INVALID when its largest id is >= vocab. */
heed_status heed_data_create_tokfile(heed_ctx *ctx, heed_data **out, const heed_tokfile *f, int64_t vocab,
                                     double heldout_frac);
/* NULL is a no-op. */
void heed_data_free(heed_data *d);
int64_t heed_data_n_train(const heed_data *d);
int64_t heed_data_n_heldout(const heed_data *d);
/* B training rows: row b is a window of T + 1 consecutive ids of the train part starting at s uniform in
 * [0, n_train - T - 1] (one draw of *rng per row): inputs[b, t] = id[s + t], targets[b, t] = id[s + t + 1].
 * inputs, targets [B, T] out. HEED_ERR_INVALID when n_train < T + 1. */
heed_status heed_data_batch(heed_ctx *ctx, int32_t *inputs, int32_t *targets, const heed_data *d, int64_t B,
                            int64_t T, uint64_t *rng);
/* Evaluation walks the held-out part in windows of T targets: window w has inputs id[h + w T + t] and
 * targets id[h + w T + t + 1] (h = n_train), t < T, so every held-out id after the first is the target of
 * exactly one position. The last window may be short: its missing positions have input 0 and target -1.
 * The number of windows: ceil((n_heldout - 1) / T), 0 when n_heldout < 2. */
int64_t heed_data_eval_windows(const heed_data *d, int64_t T);
/* Windows first .. first + B - 1 as rows of inputs, targets [B, T] out; rows past the last window have
 * inputs 0 and targets -1. The perplexity of the held-out part is exp(sum of counted losses / (n_heldout - 1))
 * over first = 0, B, 2B, ... < heed_data_eval_windows(d, T). */
heed_status heed_data_eval_batch(heed_ctx *ctx, int32_t *inputs, int32_t *targets, const heed_data *d,
                                 int64_t B, int64_t T, int64_t first);

/* The synthetic tasks. Every row is an independent sequence of length T drawn from *rng. */
typedef enum heed_task_kind {
    /* Multi-query associative recall (Zoology, Arora et al. 2023): N key-value pairs at the start, keys in
     * [1, V/2) and values in [V/2, V), all keys distinct and all values distinct; then every key is queried
     * once, at query slot g (position 2N + 2g) with the gaps g drawn without replacement from
     * [0, (T - 2N) / 2) with p(g) ~ (g + 1)^(alpha - 1); every other position holds a uniform random token of
     * [0, V). Targets: the key's value at its query position, -1 elsewhere. Needs T even and 4N <= T. */
    HEED_TASK_MQAR = 0,
    /* Bigram-Backcopy (Guo et al. 2024): id 0 is <s>, ids 1..K are the trigger tokens, the rest are
     * ordinary tokens. A row starts with <s> and a uniform ordinary token; after a trigger the next token
     * copies the token before the trigger, after an ordinary token the next is one step of a bigram chain.
     * The paper's chain is the character bigram of a text; here each ordinary token's row of the transition
     * table has weights exp(sigma z), z standard normal, over ids 1..V-1, drawn once from table_seed (so
     * the train and evaluation tasks share it; V <= 2048). The token before a trigger is always ordinary. Targets:
     * every next token (the paper's loss), or with copies_only only the copied token after each trigger. */
    HEED_TASK_BACKCOPY = 1,
    /* Bursty in-context classification (Reddy 2023) over tokens: N item-label pairs then a query item,
     * T = 2N + 1. Item tokens stand for the paper's noisy class exemplars: class k in [0, K) owns the E
     * tokens [k E, k E + E) and an item of class k is one of them drawn uniformly (the choice of exemplar
     * replaces the paper's Gaussian within-class noise eps); class k has the label token K E + (k mod L).
     * A bursty row (probability p_bursty) takes N / B classes, each appearing B times in the context in a
     * random order, and queries one of them; otherwise the N context classes and the query class are
     * uniform. Target: the query's label at the last position, -1 elsewhere. */
    HEED_TASK_BURSTY = 2,
    /* Repeated random tokens (induction heads, Olsson et al. 2022): h = T / 2 uniform tokens of [0, V),
     * then the same h tokens again. Targets on the second half, t >= h: inputs[(t + 1) mod h] (what a
     * third repetition would continue with); -1 on the first half. Needs T even. */
    HEED_TASK_REPEAT = 3
} heed_task_kind;

typedef struct heed_task_params {
    heed_task_kind kind;
    int64_t vocab;          /* V for MQAR (8192), BACKCOPY (64), REPEAT (8192); BURSTY derives its own */
    /* MQAR */
    int64_t mqar_pairs;     /* N (8) */
    double mqar_alpha;      /* the gap distribution's power a (0.01) */
    /* BACKCOPY */
    int64_t bb_triggers;    /* K (3) */
    double bb_sigma;        /* log-normal spread of the bigram weights (2) */
    uint64_t bb_table_seed; /* seed of the transition table (1) */
    int bb_copies_only;     /* 1: count only the copied tokens; 0: count every next token (0) */
    /* BURSTY */
    int64_t bursty_classes;    /* K (128) */
    int64_t bursty_exemplars;  /* E tokens per class (4) */
    int64_t bursty_labels;     /* L (32) */
    int64_t bursty_pairs;      /* N (8) */
    int64_t bursty_burstiness; /* B (4); N must be a multiple of B */
    double bursty_p;           /* the fraction of bursty rows p_bursty (1) */
} heed_task_params;

/* The defaults above (the papers' parameters) for kind. */
void heed_task_params_init(heed_task_params *p, heed_task_kind kind);

typedef struct heed_task heed_task;
/* Validates p (HEED_ERR_INVALID naming the field) and prepares the task (BACKCOPY's transition table). */
heed_status heed_task_create(heed_ctx *ctx, heed_task **out, const heed_task_params *p);
/* NULL is a no-op. */
void heed_task_free(heed_task *task);
/* The vocabulary the task's ids live in: every input and target is in [0, heed_task_vocab) or -1. */
int64_t heed_task_vocab(const heed_task *task);
/* B rows of length T: inputs, targets [B, T] out. HEED_ERR_INVALID naming the parameter when T does not
 * suit the task (MQAR: T even and 4N <= T; BURSTY: T = 2N + 1; REPEAT: T even). */
heed_status heed_task_batch(heed_ctx *ctx, int32_t *inputs, int32_t *targets, const heed_task *task, int64_t B,
                            int64_t T, uint64_t *rng);
/* ================================================================================================ */

/* ================================================================================================
 * Report: the attention viewer, one self-contained HTML file (inline style and script, no network), and
 * PNG heatmaps (docs/viewer.md). A report is built head by head, so a long prompt never needs every
 * T x T map at once: each map added is reduced at once to a thumbnail (HEED_REPORT_THUMB square, block
 * maxima, square-root scale, normalised to the head's largest block) and kept whole only when asked
 * (8 bits per weight w: q = round(255 sqrt(w)), zlib-compressed). A report is used by one thread at a time. */
#define HEED_REPORT_THUMB 48
typedef struct heed_report heed_report;

/* A new report of tokens [n_tokens] (UTF-8 strings shown for each position; copied; invalid UTF-8 shows as
 * U+FFFD) for a model of n_layers x n_heads heads. title: the page's title (copied; NULL: "heed inspect"). */
heed_status heed_report_create(heed_ctx *ctx, heed_report **out, const char *title, const char *const *tokens,
                               int64_t n_tokens, int64_t n_layers, int64_t n_heads);
/* NULL is a no-op. */
void heed_report_free(heed_report *r);
/* Adds the map of head `head` of layer `layer` (adding it again replaces it):
 *   attn: [T, T] row-major, attn[i * T + j] the weight of query i on key j, each in [0, 1] (up to
 *         rounding); a NaN or a weight outside is HEED_ERR_INVALID naming the head and position.
 *   keep_full: 1 keeps the whole map for the page's token view and heatmap, 0 only the thumbnail. */
heed_status heed_report_add_map(heed_ctx *ctx, heed_report *r, const float *attn, int64_t layer, int64_t head,
                                int keep_full);
/* Adds a score table shown on the page and selectable to colour the grid:
 *   values: [n_layers * n_heads], index layer * n_heads + head; NaN: not computed for that head.
 *   name: short and unique in the report; desc: one line saying what it measures, or NULL (both copied). */
heed_status heed_report_add_score(heed_ctx *ctx, heed_report *r, const float *values, const char *name,
                                  const char *desc);
/* The page: *html [*len] (NUL-terminated, malloc'd: free it with free()). */
heed_status heed_report_html(heed_ctx *ctx, char **html, size_t *len, const heed_report *r);
/* Writes the page to path atomically (temporary file + rename). */
heed_status heed_report_write(heed_ctx *ctx, const heed_report *r, const char *path);

/* The colour scale of the page and the PNGs (dark blue, teal, green, yellow; lightness rises with t):
 * rgb [3] out for t in [0, 1] (clamped; NaN gives the colour of 0). */
void heed_colormap(uint8_t *rgb, double t);

/* A heatmap PNG (8-bit RGB): value v of cell (r, c) is drawn as heed_colormap((v - lo) / (hi - lo)), or of
 * its square root with sqrt_scale, as a cell_px x cell_px square; with colorbar, a vertical bar of the
 * scale (hi at the top) right of the map. lo and hi are also stored as PNG text "heed:lo" / "heed:hi". */
typedef struct heed_png_opts {
    double lo, hi;  /* the values at the two ends of the scale; NaN: the map's minimum / maximum */
    int sqrt_scale; /* 1: colour by sqrt of the position on the scale (attention weights: small ones show) */
    int cell_px;    /* pixels per cell side, >= 1 */
    int colorbar;   /* 1: draw the colour bar */
} heed_png_opts;
/* lo = hi = NaN, sqrt_scale 0, cell_px 1, colorbar 1. */
void heed_png_opts_init(heed_png_opts *o);
/* Writes map [rows, cols] (finite values; row-major) to path atomically. The image may be at most 16384
 * pixels on a side. */
heed_status heed_png_heatmap(heed_ctx *ctx, const char *path, const float *map, int64_t rows, int64_t cols,
                             const heed_png_opts *o);
/* ================================================================================================ */

#ifdef __cplusplus
}
#endif
#endif /* HEED_H */
