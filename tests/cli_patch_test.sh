#!/usr/bin/env bash
# cli_patch_test.sh — `heed patch` (activation patching) on the tiny llama3-old checkpoint of tests/data/models:
# JSON has one entry per head and per layer, each score is (metric - corrupt) / (clean - corrupt), a copy whose
# layer-1 o_proj is zeroed gives exactly 0 for every patch of layer 1 (what a head writes cannot reach the logits)
# and not for layer 0, --per selects, and errors are clear. Usage: cli_patch_test.sh HEED
set -u
heed="$1"
data="$(cd "$(dirname "$0")" && pwd)/data"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/check.sh"
m="$data/models/llama3-old"

zero_weight "$m" "$tmp/z" 'model\.layers\.1\.self_attn\.o_proj\.weight'
cmp -s "$m/model.safetensors" "$tmp/z/model.safetensors" && bad "zero_weight left the weights as they were" || ok

args=(--clean-ids 1,10,11,12,10,11 --corrupt-ids 1,20,21,22,10,11 --answer-id 12 --foil-id 30)
field() { grep -o "\"$1\": [^,}]*" | sed 's/.*: //'; }

out=$("$heed" patch -m "$m" "${args[@]}" --json) && ok || bad "patch --json failed"
[ "$(grep -c '"head":' <<<"$out")" -eq 8 ] && ok || bad "expected 8 head entries (2 layers x 4 heads): $out"
[ "$(grep -c '"layer":' <<<"$out")" -eq 10 ] && ok || bad "expected 8 head + 2 layer entries: $out"
clean=$(field clean <<<"$out") corrupt=$(field corrupt <<<"$out")
paste <(field score <<<"$out") <(field metric <<<"$out") |
  awk -v c="$clean" -v k="$corrupt" '{ n++; e = $1 - ($2 - k) / (c - k); if (e > 1e-6 || e < -1e-6) bad = 1 }
                                     END { exit !(n == 10 && !bad) }' && ok || bad "score != normalised metric: $out"

# layer 1's o_proj zeroed: every patch of layer 1 leaves the corrupted metric exactly; some head of layer 0 moves it
out=$("$heed" patch -m "$tmp/z" "${args[@]}" --json)
grep '"layer": 1' <<<"$out" | field score | awk '{ n++; if ($1 != 0) bad = 1 } END { exit !(n == 5 && !bad) }' && ok ||
  bad "layer 1 with o_proj zeroed: expected 5 scores of exactly 0: $out"
grep '"layer": 0' <<<"$out" | field score | awk '{ if ($1 > 1e-3 || $1 < -1e-3) moved = 1 } END { exit !moved }' && ok ||
  bad "layer 0: no patch moved the metric: $out"

out=$("$heed" patch -m "$m" "${args[@]}" --json --per layer)
[ "$(grep -c '"layer":' <<<"$out")" -eq 2 ] && ! grep -q '"heads"' <<<"$out" && ok || bad "--per layer: $out"
out=$("$heed" patch -m "$m" "${args[@]}" --per head)
[ "$(grep -c '^[01] ' <<<"$out")" -eq 8 ] && ! grep -q ' all ' <<<"$out" && ok || bad "--per head table: $out"

# positions: --pos restricts the patch (all positions listed = the default; -1 = the last); layer-pos and head-pos
# patch each position alone: position 0 (the same token in both prompts) and, in the last layer, every position
# but the last (it reaches the logits only there) leave the corrupted metric exactly
full=$("$heed" patch -m "$m" "${args[@]}" --json --per layer)
[ "$("$heed" patch -m "$m" "${args[@]}" --json --per layer --pos 0,1,2,3,4,5)" = "$full" ] && ok ||
  bad "--pos listing every position differs from the default"
[ "$("$heed" patch -m "$m" "${args[@]}" --json --per head --pos -1)" = \
  "$("$heed" patch -m "$m" "${args[@]}" --json --per head --pos 5)" ] && ok || bad "--pos -1 differs from --pos 5"
out=$("$heed" patch -m "$m" "${args[@]}" --json --per layer-pos)
[ "$(grep -c '"pos":' <<<"$out")" -eq 12 ] && grep -q '"layer_pos"' <<<"$out" && ok || bad "--per layer-pos: $out"
grep -E '"pos": 0,|"layer": 1, "pos": [0-4],' <<<"$out" | field score |
  awk '{ n++; if ($1 != 0) bad = 1 } END { exit !(n == 6 && !bad) }' && ok ||
  bad "layer-pos: position 0 and layer 1 before the last position should score exactly 0: $out"
grep '"layer": 1, "pos": 5,' <<<"$out" | field score | awk '{ exit !($1 > 1e-3 || $1 < -1e-3) }' && ok ||
  bad "layer-pos: layer 1 at the last position does not move the metric: $out"
out=$("$heed" patch -m "$m" "${args[@]}" --per head-pos --pos 3,5)
[ "$(grep -cE '^[01] +[0-3] +[35] ' <<<"$out")" -eq 16 ] && ok || bad "--per head-pos --pos 3,5 table: $out"

# errors: exit status and a message naming the problem
err() { # expected-status pattern args...
  local want="$1" pat="$2"
  shift 2
  "$heed" patch "$@" >/dev/null 2>"$tmp/err"
  local rc=$?
  [ $rc -eq "$want" ] && grep -q -- "$pat" "$tmp/err" && ok || bad "patch $* -> $rc: $(cat "$tmp/err")"
}
err 1 'same length' -m "$m" --clean-ids 1,2,3 --corrupt-ids 1,2 --answer-id 1 --foil-id 2
err 1 'same metric' -m "$m" --clean-ids 1,2,3 --corrupt-ids 1,2,3 --answer-id 1 --foil-id 2
err 1 'answer-id: expected an id' -m "$m" --clean-ids 1,2 --corrupt-ids 1,3 --answer-id 99999 --foil-id 2
err 2 'one of them' -m "$m" --clean-ids 1,2 --corrupt-ids 1,3 --answer-id 1 --answer x --foil-id 2
err 2 'corrupt TEXT or --corrupt-ids' -m "$m" --clean-ids 1,2 --answer-id 1 --foil-id 2
err 2 'expected head, layer, head-pos or layer-pos' -m "$m" "${args[@]}" --per neuron
err 1 'position 6 is outside the 6-token prompts' -m "$m" "${args[@]}" --pos 0,6
err 1 'position -7 is outside' -m "$m" "${args[@]}" --pos -7
err 1 "expected comma-separated positions, got '1,,2'" -m "$m" "${args[@]}" --pos 1,,2
err 1 'tokenizer' -m "$m" --clean-ids 1,2 --corrupt-ids 1,3 --answer x --foil-id 2
err 2 "unknown or incomplete option '--bogus'" -m "$m" "${args[@]}" --bogus

# text prompts and token strings on the default model (the only one with a tokenizer.json): no -m needed
out=$("$heed" patch --clean "When he saw her, he said" --corrupt "When she saw him, she said" --answer " he" \
  --foil " she" --json --per layer) && grep -q '"layers"' <<<"$out" && ok || bad "text prompts on the default model: $out"
err 1 "' cat' encodes to 2 tokens" --clean "a b" --corrupt "a c" --answer " cat" --foil " he"

finish cli_patch
