/* trainer.h — internals of the trainer (src/train/): the parameter table, the per-layer weight
 * pointers (one struct type serves the parameters and their gradients), the saved activations and
 * the state shared by the forward/backward (trainer.c), the optimizer (optim.c) and checkpoints
 * (checkpoint.c). */
#ifndef HEED_TRAINER_H
#define HEED_TRAINER_H

#include "core/core.h"

#define TRAIN_NAME_MAX 80
#define TRAIN_MAX_HEADS 512

/* Pointers into one flat f32 buffer: the parameters, or (same offsets) their gradients.
 * A pointer is NULL when the configuration does not use that tensor. */
typedef struct train_layer {
    float *ln1, *q, *k, *v, *o;             /* attention and linear mixers: nn.Linear [out, in] */
    float *sinks, *temp_beta;               /* [Hq] learned sink logit; selective-attention beta */
    float *r_shared, *r_routed, *r_alpha;   /* MoH routers [n_shared | n_routed | 2, hidden] */
    float *conv_u, *conv_g, *conv_filter;   /* gated convolution: [C, C], [C, C], [C, K]; output: o */
    float *ln2, *gate, *up, *down;          /* SwiGLU MLP */
} train_layer;

typedef struct train_weights {
    float *embed;                           /* [vocab, hidden] */
    float *final_norm;                      /* [hidden] */
    float *lm_head;                         /* [vocab, hidden]; == embed when tied */
    train_layer *layer;                     /* [n_layers] */
} train_weights;

typedef struct train_param {
    char name[TRAIN_NAME_MAX];
    int n_dims;
    int64_t shape[2];
    int64_t n, off;                         /* elements; offset into the flat buffers */
} train_param;

/* Activations of one forward pass that the backward needs, for up to cap_tokens = B*T tokens. */
typedef struct train_acts {
    int64_t cap_tokens;
    float **x;                              /* [n_layers + 1] residual stream entering layer L [N, C] */
    float **ln1, **rstd1, **q, **k, **v;    /* per layer */
    float **att, **lse, **mix;              /* head outputs [N, Hq*D]; lse [B, Hq, T]; o_proj input */
    float **gates, **rlog_s, **rlog_r, **rlog_a; /* MoH gates [N, H] and router logits */
    float **cu, **cg;                       /* gated convolution inputs [N, C] */
    float **xm, **ln2, **rstd2, **gate, **up, **h;
    float *lnf, *rstdf, *logits;            /* [N, C], [N], [N, V] */
    /* backward scratch */
    float *dx, *dln, *dq, *dk, *dv, *datt, *dmix, *dgate, *dup, *dh, *tmp, *dgates, *drs, *drr, *dra;
} train_acts;

struct heed_trainer {
    heed_train_config cfg;
    train_param *params;
    int64_t n_params, n_floats;
    float *data, *grad, *m, *v;             /* [n_floats] each */
    train_weights w, g;                     /* pointers into data and grad */
    int64_t step;                           /* optimizer steps taken */
    float *cos_t, *sin_t;                   /* [max_seq, head_dim / 2] RoPE tables */
    train_acts a;
};

/* Builds the parameter table of cfg and allocates data/grad/m/v (zeroed) and the weight pointers. */
heed_status train_alloc(heed_ctx *ctx, heed_trainer *tr, const heed_train_config *cfg);
/* Checks a configuration: HEED_ERR_INVALID naming the field. */
heed_status train_config_check(heed_ctx *ctx, const heed_train_config *c);
/* Makes the activations hold B * T tokens. */
heed_status train_reserve(heed_ctx *ctx, heed_trainer *tr, int64_t B, int64_t T);
/* The RoPE tables of tr->cfg (inv_freq exactly as transformers computes it, in f32). */
heed_status train_rope_tables(heed_ctx *ctx, heed_trainer *tr);

#endif /* HEED_TRAINER_H */
