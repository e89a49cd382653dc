#!/usr/bin/env bash
# cli_heads_test.sh — `heed heads` (../shared/CLI.md) on tiny checkpoints of tests/data/models. Known answers
# come from a copy of llama3-old whose q_proj weights are zeroed: every head then attends uniformly over the
# keys it sees (A[i][j] = 1/(i+1)), so each score has a closed form (computed here with awk). Also: JSON has
# one entry per (layer, head), the table is ranked, the induction input is seeded, and errors are clear.
# Usage: cli_heads_test.sh HEED
set -u
heed="$1"
data="$(cd "$(dirname "$0")" && pwd)/data"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/check.sh"

zero_weight "$data/models/llama3-old" "$tmp/uniform" 'model\.layers\.[0-9]*\.self_attn\.q_proj\.weight'
m="$data/models/llama3-old"
u="$tmp/uniform"
cmp -s "$m/model.safetensors" "$u/model.safetensors" && bad "zero_weight left the weights as they were" || ok
ids=1,10,11,12,10,11,12 # T = 7; the second 10,11,12 repeats the first

# field F of every JSON entry on stdin, one per line
field() { grep -o "\"$1\": [^,}]*" | sed 's/.*: //'; }
# all values on stdin within 1e-5 of $1 (and at least one)
all_near() { awk -v e="$1" '{ n++; if ($1 - e > 1e-5 || e - $1 > 1e-5) bad = 1 } END { exit !(n > 0 && !bad) }'; }
harmonic() { awk -v n="$1" 'BEGIN { s = 0; for (i = 1; i <= n; i++) s += 1 / i; printf "%.12g", s }'; }
H7=$(harmonic 7)

out=$("$heed" heads -m "$u" --score sink --ids "$ids" --json 2>/dev/null)
[ "$(field layer <<<"$out" | wc -l)" -eq 8 ] && ok || bad "sink JSON: expected 8 entries (2 layers x 4 heads): $out"
field score <<<"$out" | all_near "$(awk -v h="$H7" 'BEGIN { print h / 7 }')" && ok || bad "uniform sink alpha_0: $out"
"$heed" heads -m "$u" --score sink --ids "$ids" 2>/dev/null | grep -q '^Sink^0.3 = 1: 8 of 8 heads' && ok ||
  bad "uniform Sink^0.3 (alpha_0 = H_7/7 = 0.37 in every head)"
"$heed" heads -m "$u" --score sink --ids "$ids" --threshold 0.4 2>/dev/null | grep -q '^Sink^0.4 = 0: 0 of 8' && ok ||
  bad "uniform Sink^0.4"

out=$("$heed" heads -m "$u" --score prev-token --ids "$ids" --json 2>/dev/null)
field score <<<"$out" | all_near "$(awk -v h="$H7" 'BEGIN { print (h - 1) / 7 }')" && ok || bad "uniform prev-token: $out"
out=$("$heed" heads -m "$u" --score induction --ids "$ids" --json 2>/dev/null)
field score <<<"$out" | all_near "$(awk 'BEGIN { print (1/5 + 1/6 + 1/7) / 7 }')" && ok || bad "uniform induction: $out"
field row_mean <<<"$out" | all_near "$(awk 'BEGIN { print (1/5 + 1/6 + 1/7) / 3 }')" && ok || bad "uniform induction rows: $out"
out=$("$heed" heads -m "$u" --score entropy --ids "$ids" --json 2>/dev/null)
field score <<<"$out" | all_near "$(awk 'BEGIN { for (i = 1; i <= 7; i++) s += log(i); print s / 7 }')" && ok ||
  bad "uniform entropy: $out"
# hidden sinks: s_j = (H_7 - H_j) / (7 - j) is largest at j = 1 and above 0.1 for every j >= 1
out=$("$heed" heads -m "$u" --score hidden-sink --ids "$ids" --json 2>/dev/null)
field score <<<"$out" | all_near "$(awk -v h="$H7" 'BEGIN { print (h - 1) / 6 }')" && ok || bad "uniform hidden sink: $out"
[ "$(field max_pos <<<"$out" | sort -u)" = 1 ] && ok || bad "hidden sink position: $out"
[ "$(grep -c '"sinks": \[1,2,3,4,5,6\]' <<<"$out")" -eq 8 ] && ok || bad "hidden sinks 1..6: $out"
out=$("$heed" heads -m "$u" --score layer-sim --ids "$ids" --json 2>/dev/null)
[ "$(field layer <<<"$out" | sort -u)" = 1 ] && ok || bad "layer-sim lists layer 1 only: $out"
field score <<<"$out" | all_near 1 && field layer_cosine <<<"$out" | all_near 1 && ok || bad "uniform layer-sim: $out"
out=$("$heed" heads -m "$u" --score dormant --ids "$ids" --json 2>/dev/null)
field score <<<"$out" | all_near "$(awk -v h="$H7" 'BEGIN { print h / 7 }')" && ok || bad "uniform first-token share: $out"
[ "$(field ablation_change <<<"$out" | awk '$1 > 0' | wc -l)" -eq 8 ] && ok || bad "zeroing a head changed nothing: $out"

# the table is ranked (scores non-increasing) and agrees with the JSON of the same run
tab=$("$heed" heads -m "$m" --score dormant --ids "$ids" 2>/dev/null)
awk 'NR > 1 { if (NR > 2 && $4 > prev + 1e-12) bad = 1; prev = $4; n++ } END { exit !(n == 8 && !bad) }' <<<"$tab" && ok ||
  bad "dormant table not ranked: $tab"
js=$("$heed" heads -m "$m" --score dormant --ids "$ids" --json 2>/dev/null)
[ "$(awk 'NR > 1 { printf "%.6f\n", $4 }' <<<"$tab")" = "$(field score <<<"$js" | awk '{ printf "%.6f\n", $1 }')" ] && ok ||
  bad "table and JSON ranks differ"

# the induction input [BOS, r, r]: a seed reproduces it, another differs
a=$("$heed" heads -m "$m" --score induction --seed 3 --json 2>/dev/null)
b=$("$heed" heads -m "$m" --score induction --seed 3 --json 2>/dev/null)
c=$("$heed" heads -m "$m" --score induction --seed 4 -n 20 --json 2>/dev/null)
[ -n "$a" ] && [ "$a" = "$b" ] && [ "$a" != "$c" ] && ok || bad "induction seeds: same seed differs or seeds agree"
[ "$(field layer <<<"$a" | wc -l)" -eq 8 ] && ok || bad "induction JSON entries: $a"

# retrieval: under uniform attention every head's top-1 key is 0 (ties go to the first key), so with the needle
# at [0, 2) a head scores 1/2 per generated id equal to ids[0]; the generated ids are the greedy decode
read -r _ gids ggen < <(grep '^llama3-old ' "$data/run/gen_ids.txt")
out=$("$heed" heads -m "$m" --score retrieval --ids "$gids" --needle-ids "$(cut -d, -f4-6 <<<"$gids")" -n 8 2>&1)
grep -q "^needle at \[3, 6) of 32 tokens; generated \[$ggen\]" <<<"$out" && ok ||
  bad "retrieval decode differs from the golden greedy continuation [$ggen]: $out"
out=$("$heed" heads -m "$u" --score retrieval --ids 108,66,100,52,57,107,12 --needle-ids 108,66 -n 8 --json 2>"$tmp/err")
gen=$(sed -n 's/.*generated \[\([0-9,]*\)\].*/\1/p' "$tmp/err")
hits=$(tr , '\n' <<<"$gen" | grep -cx 108)
[ "$hits" -gt 0 ] && field score <<<"$out" | all_near "$(awk -v h="$hits" 'BEGIN { print h / 2 }')" && ok ||
  bad "uniform retrieval: $hits copies of 108 in [$gen]: $out"
grep -q "needle recall 0.5$" "$tmp/err" && ok || bad "needle recall: $(cat "$tmp/err")"
# a --needle text is found in the -p text by its ids (gpt2's byte-level BPE: one id per character here)
mkdir -p "$tmp/gpt2tok" && ln -sf "$data/models/gpt2"/*.json "$data/models/gpt2"/model.safetensors "$tmp/gpt2tok"/ &&
  cp "$data/tok/gpt2"/tokenizer*.json "$tmp/gpt2tok"/
out=$("$heed" heads -m "$tmp/gpt2tok" --score retrieval -p "q.x.q.y.z" --needle ".y" -n 3 --json 2>&1 >/dev/null)
grep -q '^needle at \[5, 7) of 9 tokens' <<<"$out" && ok || bad "--needle .y in q.x.q.y.z: $out"
"$heed" heads -m "$m" --score retrieval --ids 1,2,3 --needle-ids 4 2>"$tmp/err"; [ $? -eq 1 ] &&
  grep -q 'do not occur' "$tmp/err" && ok || bad "absent needle: $(cat "$tmp/err")"
"$heed" heads -m "$m" --score sink --ids 1,2,3 --needle-ids 2 2>"$tmp/err"; [ $? -eq 2 ] && ok || bad "--needle-ids with sink"

# errors: no -m and no default model, an unknown score, no input for an input score, both -p and --ids, a bad -n
HEED_MODEL="$tmp/none" "$heed" heads --score sink --ids 1,2 2>"$tmp/err"; [ $? -ne 0 ] && grep -q "$tmp/none" "$tmp/err" && ok ||
  bad "missing default model: $(cat "$tmp/err")"
"$heed" heads -m "$m" --score nope 2>"$tmp/err"; [ $? -eq 2 ] && grep -q 'expected one of sink' "$tmp/err" && ok ||
  bad "unknown score: $(cat "$tmp/err")"
"$heed" heads -m "$m" --score sink 2>"$tmp/err"; [ $? -eq 2 ] && grep -q 'needs an input' "$tmp/err" && ok ||
  bad "sink without input: $(cat "$tmp/err")"
"$heed" heads -m "$m" --score sink -p hi --ids 1 2>"$tmp/err"; [ $? -eq 2 ] && grep -q 'not both' "$tmp/err" && ok ||
  bad "-p and --ids: $(cat "$tmp/err")"
"$heed" heads -m "$m" --score induction -n 0 2>"$tmp/err"; [ $? -eq 2 ] && ok || bad "-n 0 accepted"
"$heed" heads -m "$m" --score sink --ids 1,999 2>"$tmp/err"; [ $? -eq 1 ] && grep -q 'vocabulary' "$tmp/err" && ok ||
  bad "id outside the vocabulary: $(cat "$tmp/err")"

finish cli_heads
