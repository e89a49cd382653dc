# make_model_goldens.py — builds tiny random-weight Hugging Face checkpoints of every family the model
# runtime supports and what transformers computes on them (logits, attention probabilities, hidden states,
# greedy continuations), for the golden tests under tests/data/models/. Run where torch + transformers are:
#   python3 tools/make_model_goldens.py --out /tmp/models && tar czf $OUT/models.tgz -C /tmp models
# (this is how the committed files were made, on the device machine, CPU torch, see VERSIONS.txt).
# Every golden is computed from the folder as written (reloaded with from_pretrained, float32, eager
# attention), so what is on disk and what is expected cannot drift apart.
import argparse
import copy
import json
import os
import platform
import shutil
import sys
import traceback

import numpy as np
import safetensors
import torch
import transformers
from safetensors.torch import save_file
from transformers import (AutoModel, AutoModelForCausalLM, BertConfig, Gemma2Config, GPT2Config, LlamaConfig,
                          MistralConfig, Qwen2Config, Qwen3Config)

VOCAB = 320
HIDDEN = 64
INTER = 96
LAYERS = 2
T = 32          # prompt length: longer than every sliding window below
N_GEN = 8       # greedy continuation length
WINDOW = 8      # sliding window of mistral and of gemma2's local layers
STD = 0.15      # weight std: large enough that attention is far from uniform
NORM_STD = 0.1  # spread of norm gains around their neutral value
BIAS_STD = 0.2

HAS_ROPE_PARAMETERS = "rope_parameters" in LlamaConfig().to_dict()


def rope_kwargs(theta, scaling):
    """Config kwargs for RoPE in the form this transformers takes natively."""
    if HAS_ROPE_PARAMETERS:
        rp = {"rope_type": "default", "rope_theta": float(theta)}
        rp.update(scaling or {})
        return {"rope_parameters": rp}
    return {"rope_theta": float(theta), "rope_scaling": scaling}


LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 32}
YARN = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32}
LINEAR = {"rope_type": "linear", "factor": 2.0}

COMMON = dict(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=INTER, num_hidden_layers=LAYERS,
              num_attention_heads=4, num_key_value_heads=2, bos_token_id=1, eos_token_id=2)


def llama_cfg(scaling, tied, max_pos=128):
    # head_dim 16, theta 1e4: with original_max_position_embeddings 32 the eight frequencies have
    # wavelengths 6.3 (kept by llama3), 19.9 (smoothed) and 63+ (divided by factor): all three regimes.
    return LlamaConfig(**COMMON, max_position_embeddings=max_pos, rms_norm_eps=1e-5, tie_word_embeddings=tied,
                       **rope_kwargs(10000.0, scaling))


# name -> (family, builder, options). Options: form "old" rewrites config.json into the rope_theta /
# rope_scaling keys (legacy_type: with the pre-4.43 "type" key), shard: max_shard_size, bf16: weights
# rounded to and stored as bfloat16, same_weights_as: reuse that model's weights (seed).
MODELS = {
    "llama3-old": ("llama", lambda: llama_cfg(LLAMA3, True), {"form": "old", "seed": 11}),
    "llama3-new": ("llama", lambda: llama_cfg(LLAMA3, True), {"form": "new", "seed": 11}),
    "llama-yarn": ("llama", lambda: llama_cfg(YARN, False), {"form": "new", "seed": 12}),
    "llama-linear-sharded": ("llama", lambda: llama_cfg(LINEAR, False),
                             {"form": "old", "legacy_type": True, "shard": "100KB", "seed": 13}),
    "llama3-bf16": ("llama", lambda: llama_cfg(LLAMA3, True), {"form": "new", "bf16": True, "seed": 14}),
    "mistral": ("mistral", lambda: MistralConfig(**COMMON, max_position_embeddings=128, rms_norm_eps=1e-5,
                                                  tie_word_embeddings=False, sliding_window=WINDOW,
                                                  **rope_kwargs(10000.0, None)), {"seed": 21}),
    "qwen2": ("qwen2", lambda: Qwen2Config(**COMMON, max_position_embeddings=128, rms_norm_eps=1e-6,
                                            tie_word_embeddings=True, use_sliding_window=False,
                                            **rope_kwargs(1000000.0, None)), {"seed": 31}),
    "qwen3": ("qwen3", lambda: Qwen3Config(**COMMON, head_dim=24, max_position_embeddings=128, rms_norm_eps=1e-6,
                                            tie_word_embeddings=False, use_sliding_window=False,
                                            **rope_kwargs(1000000.0, None)), {"seed": 41}),
    # query_pre_attn_scalar 24 != head_dim 16 so a runtime that scales by head_dim fails; caps small enough
    # that tanh is far from linear on these weights (see manifest.json: raw logit range).
    "gemma2": ("gemma2", lambda: Gemma2Config(**{**COMMON, "bos_token_id": 2, "eos_token_id": 1}, head_dim=16,
                                              max_position_embeddings=128, rms_norm_eps=1e-6, pad_token_id=0,
                                              tie_word_embeddings=True, sliding_window=WINDOW,
                                              layer_types=["sliding_attention", "full_attention"],
                                              query_pre_attn_scalar=24, attn_logit_softcapping=3.0,
                                              final_logit_softcapping=2.5, hidden_activation="gelu_pytorch_tanh",
                                              **rope_kwargs(10000.0, None)), {"seed": 51}),
    "gpt2": ("gpt2", lambda: GPT2Config(vocab_size=VOCAB, n_embd=HIDDEN, n_layer=LAYERS, n_head=4, n_inner=128,
                                        n_positions=64, bos_token_id=1, eos_token_id=2,
                                        activation_function="gelu_new"), {"seed": 61}),
    "bert": ("bert", lambda: BertConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                                        num_attention_heads=4, intermediate_size=128, max_position_embeddings=64,
                                        type_vocab_size=2, hidden_act="gelu", pad_token_id=0), {"seed": 71}),
}


def load_kwargs():
    # transformers 5 renamed torch_dtype to dtype
    major = int(transformers.__version__.split(".")[0])
    return {"dtype" if major >= 5 else "torch_dtype": torch.float32, "attn_implementation": "eager"}


def build(family, cfg):
    cls = AutoModel if family == "bert" else AutoModelForCausalLM
    try:
        m = cls.from_config(cfg, attn_implementation="eager")
    except TypeError:
        m = cls.from_config(cfg)
    return m.float().eval()


def randomize(model, family, seed):
    """Every parameter drawn again with a wider spread than HF's init, so attention is peaked."""
    g = torch.Generator().manual_seed(seed)
    zero_centred_norm = family == "gemma2"  # Gemma RMSNorm multiplies by (1 + weight)
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if p.dim() == 1 and name.endswith("bias"):
                p.copy_(BIAS_STD * r)
            elif p.dim() == 1:  # a norm gain
                p.copy_((0.0 if zero_centred_norm else 1.0) + NORM_STD * r)
            else:
                p.copy_(STD * r)


def layers_and_norm(model, family):
    if family == "gpt2":
        return model.transformer.h, model.transformer.ln_f
    if family == "bert":
        return model.encoder.layer, None
    return model.model.layers, model.model.norm


def first(x):
    return x[0] if isinstance(x, (tuple, list)) else x


def rewrite_old_form(d, legacy_type):
    """config.json with rope_theta/rope_scaling at the top level, as transformers 4.x wrote it."""
    path = os.path.join(d, "config.json")
    with open(path) as f:
        c = json.load(f)
    if "rope_parameters" not in c:
        return False  # this transformers writes the old form itself
    rp = dict(c.pop("rope_parameters"))
    theta = rp.pop("rope_theta")
    rtype = rp.pop("rope_type", rp.pop("type", "default"))
    scaling = None
    if rtype != "default":
        scaling = {("type" if legacy_type else "rope_type"): rtype, **rp}
    c["rope_theta"] = theta
    c["rope_scaling"] = scaling
    with open(path, "w") as f:
        json.dump(c, f, indent=2, sort_keys=True)
        f.write("\n")
    return True


def forward(model, family, ids, tt):
    """One full forward, recording HF's hidden_states/attentions and the last layer's pre-norm output."""
    layers, norm = layers_and_norm(model, family)
    captured = {}
    h = layers[-1].register_forward_hook(lambda mod, a, out: captured.__setitem__("last", first(out)))
    kw = {"output_attentions": True, "output_hidden_states": True}
    if family == "bert":
        kw["token_type_ids"] = tt[None]
    else:
        kw["use_cache"] = False
    try:
        with torch.no_grad():
            out = model(input_ids=ids[None], **kw)
    finally:
        h.remove()
    return out, captured["last"][0], norm


def visible_keys(attn):
    # attn [H,T,T]: how many keys each query row sees (nonzero probabilities), for the manifest
    nz = (attn > 0).sum(-1)  # [H,T]
    return {"last_row": int(nz[0, -1]), "max_row": int(nz.max()), "row_4": int(nz[0, 4])}


def greedy(model, ids):
    """generate() with the KV cache, EOS disabled so exactly N_GEN tokens come; plus the no-cache logits of
    each step from one forward over prompt + continuation, to check the two agree and record margins."""
    gc = model.generation_config
    gc.eos_token_id = None
    model.config.eos_token_id = None  # in case generate falls back to the model config
    gc.pad_token_id = 0
    gc.do_sample = False
    for k in ("temperature", "top_p", "top_k", "min_p", "repetition_penalty"):
        if hasattr(gc, k):
            setattr(gc, k, None)
    with torch.no_grad():
        seq = model.generate(input_ids=ids[None], attention_mask=torch.ones_like(ids[None]),
                             max_new_tokens=N_GEN, min_new_tokens=0, do_sample=False, use_cache=True)
        gen = seq[0, len(ids):]
        if len(gen) != N_GEN:
            raise RuntimeError(f"generate returned {len(gen)} tokens, expected {N_GEN}")
        full = torch.cat([ids, gen[:-1]])
        lg = model(input_ids=full[None], use_cache=False).logits[0, len(ids) - 1:]  # [N_GEN,V]
    top2 = lg.topk(2, dim=-1).values
    return gen, lg, (top2[:, 0] - top2[:, 1]), bool((lg.argmax(-1) == gen).all())


def make_one(name, family, cfg_fn, opt, root):
    d = os.path.join(root, name)
    shutil.rmtree(d, ignore_errors=True)
    cfg = cfg_fn()
    model = build(family, cfg)
    randomize(model, family, opt["seed"])
    if opt.get("bf16"):
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.to(torch.bfloat16).to(torch.float32))
    info = {"family": family, "model_type": cfg.model_type, "seed": opt["seed"], "T": T}
    save_kw = {"max_shard_size": opt["shard"]} if opt.get("shard") else {}  # safetensors is the default
    to_save = copy.deepcopy(model).to(torch.bfloat16) if opt.get("bf16") else model
    to_save.save_pretrained(d, **save_kw)
    if opt.get("shard") and not os.path.exists(os.path.join(d, "model.safetensors.index.json")):
        raise RuntimeError("max_shard_size did not produce a sharded checkpoint")
    if not any(f.endswith(".safetensors") for f in os.listdir(d)):
        raise RuntimeError("save_pretrained wrote no safetensors file")
    info["weights_dtype"] = "bfloat16" if opt.get("bf16") else "float32"

    g = torch.Generator().manual_seed(1000 + opt["seed"])
    ids = torch.randint(3, VOCAB, (T,), generator=g)
    tt = None
    if family == "bert":
        ids[0] = 2  # a [CLS]-like first token; the id has no meaning in a random model
        tt = torch.zeros(T, dtype=torch.long)
        tt[T // 2:] = 1

    cls = AutoModel if family == "bert" else AutoModelForCausalLM
    ref = cls.from_pretrained(d, **load_kwargs()).eval()
    ref_out, _, _ = forward(ref, family, ids, tt)
    form = opt.get("form", "native")
    if form == "old":
        if rewrite_old_form(d, opt.get("legacy_type", False)):
            info["config_form"] = "old: rope_theta + rope_scaling" + (' ("type" key)' if opt.get("legacy_type") else "")
        else:
            info["config_form"] = "old (written by this transformers itself)"
    elif form == "new":
        if not HAS_ROPE_PARAMETERS:
            raise RuntimeError("this transformers has no rope_parameters form; install transformers >= 5")
        info["config_form"] = "new: rope_parameters"
    elif family in ("gpt2", "bert"):
        info["config_form"] = "no rope: learned absolute positions"
    else:
        info["config_form"] = "rope_parameters" if HAS_ROPE_PARAMETERS else "rope_theta/rope_scaling"
    model_d = cls.from_pretrained(d, **load_kwargs()).eval()  # after any config rewrite
    out, prenorm, norm = forward(model_d, family, ids, tt)
    nl = len(out.attentions)

    key = "last_hidden_state" if family == "bert" else "logits"
    a, b = getattr(ref_out, key), getattr(out, key)
    info["config_rewrite_maxabs"] = float((a - b).abs().max())
    if form == "old" and info["config_rewrite_maxabs"] != 0.0:
        raise RuntimeError(f"old-form config changed the outputs by {info['config_rewrite_maxabs']}")
    mem_out, _, _ = forward(model, family, ids, tt)
    info["in_memory_vs_disk_maxabs"] = float((getattr(mem_out, key) - b).abs().max())

    gold = {"input_ids": ids.clone()}
    if family == "bert":
        gold["token_type_ids"] = tt.clone()
        gold["pooled"] = out.pooler_output[0]
    else:
        gold["logits"] = out.logits[0]
    for li, a in enumerate(out.attentions):
        gold[f"attn.{li}"] = a[0]
    for li, h in enumerate(out.hidden_states):
        gold[f"hidden.{li}"] = h[0]
    info["n_layers"] = nl
    info["n_hidden_states"] = len(out.hidden_states)
    info["visible_keys"] = [visible_keys(a[0]) for a in out.attentions]
    if norm is not None:
        gold["hidden.last_prenorm"] = prenorm
        with torch.no_grad():
            info["hidden_last_is_final_norm_of_prenorm_maxabs"] = float((norm(prenorm) - out.hidden_states[-1][0]).abs().max())
    if family == "gemma2":
        emb = model_d.get_input_embeddings().weight
        with torch.no_grad():
            raw = out.hidden_states[-1][0] @ emb.T
            cap = cfg.final_logit_softcapping
            info["raw_logit_maxabs"] = float(raw.abs().max())
            info["softcap_reproduced_maxabs"] = float((cap * torch.tanh(raw / cap) - out.logits[0]).abs().max())
            info["hidden0_is_embedding_times_sqrt_hidden_maxabs"] = float(
                (emb[ids] * torch.tensor(HIDDEN ** 0.5) - out.hidden_states[0][0]).abs().max())
        try:  # how much the attention softcap changes the probabilities (so a runtime ignoring it fails)
            nocap = copy.deepcopy(model_d)
            for lyr in nocap.model.layers:
                lyr.self_attn.attn_logit_softcapping = None
            nocap.config.attn_logit_softcapping = None
            o2, _, _ = forward(nocap, family, ids, tt)
            info["attn_softcap_effect_maxabs"] = max(float((x - y).abs().max())
                                                     for x, y in zip(o2.attentions, out.attentions))
        except Exception as e:  # informational only
            info["attn_softcap_effect_maxabs"] = f"not measured: {e!r}"

    if family != "bert":
        eos = model_d.config.eos_token_id
        gen, gen_logits, margin, agree = greedy(model_d, ids)
        gold["gen_ids"] = gen.clone()
        gold["gen_logits"] = gen_logits
        info["gen_ids"] = gen.tolist()
        info["gen_min_margin"] = float(margin.min())
        info["gen_cache_matches_nocache_argmax"] = agree
        if not agree:
            raise RuntimeError("generate() with cache disagrees with the no-cache argmax")
        info["eos_token_id"] = eos
        info["eos_in_continuation"] = bool(eos is not None and (gen == eos).any())

    # f64 run of the same weights: how far transformers' own f32 result is from exact
    m64 = copy.deepcopy(model_d).double()
    o64, _, _ = forward(m64, family, ids, tt)
    k64 = "last_hidden_state" if family == "bert" else "logits"
    info["f32_vs_f64_" + k64 + "_maxabs"] = float((getattr(o64, k64).float() - getattr(out, k64)).abs().max())
    info["f32_vs_f64_attn_maxabs"] = max(float((x.float() - y).abs().max()) for x, y in zip(o64.attentions, out.attentions))

    gold = {k: v.detach().contiguous().to(torch.int64 if v.dtype == torch.int64 else torch.float32)
            for k, v in gold.items()}
    meta = {"model": name, "family": family, "transformers": transformers.__version__, "torch": torch.__version__,
            "hidden_states": "hidden.0 = input of layer 0 (embeddings; gemma2: times sqrt(hidden)); hidden.L = "
                             "output of layer L-1 for L < n_layers; hidden.n_layers = HF last_hidden_state "
                             "(after the final norm for decoders); hidden.last_prenorm = raw output of the last layer"}
    save_file(gold, os.path.join(d, "golden.safetensors"), metadata=meta)
    info["files"] = sorted(os.listdir(d))
    info["bytes"] = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    return info


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, help="folder to create (one subfolder per model)")
    ap.add_argument("--only", nargs="*", help="model names to make (default: all)")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(4)
    os.makedirs(args.out, exist_ok=True)
    manifest, failed = {}, []
    for name, (family, cfg_fn, opt) in MODELS.items():
        if args.only and name not in args.only:
            continue
        try:
            manifest[name] = make_one(name, family, cfg_fn, opt, args.out)
            print(name, json.dumps(manifest[name]), flush=True)
        except Exception:
            traceback.print_exc()
            failed.append(name)
    # the two llama3 folders hold the same weights in the two config forms: their goldens must agree
    if "llama3-old" in manifest and "llama3-new" in manifest:
        from safetensors.torch import load_file
        a = load_file(os.path.join(args.out, "llama3-old", "golden.safetensors"))
        b = load_file(os.path.join(args.out, "llama3-new", "golden.safetensors"))
        diff = max(float((a[k].double() - b[k].double()).abs().max()) for k in a)
        manifest["llama3-old"]["same_as_llama3-new_maxabs"] = diff
        print("llama3 old vs new form max abs", diff)
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    with open(os.path.join(args.out, "VERSIONS.txt"), "w") as f:
        f.write(f"python {platform.python_version()}\ntorch {torch.__version__}\n"
                f"transformers {transformers.__version__}\nsafetensors {safetensors.__version__}\n"
                f"numpy {np.__version__}\n"
                "command: python3 tools/make_model_goldens.py --out /tmp/models (CPU, float32, eager attention)\n")
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(args.out) for f in fs)
    print(f"total {total} bytes; failed: {failed}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
