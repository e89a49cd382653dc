#!/usr/bin/env python3
"""make_tokenizer_goldens.py — trains small tokenizers of every kind heed supports with the Hugging Face
`tokenizers` package and writes tests/data/tok/<kind>/{tokenizer.json, tokenizer_config.json, golden.json}:
encodings with and without special tokens and decodings (with and without skipping special tokens) of
a fixed test set, plus the decoding of every single id and of fixed random id sequences.
Deterministic and re-runnable: `pip install tokenizers && python3 tools/make_tokenizer_goldens.py`.
`--check path/to/heed [N]` instead compares `heed tokenize`/`detokenize` with tokenizers on N random
strings per kind (specials, Unicode corners, whitespace) over the committed tokenizers."""
import json
import os
import random
import sys

import tokenizers
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "tok")

GPT2_PAT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3_PAT = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
              r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")
QWEN2_PAT = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
             r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")

# The training text: a few paragraphs in several scripts, repeated with numbers so merges of every
# kind (words, digits, punctuation, whitespace, multi-byte characters) appear.
BASE = [
    "The quick brown fox jumps over the lazy dog. It's a dog's life, isn't it? We're sure they'll say I'd've known.",
    "Attention is all you need: scaled dot-product attention computes softmax(QK^T / sqrt(d)) V.",
    "Café, naïve, résumé, jalapeño, Ångström, façade — déjà vu. Straße und Grüße aus München!",
    "def tokenize(text):\n    return [ord(c) for c in text]  # 4 spaces\n\tTabs\tand\nnewlines\r\n",
    "東京は日本の首都です。我喜欢机器学习和自然语言处理。한국어 문장도 있습니다.",
    "Emoji: 😀 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️ and symbols ©®™ ½ ∑ ∞ ≠ ≤.",
    "Numbers: 3.14159, 2718281828, 1,000,000 and 42 or 007; dates 2024-01-15 12:30:45.",
    "Привет, мир! Γειά σου κόσμε. مرحبا بالعالم. שלום עולם. नमस्ते दुनिया.",
    "HELLO World hello WORLD HeLLo wOrLd; don't DON'T won't WON'T you've YOU'VE.",
]
TRAIN_TEXT = [s + " " + str(i * 7919 % 100003) for i in range(40) for s in BASE]

TESTS = [
    "",
    " ",
    "   ",
    "\n",
    "Hello world",
    " Hello world",
    "Hello  world   with    runs     of spaces",
    "line one\nline two\n\nline four\r\nwindows\ttab\t\tdouble tab",
    "trailing spaces   ",
    "   leading spaces",
    "12345678901234567890 and 3.14159 and 1,000,000",
    "It's they're we'll I'd you've she'S THEY'RE don't",
    "Café naïve résumé Ångström",
    "e\u0301 combining acute, a\u0308 and \u1e9b\u0323",
    "東京は日本の首都です。我喜欢机器学习。",
    "한국어 문장",
    "👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️ 😀😀",
    "unseen chars: ☃ ⛄ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 Ꙭ",
    "The quick brown fox jumps over the lazy dog.",
    "def f(x):\n    return x ** 2  # square\n",
    "Mixed: ABC abc 123 !!! ??? ... --- ___",
    "\t\t\n\n  \n",
    # Unicode corners: NEL and other White_Space, zero-width and soft hyphen (Cf), title case, ligature,
    # Angstrom sign (NFC to U+00C5), conjoining jamo (NFC composes them), dotted capital I, final sigma.
    "a\u0085b c\u00a0d e\u3000f g\u2009h",
    "zero\u200bwidth soft\u00adhyphen \u01c5ungla \ufb01ne \u212b \u1112\u1161\u11ab",
    "\u0130stanbul \u03a3\u0391\u03a3 \u1e9e \u00df",
    "x\u0300\u0323 \u0041\u030a\u0301 q\u0307\u0323",
    # characters whose class changed after Unicode 9.0 (tokenizers' BERT and punctuation tables), and
    # private use inside and at the end of its range
    "a\u0890b c\ufff0d e\ue001f g\ue000h i\u2e52j k\u0898l m\u1734n o\u166dp",
]

random.seed(1234)


def specials_in_text(specials):
    """Texts with the kind's special and added tokens inside."""
    out = []
    for s in specials:
        out.append(f"{s}Hello{s} world {s}")
        out.append(f"before {s} after")
        out.append(f"{s}{s}")
    out.append(" ".join(specials) + " tail")
    return out


def train(tok, trainer, text=TRAIN_TEXT):
    tok.train_from_iterator(text, trainer=trainer)
    return tok


def canonical_bpe(tok, n_special):
    """The BPE trainer breaks ties between equal counts in no fixed order: renumber the vocabulary (specials
    first, then by length and text) and sort the merges by length and text, so reruns write the same file.
    Shorter merges first keeps every merge's parts formed before it."""
    j = json.loads(tok.to_str())
    old = sorted(j["model"]["vocab"].items(), key=lambda kv: kv[1])
    names = [k for k, _ in old[:n_special]] + sorted((k for k, _ in old[n_special:]), key=lambda k: (len(k), k))
    j["model"]["vocab"] = {k: i for i, k in enumerate(names)}
    j["model"]["merges"] = sorted(j["model"]["merges"], key=lambda m: (len(m[0]) + len(m[1]), m[0], m[1]))
    for t in j["added_tokens"]:
        t["id"] = j["model"]["vocab"][t["content"]]
    return Tokenizer.from_str(json.dumps(j))


def wordpiece_vocab(tok, specials, n_words=300, n_suffixes=200):
    """A WordPiece vocabulary counted here (the WordPiece trainer is not deterministic): specials, every
    character alone and as a ##continuation, the most frequent words, the most frequent word endings."""
    words = {}
    for line in TRAIN_TEXT:
        norm = tok.normalizer.normalize_str(line)
        for w, _ in tok.pre_tokenizer.pre_tokenize_str(norm):
            words[w] = words.get(w, 0) + 1
    chars = sorted({c for w in words for c in w})
    ends = {}
    for w, n in words.items():
        for i in range(1, len(w) - 1):
            ends["##" + w[i:]] = ends.get("##" + w[i:], 0) + n
    top = [w for w, _ in sorted(words.items(), key=lambda kv: (-kv[1], kv[0])) if len(w) > 1][:n_words]
    tops = [e for e, _ in sorted(ends.items(), key=lambda kv: (-kv[1], kv[0]))][:n_suffixes]
    names = list(dict.fromkeys(specials + chars + ["##" + c for c in chars] + top + tops))
    return {k: i for i, k in enumerate(names)}


def gpt2():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    train(tok, trainers.BpeTrainer(vocab_size=600, show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                   special_tokens=["<|endoftext|>"]))
    # A non-special added token that strips spaces on its left, and one that must stand alone.
    tok.add_tokens([AddedToken("<tool>", lstrip=True, rstrip=False, normalized=False, special=False),
                    AddedToken("FOX", single_word=True, normalized=False, special=False)])
    return tok, ["<|endoftext|>", "<tool>", "FOX", " <tool> ", "xFOX FOX"], {"bos_token": "<|endoftext|>",
                                                                           "eos_token": "<|endoftext|>"}


def llama3():
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PAT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    train(tok, trainers.BpeTrainer(vocab_size=700, show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                   special_tokens=specials))
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)])])
    return tok, specials + ["<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"], {
        "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}


def qwen2():
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PAT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    train(tok, trainers.BpeTrainer(vocab_size=700, show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                   special_tokens=specials))
    return tok, specials + ["<|im_start|>user\nCafe\u0301?<|im_end|>\n"], {"eos_token": "<|im_end|>",
                                                                          "add_bos_token": False}


def sentencepiece(kind):
    """Llama 2 (Prepend + Replace normalizers) or Mistral (Metaspace pre-tokenizer) style BPE with byte
    fallback: the <0xNN> tokens sit in the model's vocabulary right after <unk>, <s>, </s>."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    if kind == "llama2":
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
        tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                         decoders.Strip(" ", 1, 0)])
    else:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
        tok.decoder = decoders.Sequence([decoders.Metaspace(replacement="▁", prepend_scheme="first", split=False),
                                         decoders.ByteFallback(), decoders.Fuse()])
    specials = ["<unk>", "<s>", "</s>"]
    train(tok, trainers.BpeTrainer(vocab_size=500, show_progress=False, special_tokens=specials))
    # Rebuild the vocabulary with the 256 byte tokens after the specials, as SentencePiece lays it out.
    j = json.loads(tok.to_str())
    old = sorted(j["model"]["vocab"].items(), key=lambda kv: kv[1])
    names = [k for k, _ in old[:3]] + [f"<0x{b:02X}>" for b in range(256)] + [k for k, _ in old[3:]]
    j["model"]["vocab"] = {k: i for i, k in enumerate(names)}
    for t in j["added_tokens"]:
        t["id"] = j["model"]["vocab"][t["content"]]
    tok = Tokenizer.from_str(json.dumps(j))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B:1",
                                                       special_tokens=[("<s>", tok.token_to_id("<s>"))])
    return tok, specials + ["<0x41>"], {"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True,
                                        "add_eos_token": False}


def bert():
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=20))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None,
                                                lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.model = models.WordPiece(wordpiece_vocab(tok, specials), unk_token="[UNK]", max_input_chars_per_word=20)
    tok.add_special_tokens(specials)
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    # A normalized added token: it matches after lowercasing.
    tok.add_tokens([AddedToken("NewWord", normalized=True, special=False)])
    return tok, specials + ["NEWWORD newword", "averyveryverylongwordthatexceedsthelimit x"], {
        "cls_token": "[CLS]", "sep_token": "[SEP]", "do_lower_case": True}


def bert_cased():
    """BertProcessing, no lowercasing but accents stripped, WordPiece decoder without cleanup."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=True,
                                                lowercase=False)
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation(),
                                                 pre_tokenizers.Digits(individual_digits=True)])
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.model = models.WordPiece(wordpiece_vocab(tok, specials), unk_token="[UNK]")
    tok.add_special_tokens(specials)
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    tok.post_processor = processors.BertProcessing(("[SEP]", tok.token_to_id("[SEP]")), ("[CLS]", tok.token_to_id("[CLS]")))
    return tok, specials, {"cls_token": "[CLS]", "sep_token": "[SEP]", "do_lower_case": False}


def roberta():
    """Byte-level BPE with a prefix space, RobertaProcessing, and Whitespace + Digits pre-tokenizers around it."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.Sequence([normalizers.Strip(left=False, right=True), normalizers.Replace(Regex(r"\d{4,}"), "#"),
                                           normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    train(tok, trainers.BpeTrainer(vocab_size=600, show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                   special_tokens=specials))
    tok.post_processor = processors.RobertaProcessing(("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>")),
                                                      trim_offsets=True, add_prefix_space=True)
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, normalized=False, special=True)])
    return tok, specials + ["a <mask> b", "a<mask>b"], {"bos_token": "<s>", "eos_token": "</s>"}


def whitespace_bpe():
    """BPE with an end-of-word suffix (the trainer is not deterministic with a continuing-subword prefix),
    Whitespace pre-tokenizer, NFKC."""
    tok = Tokenizer(models.BPE(unk_token="[UNK]", end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.BPEDecoder(suffix="</w>")
    train(tok, trainers.BpeTrainer(vocab_size=600, show_progress=False, special_tokens=["[UNK]"],
                                   end_of_word_suffix="</w>"))
    tok = canonical_bpe(tok, 1)
    return tok, ["[UNK]", "ﬁ ﬂ ① ²"], {}


def with_trunc_pad(made, trunc, pad):
    """Truncation and padding, which tokenizers' encode applies to a single sequence too."""
    tok, extra, cfg = made
    tok.enable_truncation(**trunc)
    tok.enable_padding(**pad)
    return tok, extra, cfg


KINDS = {
    "gpt2": gpt2, "llama3": llama3, "qwen2": qwen2, "llama2": lambda: sentencepiece("llama2"),
    "mistral": lambda: sentencepiece("mistral"), "bert": bert, "bert-cased": bert_cased, "roberta": roberta,
    "whitespace-bpe": whitespace_bpe,
    "bert-trunc": lambda: with_trunc_pad(bert(), dict(max_length=16, strategy="only_first"),
                                         dict(length=20, pad_id=0, pad_token="[PAD]")),
    "gpt2-left": lambda: with_trunc_pad(gpt2(), dict(max_length=10, direction="left"),
                                        dict(direction="left", pad_to_multiple_of=8, pad_id=0, pad_token="<|endoftext|>")),
}


def check(heed, n):
    """Differential test of the heed CLI against tokenizers on random strings; returns the differences."""
    import subprocess
    rng = random.Random(n)
    pool = list("aAbBzZ09 _-.,!?'\"()[]<>|#") + [
        "  ", "\n", "\t", "\r\n", "'s", "'LL", "é", "e\u0301", "ß", "İ", "Σ", "東", "京", "한", "😀", "👍🏽", "\u200d",
        "\ufe0f", "▁", "##", "ing", "the", " the", "123456", "\u00a0", "\u3000", "\u0085", "ﬁ", "①", "\ue001", "\u0890",
        "⹒", "<0x41>", "Ġ", "\x00", "\x7f", "\u2028"]
    bad = 0
    for kind in KINDS:
        d = os.path.join(OUT, kind)
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        p = pool + [a.content for a in tok.get_added_tokens_decoder().values()]
        for _ in range(n):
            s = "".join(rng.choice(p) for _ in range(rng.randint(0, 25)))
            for special in (True, False):
                r = subprocess.run([heed, "tokenize", "-m", d] + ([] if special else ["--no-special"]), input=s.encode(),
                                   capture_output=True)
                got = json.loads(r.stdout) if r.returncode == 0 else r.stderr.decode()
                want = tok.encode(s, add_special_tokens=special).ids
                if got != want:
                    bad += 1
                    print(f"{kind} encode {s!r} special={special}: heed {got}, tokenizers {want}", file=sys.stderr)
            ids = tok.encode(s).ids
            r = subprocess.run([heed, "detokenize", "-m", d, "--ids", ",".join(map(str, ids))], capture_output=True)
            if r.stdout != tok.decode(ids, skip_special_tokens=False).encode():
                bad += 1
                print(f"{kind} decode {ids}: heed {r.stdout!r}", file=sys.stderr)
    print(f"{len(KINDS)} kinds x {n} random strings: {bad} differences", file=sys.stderr)
    return bad


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--check":
        sys.exit(1 if check(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 100) else 0)
    for kind, make in KINDS.items():
        tok, extra, cfg = make()
        d = os.path.join(OUT, kind)
        os.makedirs(d, exist_ok=True)
        tok.save(os.path.join(d, "tokenizer.json"), pretty=False)
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))  # goldens from what was written
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            json.dump(cfg, f, indent=1)
        cases = []
        for text in TESTS + specials_in_text(extra):
            with_sp = tok.encode(text).ids
            no_sp = tok.encode(text, add_special_tokens=False).ids
            cases.append({"text": text, "ids": with_sp, "ids_no_special": no_sp,
                          "decoded": tok.decode(with_sp, skip_special_tokens=False),
                          "decoded_skip_special": tok.decode(with_sp, skip_special_tokens=True)})
        n = tok.get_vocab_size(with_added_tokens=True)
        rng = random.Random(kind)
        seqs = [[rng.randrange(n) for _ in range(rng.randrange(1, 12))] for _ in range(40)]
        golden = {"tokenizers_version": tokenizers.__version__, "vocab_size": n, "cases": cases,
                  # hex of the UTF-8 bytes: single tokens decode to NUL and other bytes a JSON reader may mangle
                  "single_ids_hex": [tok.decode([i], skip_special_tokens=False).encode().hex() for i in range(n)],
                  "id_seqs": [{"ids": s, "decoded_hex": tok.decode(s, skip_special_tokens=False).encode().hex()}
                              for s in seqs]}
        with open(os.path.join(d, "golden.json"), "w") as f:
            json.dump(golden, f, ensure_ascii=False, indent=0)
            f.write("\n")
        print(f"{kind}: vocab {n}, {len(cases)} cases, {os.path.getsize(os.path.join(d, 'tokenizer.json'))} bytes",
              file=sys.stderr)


if __name__ == "__main__":
    main()
