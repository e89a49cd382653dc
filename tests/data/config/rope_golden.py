# rope_golden.py — writes rope_golden.json next to it: what transformers makes of every config.json under
# this folder (resolved head_dim, key/value heads, sliding window, layer types) and, for rotary
# families, the model's own rotary embedding: inv_freq as f32 bit patterns and attention_scaling,
# plus "dynamic" re-evaluated at a longer sequence. Run where transformers is installed:
#   python3 tests/data/config/rope_golden.py [OUT.json]
import glob
import importlib
import json
import os
import sys

import numpy as np
import torch
import transformers
from transformers import AutoConfig
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

ROTARY = {"llama": "llama.modeling_llama.LlamaRotaryEmbedding",
          "mistral": "mistral.modeling_mistral.MistralRotaryEmbedding",
          "qwen2": "qwen2.modeling_qwen2.Qwen2RotaryEmbedding",
          "qwen3": "qwen3.modeling_qwen3.Qwen3RotaryEmbedding",
          "gemma2": "gemma2.modeling_gemma2.Gemma2RotaryEmbedding"}
DYNAMIC_SEQ_LEN = 10000

here = os.path.dirname(os.path.abspath(__file__))
out = {"transformers": transformers.__version__, "torch": torch.__version__, "dynamic_seq_len": DYNAMIC_SEQ_LEN,
       "configs": {}}


def bits(t):
    return t.detach().to(torch.float32).cpu().numpy().view(np.uint32).tolist()


for path in sorted(glob.glob(os.path.join(here, "**", "config.json"), recursive=True)):
    d = os.path.dirname(path)
    name = os.path.relpath(d, here)
    cfg = AutoConfig.from_pretrained(d)
    e = {"model_type": cfg.model_type, "num_key_value_heads": getattr(cfg, "num_key_value_heads", None),
         "head_dim": getattr(cfg, "head_dim", None), "sliding_window": getattr(cfg, "sliding_window", None),
         "layer_types": getattr(cfg, "layer_types", None), "tie_word_embeddings": cfg.tie_word_embeddings}
    if cfg.model_type in ROTARY:
        mod, cls = ROTARY[cfg.model_type].rsplit(".", 1)
        rot = getattr(importlib.import_module("transformers.models." + mod), cls)(config=cfg)
        e["rope_type"] = rot.rope_type if isinstance(rot.rope_type, str) else str(rot.rope_type)
        e["inv_freq"] = bits(rot.inv_freq)
        e["attention_scaling"] = float(rot.attention_scaling)
        if e["rope_type"] == "dynamic":
            inv, _ = ROPE_INIT_FUNCTIONS["dynamic"](cfg, "cpu", seq_len=DYNAMIC_SEQ_LEN)
            e["inv_freq_dynamic"] = bits(inv)
    out["configs"][name] = e

dst = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "rope_golden.json")
with open(dst, "w") as f:
    json.dump(out, f, indent=1)
print("wrote", dst, "transformers", transformers.__version__)
