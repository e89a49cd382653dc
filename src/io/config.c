/* config.c — config.json to heed_config through a table of architectures: what each family uses
 * (norms, positions, biases, q/k norm, softcaps, window pattern, MLP kind), its key names and
 * transformers' defaults; plus the small shared reader of generation/tokenizer config fields. */
#include "io/io.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Which layers use the sliding window. */
typedef enum win_rule {
    WIN_NONE,       /* none (llama, gpt2, bert) */
    WIN_ALL,        /* every layer when sliding_window is set (mistral) */
    WIN_FROM_LAYER, /* layers >= max_window_layers when use_sliding_window (qwen2, qwen3) */
    WIN_EVEN        /* layers 0, 2, 4, ... (gemma2: sliding, global, sliding, ...) */
} win_rule;

typedef struct arch_desc {
    const char *model_type;
    heed_arch arch;
    heed_ln_kind norm;
    heed_pos_kind pos;
    heed_mlp_kind mlp;
    uint8_t norm_add_one, post_norms, post_ln, qk_norm, causal, embed_scale, fused_qkv;
    /* biases: 0 or 1 fixed by the family, -1 read from attention_bias (q, k, v, o) / mlp_bias */
    int8_t qkv_bias, o_bias, mlp_bias, norm_bias;
    win_rule window;
    const char *aliases;  /* "canonical=file_key,...": the family's own names for canonical keys */
    const char *defaults; /* JSON object: transformers' value of each key a file may leave out */
} arch_desc;

#define LLAMA_LIKE_DEFAULTS "\"rms_norm_eps\": 1e-6, \"rope_theta\": 10000, \"hidden_act\": \"silu\", " \
                            "\"tie_word_embeddings\": false, \"head_dim\": null"

static const arch_desc ARCHS[] = {
    {"llama", HEED_ARCH_LLAMA, HEED_LN_RMS, HEED_POS_ROPE, HEED_MLP_GATED, 0, 0, 0, 0, 1, 0, 0, -1, -1, -1, 0,
     WIN_NONE, "",
     "{" LLAMA_LIKE_DEFAULTS ", \"max_position_embeddings\": 2048, \"num_key_value_heads\": null, "
     "\"attention_bias\": false, \"mlp_bias\": false}"},
    {"mistral", HEED_ARCH_MISTRAL, HEED_LN_RMS, HEED_POS_ROPE, HEED_MLP_GATED, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
     WIN_ALL, "",
     "{" LLAMA_LIKE_DEFAULTS ", \"max_position_embeddings\": 131072, \"num_key_value_heads\": 8, "
     "\"sliding_window\": 4096}"},
    {"qwen2", HEED_ARCH_QWEN2, HEED_LN_RMS, HEED_POS_ROPE, HEED_MLP_GATED, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0,
     WIN_FROM_LAYER, "",
     "{" LLAMA_LIKE_DEFAULTS ", \"max_position_embeddings\": 32768, \"num_key_value_heads\": 32, "
     "\"use_sliding_window\": false, \"sliding_window\": 4096, \"max_window_layers\": 28}"},
    {"qwen3", HEED_ARCH_QWEN3, HEED_LN_RMS, HEED_POS_ROPE, HEED_MLP_GATED, 0, 0, 0, 1, 1, 0, 0, -1, -1, 0, 0,
     WIN_FROM_LAYER, "",
     "{\"rms_norm_eps\": 1e-6, \"rope_theta\": 10000, \"hidden_act\": \"silu\", \"tie_word_embeddings\": false, "
     "\"head_dim\": 128, \"max_position_embeddings\": 32768, \"num_key_value_heads\": 32, "
     "\"attention_bias\": false, \"use_sliding_window\": false, \"sliding_window\": 4096, "
     "\"max_window_layers\": 28}"},
    {"gemma2", HEED_ARCH_GEMMA2, HEED_LN_RMS, HEED_POS_ROPE, HEED_MLP_GATED, 1, 1, 0, 0, 1, 1, 0, -1, -1, 0, 0,
     WIN_EVEN, "hidden_act=hidden_activation",
     "{\"rms_norm_eps\": 1e-6, \"rope_theta\": 10000, \"hidden_activation\": \"gelu_pytorch_tanh\", "
     "\"tie_word_embeddings\": true, \"head_dim\": 256, \"max_position_embeddings\": 8192, "
     "\"num_key_value_heads\": 4, \"attention_bias\": false, \"query_pre_attn_scalar\": 256, "
     "\"sliding_window\": 4096, \"attn_logit_softcapping\": 50.0, \"final_logit_softcapping\": 30.0}"},
    {"gpt2", HEED_ARCH_GPT2, HEED_LN_LAYER, HEED_POS_LEARNED, HEED_MLP_PLAIN, 0, 0, 0, 0, 1, 0, 1, 1, 1, 1, 1,
     WIN_NONE,
     "hidden_size=n_embd,num_hidden_layers=n_layer,num_attention_heads=n_head,max_position_embeddings=n_positions,"
     "intermediate_size=n_inner,rms_norm_eps=layer_norm_epsilon,hidden_act=activation_function",
     "{\"n_positions\": 1024, \"n_inner\": null, \"layer_norm_epsilon\": 1e-5, \"activation_function\": \"gelu_new\", "
     "\"tie_word_embeddings\": true, \"num_key_value_heads\": null, \"head_dim\": null, "
     "\"scale_attn_weights\": true, \"scale_attn_by_inverse_layer_idx\": false}"},
    {"bert", HEED_ARCH_BERT, HEED_LN_LAYER, HEED_POS_LEARNED, HEED_MLP_PLAIN, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 1,
     WIN_NONE, "rms_norm_eps=layer_norm_eps",
     "{\"max_position_embeddings\": 512, \"layer_norm_eps\": 1e-12, \"hidden_act\": \"gelu\", "
     "\"tie_word_embeddings\": true, \"num_key_value_heads\": null, \"head_dim\": null, \"type_vocab_size\": 2, "
     "\"position_embedding_type\": \"absolute\"}"},
};
#define N_ARCHS ((int)(sizeof(ARCHS) / sizeof(ARCHS[0])))

/* The value of key in object o; the last one when a key repeats, as Python's json (which
 * transformers reads config files with) keeps the last. */
static const cJSON *json_get(const cJSON *o, const char *key)
{
    const cJSON *v = NULL;
    for (const cJSON *x = cJSON_IsObject(o) ? o->child : NULL; x; x = x->next)
        if (x->string && strcmp(x->string, key) == 0) v = x;
    return v;
}

/* One config file being read: where keys come from and where errors go. */
typedef struct cfg_reader {
    heed_ctx *ctx;
    const char *name;       /* file name for messages */
    const cJSON *root;      /* the file */
    const cJSON *defaults;  /* the family's defaults (NULL: none) */
    const char *aliases;
} cfg_reader;

/* The family's name for a canonical key (written into buf [cap]). */
static const char *file_key(const cfg_reader *r, const char *key, char *buf, size_t cap)
{
    size_t kl = strlen(key);
    for (const char *p = r->aliases; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
            size_t vl = len - kl - 1;
            if (vl >= cap) vl = cap - 1;
            memcpy(buf, p + kl + 1, vl);
            buf[vl] = '\0';
            return buf;
        }
        p = comma ? comma + 1 : p + len;
    }
    return key;
}

/* The value of a canonical key: the file's (under the family's name), else the family's default.
 * NULL when neither has it. *shown is the name to use in messages. */
static const cJSON *cfg_get(const cfg_reader *r, const char *key, const char **shown, char *buf, size_t cap)
{
    const char *fk = file_key(r, key, buf, cap);
    *shown = fk;
    const cJSON *v = json_get(r->root, fk);
    if (!v && r->defaults) v = json_get(r->defaults, fk);
    return v;
}

/* Reads a number key into *out. Absent with no default: HEED_ERR_FORMAT (required) when required,
 * else *out unchanged. JSON null: *is_null = 1 (when is_null is given; else treated as absent). */
static heed_status cfg_num(const cfg_reader *r, double *out, int *is_null, const char *key, int required,
                           int integer, double lo, double hi)
{
    char buf[64];
    const char *shown;
    const cJSON *v = cfg_get(r, key, &shown, buf, sizeof buf);
    if (is_null) *is_null = 0;
    if (v && cJSON_IsNull(v)) {
        if (is_null) {
            *is_null = 1;
            return HEED_OK;
        }
        v = NULL;
    }
    if (!v) return required ? heed_fail(r->ctx, HEED_ERR_FORMAT, "%s: missing required key \"%s\"", r->name, shown)
                            : HEED_OK;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi) ||
        (integer && v->valuedouble != floor(v->valuedouble)))
        return heed_fail(r->ctx, HEED_ERR_FORMAT, "%s: \"%s\" must be %s in [%g, %g]", r->name, shown,
                         integer ? "an integer" : "a number", lo, hi);
    *out = v->valuedouble;
    return HEED_OK;
}

static heed_status cfg_int(const cfg_reader *r, int64_t *out, int *is_null, const char *key, int required,
                           int64_t lo, int64_t hi)
{
    double d = (double)*out;
    heed_status s = cfg_num(r, &d, is_null, key, required, 1, (double)lo, (double)hi);
    if (s == HEED_OK) *out = (int64_t)d;
    return s;
}

static heed_status cfg_bool(const cfg_reader *r, int *out, const char *key)
{
    char buf[64];
    const char *shown;
    const cJSON *v = cfg_get(r, key, &shown, buf, sizeof buf);
    if (!v || cJSON_IsNull(v)) return HEED_OK;
    if (!cJSON_IsBool(v)) return heed_fail(r->ctx, HEED_ERR_FORMAT, "%s: \"%s\" must be true or false", r->name, shown);
    *out = cJSON_IsTrue(v);
    return HEED_OK;
}

/* A string key: NULL in *out when absent or null. */
static heed_status cfg_str(const cfg_reader *r, const char **out, const char **shown, const char *key, char *buf,
                           size_t cap)
{
    const cJSON *v = cfg_get(r, key, shown, buf, cap);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return HEED_OK;
    if (!cJSON_IsString(v)) return heed_fail(r->ctx, HEED_ERR_FORMAT, "%s: \"%s\" must be a string", r->name, *shown);
    *out = v->valuestring;
    return HEED_OK;
}

static heed_status parse_act(const cfg_reader *r, heed_act *act)
{
    static const struct {
        const char *name;
        heed_act act;
    } acts[] = {{"silu", HEED_ACT_SILU},           {"swish", HEED_ACT_SILU},
                {"gelu", HEED_ACT_GELU},           {"gelu_new", HEED_ACT_GELU_TANH},
                {"gelu_pytorch_tanh", HEED_ACT_GELU_TANH}, {"gelu_fast", HEED_ACT_GELU_TANH},
                {"relu", HEED_ACT_RELU}};
    char buf[64];
    const char *v, *shown;
    heed_status s = cfg_str(r, &v, &shown, "hidden_act", buf, sizeof buf);
    if (s != HEED_OK) return s;
    if (!v) return heed_fail(r->ctx, HEED_ERR_FORMAT, "%s: missing \"%s\"", r->name, shown);
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++)
        if (strcmp(v, acts[i].name) == 0) {
            *act = acts[i].act;
            return HEED_OK;
        }
    return heed_fail(r->ctx, HEED_ERR_UNSUPPORTED, "%s: \"%s\": activation \"%.64s\" is not supported (silu, "
                     "gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu)", r->name, shown, v);
}

/* A number inside a rope parameter object; absent: *out unchanged (error when required). */
static heed_status rope_num(const cfg_reader *r, double *out, const cJSON *p, const char *key, int required,
                            double lo, double hi, const char *type)
{
    const cJSON *v = json_get(p, key);
    if (!v || cJSON_IsNull(v))
        return required ? heed_fail(r->ctx, HEED_ERR_FORMAT, "%s: rope type \"%s\" needs \"%s\"", r->name, type, key)
                        : HEED_OK;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi))
        return heed_fail(r->ctx, HEED_ERR_FORMAT, "%s: rope \"%s\" must be a number in [%g, %g]", r->name, key, lo, hi);
    *out = v->valuedouble;
    return HEED_OK;
}

/* RoPE from rope_parameters (newer files) or rope_theta + rope_scaling (older files). */
static heed_status parse_rope(const cfg_reader *r, heed_rope *rope)
{
    memset(rope, 0, sizeof *rope);
    rope->truncate = 1;
    heed_status s = cfg_num(r, &rope->theta, NULL, "rope_theta", 1, 0, 1.0 + 1e-9, 1e15);
    if (s != HEED_OK) return s;
    const cJSON *p = json_get(r->root, "rope_parameters");
    const char *pname = "rope_parameters";
    if (!p || cJSON_IsNull(p)) {
        p = json_get(r->root, "rope_scaling");
        pname = "rope_scaling";
    }
    if (!p || cJSON_IsNull(p)) return HEED_OK;
    if (!cJSON_IsObject(p)) return heed_fail(r->ctx, HEED_ERR_FORMAT, "%s: \"%s\" must be an object", r->name, pname);
    if (cJSON_IsObject(json_get(p, "full_attention")) ||
        cJSON_IsObject(json_get(p, "sliding_attention")))
        return heed_fail(r->ctx, HEED_ERR_UNSUPPORTED, "%s: per-layer-type \"%s\" is not supported", r->name, pname);
    s = rope_num(r, &rope->theta, p, "rope_theta", 0, 1.0 + 1e-9, 1e15, "");
    if (s != HEED_OK) return s;
    const cJSON *t = json_get(p, "rope_type");
    if (!t || cJSON_IsNull(t)) t = json_get(p, "type");
    const char *type = "default";
    if (t && !cJSON_IsNull(t)) {
        if (!cJSON_IsString(t))
            return heed_fail(r->ctx, HEED_ERR_FORMAT, "%s: \"%s\".rope_type must be a string", r->name, pname);
        type = t->valuestring;
    }
    static const char *types[] = {"default", "linear", "dynamic", "yarn", "llama3"};
    int k = 0;
    while (k < 5 && strcmp(type, types[k]) != 0) k++;
    if (k == 5)
        return heed_fail(r->ctx, HEED_ERR_UNSUPPORTED, "%s: rope type \"%.64s\" is not supported (default, linear, "
                         "dynamic, yarn, llama3)", r->name, type);
    rope->type = (heed_rope_type)k;
    if (rope->type == HEED_ROPE_DEFAULT) return HEED_OK;
    s = rope_num(r, &rope->factor, p, "factor", 1, 1e-6, 1e9, type);
    if (s == HEED_OK && rope->type == HEED_ROPE_LLAMA3) {
        double omp = 0;
        s = rope_num(r, &rope->low_freq_factor, p, "low_freq_factor", 1, 1e-9, 1e9, type);
        if (s == HEED_OK) s = rope_num(r, &rope->high_freq_factor, p, "high_freq_factor", 1, 1e-9, 1e9, type);
        if (s == HEED_OK) s = rope_num(r, &omp, p, "original_max_position_embeddings", 1, 1, 1e12, type);
        if (s == HEED_OK && rope->high_freq_factor == rope->low_freq_factor)
            s = heed_fail(r->ctx, HEED_ERR_FORMAT, "%s: rope high_freq_factor must differ from low_freq_factor", r->name);
        rope->original_max_pos = (int64_t)omp;
    } else if (s == HEED_OK && rope->type == HEED_ROPE_YARN) {
        double omp = 0;
        s = rope_num(r, &rope->attention_factor, p, "attention_factor", 0, 0, 1e9, type);
        if (s == HEED_OK) s = rope_num(r, &rope->beta_fast, p, "beta_fast", 0, 0, 1e9, type);
        if (s == HEED_OK) s = rope_num(r, &rope->beta_slow, p, "beta_slow", 0, 0, 1e9, type);
        if (s == HEED_OK) s = rope_num(r, &rope->mscale, p, "mscale", 0, -1e9, 1e9, type);
        if (s == HEED_OK) s = rope_num(r, &rope->mscale_all_dim, p, "mscale_all_dim", 0, -1e9, 1e9, type);
        if (s == HEED_OK) s = rope_num(r, &omp, p, "original_max_position_embeddings", 0, 1, 1e12, type);
        rope->original_max_pos = (int64_t)omp;
        const cJSON *tr = json_get(p, "truncate");
        if (s == HEED_OK && tr && !cJSON_IsNull(tr)) {
            if (!cJSON_IsBool(tr)) s = heed_fail(r->ctx, HEED_ERR_FORMAT, "%s: rope \"truncate\" must be a bool", r->name);
            rope->truncate = cJSON_IsTrue(tr);
        }
    }
    return s;
}

/* Which layers slide: layer_types when the file lists them, else the family's rule. */
static heed_status parse_window(const cfg_reader *r, const arch_desc *a, heed_config *c)
{
    memset(c->layer_window, 0, sizeof c->layer_window);
    c->sliding_window = 0;
    if (a->window == WIN_NONE) return HEED_OK;
    int is_null = 0, use = 1;
    int64_t w = 0, from = 0;
    heed_status s = cfg_int(r, &w, &is_null, "sliding_window", 0, 1, INT64_C(1) << 40);
    if (s == HEED_OK && a->window == WIN_FROM_LAYER) {
        s = cfg_bool(r, &use, "use_sliding_window");
        if (s == HEED_OK) s = cfg_int(r, &from, NULL, "max_window_layers", 0, 0, INT64_C(1) << 40);
    }
    if (s != HEED_OK) return s;
    if (is_null || w == 0 || !use) return HEED_OK;
    c->sliding_window = w;
    const cJSON *lt = json_get(r->root, "layer_types");
    if (lt && !cJSON_IsNull(lt)) {
        if (!cJSON_IsArray(lt) || cJSON_GetArraySize(lt) != c->n_layers)
            return heed_fail(r->ctx, HEED_ERR_FORMAT, "%s: \"layer_types\" must be a list of %lld strings", r->name,
                             (long long)c->n_layers);
        int64_t i = 0;
        for (const cJSON *x = lt->child; x; x = x->next, i++) {
            if (cJSON_IsString(x) && strcmp(x->valuestring, "sliding_attention") == 0) c->layer_window[i] = 1;
            else if (!cJSON_IsString(x) || strcmp(x->valuestring, "full_attention") != 0)
                return heed_fail(r->ctx, HEED_ERR_UNSUPPORTED, "%s: layer_types[%lld]: expected \"full_attention\" or "
                                 "\"sliding_attention\"", r->name, (long long)i);
        }
        return HEED_OK;
    }
    for (int64_t i = 0; i < c->n_layers; i++)
        c->layer_window[i] = a->window == WIN_ALL || (a->window == WIN_FROM_LAYER && i >= from) ||
                             (a->window == WIN_EVEN && i % 2 == 0);
    return HEED_OK;
}

/* Bias flags: fixed by the family, or read from its key. */
/* One of names[0 .. n) as a string key (absent: *out unchanged). */
static heed_status cfg_enum(const cfg_reader *r, int *out, const char *key, const char *const *names, int n)
{
    char buf[64];
    const char *v, *shown;
    heed_status s = cfg_str(r, &v, &shown, key, buf, sizeof buf);
    if (s != HEED_OK || !v) return s;
    for (int i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0) {
            *out = i;
            return HEED_OK;
        }
    return heed_fail(r->ctx, HEED_ERR_FORMAT, "%s: \"%s\" = \"%.64s\" is not a known value", r->name, shown, v);
}

/* The heed_* keys of a checkpoint written by heed's trainer. */
static heed_status parse_variant(const cfg_reader *r, heed_variant *v)
{
    static const char *const mixers[] = {"attention", "linear", "gconv"}, *const norms[] = {"softmax", "sigmoid"};
    int64_t s2[3] = {0, 0, 0};
    heed_status s = cfg_enum(r, &v->mixer, "heed_mixer", mixers, 3);
    if (s == HEED_OK) s = cfg_enum(r, &v->sigmoid, "heed_attn_norm", norms, 2);
    if (s == HEED_OK) s = cfg_bool(r, &v->sink_logit, "heed_sink_logit");
    if (s == HEED_OK) s = cfg_bool(r, &v->selective, "heed_selective");
    if (s == HEED_OK) s = cfg_int(r, &s2[0], NULL, "heed_s2_block", 0, 0, 1 << 20);
    if (s == HEED_OK) s = cfg_int(r, &s2[1], NULL, "heed_s2_local_blocks", 0, 0, 1 << 20);
    if (s == HEED_OK) s = cfg_int(r, &s2[2], NULL, "heed_s2_vert_stride", 0, 0, 1 << 20);
    if (s == HEED_OK) s = cfg_int(r, &v->moh_shared, NULL, "heed_moh_shared", 0, 0, 1 << 16);
    if (s == HEED_OK) s = cfg_int(r, &v->moh_top_k, NULL, "heed_moh_top_k", 0, 0, 1 << 16);
    if (s == HEED_OK) s = cfg_num(r, &v->moh_balance, NULL, "heed_moh_balance", 0, 0, 0, 1e6);
    if (s == HEED_OK) s = cfg_int(r, &v->conv_kernel, NULL, "heed_conv_kernel", 0, 0, 1 << 24);
    v->s2_block = (int32_t)s2[0];
    v->s2_local_blocks = (int32_t)s2[1];
    v->s2_vert_stride = (int32_t)s2[2];
    return s;
}

static heed_status parse_bias(const cfg_reader *r, int *out, int fixed, const char *key)
{
    *out = fixed > 0;
    return fixed < 0 ? cfg_bool(r, out, key) : HEED_OK;
}

static heed_status parse_config(const cfg_reader *r, const arch_desc *a, heed_config *c)
{
    c->arch = a->arch;
    c->norm = a->norm;
    c->pos = a->pos;
    c->mlp = a->mlp;
    c->norm_add_one = a->norm_add_one;
    c->post_norms = a->post_norms;
    c->post_ln = a->post_ln;
    c->qk_norm = a->qk_norm;
    c->causal = a->causal;
    c->embed_scale = a->embed_scale;
    c->fused_qkv = a->fused_qkv;
    c->norm_bias = a->norm_bias;
    heed_status s = HEED_OK;
    int bias = 0, null_kv = 0, null_hd = 0, null_inter = 0;
    if (s == HEED_OK) s = cfg_int(r, &c->hidden, NULL, "hidden_size", 1, 1, 1 << 20);
    if (s == HEED_OK) s = cfg_int(r, &c->n_layers, NULL, "num_hidden_layers", 1, 1, HEED_CONFIG_MAX_LAYERS);
    if (s == HEED_OK) s = cfg_int(r, &c->n_heads, NULL, "num_attention_heads", 1, 1, 1 << 16);
    if (s == HEED_OK) s = cfg_int(r, &c->n_kv_heads, &null_kv, "num_key_value_heads", 0, 1, c->n_heads);
    if (s == HEED_OK) s = cfg_int(r, &c->head_dim, &null_hd, "head_dim", 0, 1, 1 << 16);
    if (s == HEED_OK) s = cfg_int(r, &c->intermediate, &null_inter, "intermediate_size", 1, 1, 1 << 24);
    if (s == HEED_OK) s = cfg_int(r, &c->vocab, NULL, "vocab_size", 1, 1, 1 << 28);
    if (s == HEED_OK) s = cfg_int(r, &c->max_pos, NULL, "max_position_embeddings", 1, 1, INT64_C(1) << 40);
    if (s == HEED_OK) s = cfg_num(r, &c->norm_eps, NULL, "rms_norm_eps", 1, 0, 1e-300, 1.0);
    if (s == HEED_OK) s = cfg_bool(r, &c->tie_embeddings, "tie_word_embeddings");
    if (s == HEED_OK) s = parse_act(r, &c->act);
    if (s != HEED_OK) return s;
    if (null_kv || c->n_kv_heads == 0) c->n_kv_heads = c->n_heads;
    if (null_hd || c->head_dim == 0) {
        if (c->hidden % c->n_heads != 0)
            return heed_fail(r->ctx, HEED_ERR_FORMAT, "%s: hidden size %lld is not a multiple of %lld heads and no "
                             "head_dim is given", r->name, (long long)c->hidden, (long long)c->n_heads);
        c->head_dim = c->hidden / c->n_heads;
    }
    if (c->n_heads % c->n_kv_heads != 0)
        return heed_fail(r->ctx, HEED_ERR_FORMAT, "%s: %lld attention heads are not a multiple of %lld key/value heads",
                         r->name, (long long)c->n_heads, (long long)c->n_kv_heads);
    if (null_inter) c->intermediate = 4 * c->hidden; /* gpt2: n_inner null */
    if (s == HEED_OK) s = parse_bias(r, &bias, a->qkv_bias, "attention_bias");
    c->qkv_bias = bias;
    if (s == HEED_OK) s = parse_bias(r, &bias, a->o_bias, "attention_bias");
    c->o_bias = bias;
    if (s == HEED_OK) s = parse_bias(r, &bias, a->mlp_bias, "mlp_bias");
    c->mlp_bias = bias;
    if (s == HEED_OK && c->pos == HEED_POS_ROPE) {
        s = parse_rope(r, &c->rope);
        if (s == HEED_OK && (c->head_dim < 2 || c->head_dim % 2))
            s = heed_fail(r->ctx, HEED_ERR_FORMAT, "%s: head_dim %lld must be even for rotary embeddings", r->name,
                          (long long)c->head_dim);
    }
    if (s == HEED_OK) s = parse_window(r, a, c);
    if (s == HEED_OK && (a->arch == HEED_ARCH_LLAMA || a->arch == HEED_ARCH_MISTRAL)) s = parse_variant(r, &c->variant);
    if (s != HEED_OK) return s;

    c->attn_scale = 1.0 / sqrt((double)c->head_dim);
    if (a->arch == HEED_ARCH_GEMMA2) {
        double qs = 0;
        int n1 = 0, n2 = 0;
        s = cfg_num(r, &qs, NULL, "query_pre_attn_scalar", 1, 0, 1e-9, 1e12);
        if (s == HEED_OK) s = cfg_num(r, &c->attn_softcap, &n1, "attn_logit_softcapping", 0, 0, 0, 1e12);
        if (s == HEED_OK) s = cfg_num(r, &c->final_softcap, &n2, "final_logit_softcapping", 0, 0, 0, 1e12);
        if (s != HEED_OK) return s;
        c->attn_scale = 1.0 / sqrt(qs);
        if (n1) c->attn_softcap = 0;
        if (n2) c->final_softcap = 0;
    } else if (a->arch == HEED_ARCH_GPT2) {
        int scale = 1;
        s = cfg_bool(r, &scale, "scale_attn_weights");
        if (s == HEED_OK) s = cfg_bool(r, &c->scale_by_inverse_layer, "scale_attn_by_inverse_layer_idx");
        if (!scale) c->attn_scale = 1.0;
    } else if (a->arch == HEED_ARCH_BERT) {
        char buf[64];
        const char *pe, *shown;
        s = cfg_int(r, &c->type_vocab, NULL, "type_vocab_size", 1, 0, 1 << 20);
        if (s == HEED_OK) s = cfg_str(r, &pe, &shown, "position_embedding_type", buf, sizeof buf);
        if (s == HEED_OK && pe && strcmp(pe, "absolute") != 0)
            s = heed_fail(r->ctx, HEED_ERR_UNSUPPORTED, "%s: position_embedding_type \"%.64s\" is not supported "
                          "(absolute)", r->name, pe);
    }
    return s;
}

heed_status heed_config_parse(heed_ctx *ctx, heed_config *cfg, const char *json, size_t len, const char *name)
{
    if (!cfg || (!json && len)) return heed_fail(ctx, HEED_ERR_INVALID, "heed_config_parse: NULL argument");
    if (!name) name = "config.json";
    memset(cfg, 0, sizeof *cfg);
    cJSON *root = cJSON_ParseWithLength(json ? json : "", len);
    if (!root) return heed_fail(ctx, HEED_ERR_FORMAT, "%s: not valid JSON", name);
    heed_status s = HEED_OK;
    const cJSON *mt = json_get(root, "model_type");
    if (!cJSON_IsObject(root)) s = heed_fail(ctx, HEED_ERR_FORMAT, "%s: expected a JSON object", name);
    else if (!cJSON_IsString(mt)) s = heed_fail(ctx, HEED_ERR_FORMAT, "%s: missing \"model_type\" string", name);
    const arch_desc *a = NULL;
    for (int i = 0; s == HEED_OK && i < N_ARCHS && !a; i++)
        if (strcmp(mt->valuestring, ARCHS[i].model_type) == 0) a = &ARCHS[i];
    if (s == HEED_OK && !a)
        s = heed_fail(ctx, HEED_ERR_UNSUPPORTED, "%s: model_type \"%.64s\" is not supported (llama, mistral, qwen2, "
                      "qwen3, gemma2, gpt2, bert)", name, mt->valuestring);
    cJSON *defaults = NULL;
    if (s == HEED_OK) {
        defaults = cJSON_Parse(a->defaults);
        if (!defaults) s = heed_fail(ctx, HEED_ERR_INTERNAL, "architecture table: defaults of %s are not JSON", a->model_type);
    }
    if (s == HEED_OK) {
        snprintf(cfg->model_type, sizeof cfg->model_type, "%s", a->model_type);
        cfg_reader r = {ctx, name, root, defaults, a->aliases};
        s = parse_config(&r, a, cfg);
    }
    cJSON_Delete(defaults);
    cJSON_Delete(root);
    if (s != HEED_OK) memset(cfg, 0, sizeof *cfg);
    return s;
}

/* ----------------------------------------------------------------------------------- generation */

void heed_gen_config_init(heed_gen_config *gen)
{
    memset(gen, 0, sizeof *gen);
    gen->bos_id = gen->pad_id = -1;
    gen->temperature = 1.0;
    gen->top_p = 1.0;
    gen->top_k = 50;
    gen->add_bos = gen->add_eos = -1;
}

/* A token string: "text" or an AddedToken object {"content": "text", ...}. */
static heed_status gen_token(const cfg_reader *r, char *out, size_t cap, const char *key)
{
    const cJSON *v = json_get(r->root, key);
    if (!v || cJSON_IsNull(v)) return HEED_OK;
    if (cJSON_IsObject(v)) v = json_get(v, "content");
    if (!cJSON_IsString(v))
        return heed_fail(r->ctx, HEED_ERR_FORMAT, "%s: \"%s\" must be a string or an object with a \"content\" string",
                         r->name, key);
    if (strlen(v->valuestring) >= cap)
        return heed_fail(r->ctx, HEED_ERR_FORMAT, "%s: \"%s\" is longer than %zu bytes", r->name, key, cap - 1);
    strcpy(out, v->valuestring);
    return HEED_OK;
}

heed_status heed_gen_config_parse(heed_ctx *ctx, heed_gen_config *gen, const char *json, size_t len, const char *name)
{
    if (!gen || (!json && len)) return heed_fail(ctx, HEED_ERR_INVALID, "heed_gen_config_parse: NULL argument");
    if (!name) name = "generation_config.json";
    cJSON *root = cJSON_ParseWithLength(json ? json : "", len);
    if (!root) return heed_fail(ctx, HEED_ERR_FORMAT, "%s: not valid JSON", name);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return heed_fail(ctx, HEED_ERR_FORMAT, "%s: expected a JSON object", name);
    }
    /* Work on a copy so a failure leaves gen untouched. */
    heed_gen_config g = *gen;
    cfg_reader r = {ctx, name, root, NULL, NULL};
    const int64_t max_id = INT32_MAX;
    heed_status s = cfg_int(&r, &g.bos_id, NULL, "bos_token_id", 0, 0, max_id);
    if (s == HEED_OK) s = cfg_int(&r, &g.pad_id, NULL, "pad_token_id", 0, 0, max_id);
    if (s == HEED_OK) s = cfg_bool(&r, &g.do_sample, "do_sample");
    if (s == HEED_OK) s = cfg_num(&r, &g.temperature, NULL, "temperature", 0, 0, 0, 1e9);
    if (s == HEED_OK) s = cfg_num(&r, &g.top_p, NULL, "top_p", 0, 0, 0, 1);
    if (s == HEED_OK) s = cfg_int(&r, &g.top_k, NULL, "top_k", 0, 0, max_id);
    int b = g.add_bos;
    if (s == HEED_OK) s = cfg_bool(&r, &b, "add_bos_token");
    g.add_bos = b;
    b = g.add_eos;
    if (s == HEED_OK) s = cfg_bool(&r, &b, "add_eos_token");
    g.add_eos = b;
    if (s == HEED_OK) s = gen_token(&r, g.bos_token, sizeof g.bos_token, "bos_token");
    if (s == HEED_OK) s = gen_token(&r, g.eos_token, sizeof g.eos_token, "eos_token");
    const cJSON *eos = json_get(root, "eos_token_id");
    if (s == HEED_OK && eos && !cJSON_IsNull(eos)) {
        int n = cJSON_IsArray(eos) ? cJSON_GetArraySize(eos) : 1;
        const cJSON *x = cJSON_IsArray(eos) ? eos->child : eos;
        if (n > HEED_MAX_EOS)
            s = heed_fail(ctx, HEED_ERR_FORMAT, "%s: %d eos_token_id values, at most %d are kept", name, n, HEED_MAX_EOS);
        for (int i = 0; s == HEED_OK && i < n; i++, x = x->next) {
            if (!cJSON_IsNumber(x) || !(x->valuedouble >= 0 && x->valuedouble <= (double)max_id) ||
                x->valuedouble != floor(x->valuedouble))
                s = heed_fail(ctx, HEED_ERR_FORMAT, "%s: \"eos_token_id\" must be a token id or a list of them", name);
            else g.eos_ids[i] = (int64_t)x->valuedouble;
        }
        if (s == HEED_OK) g.n_eos = n;
    }
    cJSON_Delete(root);
    if (s == HEED_OK) *gen = g;
    return s;
}

/* Reads dir/file and hands it to parse; a missing optional file is not an error. */
static heed_status load_json(heed_ctx *ctx, const char *dir, const char *file, int required, void *out,
                             heed_status (*parse)(heed_ctx *, void *, const char *, size_t, const char *))
{
    char *path = heed_path_join(dir, file);
    if (!path) return heed_fail(ctx, HEED_ERR_NOMEM, "%s: out of memory", dir);
    heed_status s = HEED_OK;
    if (required || heed_is_file(path)) {
        char *text = NULL;
        size_t len = 0;
        s = heed_read_file(ctx, &text, &len, path, 64u << 20);
        if (s == HEED_OK) s = parse(ctx, out, text, len, path);
        free(text);
    }
    free(path);
    return s;
}

static heed_status parse_cfg_cb(heed_ctx *ctx, void *out, const char *json, size_t len, const char *name)
{
    return heed_config_parse(ctx, out, json, len, name);
}

static heed_status parse_gen_cb(heed_ctx *ctx, void *out, const char *json, size_t len, const char *name)
{
    return heed_gen_config_parse(ctx, out, json, len, name);
}

heed_status heed_config_load(heed_ctx *ctx, heed_config *cfg, heed_gen_config *gen, const char *dir)
{
    if (!cfg || !dir) return heed_fail(ctx, HEED_ERR_INVALID, "heed_config_load: NULL argument");
    heed_status s = load_json(ctx, dir, "config.json", 1, cfg, parse_cfg_cb);
    if (s != HEED_OK || !gen) return s;
    heed_gen_config_init(gen);
    /* config.json carries bos/eos ids too; generation_config.json, then tokenizer_config.json refine them. */
    static const char *files[] = {"config.json", "generation_config.json", "tokenizer_config.json"};
    for (int i = 0; i < 3 && s == HEED_OK; i++) s = load_json(ctx, dir, files[i], 0, gen, parse_gen_cb);
    return s;
}
