# make_train_goldens.py — reference loss, logits, every parameter gradient and 10 AdamW steps of two tiny
# Llama decoders, computed by transformers in float64, for the trainer's whole-model test (tests/data/train/,
# llm.c test_gpt2 style). Run where torch + transformers are:
#   python3 tools/make_train_goldens.py --out /tmp/train && tar czf $OUT/train.tgz -C /tmp train
# (this is how the committed files were made, on the device machine, CPU torch; versions in hyper.json).
import argparse
import copy
import json
import math
import os
import platform
import sys
import traceback

import numpy as np
import safetensors
import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, LlamaConfig

B, T = 2, 16
STEPS = 10
WARMUP = 3
LR_MAX = 1e-2
LR_MIN = 0.1 * LR_MAX
BETAS = (0.9, 0.95)
EPS = 1e-8
WEIGHT_DECAY = 0.1
CLIP = 1.0
STD = 0.02       # matrices: normal(0, STD)
NORM_STD = 0.1   # RMSNorm gains: 1 + normal(0, NORM_STD), so they are not all 1
IGNORE_EVERY = 8  # B*T/IGNORE_EVERY targets are ignored
THETA = 10000.0

COMMON = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, head_dim=8,
              intermediate_size=48, max_position_embeddings=T, rms_norm_eps=1e-5, hidden_act="silu",
              attention_bias=False, mlp_bias=False, bos_token_id=1, eos_token_id=2)
# name -> (config overrides, seed)
CONFIGS = {
    "gqa-untied": (dict(num_key_value_heads=2, tie_word_embeddings=False), 101),
    "mha-tied": (dict(num_key_value_heads=4, tie_word_embeddings=True), 202),
}
HAS_ROPE_PARAMETERS = "rope_parameters" in LlamaConfig().to_dict()
LR_FORMULA = ("t < warmup: lr_max * (t + 1) / warmup; else lr_min + 0.5 * (lr_max - lr_min) * "
              "(1 + cos(pi * (t - warmup) / (steps - warmup))), t = 0..steps-1")


def lr_at(t):
    if t < WARMUP:
        return LR_MAX * (t + 1) / WARMUP
    return LR_MIN + 0.5 * (LR_MAX - LR_MIN) * (1 + math.cos(math.pi * (t - WARMUP) / (STEPS - WARMUP)))


def make_config(over):
    rope = {"rope_parameters": {"rope_type": "default", "rope_theta": THETA}} if HAS_ROPE_PARAMETERS \
        else {"rope_theta": THETA, "rope_scaling": None}
    cfg = LlamaConfig(**COMMON, **over, **rope)
    # the saved parameters are float32; transformers 5 renamed torch_dtype to dtype
    if int(transformers.__version__.split(".")[0]) >= 5:
        cfg.dtype = torch.float32
    else:
        cfg.torch_dtype = torch.float32
    return cfg


# transformers computes RMSNorm, the RoPE angles and (eager) the softmax in float32 even in a float64 model.
# build() swaps the first two for the modules below and uses SDPA attention (float64 throughout), so every
# golden is a true float64 result; reference_forward() checks that independently, and the stock model's
# distance is recorded in hyper.json.
class RMSNorm64(torch.nn.Module):
    """HF LlamaRMSNorm without its float32 cast: x / sqrt(mean(x^2) + eps) * weight. Keeps the Parameter."""

    def __init__(self, weight, eps):
        super().__init__()
        self.weight = weight
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Rope64(torch.nn.Module):
    """Default RoPE cos/sin [b, T, d] with the angles pos * theta^(-2i/d) computed in float64."""

    def __init__(self, head_dim, theta):
        super().__init__()
        inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
        self.register_buffer("inv_freq64", inv_freq, persistent=False)
        self.calls = 0  # to check that the model really uses this module

    def forward(self, x, position_ids, *args, **kwargs):
        self.calls += 1
        freqs = position_ids.to(torch.float64)[..., None] * self.inv_freq64.to(torch.float64)  # [b, T, d/2]
        emb = torch.cat((freqs, freqs), dim=-1)  # rotate_half layout: pair (i, i + d/2)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)


def build(cfg, seed, stock=False):
    """The model in float64, its parameters drawn in float32 (so the f64 values are exactly the saved ones).
    stock: transformers' model as it is (eager attention, its own norm and rope), for comparison."""
    model = AutoModelForCausalLM.from_config(copy.deepcopy(cfg), attn_implementation="eager" if stock else "sdpa")
    if not stock:
        norms = [n for n, m in model.named_modules() if type(m).__name__ == "LlamaRMSNorm"]
        if len(norms) != 2 * cfg.num_hidden_layers + 1:
            raise RuntimeError(f"found {len(norms)} LlamaRMSNorm modules")
        for n in norms:
            parent, _, child = n.rpartition(".")
            setattr(model.get_submodule(parent), child, RMSNorm64(model.get_submodule(n).weight, cfg.rms_norm_eps))
        model.model.rotary_emb = Rope64(cfg.head_dim, THETA)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g, dtype=torch.float32)
            p.copy_(1.0 + NORM_STD * r if p.dim() == 1 else STD * r)  # every 1-d parameter is a norm gain
    model = model.double()
    if cfg.tie_word_embeddings and model.lm_head.weight is not model.model.embed_tokens.weight:
        raise RuntimeError("lm_head is not tied to embed_tokens")
    return model


def reference_forward(P, cfg, inputs):
    """The same decoder written out with plain tensor ops from the parameter dict P (float64): logits [B,T,V]."""
    H, KV, D, eps = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim, cfg.rms_norm_eps
    Bn, Tn = inputs.shape

    def rms(x, w):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w

    ang = torch.arange(Tn, dtype=torch.float64)[:, None] * THETA ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)
    cos, sin = torch.cos(ang).repeat(1, 2), torch.sin(ang).repeat(1, 2)  # [T, D]

    def rope(z):  # z [B, heads, T, D]: pairs (i, i + D/2)
        return z * cos + torch.cat((-z[..., D // 2:], z[..., :D // 2]), -1) * sin

    causal = torch.ones(Tn, Tn, dtype=torch.bool).tril()
    x = P["model.embed_tokens.weight"][inputs]
    for li in range(cfg.num_hidden_layers):
        pre = f"model.layers.{li}."
        h = rms(x, P[pre + "input_layernorm.weight"])
        q = (h @ P[pre + "self_attn.q_proj.weight"].T).view(Bn, Tn, H, D).transpose(1, 2)
        k = (h @ P[pre + "self_attn.k_proj.weight"].T).view(Bn, Tn, KV, D).transpose(1, 2)
        v = (h @ P[pre + "self_attn.v_proj.weight"].T).view(Bn, Tn, KV, D).transpose(1, 2)
        q, k = rope(q), rope(k)
        k, v = k.repeat_interleave(H // KV, 1), v.repeat_interleave(H // KV, 1)  # query head j uses kv head j // (H/KV)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(D)
        a = torch.softmax(s.masked_fill(~causal, float("-inf")), -1) @ v  # [B, H, T, D]
        x = x + a.transpose(1, 2).reshape(Bn, Tn, H * D) @ P[pre + "self_attn.o_proj.weight"].T
        h = rms(x, P[pre + "post_attention_layernorm.weight"])
        gate, up = h @ P[pre + "mlp.gate_proj.weight"].T, h @ P[pre + "mlp.up_proj.weight"].T
        x = x + (F.silu(gate) * up) @ P[pre + "mlp.down_proj.weight"].T
    x = rms(x, P["model.norm.weight"])
    return x @ P.get("lm_head.weight", P["model.embed_tokens.weight"]).T


def make_batch(seed, vocab):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (B, T + 1), generator=g)
    inputs, targets = ids[:, :-1].clone(), ids[:, 1:].clone()
    ignored = torch.randperm(B * T, generator=g)[:B * T // IGNORE_EVERY]
    targets.view(-1)[ignored] = -100
    return inputs, targets


def loss_of(model, inputs, targets):
    logits = model(input_ids=inputs, use_cache=False).logits  # [B, T, V]
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)
    return logits, loss


def train(model, inputs, targets, manual):
    """STEPS steps on the same batch: torch.optim.AdamW (manual=False) or the update written out as in the
    README (manual=True, to check that description). Returns losses, grad norms and final parameters."""
    named = list(model.named_parameters())
    params = [p for _, p in named]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": WEIGHT_DECAY},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    opt = None if manual else torch.optim.AdamW(groups, lr=LR_MAX, betas=BETAS, eps=EPS)
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    losses, norms = [], []
    for t in range(STEPS):
        lr = lr_at(t)
        model.zero_grad(set_to_none=True)
        _, loss = loss_of(model, inputs, targets)
        loss.backward()
        losses.append(loss.item())
        if not manual:
            norms.append(torch.nn.utils.clip_grad_norm_(params, max_norm=CLIP).item())
            for grp in opt.param_groups:
                grp["lr"] = lr
            opt.step()
            continue
        with torch.no_grad():
            norm = torch.sqrt(sum((p.grad ** 2).sum() for p in params))
            norms.append(norm.item())
            scale = min(1.0, CLIP / (norm.item() + 1e-6))
            for i, p in enumerate(params):
                gr = p.grad * scale
                if p.dim() >= 2:
                    p.mul_(1 - lr * WEIGHT_DECAY)
                m[i] = BETAS[0] * m[i] + (1 - BETAS[0]) * gr
                v[i] = BETAS[1] * v[i] + (1 - BETAS[1]) * gr * gr
                mhat = m[i] / (1 - BETAS[0] ** (t + 1))
                vhat = v[i] / (1 - BETAS[1] ** (t + 1))
                p.sub_(lr * mhat / (torch.sqrt(vhat) + EPS))
    return losses, norms, {n: p.detach().clone() for n, p in named}


def run_all(model, inputs, targets):
    """logits, loss and gradients at the initial parameters, then the training run (on a copy)."""
    model.zero_grad(set_to_none=True)
    logits, loss = loss_of(model, inputs, targets)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    losses, norms, final = train(copy.deepcopy(model), inputs, targets, manual=False)
    return {"logits": logits.detach(), "loss": loss.detach().reshape(1), "grads": grads, "losses": losses,
            "norms": norms, "final": final}


def rel(a, b):
    """max |a - b| / max |b| over one tensor."""
    return float((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-300))


def make_one(name, over, seed, root):
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    cfg = make_config(over)
    cfg.save_pretrained(d)
    model = build(cfg, seed)
    names = [n for n, _ in model.named_parameters()]
    params32 = {n: p.detach().float().contiguous() for n, p in model.named_parameters()}
    for n, p in model.named_parameters():  # the f64 start is exactly the f32 values saved
        if not torch.equal(p.detach(), params32[n].double()):
            raise RuntimeError(f"{n}: float64 parameter is not the float32 one widened")
    save_file(params32, os.path.join(d, "params.safetensors"), metadata={"format": "pt"})
    if any(not torch.equal(v, params32[k]) for k, v in load_file(os.path.join(d, "params.safetensors")).items()):
        raise RuntimeError("params.safetensors does not read back")

    inputs, targets = make_batch(seed + 1, cfg.vocab_size)
    save_file({"inputs": inputs.to(torch.int32).contiguous(),
               "targets": torch.where(targets < 0, -1, targets).to(torch.int32).contiguous()},
              os.path.join(d, "batch.safetensors"))

    r = run_all(model, inputs, targets)
    if model.model.rotary_emb.calls == 0:
        raise RuntimeError("the model did not call the float64 RoPE module")
    gold = {"logits": r["logits"], "loss": r["loss"]}
    gold.update({"grad." + n: r["grads"][n] for n in names})
    gold["losses"] = torch.tensor(r["losses"], dtype=torch.float64)
    gold["grad_norms"] = torch.tensor(r["norms"], dtype=torch.float64)
    gold["lrs"] = torch.tensor([lr_at(t) for t in range(STEPS)], dtype=torch.float64)
    gold.update({"final." + n: r["final"][n] for n in names})
    gold = {k: v.float().contiguous() for k, v in gold.items()}
    save_file(gold, os.path.join(d, "golden.safetensors"),
              metadata={"config": name, "torch": torch.__version__, "transformers": transformers.__version__,
                        "computed_in": "float64, stored as float32"})

    # checks, recorded in hyper.json
    checks = {}
    if abs(r["losses"][0] - r["loss"].item()) > 1e-12:
        raise RuntimeError("losses[0] differs from loss")
    _, _, final_manual = train(copy.deepcopy(model), inputs, targets, manual=True)
    checks["torch_adamw_vs_readme_formula_final_maxabs"] = max(
        float((final_manual[n] - r["final"][n]).abs().max()) for n in names)
    if checks["torch_adamw_vs_readme_formula_final_maxabs"] > 1e-10:
        raise RuntimeError("the written-out AdamW does not match torch's")
    # an independent float64 forward (plain tensor ops) and its autograd gradients must agree
    P = {n: p.detach().clone().requires_grad_(True) for n, p in model.named_parameters()}
    ref_logits = reference_forward(P, cfg, inputs)
    F.cross_entropy(ref_logits.reshape(-1, cfg.vocab_size), targets.reshape(-1), ignore_index=-100).backward()
    checks["hand_written_f64_forward_logits_maxabs"] = float((ref_logits.detach() - r["logits"]).abs().max())
    checks["hand_written_f64_forward_grad_maxabs"] = max(float((P[n].grad - r["grads"][n]).abs().max()) for n in names)
    if max(checks["hand_written_f64_forward_logits_maxabs"], checks["hand_written_f64_forward_grad_maxabs"]) > 1e-10:
        raise RuntimeError("the hand-written forward disagrees with the transformers model")
    # the stock transformers model in float64 (float32 norms, rope angles and eager softmax inside)
    stock = build(cfg, seed, stock=True)
    if any(not torch.equal(p, P[n]) for n, p in stock.named_parameters()):
        raise RuntimeError("the stock model drew other parameters")
    with torch.no_grad():
        checks["stock_transformers_f64_logits_maxabs"] = float(
            (stock(input_ids=inputs, use_cache=False).logits - r["logits"]).abs().max())
    checks["attn_implementation"] = model.config._attn_implementation
    ignored = int((targets < 0).sum())
    checks["counted_targets"] = B * T - ignored
    checks["ignored_targets"] = ignored
    checks["clipped_steps"] = [t for t, g in enumerate(r["norms"]) if g > CLIP]
    checks["loss_initial_vs_ln_vocab"] = [r["loss"].item(), math.log(cfg.vocab_size)]
    # torch float32 on the same start and batch: what f32 rounding alone moves (a floor for tolerances)
    r32 = run_all(copy.deepcopy(model).float(), inputs, targets)
    checks["torch_f32_vs_f64"] = {
        "logits_maxabs": float((r32["logits"].double() - r["logits"]).abs().max()),
        "loss_absdiff": abs(r32["loss"].item() - r["loss"].item()),
        "grad_worst_rel": max(rel(r32["grads"][n], r["grads"][n]) for n in names),
        "grad_worst_rel_param": max(names, key=lambda n: rel(r32["grads"][n], r["grads"][n])),
        "losses_maxabs": max(abs(a - b) for a, b in zip(r32["losses"], r["losses"])),
        "grad_norms_maxrel": max(abs(a - b) / b for a, b in zip(r32["norms"], r["norms"])),
        "final_maxabs": max(float((r32["final"][n].double() - r["final"][n]).abs().max()) for n in names),
    }
    checks["grad_maxabs_per_param"] = {n: float(r["grads"][n].abs().max()) for n in names}
    checks["final_minus_initial_maxabs"] = max(float((r["final"][n] - params32[n].double()).abs().max())
                                               for n in names)

    hyper = {
        "config": name,
        "model": {k: getattr(cfg, k) for k in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                                               "num_key_value_heads", "head_dim", "intermediate_size",
                                               "rms_norm_eps", "tie_word_embeddings", "max_position_embeddings")},
        "rope_theta": THETA,
        "B": B, "T": T,
        "param_seed": seed, "batch_seed": seed + 1,
        "init": f"torch.Generator().manual_seed(param_seed); in named_parameters() order, randn(shape, float32); "
                f"1-d (RMSNorm gains): 1 + {NORM_STD} * r; matrices: {STD} * r; rounded to f32, then widened to f64",
        "batch": f"ids = randint(0, vocab, [B, T+1]); inputs = ids[:, :-1], targets = ids[:, 1:]; the first "
                 f"B*T/{IGNORE_EVERY} entries of randperm(B*T) (flat index b*T + t) are ignored "
                 "(-1 in batch.safetensors, -100 for torch)",
        "loss": "mean over counted (target >= 0) positions of -log softmax(logits[b,t])[target[b,t]]",
        "steps": STEPS,
        "lr_schedule": {"lr_max": LR_MAX, "lr_min": LR_MIN, "warmup": WARMUP, "steps": STEPS, "formula": LR_FORMULA},
        "optimizer": {"name": "torch.optim.AdamW", "betas": list(BETAS), "eps": EPS, "weight_decay": WEIGHT_DECAY,
                      "weight_decay_on": "parameters with ndim >= 2 (all matrices, embeddings, lm_head); "
                                         "not on RMSNorm gains",
                      "update": "g = clipped grad; p *= 1 - lr*wd (decayed params only); m = b1*m + (1-b1)*g; "
                                "v = b2*v + (1-b2)*g*g; mhat = m/(1-b1^(t+1)); vhat = v/(1-b2^(t+1)); "
                                "p -= lr * mhat / (sqrt(vhat) + eps); m, v start at 0, t = 0..steps-1"},
        "clip": {"max_norm": CLIP,
                 "formula": "norm = sqrt(sum of g^2 over every parameter); if max_norm/(norm + 1e-6) < 1: "
                            "g *= max_norm/(norm + 1e-6) (torch.nn.utils.clip_grad_norm_)",
                 "grad_norms": "norm before clipping"},
        "step_order": "per step t: zero grads; forward + backward of the same batch (losses[t]); clip "
                      "(grad_norms[t]); lr = lrs[t]; AdamW update",
        "computed_in": "float64 on CPU: transformers LlamaForCausalLM with SDPA attention, its RMSNorm and rotary "
                       "modules swapped for float64 ones (the stock ones compute in float32 inside, see checks); "
                       "every golden stored as float32",
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "safetensors": safetensors.__version__,
                     "numpy": np.__version__},
        "checks": checks,
    }
    with open(os.path.join(d, "hyper.json"), "w") as f:
        json.dump(hyper, f, indent=1)
        f.write("\n")
    return hyper


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, help="folder to create (one subfolder per config)")
    args = ap.parse_args()
    torch.set_num_threads(4)
    os.makedirs(args.out, exist_ok=True)
    failed = []
    for name, (over, seed) in CONFIGS.items():
        try:
            h = make_one(name, over, seed, args.out)
            print(name, json.dumps(h["checks"]), flush=True)
        except Exception:
            traceback.print_exc()
            failed.append(name)
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(args.out) for f in fs)
    print(f"total {total} bytes; failed: {failed}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
