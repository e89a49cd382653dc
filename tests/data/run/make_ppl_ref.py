#!/usr/bin/env python3
# make_ppl_ref.py — reference perplexities for tests/cli_model_test.sh, computed apart from heed ppl: the
# window loop of the transformers perplexity guide written out literally (labels -100 before the last
# trg_len, shifted cross entropy), over logits of each window from a one-shot forward: the golden
# transformers logits when one window holds the whole text, else `heed logits` on the window (no KV cache,
# checked against transformers by test_model). The mean is over the tokens actually scored.
# Usage: make_ppl_ref.py HEED > tests/data/run/ppl.txt   (plain Python 3: json, struct, math, subprocess)
import json, math, os, struct, subprocess, sys, tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")

def read_st(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    out = {}
    for k, t in h.items():
        if k == "__metadata__":
            continue
        s, e = t["data_offsets"]
        d = b[8 + n + s:8 + n + e]
        fmt = {"I64": "q", "F32": "f"}[t["dtype"]]
        out[k] = (t["shape"], struct.unpack("<%d%s" % (len(d) // struct.calcsize(fmt), fmt), d))
    return out

def window_logits(heed, model, ids, golden):
    if golden is not None and len(ids) == len(golden[0]):
        return golden[1]
    with tempfile.TemporaryDirectory() as d:
        o = os.path.join(d, "l.safetensors")
        subprocess.run([heed, "logits", "-m", model, "--ids", ",".join(map(str, ids)), "-o", o], check=True)
        return read_st(o)["logits"][1]

def ppl(heed, model, ids, max_length, stride, golden):
    V = len(golden[1]) // len(golden[0])
    nll_sum, n_tokens, prev_end_loc, seq_len = 0.0, 0, 0, len(ids)
    for begin_loc in range(0, seq_len, stride):
        end_loc = min(begin_loc + max_length, seq_len)
        trg_len = end_loc - prev_end_loc
        input_ids = ids[begin_loc:end_loc]
        target_ids = [-100] * (len(input_ids) - trg_len) + input_ids[len(input_ids) - trg_len:]
        logits = window_logits(heed, model, input_ids, golden if begin_loc == 0 else None)
        for i in range(len(input_ids) - 1):  # shift: logits i predict label i + 1
            y = target_ids[i + 1]
            if y == -100:
                continue
            row = logits[i * V:(i + 1) * V]
            mx = max(row)
            nll_sum += mx + math.log(sum(math.exp(x - mx) for x in row)) - row[y]
            n_tokens += 1
        prev_end_loc = end_loc
        if end_loc == seq_len:
            break
    return math.exp(nll_sum / n_tokens), n_tokens

heed = sys.argv[1]
print("# model ctx stride ppl tokens (tests/data/run/make_ppl_ref.py)")
for name in ("gpt2", "llama3-old", "mistral", "gemma2"):
    model = os.path.join(ROOT, "tests", "data", "models", name)
    g = read_st(os.path.join(model, "golden.safetensors"))
    ids = list(g["input_ids"][1])
    golden = (ids, g["logits"][1])
    for ctx, stride in ((32, 32), (16, 8), (16, 16), (10, 3)):
        p, n = ppl(heed, model, ids, ctx, stride, golden)
        print(name, ctx, stride, "%.9g" % p, n)
