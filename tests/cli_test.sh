#!/usr/bin/env bash
# cli_test.sh — the heed CLI's contract (../shared/CLI.md): --version, --help, errors with a non-zero
# status, and the JSON fields `heed bench attn --json` must print. Usage: cli_test.sh path/to/heed
set -u
heed="$1"
. "$(dirname "$0")/check.sh"

out=$("$heed" --version) && [[ "$out" =~ ^heed\ [0-9]+\.[0-9]+\.[0-9]+$ ]] && ok || bad "--version printed '$out'"
"$heed" --help | grep -q "bench" && ok || bad "--help does not list bench"
"$heed" no-such-command 2>/dev/null && bad "unknown command exited 0" || ok
"$heed" no-such-command 2>&1 >/dev/null | grep -q "unknown command" && ok || bad "unknown command message"
"$heed" bench --help >/dev/null && ok || bad "bench --help"
"$heed" bench attn --no-such-flag >/dev/null 2>&1 && bad "bad flag exited 0" || ok

json=$("$heed" bench attn --quick --json --case decode 2>/dev/null)
[ -n "$json" ] && ok || bad "bench attn --quick --json --case decode printed nothing"
fields=(case B Hq Hkv D Tq Tk causal kv_dtype gflops gbps sgemm_peak_gflops read_bw_gbps peak_ratio bw_ratio)
while IFS= read -r line; do
  [[ "$line" =~ ^\{.*\}$ ]] && ok || bad "not a JSON object line: $line"
  for f in "${fields[@]}"; do
    grep -q "\"$f\":" <<<"$line" && ok || bad "field $f missing in: $line"
  done
done <<<"$json"

# heed tokenize / detokenize on a golden tokenizer (tests/data/tok, from tools/make_tokenizer_goldens.py)
tok="$(dirname "$0")/data/tok/llama2"
out=$(printf 'Hello world' | "$heed" tokenize -m "$tok") && [ "$out" = "[1, 493, 311, 481, 641, 329, 449, 318, 310]" ] && ok || bad "tokenize printed '$out'"
out=$(printf 'Hello world' | "$heed" tokenize -m "$tok" --no-special) && [ "$out" = "[493, 311, 481, 641, 329, 449, 318, 310]" ] && ok || bad "tokenize --no-special printed '$out'"
out=$(printf '' | "$heed" tokenize -m "$tok") && [ "$out" = "[1]" ] && ok || bad "tokenize of empty stdin printed '$out'"
out=$("$heed" detokenize -m "$tok" --ids 1,493,311,481,641,329,449,318,310; echo .) && [ "$out" = "<s> Hello world." ] && ok || bad "detokenize printed '$out'"
"$heed" detokenize -m "$tok" --ids 1,100000 >/dev/null 2>&1 && bad "detokenize of an unknown id exited 0" || ok
printf '\xff' | "$heed" tokenize -m "$tok" >/dev/null 2>&1 && bad "tokenize of invalid UTF-8 exited 0" || ok
"$heed" tokenize -m /nonexistent </dev/null >/dev/null 2>&1 && bad "tokenize of a missing model exited 0" || ok

finish cli_test
