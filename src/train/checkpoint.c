/* checkpoint.c — the trainer's checkpoints in the Hugging Face layout: config.json (llama, mistral for
 * a sliding window, heed_* keys for other variants), model.safetensors, generation_config.json, and
 * train_state.safetensors (AdamW moments and the step) so that training resumes exactly. */
#include "io/io.h"
#include "train/trainer.h"

#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#define STATE_FILE "train_state.safetensors"

static heed_status write_json(heed_ctx *ctx, const char *dir, const char *file, cJSON *root)
{
    char *text = root ? cJSON_Print(root) : NULL;
    char *path = heed_path_join(dir, file);
    heed_status s = text && path ? heed_write_file(ctx, path, text, strlen(text))
                                 : heed_fail(ctx, HEED_ERR_NOMEM, "%s/%s: out of memory", dir, file);
    free(text);
    free(path);
    cJSON_Delete(root);
    return s;
}

static cJSON *config_json(const heed_train_config *c)
{
    cJSON *o = cJSON_CreateObject(), *arch = cJSON_CreateArray();
    int mistral = c->window > 0;
    cJSON_AddItemToArray(arch, cJSON_CreateString(mistral ? "MistralForCausalLM" : "LlamaForCausalLM"));
    cJSON_AddItemToObject(o, "architectures", arch);
    cJSON_AddStringToObject(o, "model_type", mistral ? "mistral" : "llama");
    cJSON_AddNumberToObject(o, "vocab_size", (double)c->vocab);
    cJSON_AddNumberToObject(o, "hidden_size", (double)c->hidden);
    cJSON_AddNumberToObject(o, "intermediate_size", (double)c->intermediate);
    cJSON_AddNumberToObject(o, "num_hidden_layers", (double)c->n_layers);
    cJSON_AddNumberToObject(o, "num_attention_heads", (double)c->n_heads);
    cJSON_AddNumberToObject(o, "num_key_value_heads", (double)c->n_kv_heads);
    cJSON_AddNumberToObject(o, "head_dim", (double)c->head_dim);
    cJSON_AddNumberToObject(o, "max_position_embeddings", (double)c->max_seq);
    cJSON_AddNumberToObject(o, "rms_norm_eps", c->norm_eps);
    cJSON_AddNumberToObject(o, "rope_theta", c->rope_theta);
    cJSON_AddBoolToObject(o, "tie_word_embeddings", c->tie_embeddings);
    cJSON_AddStringToObject(o, "hidden_act", "silu");
    cJSON_AddBoolToObject(o, "attention_bias", 0);
    cJSON_AddBoolToObject(o, "mlp_bias", 0);
    cJSON_AddNumberToObject(o, "initializer_range", 0.02);
    if (mistral) cJSON_AddNumberToObject(o, "sliding_window", (double)c->window);
    if (c->bos_id >= 0) cJSON_AddNumberToObject(o, "bos_token_id", (double)c->bos_id);
    if (c->eos_id >= 0) cJSON_AddNumberToObject(o, "eos_token_id", (double)c->eos_id);
    cJSON_AddStringToObject(o, "torch_dtype", "float32");
    static const char *const mixers[] = {"attention", "linear", "gconv"};
    if (c->mixer != HEED_MIXER_ATTENTION) cJSON_AddStringToObject(o, "heed_mixer", mixers[c->mixer]);
    if (c->mixer == HEED_MIXER_GCONV) cJSON_AddNumberToObject(o, "heed_conv_kernel", (double)c->conv_kernel);
    if (c->norm == HEED_NORM_SIGMOID) cJSON_AddStringToObject(o, "heed_attn_norm", "sigmoid");
    if (c->sink_logit) cJSON_AddBoolToObject(o, "heed_sink_logit", 1);
    if (c->selective) cJSON_AddBoolToObject(o, "heed_selective", 1);
    if (c->s2_block) {
        cJSON_AddNumberToObject(o, "heed_s2_block", c->s2_block);
        cJSON_AddNumberToObject(o, "heed_s2_local_blocks", c->s2_local_blocks);
        cJSON_AddNumberToObject(o, "heed_s2_vert_stride", c->s2_vert_stride);
    }
    if (c->moh_top_k) {
        cJSON_AddNumberToObject(o, "heed_moh_shared", (double)c->moh_shared);
        cJSON_AddNumberToObject(o, "heed_moh_top_k", (double)c->moh_top_k);
        cJSON_AddNumberToObject(o, "heed_moh_balance", c->moh_balance);
    }
    return o;
}

heed_status heed_trainer_save(heed_ctx *ctx, const heed_trainer *tr, const char *dir, int bf16)
{
    if (!tr || !dir) return heed_fail(ctx, HEED_ERR_INVALID, "heed_trainer_save: NULL argument");
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return heed_fail(ctx, HEED_ERR_IO, "%s: cannot create the directory: %s", dir, strerror(errno));
    if (!heed_is_dir(dir)) return heed_fail(ctx, HEED_ERR_IO, "%s: exists and is not a directory", dir);
    int64_t n = tr->n_params;
    heed_st_entry *e = calloc((size_t)(2 * n + 1), sizeof *e);
    char (*names)[TRAIN_NAME_MAX + 2] = calloc((size_t)(2 * n), sizeof *names);
    uint16_t *half = bf16 ? heed_alloc(sizeof(uint16_t) * (size_t)tr->n_floats) : NULL;
    char *model = heed_path_join(dir, "model.safetensors"), *state = heed_path_join(dir, STATE_FILE);
    heed_status s = HEED_OK;
    if (!e || !names || (bf16 && !half) || !model || !state) s = heed_fail(ctx, HEED_ERR_NOMEM, "%s: out of memory", dir);
    for (int64_t i = 0; s == HEED_OK && i < n; i++) {
        const train_param *p = &tr->params[i];
        const void *data = tr->data + p->off;
        if (bf16) {
            heed_convert(half + p->off, HEED_BF16, data, HEED_F32, (size_t)p->n);
            data = half + p->off;
        }
        e[i] = (heed_st_entry){p->name, bf16 ? HEED_BF16 : HEED_F32, p->n_dims, {p->shape[0], p->shape[1]}, data};
    }
    if (s == HEED_OK) s = heed_st_write(ctx, model, e, n);
    if (s == HEED_OK && !bf16) { /* optimizer state: m.<name>, v.<name>, and the step count */
        double step = (double)tr->step;
        for (int64_t i = 0; i < n; i++) {
            const train_param *p = &tr->params[i];
            snprintf(names[2 * i], sizeof names[0], "m.%s", p->name);
            snprintf(names[2 * i + 1], sizeof names[0], "v.%s", p->name);
            e[2 * i] = (heed_st_entry){names[2 * i], HEED_F32, p->n_dims, {p->shape[0], p->shape[1]}, tr->m + p->off};
            e[2 * i + 1] = (heed_st_entry){names[2 * i + 1], HEED_F32, p->n_dims, {p->shape[0], p->shape[1]},
                                           tr->v + p->off};
        }
        e[2 * n] = (heed_st_entry){"step", HEED_F64, 1, {1}, &step};
        s = heed_st_write(ctx, state, e, 2 * n + 1);
    }
    if (s == HEED_OK) s = write_json(ctx, dir, "config.json", config_json(&tr->cfg));
    if (s == HEED_OK) {
        cJSON *g = cJSON_CreateObject();
        if (tr->cfg.bos_id >= 0) cJSON_AddNumberToObject(g, "bos_token_id", (double)tr->cfg.bos_id);
        if (tr->cfg.eos_id >= 0) cJSON_AddNumberToObject(g, "eos_token_id", (double)tr->cfg.eos_id);
        s = write_json(ctx, dir, "generation_config.json", g);
    }
    free(e);
    free(names);
    heed_free(half);
    free(model);
    free(state);
    return s;
}

/* The training configuration of a checkpoint's config.json. */
static heed_status train_config_from(heed_ctx *ctx, heed_train_config *t, const heed_config *c, const heed_gen_config *g,
                                     const char *dir)
{
    if (c->arch != HEED_ARCH_LLAMA && c->arch != HEED_ARCH_MISTRAL)
        return heed_fail(ctx, HEED_ERR_UNSUPPORTED, "%s: model_type %s: the trainer trains llama and mistral models",
                         dir, c->model_type);
    if (c->qkv_bias || c->o_bias || c->mlp_bias || c->act != HEED_ACT_SILU || c->rope.type != HEED_ROPE_DEFAULT)
        return heed_fail(ctx, HEED_ERR_UNSUPPORTED, "%s: the trainer supports no biases, silu and the default RoPE", dir);
    heed_train_config_init(t);
    const heed_variant *v = &c->variant;
    t->vocab = c->vocab;
    t->hidden = c->hidden;
    t->n_layers = c->n_layers;
    t->n_heads = c->n_heads;
    t->n_kv_heads = c->n_kv_heads;
    t->head_dim = c->head_dim;
    t->intermediate = c->intermediate;
    t->max_seq = c->max_pos;
    t->rope_theta = c->rope.theta;
    t->norm_eps = c->norm_eps;
    t->tie_embeddings = c->tie_embeddings;
    t->bos_id = g->bos_id;
    t->eos_id = g->n_eos > 0 ? g->eos_ids[0] : -1;
    t->window = c->sliding_window;
    t->mixer = (heed_mixer)v->mixer;
    t->norm = v->sigmoid ? HEED_NORM_SIGMOID : HEED_NORM_SOFTMAX;
    t->sink_logit = v->sink_logit;
    t->selective = v->selective;
    t->s2_block = v->s2_block;
    t->s2_local_blocks = v->s2_local_blocks;
    t->s2_vert_stride = v->s2_vert_stride;
    t->moh_shared = v->moh_shared;
    t->moh_top_k = v->moh_top_k;
    t->moh_balance = (float)v->moh_balance;
    t->conv_kernel = v->conv_kernel;
    return HEED_OK;
}

/* Copies the tensor called name (any float dtype, exactly n elements) into dst [n] f32. */
static heed_status read_tensor(heed_ctx *ctx, float *dst, const heed_st *st, const char *name, const train_param *p,
                               const char *file)
{
    const heed_st_tensor *t = heed_st_find(st, name);
    if (!t) return heed_fail(ctx, HEED_ERR_FORMAT, "%s: missing tensor %s", file, name);
    int64_t want[2] = {p->shape[0], p->shape[1]};
    heed_status s = heed_st_get(ctx, &t, st, name, p->n_dims, want);
    if (s == HEED_OK) heed_convert(dst, HEED_F32, t->data, (heed_dtype)t->dtype, (size_t)p->n);
    return s;
}

heed_status heed_trainer_load(heed_ctx *ctx, heed_trainer **out, const char *dir)
{
    if (!out || !dir) return heed_fail(ctx, HEED_ERR_INVALID, "heed_trainer_load: NULL argument");
    *out = NULL;
    heed_config c;
    heed_gen_config g;
    heed_train_config tc;
    heed_status s = heed_config_load(ctx, &c, &g, dir);
    if (s == HEED_OK) s = train_config_from(ctx, &tc, &c, &g, dir);
    if (s != HEED_OK) return s;
    heed_trainer *tr = calloc(1, sizeof *tr);
    if (!tr) return heed_fail(ctx, HEED_ERR_NOMEM, "trainer: out of memory");
    s = train_alloc(ctx, tr, &tc);
    heed_st *st = NULL;
    if (s == HEED_OK) s = heed_st_open(ctx, &st, dir);
    for (int64_t i = 0; s == HEED_OK && i < tr->n_params; i++)
        s = read_tensor(ctx, tr->data + tr->params[i].off, st, tr->params[i].name, &tr->params[i], dir);
    heed_st_close(st);
    st = NULL;
    char *state = s == HEED_OK ? heed_path_join(dir, STATE_FILE) : NULL;
    if (state && heed_is_file(state)) {
        s = heed_st_open(ctx, &st, state);
        char name[TRAIN_NAME_MAX + 2];
        for (int64_t i = 0; s == HEED_OK && i < tr->n_params; i++) {
            const train_param *p = &tr->params[i];
            snprintf(name, sizeof name, "m.%s", p->name);
            s = read_tensor(ctx, tr->m + p->off, st, name, p, state);
            snprintf(name, sizeof name, "v.%s", p->name);
            if (s == HEED_OK) s = read_tensor(ctx, tr->v + p->off, st, name, p, state);
        }
        const heed_st_tensor *t = s == HEED_OK ? heed_st_find(st, "step") : NULL;
        if (s == HEED_OK && (!t || t->dtype != HEED_ST_F64 || t->n_elems != 1))
            s = heed_fail(ctx, HEED_ERR_FORMAT, "%s: missing or malformed tensor step (f64 [1])", state);
        if (s == HEED_OK) {
            double step;
            memcpy(&step, t->data, sizeof step);
            if (!(step >= 0 && step < 1e15)) s = heed_fail(ctx, HEED_ERR_FORMAT, "%s: step %g out of range", state, step);
            else tr->step = (int64_t)step;
        }
        heed_st_close(st);
    }
    free(state);
    if (s != HEED_OK) {
        heed_trainer_free(tr);
        return s;
    }
    *out = tr;
    return HEED_OK;
}
