#!/usr/bin/env bash
# cli_probe_test.sh — `heed lens` (the logit lens) and `heed probe` (linear probes per layer) on the embedded
# default model (models/default: 4 layers). Lens: one entry per hidden state 0..4, probabilities ranked; the last
# layer's lens equals the softmax of `heed logits`; with layer 3's o_proj and down_proj zeroed (layer 3 adds
# nothing to the residual stream) the lens of hidden state 3, read through heed_model_unembed, equals the
# model's output; --pos P equals the input cut after P; --target. Probe on tests/data/probe/styles.jsonl
# (90 sentences, 3 styles): table and JSON agree, accuracies in [0, 1], the stratified split, a seed reproduces
# the run and another changes it, the styles are separable at some layer, and the errors name file and line.
# Usage: cli_probe_test.sh HEED
set -u
heed="$1"
root="$(cd "$(dirname "$0")/.." && pwd)"
m="$root/models/default"
set_="$root/tests/data/probe/styles.jsonl"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/check.sh"

# field F of every JSON object on stdin, one per line
field() { grep -o "\"$1\":[^,}]*" | sed 's/^[^:]*://'; }
# the JSON object of layer L (its "top" list and target fields) of a lens JSON on stdin
layer() { sed 's/{"layer":/\n&/g' | grep "^{\"layer\":$1,"; }
# top ids and probabilities of one lens layer, "id p" per line, p printed with 7 significant digits
tops() { grep -o '"id":[0-9]*,"token":"\([^"\\]\|\\.\)*","p":[^}]*' | sed 's/"id":\([0-9]*\),.*"p":\(.*\)/\1 \2/' |
  awk '{ printf "%d %.7g\n", $1, $2 }'; }

# --- lens -----------------------------------------------------------------------------------------------
ids=0,77,321,12,905,46,288,402 # eight ids of the default model's vocabulary
out=$("$heed" lens -m "$m" --ids "$ids" --top 4 --json --threads 1 2>"$tmp/err")
[ "$(field layer <<<"$out" | tr '\n' ' ')" = "0 1 2 3 4 " ] && ok || bad "lens: layers 0..4 expected: $out $(cat "$tmp/err")"
[ "$(layer 2 <<<"$out" | tops | wc -l)" -eq 4 ] && ok || bad "lens --top 4: $(layer 2 <<<"$out")"
for L in 0 1 2 3 4; do
  layer $L <<<"$out" | tops | awk 'BEGIN { prev = 2 } { if ($2 < 0 || $2 > 1 || $2 > prev) bad = 1; prev = $2; s += $2 }
    END { exit !(NR == 4 && !bad && s <= 1 + 1e-6) }' || { bad "lens layer $L: probabilities not ranked in [0, 1]"; continue; }
  ok
done

# the last hidden state's lens is the model's next-token distribution: softmax of `heed logits` at the last position
"$heed" logits -m "$m" --ids "$ids" -o "$tmp/l.safetensors" --threads 1 2>"$tmp/err" || bad "heed logits: $(cat "$tmp/err")"
f="$tmp/l.safetensors"
hlen=$(od -A n -t u8 -N 8 "$f" | tr -d ' ')
read -r a b < <(head -c $((8 + hlen)) "$f" | grep -ao '"logits":{[^}]*}' | sed 's/.*"data_offsets":\[\([0-9]*\),\([0-9]*\)\].*/\1 \2/')
V=4096
want=$(od -A n -t f4 -v -j $((8 + hlen + a + 7 * V * 4)) -N $((V * 4)) "$f" | tr -s ' ' '\n' | grep . |
  awk '{ x[NR - 1] = $1; if (NR == 1 || $1 > mx) mx = $1 }
       END { for (i = 0; i < NR; i++) s += exp(x[i] - mx); for (k = 0; k < 4; k++) { b = -1
               for (i = 0; i < NR; i++) if (!(i in used) && (b < 0 || x[i] > x[b])) b = i
               used[b] = 1; printf "%d %.7g\n", b, exp(x[b] - mx) / s } }')
got=$(layer 4 <<<"$out" | tops)
[ -n "$want" ] && awk 'NR == FNR { id[FNR] = $1; p[FNR] = $2; next }
  { if ($1 != id[FNR] || $2 - p[FNR] > 2e-6 || p[FNR] - $2 > 2e-6) bad = 1; n++ } END { exit !(n == 4 && !bad) }' \
  <(echo "$want") <(echo "$got") && ok || bad "lens of the last layer is not the softmax of heed logits: [$got] vs [$want]"

# layer 3 zeroed (o_proj and down_proj: it adds 0 to the residual stream): hidden state 3, read out through
# heed_model_unembed, must give the model's own output (hidden state 4, after the final norm). The intact model
# differs there, so the comparison can fail.
zero_weight "$m" "$tmp/z3" 'model\.layers\.3\.\(self_attn\.o_proj\|mlp\.down_proj\)\.weight'
cp "$m/tokenizer.json" "$tmp/z3/"
cmp -s "$m/model.safetensors" "$tmp/z3/model.safetensors" && bad "zero_weight left the weights as they were" || ok
z=$("$heed" lens -m "$tmp/z3" --ids "$ids" --top 4 --json --threads 1 2>/dev/null)
[ -n "$z" ] && [ "$(layer 3 <<<"$z" | tops)" = "$(layer 4 <<<"$z" | tops)" ] && ok ||
  bad "layer 3 zeroed: lens 3 [$(layer 3 <<<"$z" | tops | tr '\n' ' ')] != lens 4 [$(layer 4 <<<"$z" | tops | tr '\n' ' ')]"
[ "$(layer 3 <<<"$out" | tops)" != "$(layer 4 <<<"$out" | tops)" ] && ok || bad "intact model: lens 3 equals lens 4"

# --pos P: the same as the input cut after P (attention is causal)
p3=$("$heed" lens -m "$m" --ids "$ids" --pos 3 --json --threads 1 2>/dev/null | sed 's/"n_tokens":[0-9]*//')
c3=$("$heed" lens -m "$m" --ids 0,77,321,12 --json --threads 1 2>/dev/null | sed 's/"n_tokens":[0-9]*//')
[ -n "$p3" ] && [ "$p3" = "$c3" ] && ok || bad "--pos 3 differs from the input cut after position 3"

# --target: its rank is 1 exactly where it is the top token, and its probability is the listed one
t=$("$heed" lens -m "$m" -p "And it came to pass that the" --target " LORD" --json --threads 1 2>"$tmp/err")
tid=$(field target <<<"$t")
[ "$(field target_rank <<<"$t" | wc -l)" -eq 5 ] && ok || bad "--target: 5 ranks expected: $t $(cat "$tmp/err")"
for L in 0 1 2 3 4; do
  row=$(layer $L <<<"$t")
  r=$(field target_rank <<<"$row")
  tp=$(field target_p <<<"$row")
  first=$(tops <<<"$row" | head -1)
  if [ "$r" = 1 ]; then [ "${first%% *}" = "$tid" ] && awk -v a="$tp" -v b="${first#* }" 'BEGIN { exit !(a - b < 1e-6 && b - a < 1e-6) }'
  else [ "${first%% *}" != "$tid" ] && awk -v a="$tp" -v b="${first#* }" 'BEGIN { exit !(a <= b) }'; fi && ok ||
    bad "--target at layer $L: rank $r, p $tp, top [$first]"
done
"$heed" lens -m "$m" -p "And it came to pass that the" --target-id "$tid" --json --threads 1 2>/dev/null | grep -q "\"target\":$tid," && ok ||
  bad "--target-id"
"$heed" lens -m "$m" -p "And God said" 2>/dev/null | grep -q "^logit lens at position 3 of 4, token ' said'" && ok ||
  bad "lens table header: $("$heed" lens -m "$m" -p "And God said" 2>&1 | head -2)"

# lens errors
"$heed" lens -m "$m" --ids 0,77 --pos 2 2>"$tmp/err"; [ $? -eq 1 ] && grep -q 'past the input' "$tmp/err" && ok ||
  bad "--pos past the end: $(cat "$tmp/err")"
"$heed" lens -m "$m" -p "And" --target " LORD God" 2>"$tmp/err"; [ $? -eq 1 ] && grep -q 'exactly one' "$tmp/err" && ok ||
  bad "multi-token target: $(cat "$tmp/err")"
"$heed" lens -m "$m" -p "And" --target-id 4096 2>"$tmp/err"; [ $? -eq 1 ] && grep -q 'vocabulary' "$tmp/err" && ok ||
  bad "target outside the vocabulary: $(cat "$tmp/err")"
"$heed" lens -m "$m" -p "And" --target x --target-id 3 2>"$tmp/err"; [ $? -eq 2 ] && ok || bad "--target and --target-id"
"$heed" lens -m "$m" -p "And" --top 0 2>"$tmp/err"; [ $? -eq 2 ] && ok || bad "--top 0 accepted"
"$heed" lens -m "$m" 2>"$tmp/err"; [ $? -eq 2 ] && grep -q 'exactly one of -p' "$tmp/err" && ok || bad "lens without input"
"$heed" lens -m "$root/tests/data/models/bert" --ids 1,2 2>"$tmp/err"; [ $? -eq 1 ] && grep -q 'no LM head' "$tmp/err" && ok ||
  bad "lens on an encoder: $(cat "$tmp/err")"

# --- probe ----------------------------------------------------------------------------------------------
out=$("$heed" probe -m "$m" --data "$set_" --json --threads 1 2>"$tmp/err")
js=$(tail -1 <<<"$out")
grep -q '^90 examples, 3 classes, 63 train / 27 test (seed 0), pool last' <<<"$out" && ok ||
  bad "probe header (30 per class, 9 held out of each): $out $(cat "$tmp/err")"
[ "$(field n_train <<<"$js")" = 63 ] && [ "$(field n_test <<<"$js")" = 27 ] && [ "$(field layer <<<"$js" | tr '\n' ' ')" = "0 1 2 3 4 " ] &&
  ok || bad "probe JSON: $js"
field test_acc <<<"$js" | awk '{ if ($1 < 0 || $1 > 1 || $1 * 27 != int($1 * 27 + 0.5)) bad = 1 } END { exit !(NR == 5 && !bad) }' &&
  field train_acc <<<"$js" | awk '{ if ($1 < 0 || $1 > 1) bad = 1 } END { exit !(NR == 5 && !bad) }' && ok ||
  bad "accuracies outside [0, 1] or not k/27: $js"
# the table's test accuracies are the JSON's, and the summary follows from them
[ "$(awk '$1 ~ /^[0-4]$/ { printf "%.4f\n", $3 }' <<<"$out")" = "$(field test_acc <<<"$js" | awk '{ printf "%.4f\n", $1 }')" ] &&
  ok || bad "table and JSON test accuracies differ"
best=$(field test_acc <<<"$js" | sort -g | tail -1)
conv=$(field test_acc <<<"$js" | awk -v b="$best" '$1 == b { print NR - 1; exit }')
[ "$(field converge <<<"$js")" = "$conv" ] && [ "$(field best_test_acc <<<"$js")" = "$best" ] && ok ||
  bad "converging layer: $(field converge <<<"$js"), expected $conv (best $best)"
jump=$(field test_acc <<<"$js" | awk 'NR > 1 && j == "" && $1 >= 1.1 * prev && $1 > prev { j = NR - 1 } { prev = $1 } END { print j == "" ? "null" : j }')
[ "$(field jump <<<"$js")" = "$jump" ] && ok || bad "jump layer: $(field jump <<<"$js"), expected $jump"
# the default model separates the three styles: at the best layer well above chance (1/3); the last token's
# embedding (layer 0: mostly '.') carries almost nothing
awk -v b="$best" 'BEGIN { exit !(b >= 0.85) }' && ok || bad "best test accuracy $best < 0.85"
awk -v a="$(field test_acc <<<"$js" | head -1)" 'BEGIN { exit !(a < 0.6) }' && ok || bad "layer 0 (last token) above 0.6: $js"

# a seed reproduces the run; another seed draws another split (other training rows: other objectives)
again=$("$heed" probe -m "$m" --data "$set_" --json --threads 1 2>/dev/null | tail -1)
other=$("$heed" probe -m "$m" --data "$set_" --json --seed 7 --threads 1 2>/dev/null | tail -1)
[ "$again" = "$js" ] && ok || bad "the same seed gave another result"
[ -n "$other" ] && [ "$(field objective <<<"$other")" != "$(field objective <<<"$js")" ] && ok || bad "seed 7 gave the same fits"
mean=$("$heed" probe -m "$m" --data "$set_" --pool mean --test-frac 0.5 --l2 0.1 --json --threads 1 2>/dev/null | tail -1)
[ "$(field pool <<<"$mean")" = '"mean"' ] && [ "$(field n_test <<<"$mean")" = 45 ] && [ "$(field l2 <<<"$mean")" = 0.1 ] &&
  [ "$(field objective <<<"$mean")" != "$(field objective <<<"$js")" ] && ok || bad "--pool mean --test-frac 0.5 --l2 0.1: $mean"

# ids instead of text (no tokenizer needed): two classes told apart by their first id after BOS
for i in $(seq 1 12); do
  echo "{\"ids\": [0, 77, $((100 + i)), 12], \"label\": 5}"
  echo "{\"ids\": [0, 905, $((200 + i)), 12], \"label\": 9}"
done >"$tmp/ids.jsonl"
mkdir -p "$tmp/notok" && cp "$m"/config.json "$m"/model.safetensors "$tmp/notok"/
o=$("$heed" probe -m "$tmp/notok" --data "$tmp/ids.jsonl" --pool mean --json --threads 1 2>"$tmp/err" | tail -1)
grep -q '"labels":\[5,9\]' <<<"$o" && [ "$(field best_test_acc <<<"$o")" = 1 ] && ok ||
  bad "ids input: $o $(cat "$tmp/err")"

# probe errors: each names the file and the line
perr() { # perr EXPECTED_RC PATTERN [heed probe args...]
  local rc=$1 pat=$2; shift 2
  "$heed" probe -m "$m" --threads 1 "$@" >/dev/null 2>"$tmp/err"
  local got=$?
  [ "$got" -eq "$rc" ] && grep -q -- "$pat" "$tmp/err" && ok || bad "probe $*: rc $got, expected $rc and '$pat': $(cat "$tmp/err")"
}
printf '{"text": "a", "label": 0}\n{"text": "b", "label": 1\n' >"$tmp/bad.jsonl"
perr 1 "bad.jsonl:2: not valid JSON" --data "$tmp/bad.jsonl"
printf '{"text": "a", "label": 0}\n\n{"text": "b"}\n' >"$tmp/bad.jsonl"
perr 1 'bad.jsonl:3: no "label"' --data "$tmp/bad.jsonl"
printf '{"text": "a", "label": 0.5}\n' >"$tmp/bad.jsonl"
perr 1 'bad.jsonl:1: "label" must be an integer' --data "$tmp/bad.jsonl"
printf '{"text": "", "label": 0}\n' >"$tmp/bad.jsonl"
perr 1 'bad.jsonl:1: "text" must be a non-empty string' --data "$tmp/bad.jsonl"
printf '{"text": "a", "label": 3}\n{"text": "b", "label": 3}\n' >"$tmp/bad.jsonl"
perr 1 'at least 2 classes' --data "$tmp/bad.jsonl"
printf '{"text": "a", "label": 0}\n{"text": "b", "label": 1}\n' >"$tmp/bad.jsonl"
perr 1 'nothing to hold out' --data "$tmp/bad.jsonl"
printf '{"ids": [0, 4096], "label": 0}\n{"ids": [0, 5], "label": 1}\n' >"$tmp/bad.jsonl"
perr 1 'bad.jsonl:1: id 4096 is outside' --data "$tmp/bad.jsonl"
perr 1 "$tmp/none.jsonl" --data "$tmp/none.jsonl"
perr 2 '--test-frac' --data "$set_" --test-frac 1
perr 2 '--pool' --data "$set_" --pool max
perr 2 '--l2' --data "$set_" --l2 -1
perr 2 '--data FILE.jsonl is required'
"$heed" probe -m "$tmp/notok" --data "$set_" >/dev/null 2>"$tmp/err"; [ $? -eq 1 ] && grep -q 'no tokenizer.json' "$tmp/err" && ok ||
  bad "text data without a tokenizer: $(cat "$tmp/err")"

finish cli_probe
