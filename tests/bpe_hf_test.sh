#!/usr/bin/env bash
# bpe_hf_test.sh — a tokenizer trained by `heed train-tokenizer` must be what Hugging Face `tokenizers`
# reads: tokenizers 0.23.3 is pip-installed into a temp dir; two tokenizers are trained on a few kB of
# text (BOS template and extra special tokens; then --no-bos); for each text of a golden list,
# Tokenizer.from_file(...).encode must give the ids of `heed tokenize` (with and without special tokens)
# and decode those of `heed detokenize` (with and without --skip-special). Skips (exit 0, says so) only
# when the registry cannot be reached. Usage: bpe_hf_test.sh HEED
set -u
heed="$1"
src="$(cd "$(dirname "$0")/.." && pwd)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/check.sh"

if ! python3 -m pip --version >/dev/null 2>&1; then
  echo "bpe_hf_test: FAIL: python3 -m pip is not available to install tokenizers" >&2
  exit 1
fi
if ! python3 -m pip install -q --no-deps --disable-pip-version-check --target "$tmp/site" \
     tokenizers==0.23.3 >"$tmp/pip.log" 2>&1; then
  if grep -Eq "NewConnectionError|ConnectTimeout|ReadTimeout|Temporary failure in name resolution|Network is unreachable|Max retries exceeded|ProxyError|Name or service not known|Connection refused" "$tmp/pip.log"; then
    echo "bpe_hf_test: SKIPPED: the package registry is unreachable (pip install tokenizers failed):"
    tail -n 3 "$tmp/pip.log"
    exit 0
  fi
  echo "bpe_hf_test: FAIL: pip install tokenizers failed:" >&2
  cat "$tmp/pip.log" >&2
  exit 1
fi

# the corpus: the project's own docs, plus lines with accents, CJK, emoji and special tokens
{
  cat "$src/docs/tokenizers.md" "$src/README.md"
  for i in 1 2 3; do
    printf 'Caf\xc3\xa9 na\xc3\xafve r\xc3\xa9sum\xc3\xa9, \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe6\x96\x87 '
    printf '\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb <|end_of_text|>\n\n  two spaces, a\ttab  \r\n'
  done
} >"$tmp/corpus.txt"

"$heed" train-tokenizer --help | grep -q "usage: heed train-tokenizer" && ok || bad "--help"
"$heed" train-tokenizer -f "$tmp/corpus.txt" --vocab 900 -o "$tmp/a" --special "<|pad|>,<|sep|>" 2>"$tmp/err" \
  && ok || bad "training a: $(cat "$tmp/err")"
"$heed" train-tokenizer -f "$tmp/corpus.txt" --vocab 700 -o "$tmp/b" --no-bos --bos "<s>" --eos "</s>" 2>"$tmp/err" \
  && ok || bad "training b: $(cat "$tmp/err")"
# a failed training leaves the directory untouched
cp "$tmp/a/tokenizer.json" "$tmp/before.json"
if "$heed" train-tokenizer -f "$tmp/corpus.txt" --vocab 10 -o "$tmp/a" 2>"$tmp/err"; then bad "--vocab 10 accepted"
else grep -q "vocab_size is 10" "$tmp/err" && cmp -s "$tmp/a/tokenizer.json" "$tmp/before.json" && ok \
       || bad "--vocab 10: $(cat "$tmp/err")"; fi

cat >"$tmp/check.py" <<'EOF'
import json, subprocess, sys
from tokenizers import Tokenizer
heed, d, vocab = sys.argv[1], sys.argv[2], int(sys.argv[3])
t = Tokenizer.from_file(d + "/tokenizer.json")
def say(ok, what):
    print(("OK " if ok else "BAD ") + what)
say(t.get_vocab_size() == vocab, f"{d}: vocab {t.get_vocab_size()} (asked {vocab})")
texts = ["Hello world", "The tokenizer reads tokenizer.json exactly.", "", " ", "   ", "a  b   c", "\n", "\n\n\n",
         "line one\nline two\r\nline three\n", "tabs\tand\t\ttabs", "trailing spaces   ", "  leading",
         "1234567890 3.14159 2026-11-29", "don't WON'T they'll I'M we've", "Café naïve résumé Ångström",
         "e\u0301 combining", "日本語のテキスト", "中文 한국어", "👩‍💻 family 👨‍👩‍👧 👍🏽",
         "<|end_of_text|>", "a<|end_of_text|>b", "x <|pad|> y<|sep|>", "<s>hi</s>", "<|begin_of_text|> twice",
         "\u00a0no-break\u3000ideographic\u200bzero-width", "email: a@b.c, url: https://x.y/z?q=1#f",
         "MiXeD CaSe and UPPER", "unseen qwzx vvvv", "#include <stdio.h>\nint main(void) { return 0; }\n"]
for s in texts:
    for special in (True, False):
        want = t.encode(s, add_special_tokens=special).ids
        r = subprocess.run([heed, "tokenize", "-m", d] + ([] if special else ["--no-special"]), input=s.encode(),
                           capture_output=True)
        got = json.loads(r.stdout) if r.returncode == 0 else r.stderr.decode()
        say(got == want, f"{d}: encode {s!r} special={special}: heed {got} tokenizers {want}")
        for skip in (False, True):
            dw = t.decode(want, skip_special_tokens=skip)
            r = subprocess.run([heed, "detokenize", "-m", d, "--ids", ",".join(map(str, want))]
                               + (["--skip-special"] if skip else []), capture_output=True)
            dg = r.stdout.decode("utf-8") if r.returncode == 0 else r.stderr.decode()
            say(dg == dw, f"{d}: decode {want} skip={skip}: heed {dg!r} tokenizers {dw!r}")
        if not special:
            say(t.decode(want, skip_special_tokens=False) == s, f"{d}: {s!r} decodes to itself")
EOF
for spec in "a 900" "b 700"; do
  set -- $spec
  [ -f "$tmp/$1/tokenizer.json" ] || continue
  while read -r verdict what; do
    [ "$verdict" = OK ] && ok || bad "$what"
  done < <(PYTHONPATH="$tmp/site" python3 "$tmp/check.py" "$heed" "$tmp/$1" "$2" 2>&1 || echo "BAD check.py failed")
done
python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); sys.exit(not (c["bos_token"]=="<s>" and c["add_bos_token"] is False))' \
  "$tmp/b/tokenizer_config.json" && ok || bad "tokenizer_config.json of b"

finish bpe_hf_test "tokenizers 0.23.3"
