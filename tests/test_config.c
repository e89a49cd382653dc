/* test_config.c — config.json, generation_config.json and tokenizer_config.json parsing for every
 * family (fixtures: real configs under tests/data/config/), errors that name the key, and RoPE
 * inverse frequencies checked twice: against transformers' own values (rope_golden.json, made by
 * tests/data/config/rope_golden.py) and against independent double-precision formulas. */
#include "goldens.h"
#include "harness.h"
#include "io/io.h"

#include <cJSON.h>
#include <string.h>

/* Loads tests/data/config/<name>. */
static heed_status load(heed_ctx *ctx, heed_config *c, heed_gen_config *g, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/config/%s", data_dir(), name);
    return heed_config_load(ctx, c, g, path);
}

static heed_status parse(heed_ctx *ctx, heed_config *c, const char *json)
{
    return heed_config_parse(ctx, c, json, strlen(json), "test.json");
}

/* Expects status want and a message containing needle. */
#define CHECK_ERR(ctx, call, want, needle)                                                             \
    do {                                                                                               \
        heed_status s_ = (call);                                                                       \
        CHECK(s_ == (want) && strstr(heed_ctx_error(ctx), (needle)), "%s -> %s \"%s\", expected %s with \"%s\"", \
              #call, heed_status_name(s_), heed_ctx_error(ctx), heed_status_name(want), (needle));      \
    } while (0)

static void test_families(heed_ctx *ctx)
{
    heed_config c;
    heed_gen_config g;

    CHECK_OK(ctx, load(ctx, &c, &g, "llama3.2-1b"));
    CHECK(c.arch == HEED_ARCH_LLAMA && c.norm == HEED_LN_RMS && c.pos == HEED_POS_ROPE && c.mlp == HEED_MLP_GATED, "llama kinds");
    CHECK(c.hidden == 2048 && c.n_layers == 16 && c.n_heads == 32 && c.n_kv_heads == 8 && c.head_dim == 64, "llama sizes");
    CHECK(c.intermediate == 8192 && c.vocab == 128256 && c.max_pos == 131072 && c.norm_eps == 1e-5, "llama sizes 2");
    CHECK(c.act == HEED_ACT_SILU && c.tie_embeddings == 1 && !c.qkv_bias && !c.o_bias && !c.mlp_bias, "llama flags");
    CHECK(c.rope.type == HEED_ROPE_LLAMA3 && c.rope.theta == 500000 && c.rope.factor == 32 &&
          c.rope.low_freq_factor == 1 && c.rope.high_freq_factor == 4 && c.rope.original_max_pos == 8192, "llama rope");
    CHECK(c.sliding_window == 0 && c.causal == 1 && fabs(c.attn_scale - 0.125) < 1e-15, "llama attention");
    CHECK(g.bos_id == 128000 && g.n_eos == 3 && g.eos_ids[0] == 128001 && g.eos_ids[2] == 128009, "llama gen ids");
    CHECK(g.do_sample == 1 && g.temperature == 0.6 && g.top_p == 0.9 && g.top_k == 50, "llama sampling");
    CHECK(strcmp(g.bos_token, "<|begin_of_text|>") == 0 && strcmp(g.eos_token, "<|eot_id|>") == 0 && g.add_bos == -1,
          "llama tokens: '%s' '%s' %d", g.bos_token, g.eos_token, g.add_bos);

    CHECK_OK(ctx, load(ctx, &c, &g, "mistral-7b"));
    CHECK(c.arch == HEED_ARCH_MISTRAL && c.head_dim == 128 && c.n_kv_heads == 8 && c.intermediate == 14336, "mistral");
    CHECK(c.sliding_window == 4096 && c.layer_window[0] && c.layer_window[31] && !c.layer_window[32], "mistral window");
    CHECK(c.rope.type == HEED_ROPE_DEFAULT && c.rope.theta == 10000 && !c.tie_embeddings, "mistral rope");
    CHECK(g.bos_id == 1 && g.n_eos == 1 && g.eos_ids[0] == 2 && g.add_bos == 1 && g.add_eos == 0, "mistral gen");
    CHECK(strcmp(g.bos_token, "<s>") == 0 && strcmp(g.eos_token, "</s>") == 0, "mistral AddedToken objects");

    CHECK_OK(ctx, load(ctx, &c, &g, "qwen2-0.5b"));
    CHECK(c.arch == HEED_ARCH_QWEN2 && c.qkv_bias == 1 && c.o_bias == 0 && c.head_dim == 64 && c.n_kv_heads == 2, "qwen2");
    CHECK(c.sliding_window == 0 && c.tie_embeddings && c.rope.theta == 1e6 && c.norm_eps == 1e-6, "qwen2 window off");

    CHECK_OK(ctx, load(ctx, &c, &g, "qwen3-0.6b"));
    CHECK(c.arch == HEED_ARCH_QWEN3 && c.qk_norm && c.head_dim == 128 && c.hidden == 1024 && !c.qkv_bias, "qwen3");
    CHECK(fabs(c.attn_scale - 1 / sqrt(128.0)) < 1e-15 && c.sliding_window == 0, "qwen3 scale");
    CHECK(g.top_k == 20 && g.top_p == 0.95 && g.n_eos == 2 && g.eos_ids[0] == 151645 && g.pad_id == 151643, "qwen3 gen");

    CHECK_OK(ctx, load(ctx, &c, &g, "gemma2-2b"));
    CHECK(c.arch == HEED_ARCH_GEMMA2 && c.norm_add_one && c.post_norms && c.embed_scale && c.act == HEED_ACT_GELU_TANH, "gemma2");
    CHECK(c.attn_softcap == 50 && c.final_softcap == 30 && fabs(c.attn_scale - 1.0 / 16) < 1e-15, "gemma2 caps");
    CHECK(c.sliding_window == 4096 && c.layer_window[0] && !c.layer_window[1] && c.layer_window[24] && !c.layer_window[25],
          "gemma2 alternating window");
    CHECK(g.n_eos == 2 && g.eos_ids[1] == 107 && g.pad_id == 0 && g.bos_id == 2, "gemma2 gen");

    CHECK_OK(ctx, load(ctx, &c, &g, "gpt2"));
    CHECK(c.arch == HEED_ARCH_GPT2 && c.norm == HEED_LN_LAYER && c.pos == HEED_POS_LEARNED && c.mlp == HEED_MLP_PLAIN, "gpt2");
    CHECK(c.hidden == 768 && c.n_layers == 12 && c.n_heads == 12 && c.n_kv_heads == 12 && c.head_dim == 64, "gpt2 sizes");
    CHECK(c.intermediate == 3072 && c.max_pos == 1024 && c.norm_eps == 1e-5 && c.act == HEED_ACT_GELU_TANH, "gpt2 keys");
    CHECK(c.fused_qkv && c.qkv_bias && c.o_bias && c.mlp_bias && c.norm_bias && c.tie_embeddings, "gpt2 flags");
    CHECK(!c.scale_by_inverse_layer && fabs(c.attn_scale - 0.125) < 1e-15 && g.n_eos == 1 && g.eos_ids[0] == 50256, "gpt2 attn");

    CHECK_OK(ctx, load(ctx, &c, &g, "bert-base-uncased"));
    CHECK(c.arch == HEED_ARCH_BERT && !c.causal && c.post_ln && c.type_vocab == 2 && c.norm_eps == 1e-12, "bert");
    CHECK(c.act == HEED_ACT_GELU && c.max_pos == 512 && c.vocab == 30522 && c.pos == HEED_POS_LEARNED, "bert keys");
    CHECK(g.pad_id == 0 && g.n_eos == 0 && g.bos_id == -1, "bert gen");
}

static void test_errors(heed_ctx *ctx)
{
    heed_config c;
    const char *llama = "\"hidden_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, "
                        "\"intermediate_size\": 128, \"vocab_size\": 100";
    char buf[1024];
#define WITH(...) (snprintf(buf, sizeof buf, __VA_ARGS__), buf)
    CHECK_ERR(ctx, parse(ctx, &c, "{\"model_type\": \"phi3\"}"), HEED_ERR_UNSUPPORTED, "phi3");
    CHECK_ERR(ctx, parse(ctx, &c, "{\"hidden_size\": 3}"), HEED_ERR_FORMAT, "model_type");
    CHECK_ERR(ctx, parse(ctx, &c, "[1, 2]"), HEED_ERR_FORMAT, "object");
    CHECK_ERR(ctx, parse(ctx, &c, "{\"model_type\": \"llama\", "), HEED_ERR_FORMAT, "JSON");
    CHECK_ERR(ctx, parse(ctx, &c, ""), HEED_ERR_FORMAT, "JSON");
    CHECK_ERR(ctx, parse(ctx, &c, "{\"model_type\": \"llama\", \"num_hidden_layers\": 2}"), HEED_ERR_FORMAT,
              "\"hidden_size\"");
    CHECK_ERR(ctx, parse(ctx, &c, "{\"model_type\": \"gpt2\", \"n_layer\": 2, \"n_head\": 2, \"vocab_size\": 10}"),
              HEED_ERR_FORMAT, "\"n_embd\"");
    CHECK_ERR(ctx, parse(ctx, &c, "{\"model_type\": \"llama\", \"hidden_size\": \"64\"}"), HEED_ERR_FORMAT, "hidden_size");
    CHECK_ERR(ctx, parse(ctx, &c, "{\"model_type\": \"llama\", \"hidden_size\": 64.5}"), HEED_ERR_FORMAT, "hidden_size");
    CHECK_ERR(ctx, parse(ctx, &c, "{\"model_type\": \"llama\", \"hidden_size\": -4}"), HEED_ERR_FORMAT, "hidden_size");
    CHECK_ERR(ctx, parse(ctx, &c, WITH("{\"model_type\": \"llama\", %s, \"num_key_value_heads\": 3}", llama)),
              HEED_ERR_FORMAT, "key/value heads");
    CHECK_ERR(ctx, parse(ctx, &c, WITH("{\"model_type\": \"llama\", %s, \"num_key_value_heads\": 8}", llama)),
              HEED_ERR_FORMAT, "num_key_value_heads");
    CHECK_ERR(ctx, parse(ctx, &c, WITH("{\"model_type\": \"llama\", %s, \"hidden_act\": \"weird\"}", llama)),
              HEED_ERR_UNSUPPORTED, "weird");
    CHECK_ERR(ctx, parse(ctx, &c, WITH("{\"model_type\": \"llama\", %s, \"tie_word_embeddings\": 1}", llama)),
              HEED_ERR_FORMAT, "tie_word_embeddings");
    CHECK_ERR(ctx, parse(ctx, &c, WITH("{\"model_type\": \"llama\", %s, \"rope_scaling\": {\"rope_type\": \"longrope\"}}",
                                       llama)), HEED_ERR_UNSUPPORTED, "longrope");
    CHECK_ERR(ctx, parse(ctx, &c, WITH("{\"model_type\": \"llama\", %s, \"rope_scaling\": {\"rope_type\": \"llama3\", "
                                       "\"factor\": 8, \"high_freq_factor\": 4, \"original_max_position_embeddings\": 64}}",
                                       llama)), HEED_ERR_FORMAT, "low_freq_factor");
    CHECK_ERR(ctx, parse(ctx, &c, WITH("{\"model_type\": \"llama\", %s, \"rope_scaling\": {\"type\": \"linear\"}}", llama)),
              HEED_ERR_FORMAT, "factor");
    CHECK_ERR(ctx, parse(ctx, &c, WITH("{\"model_type\": \"llama\", %s, \"rope_theta\": 0}", llama)), HEED_ERR_FORMAT,
              "rope_theta");
    CHECK_ERR(ctx, parse(ctx, &c, WITH("{\"model_type\": \"llama\", %s, \"rope_scaling\": 7}", llama)), HEED_ERR_FORMAT,
              "rope_scaling");
    CHECK_ERR(ctx, parse(ctx, &c, WITH("{\"model_type\": \"gemma2\", %s, \"layer_types\": [\"full_attention\"]}", llama)),
              HEED_ERR_FORMAT, "layer_types");
    CHECK_ERR(ctx, parse(ctx, &c, WITH("{\"model_type\": \"bert\", %s, \"position_embedding_type\": \"relative_key\"}",
                                       llama)), HEED_ERR_UNSUPPORTED, "relative_key");
    CHECK_ERR(ctx, parse(ctx, &c, WITH("{\"model_type\": \"llama\", %s, \"num_hidden_layers\": 100000}", llama)),
              HEED_ERR_FORMAT, "num_hidden_layers");
    CHECK_ERR(ctx, parse(ctx, &c, "{\"model_type\": \"llama\", \"hidden_size\": 60, \"num_hidden_layers\": 2, "
                                  "\"num_attention_heads\": 8, \"intermediate_size\": 8, \"vocab_size\": 8}"),
              HEED_ERR_FORMAT, "multiple");
    CHECK_ERR(ctx, load(ctx, &c, NULL, "no-such-model"), HEED_ERR_IO, "no-such-model/config.json");
    CHECK(c.hidden == 0, "a failed parse leaves a zeroed config");

    /* Windows: qwen2 from max_window_layers; an explicit layer_types list wins. */
    CHECK_OK(ctx, parse(ctx, &c, WITH("{\"model_type\": \"qwen2\", %s, \"num_hidden_layers\": 4, \"num_key_value_heads\": 4, "
                                      "\"use_sliding_window\": true, \"sliding_window\": 16, \"max_window_layers\": 2}",
                                      llama)));
    CHECK(c.sliding_window == 16 && !c.layer_window[0] && !c.layer_window[1] && c.layer_window[2] && c.layer_window[3],
          "qwen2 window layers");
    CHECK_OK(ctx, parse(ctx, &c, WITH("{\"model_type\": \"gemma2\", %s, \"num_key_value_heads\": 4, \"head_dim\": 16, "
                                      "\"layer_types\": [\"full_attention\", \"sliding_attention\"], "
                                      "\"attn_logit_softcapping\": null}", llama)));
    CHECK(!c.layer_window[0] && c.layer_window[1] && c.attn_softcap == 0 && c.final_softcap == 30, "gemma2 layer_types");
    CHECK_OK(ctx, parse(ctx, &c, WITH("{\"model_type\": \"mistral\", %s, \"num_key_value_heads\": null, "
                                      "\"sliding_window\": null}", llama)));
    CHECK(c.sliding_window == 0 && !c.layer_window[0] && c.n_kv_heads == 4, "mistral null window, null kv heads");
    CHECK_OK(ctx, parse(ctx, &c, WITH("{\"model_type\": \"gpt2\", \"n_embd\": 64, \"n_layer\": 2, \"n_head\": 4, "
                                      "\"vocab_size\": 10, \"n_inner\": 100, \"scale_attn_weights\": false, "
                                      "\"scale_attn_by_inverse_layer_idx\": true}")));
    CHECK(c.intermediate == 100 && c.attn_scale == 1.0 && c.scale_by_inverse_layer, "gpt2 options");

    /* Generation fields: a bad value fails and leaves the struct as it was. */
    heed_gen_config g;
    heed_gen_config_init(&g);
    const char *bad = "{\"eos_token_id\": [1, \"x\"], \"top_k\": 3}";
    CHECK_ERR(ctx, heed_gen_config_parse(ctx, &g, bad, strlen(bad), "gen.json"), HEED_ERR_FORMAT, "eos_token_id");
    CHECK(g.top_k == 50 && g.n_eos == 0, "gen untouched after an error");
    const char *many = "{\"eos_token_id\": [1,2,3,4,5,6,7,8,9]}";
    CHECK_ERR(ctx, heed_gen_config_parse(ctx, &g, many, strlen(many), "gen.json"), HEED_ERR_FORMAT, "eos_token_id");
    const char *tok = "{\"bos_token\": {\"content\": 5}}";
    CHECK_ERR(ctx, heed_gen_config_parse(ctx, &g, tok, strlen(tok), "tok.json"), HEED_ERR_FORMAT, "bos_token");
    const char *ok = "{\"eos_token_id\": 7, \"bos_token_id\": null, \"temperature\": 0.7}";
    CHECK_OK(ctx, heed_gen_config_parse(ctx, &g, ok, strlen(ok), "gen.json"));
    CHECK(g.n_eos == 1 && g.eos_ids[0] == 7 && g.bos_id == -1 && g.temperature == 0.7, "gen int eos");
#undef WITH
}

/* Every prefix of a real config is rejected cleanly (run under the sanitizer build: no overread). */
static void test_truncated(heed_ctx *ctx)
{
    char path[1024], *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/config/llama3.2-1b/config.json", data_dir());
    CHECK_OK(ctx, heed_read_file(ctx, &text, &len, path, 1 << 20));
    int bad = 0;
    heed_config c;
    for (size_t n = 0; text && n < len; n++) {
        char *cut = malloc(n ? n : 1); /* exactly n bytes: ASan catches any read past them */
        memcpy(cut, text, n);
        /* The last bytes are whitespace after the closing brace: those prefixes are complete. */
        heed_status s = heed_config_parse(ctx, &c, cut, n, "cut.json");
        int complete = strspn(text + n, " \n\r\t") == len - n;
        bad += complete ? s != HEED_OK : s != HEED_ERR_FORMAT;
        free(cut);
    }
    CHECK(bad == 0, "%d truncated configs not rejected as malformed", bad);
    free(text);
}

/* --------------------------------------------------------------------------------------- RoPE */

/* inv_freq in double by the formulas of the papers and reference repositories. */
static double ref_default(double base, int64_t dim, int64_t i) { return pow(base, -2.0 * (double)i / (double)dim); }

/* Meta's llama3 apply_scaling (llama-models repository): classify by wavelength, smooth in between. */
static double ref_llama3(const heed_rope *r, int64_t dim, int64_t i)
{
    double f = ref_default(r->theta, dim, i), wl = 2 * M_PI / f, old = (double)r->original_max_pos;
    if (wl < old / r->high_freq_factor) return f;
    if (wl > old / r->low_freq_factor) return f / r->factor;
    double sm = (old / wl - r->low_freq_factor) / (r->high_freq_factor - r->low_freq_factor);
    return (1 - sm) * f / r->factor + sm * f;
}

/* YaRN "NTK-by-parts": dimension i keeps its frequency (extrapolates) when it turns more than beta_fast
 * times over the original context, is divided by s when it turns fewer than beta_slow times, with a
 * ramp linear in i between the two (rounded outward when truncating). */
static double ref_yarn(const heed_config *c, int64_t i, double *mscale)
{
    const heed_rope *r = &c->rope;
    int64_t dim = c->head_dim;
    double L = r->original_max_pos ? (double)r->original_max_pos : (double)c->max_pos;
    double s = r->original_max_pos ? (double)c->max_pos / L : r->factor;
    double bf = r->beta_fast ? r->beta_fast : 32, bs = r->beta_slow ? r->beta_slow : 1;
    /* dimension whose rotation count over L is n: L * base^(-2d/dim) / (2 pi) = n */
    double lo = dim * log(L / (2 * M_PI * bf)) / (2 * log(r->theta));
    double hi = dim * log(L / (2 * M_PI * bs)) / (2 * log(r->theta));
    if (r->truncate) lo = floor(lo), hi = ceil(hi);
    lo = fmax(lo, 0), hi = fmin(hi, dim - 1);
    if (lo == hi) hi += 0.001;
    double keep = 1 - fmin(fmax(((double)i - lo) / (hi - lo), 0), 1);
    double f = ref_default(r->theta, dim, i);
    double m = r->mscale && r->mscale_all_dim
                   ? (s <= 1 ? 1 : 1 + 0.1 * r->mscale * log(s)) / (s <= 1 ? 1 : 1 + 0.1 * r->mscale_all_dim * log(s))
                   : (s <= 1 ? 1 : 1 + 0.1 * log(s));
    *mscale = r->attention_factor ? r->attention_factor : m;
    return f / s * (1 - keep) + f * keep;
}

static double ref_inv_freq(const heed_config *c, int64_t i, int64_t seq_len, double *mscale)
{
    const heed_rope *r = &c->rope;
    int64_t dim = c->head_dim;
    *mscale = 1;
    switch (r->type) {
    case HEED_ROPE_DEFAULT: return ref_default(r->theta, dim, i);
    case HEED_ROPE_LINEAR: return ref_default(r->theta, dim, i) / r->factor;
    case HEED_ROPE_DYNAMIC: {
        /* NTK-aware: the base grows with the sequence beyond the trained length. */
        double L = (double)c->max_pos, n = fmax((double)seq_len, L);
        double base = r->theta * pow(r->factor * n / L - (r->factor - 1), (double)dim / (double)(dim - 2));
        return ref_default(base, dim, i);
    }
    case HEED_ROPE_YARN: return ref_yarn(c, i, mscale);
    case HEED_ROPE_LLAMA3: return ref_llama3(r, dim, i);
    }
    return NAN;
}

/* Units in the last place between two floats of the same sign. */
static int64_t ulps(float a, float b)
{
    int32_t x, y;
    memcpy(&x, &a, 4);
    memcpy(&y, &b, 4);
    return x > y ? (int64_t)x - y : (int64_t)y - x;
}

static void test_rope(heed_ctx *ctx)
{
    char path[1024], *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/config/rope_golden.json", data_dir());
    CHECK_OK(ctx, heed_read_file(ctx, &text, &len, path, 1 << 24));
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(root != NULL, "rope_golden.json parses");
    if (!root) return;
    const cJSON *cfgs = cJSON_GetObjectItem(root, "configs");
    int64_t dyn_len = (int64_t)cJSON_GetObjectItem(root, "dynamic_seq_len")->valuedouble;
    int64_t worst_ulp = 0, n_cfg = 0;
    double worst_ref = 0;
    for (const cJSON *e = cfgs ? cfgs->child : NULL; e; e = e->next) {
        heed_config c;
        heed_status s = load(ctx, &c, NULL, e->string);
        CHECK(s == HEED_OK, "%s: %s", e->string, heed_ctx_error(ctx));
        if (s != HEED_OK) continue;
        n_cfg++;
        /* transformers' view of the config */
        const cJSON *kv = cJSON_GetObjectItem(e, "num_key_value_heads"), *hd = cJSON_GetObjectItem(e, "head_dim");
        CHECK(!cJSON_IsNumber(kv) || kv->valuedouble == (double)c.n_kv_heads, "%s: kv heads", e->string);
        CHECK(!cJSON_IsNumber(hd) || hd->valuedouble == (double)c.head_dim, "%s: head_dim", e->string);
        const cJSON *sw = cJSON_GetObjectItem(e, "sliding_window"), *lt = cJSON_GetObjectItem(e, "layer_types");
        int64_t l = 0;
        for (const cJSON *x = cJSON_IsArray(lt) ? lt->child : NULL; x; x = x->next, l++)
            CHECK(c.layer_window[l] == (strcmp(x->valuestring, "sliding_attention") == 0 && c.sliding_window > 0),
                  "%s: layer %lld window", e->string, (long long)l);
        if (!cJSON_IsArray(lt))
            CHECK(c.sliding_window == (cJSON_IsNumber(sw) ? (int64_t)sw->valuedouble : 0), "%s: sliding window %lld",
                  e->string, (long long)c.sliding_window);
        const cJSON *inv = cJSON_GetObjectItem(e, "inv_freq");
        if (!inv) continue;
        for (int pass = 0; pass < 2; pass++) {
            const cJSON *gold = pass ? cJSON_GetObjectItem(e, "inv_freq_dynamic") : inv;
            if (!gold) continue;
            int64_t seq = pass ? dyn_len : 1, half = heed_rope_dim(&c) / 2;
            CHECK(cJSON_GetArraySize(gold) == half, "%s: %d frequencies, expected %lld", e->string,
                  cJSON_GetArraySize(gold), (long long)half);
            float *f = calloc((size_t)half, sizeof *f), af = 0;
            CHECK_OK(ctx, heed_rope_inv_freq(ctx, f, &af, &c, seq));
            int64_t i = 0;
            for (const cJSON *x = gold->child; x && i < half; x = x->next, i++) {
                uint32_t bits = (uint32_t)x->valuedouble;
                float want;
                memcpy(&want, &bits, 4);
                int64_t u = ulps(f[i], want);
                if (u > worst_ulp) worst_ulp = u;
                CHECK(u <= 2, "%s: inv_freq[%lld] = %.9g, transformers %.9g (%lld ulp)", e->string, (long long)i,
                      f[i], want, (long long)u);
                double ms, ref = ref_inv_freq(&c, i, seq, &ms), rel = fabs(f[i] - ref) / ref;
                if (rel > worst_ref) worst_ref = rel;
                CHECK(rel < 1e-5, "%s: inv_freq[%lld] = %.9g, formula %.9g", e->string, (long long)i, f[i], ref);
                CHECK(fabs(af - ms) < 1e-6, "%s: attention factor %.9g, formula %.9g", e->string, af, ms);
            }
            double gaf = cJSON_GetObjectItem(e, "attention_scaling")->valuedouble;
            CHECK(fabs(af - gaf) < 1e-6, "%s: attention factor %.9g, transformers %.9g", e->string, af, gaf);
            free(f);
        }
    }
    CHECK(n_cfg >= 14, "%lld golden configs", (long long)n_cfg);
    printf("rope: %lld configs; worst difference from transformers %lld ulp, from the double formulas %.2e rel\n",
           (long long)n_cfg, (long long)worst_ulp, worst_ref);
    cJSON_Delete(root);

    /* The old and new key forms give the same rope; dynamic below the trained length is the default. */
    heed_config a, b;
    CHECK_OK(ctx, load(ctx, &a, NULL, "rope/llama3-old"));
    CHECK_OK(ctx, load(ctx, &b, NULL, "rope/llama3-new"));
    CHECK(memcmp(&a.rope, &b.rope, sizeof a.rope) == 0, "rope_scaling and rope_parameters agree");
    CHECK_OK(ctx, load(ctx, &a, NULL, "rope/dynamic"));
    CHECK_OK(ctx, load(ctx, &b, NULL, "rope/default"));
    float fa[32], fb[32], x, y;
    CHECK_OK(ctx, heed_rope_inv_freq(ctx, fa, &x, &a, 100));
    CHECK_OK(ctx, heed_rope_inv_freq(ctx, fb, &y, &b, 100));
    CHECK(memcmp(fa, fb, sizeof fa) == 0, "dynamic at a short length is the default rope");
    heed_config g2;
    CHECK_OK(ctx, load(ctx, &g2, NULL, "gpt2"));
    CHECK(heed_rope_inv_freq(ctx, fa, &x, &g2, 1) == HEED_ERR_INVALID, "gpt2 has no rope");
}

int main(void)
{
    heed_ctx *ctx = NULL;
    CHECK_OK(ctx, heed_ctx_create(&ctx, 1));
    test_families(ctx);
    test_errors(ctx);
    test_truncated(ctx);
    test_rope(ctx);
    heed_ctx_free(ctx);
    return t_done("test_config");
}
