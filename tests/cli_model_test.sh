#!/usr/bin/env bash
# cli_model_test.sh — the model commands of ../shared/CLI.md on the golden checkpoints of tests/data/models:
# `heed run` greedy continuations equal transformers' (tests/data/run/gen_ids.txt), EOS stops, sampling
# is seeded, streamed text equals the detokenized ids; `heed ppl` equals a reference computed apart
# (tests/data/run/ppl.txt, relative error <= 2e-4: logits agree to 1e-4 absolute, so a mean NLL to 1e-4);
# `heed embed` pooling against the golden hidden states (tests/data/run/embed.txt), -o, eos, --bidirectional.
# Usage: cli_model_test.sh HEED
set -u
heed="$1"
data="$(cd "$(dirname "$0")" && pwd)/data"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/check.sh"
json_ids() { tr -d '[] ' <<<"$1"; } # "[1, 2, 3]" -> "1,2,3"

# a model directory with a tokenizer: links to a checkpoint's files plus tests/data/tok/TOK/tokenizer*.json
with_tok() {
  local d="$tmp/$1+$2"
  mkdir -p "$d"
  ln -sf "$data/models/$1"/*.json "$data/models/$1"/*.safetensors "$d"/
  cp "$data/tok/$2"/tokenizer*.json "$d"/
  echo "$d"
}

# greedy continuations of every decoder equal transformers' generate
while read -r m ids gen; do
  [[ "$m" == \#* ]] && continue
  out=$("$heed" run -m "$data/models/$m" --ids "$ids" -n 8 --greedy --print-ids 2>/dev/null | tail -n 1)
  [ "$(json_ids "$out")" = "$gen" ] && ok || bad "run $m: $out, expected [$gen]"
done <"$data/run/gen_ids.txt"

read -r _ ids gen < <(grep '^llama3-old ' "$data/run/gen_ids.txt")
m="$data/models/llama3-old"
# defaults from generation_config.json (no do_sample: greedy); --temp 0 and --top-k 1 are greedy too
for flags in "" "--temp 0" "--top-k 1 --seed 3" "--top-p 0.000001 --seed 5"; do
  out=$("$heed" run -m "$m" --ids "$ids" -n 8 $flags --print-ids 2>/dev/null | tail -n 1)
  [ "$(json_ids "$out")" = "$gen" ] && ok || bad "run with '$flags': $out, expected [$gen]"
done
# a seed reproduces a sampled continuation; another seed (almost surely) differs
a=$("$heed" run -m "$m" --ids "$ids" -n 16 --temp 1.5 --top-k 0 --seed 11 --print-ids 2>/dev/null | tail -n 1)
b=$("$heed" run -m "$m" --ids "$ids" -n 16 --temp 1.5 --top-k 0 --seed 11 --print-ids 2>/dev/null | tail -n 1)
c=$("$heed" run -m "$m" --ids "$ids" -n 16 --temp 1.5 --top-k 0 --seed 12 --print-ids 2>/dev/null | tail -n 1)
[ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "seed 11 twice: '$a' vs '$b'"
[ "$a" != "$c" ] && ok || bad "seeds 11 and 12 gave the same 16 tokens: $a"
n=$(json_ids "$a" | tr ',' '\n' | wc -l)
[ "$n" -eq 16 ] && ok || bad "-n 16 sampled $n tokens"
# the repetition penalty changes a greedy continuation that repeats (qwen3: 92,92,92,...)
read -r _ qids qgen < <(grep '^qwen3 ' "$data/run/gen_ids.txt")
out=$("$heed" run -m "$data/models/qwen3" --ids "$qids" -n 8 --greedy --repeat-penalty 1.5 --print-ids 2>/dev/null | tail -n 1)
[ -n "$out" ] && [ "$(json_ids "$out")" != "$qgen" ] && ok || bad "repeat penalty 1.5 left qwen3's continuation as is: $out"

# EOS stops generation (and is the last id printed): a copy whose generation_config names gen[2] as EOS
e=$(cut -d, -f3 <<<"$gen")
mkdir -p "$tmp/eos" && ln -sf "$m"/config.json "$m"/model.safetensors "$tmp/eos"/
printf '{"bos_token_id": 1, "eos_token_id": [%s, 9999]}\n' "$e" >"$tmp/eos/generation_config.json"
out=$("$heed" run -m "$tmp/eos" --ids "$ids" -n 8 --print-ids 2>/dev/null | tail -n 1)
[ "$(json_ids "$out")" = "$(cut -d, -f1-3 <<<"$gen")" ] && ok || bad "EOS $e: $out"

# streamed text equals the decoded ids (byte-level gpt2 with partial UTF-8 bytes; SentencePiece llama2)
for pair in gpt2:gpt2 llama3-old:llama2; do
  d=$(with_tok "${pair%%:*}" "${pair##*:}")
  read -r _ pids pgen < <(grep "^${pair%%:*} " "$data/run/gen_ids.txt")
  "$heed" run -m "$d" --ids "$pids" -n 8 --greedy >"$tmp/streamed" 2>/dev/null || bad "run $pair failed"
  # what the generated ids add to the decoded prompt (byte-fallback runs may join the two)
  "$heed" detokenize -m "$d" --ids "$pids" >"$tmp/prompt"
  "$heed" detokenize -m "$d" --ids "$pids,$pgen" >"$tmp/all"
  np=$(stat -c %s "$tmp/prompt")
  cmp -s -n "$np" "$tmp/prompt" "$tmp/all" || bad "$pair: the decoded prompt is not a prefix of the decoded text"
  { tail -c +$((np + 1)) "$tmp/all"; printf '\n'; } >"$tmp/decoded"
  cmp -s "$tmp/streamed" "$tmp/decoded" && ok || bad "run $pair: streamed text differs from the decoded ids"
  out=$("$heed" run -m "$d" --ids "$pids" -n 8 --greedy --print-ids 2>/dev/null | tail -n 1)
  [ "$(json_ids "$out")" = "$pgen" ] && ok || bad "run $pair --print-ids after text: $out"
done
# -p TEXT is encoded as `heed tokenize` encodes it
d=$(with_tok gpt2 gpt2)
pids=$(json_ids "$(printf 'ABC XYZ 123' | "$heed" tokenize -m "$d")")
a=$("$heed" run -m "$d" -p 'ABC XYZ 123' -n 6 --greedy --print-ids 2>/dev/null | tail -n 1)
b=$("$heed" run -m "$d" --ids "$pids" -n 6 --greedy --print-ids 2>/dev/null | tail -n 1)
[ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "run -p vs --ids of the same text: '$a' vs '$b'"
"$heed" run -m "$d" --ids "$pids" -n 4 --greedy 2>"$tmp/err" >/dev/null
grep -q "prompt 10 tokens in .* tokens/s); generation 4 tokens in .* tokens/s)" "$tmp/err" && ok || bad "speeds on stderr: $(cat "$tmp/err")"

# errors with a non-zero status and a clear message
HEED_MODEL="$tmp/none" "$heed" run --ids 1,2 2>&1 >/dev/null | grep -q "$tmp/none/config.json" && ok || bad "run without a model"
HEED_MODEL="$tmp/none" "$heed" run --ids 1,2 >/dev/null 2>&1 && bad "run without a model exited 0" || ok
"$heed" run -m "$m" --ids 1,2 --kv streaming:sink=4,window=16 2>&1 >/dev/null | grep -q "unknown KV policy" && ok || bad "--kv streaming"
"$heed" run -m "$m" --ids 1,2 --kv full -n 2 >/dev/null 2>&1 && ok || bad "--kv full"
"$heed" run -m "$m" -p hello 2>&1 >/dev/null | grep -q "tokenizer.json" && ok || bad "-p without tokenizer.json"
"$heed" run -m "$data/models/bert" --ids 2,5 2>&1 >/dev/null | grep -q "LM head" && ok || bad "run on an encoder"
"$heed" run -m "$m" --ids 1,400 >/dev/null 2>&1 && bad "an id outside the vocabulary exited 0" || ok
"$heed" run -m "$m" --ids 1,2 --temp x >/dev/null 2>&1 && bad "--temp x exited 0" || ok
"$heed" ppl -m "$m" --ids 1,2,3 --kv h2o:heavy=0.1 2>&1 >/dev/null | grep -q "unknown KV policy" && ok || bad "ppl --kv h2o"

# heed ppl against the reference perplexities
while read -r pm w s want ntok; do
  [[ "$pm" == \#* ]] && continue
  read -r _ pids _ < <(grep "^$pm " "$data/run/gen_ids.txt")
  out=$("$heed" ppl -m "$data/models/$pm" --ids "$pids" --ctx "$w" --stride "$s" 2>/dev/null | tail -n 1)
  got=$(sed -n 's/.*"ppl": *\([^,}]*\).*/\1/p' <<<"$out")
  gn=$(sed -n 's/.*"tokens": *\([0-9]*\).*/\1/p' <<<"$out")
  awk -v g="${got:-0}" -v w="$want" 'BEGIN { d = g - w; if (d < 0) d = -d; exit !(d <= 2e-4 * w) }' && [ "$gn" = "$ntok" ] && ok ||
    bad "ppl $pm --ctx $w --stride $s: $out, expected ppl $want tokens $ntok"
done <"$data/run/ppl.txt"
# -f FILE: the file's tokens, as --ids of `heed tokenize` of it
printf 'ABC XYZ 123\nABC XYZ 123 ABC XYZ' >"$tmp/text"
fids=$(json_ids "$("$heed" tokenize -m "$d" <"$tmp/text")")
a=$("$heed" ppl -m "$d" -f "$tmp/text" --ctx 8 --stride 4 2>/dev/null | tail -n 1)
b=$("$heed" ppl -m "$d" --ids "$fids" --ctx 8 --stride 4 2>/dev/null | tail -n 1)
[ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "ppl -f vs --ids: '$a' vs '$b'"
"$heed" ppl -m "$m" -f "$tmp/text" >/dev/null 2>&1 && bad "ppl -f without tokenizer.json exited 0" || ok
"$heed" ppl -m "$m" --ids 5 >/dev/null 2>&1 && bad "ppl of one token exited 0" || ok

# heed embed: pooled last hidden states against transformers' (tests/data/run/embed.txt; max abs error 1e-4,
# the bound test_model holds hidden states to)
maxdiff() { awk -v a="$1" -v b="$2" 'BEGIN { n = split(a, x, ","); m = split(b, y, ","); if (n != m || n == 0) { print "len " n " vs " m; exit }
  d = 0; for (i = 1; i <= n; i++) { e = x[i] - y[i]; if (e < 0) e = -e; if (e > d) d = e }; print d }'; }
while read -r em pool norm want; do
  [[ "$em" == \#* || "$pool" == input ]] && continue
  read -r _ _ eids etypes < <(grep "^$em input " "$data/run/embed.txt")
  args=(-m "$data/models/$em" --ids "$eids" --pool "$pool")
  [ "$etypes" != - ] && args+=(--types "$etypes")
  [ "$norm" = 1 ] && args+=(--normalize)
  got=$(json_ids "$("$heed" embed "${args[@]}" 2>/dev/null)")
  dd=$(maxdiff "$got" "$want")
  awk -v d="$dd" 'BEGIN { exit !(d + 0 == d && d <= 1e-4) }' && ok || bad "embed $em --pool $pool normalize=$norm: max abs error $dd"
done <"$data/run/embed.txt"
read -r _ _ eids _ < <(grep "^llama3-old input " "$data/run/embed.txt")
# -o writes the same floats as a safetensors tensor `embedding` f32 [64]: 64 * 4 bytes after the header
"$heed" embed -m "$m" --ids "$eids" -o "$tmp/e.safetensors" && ok || bad "embed -o failed"
hl=$(od -An -tu8 -N8 "$tmp/e.safetensors" | tr -d ' ')
[ "$(stat -c %s "$tmp/e.safetensors")" -eq $((8 + hl + 256)) ] && head -c $((8 + hl)) "$tmp/e.safetensors" | grep -q '"embedding"' && ok || bad "embed -o layout"
# eos pooling takes the last EOS id (llama3-old: eos 2): with EOS last it is last-token pooling
a=$("$heed" embed -m "$m" --ids "$eids,2" --pool eos 2>/dev/null)
b=$("$heed" embed -m "$m" --ids "$eids,2" --pool last 2>/dev/null)
[ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "embed --pool eos vs last with EOS last"
c=$("$heed" embed -m "$m" --ids "2,$eids" --pool eos 2>/dev/null)
d0=$("$heed" embed -m "$m" --ids "2,$eids" --pool cls 2>/dev/null)
[ -n "$c" ] && [ "$c" = "$d0" ] && ok || bad "embed --pool eos vs cls with EOS first"
"$heed" embed -m "$m" --ids "$eids" --pool eos >/dev/null 2>&1 && bad "eos pooling without an EOS id exited 0" || ok
"$heed" embed -m "$m" --ids "$eids" --pool max >/dev/null 2>&1 && bad "--pool max exited 0" || ok
# --bidirectional: the first token sees the last one only without the causal mask
other="${eids%,*},7"
a=$("$heed" embed -m "$m" --ids "$eids" --pool cls 2>/dev/null)
b=$("$heed" embed -m "$m" --ids "$other" --pool cls 2>/dev/null)
[ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "causal: the first token's state changed with the last id"
a=$("$heed" embed -m "$m" --ids "$eids" --pool cls --bidirectional 2>/dev/null)
b=$("$heed" embed -m "$m" --ids "$other" --pool cls --bidirectional 2>/dev/null)
[ -n "$a" ] && [ "$a" != "$b" ] && ok || bad "--bidirectional: the first token's state ignores the last id"
c=$("$heed" embed -m "$m" --ids 5 --pool cls 2>/dev/null)
d0=$("$heed" embed -m "$m" --ids 5 --pool cls --bidirectional 2>/dev/null)
[ -n "$c" ] && [ "$c" = "$d0" ] && ok || bad "--bidirectional changed a one-token input"

# --rope-base (qwen2, rope_theta 1e6 in its config): the config's value changes nothing; another value
# changes the logits exactly as a copy of the checkpoint whose config.json says that rope_theta
m="$data/models/qwen2"
rids=$(read -r _ i _ < <(grep '^qwen2 ' "$data/run/gen_ids.txt"); echo "$i")
rd="$tmp/qwen2-theta500"
mkdir -p "$rd"
ln -sf "$m"/*.safetensors "$rd"/
sed 's/"rope_theta": 1000000.0/"rope_theta": 500.0/' "$m/config.json" >"$rd/config.json"
grep -q '"rope_theta": 500.0' "$rd/config.json" && ok || bad "could not make a qwen2 copy with rope_theta 500"
"$heed" logits -m "$m" --ids "$rids" -o "$tmp/r0.st" 2>/dev/null
"$heed" logits -m "$m" --ids "$rids" -o "$tmp/r1.st" --rope-base 1000000 2>/dev/null
"$heed" logits -m "$m" --ids "$rids" -o "$tmp/r2.st" --rope-base 500 2>/dev/null
"$heed" logits -m "$rd" --ids "$rids" -o "$tmp/r3.st" 2>/dev/null
[ -s "$tmp/r0.st" ] && cmp -s "$tmp/r0.st" "$tmp/r1.st" && ok || bad "logits --rope-base 1e6 (the config's) differ"
[ -s "$tmp/r2.st" ] && ! cmp -s "$tmp/r0.st" "$tmp/r2.st" && ok || bad "logits --rope-base 500 changed nothing"
[ -s "$tmp/r3.st" ] && cmp -s "$tmp/r2.st" "$tmp/r3.st" && ok || bad "logits --rope-base 500 != config rope_theta 500"
a=$("$heed" ppl -m "$m" --ids "$rids" --rope-base 500 2>/dev/null | tail -n 1)
b=$("$heed" ppl -m "$rd" --ids "$rids" 2>/dev/null | tail -n 1)
c=$("$heed" ppl -m "$m" --ids "$rids" 2>/dev/null | tail -n 1)
[ -n "$a" ] && [ "$a" = "$b" ] && [ "$a" != "$c" ] && ok || bad "ppl --rope-base 500: '$a', config 500: '$b', 1e6: '$c'"
a=$("$heed" run -m "$m" --ids "$rids" -n 8 --greedy --print-ids --rope-base 500 2>/dev/null | tail -n 1)
b=$("$heed" run -m "$rd" --ids "$rids" -n 8 --greedy --print-ids 2>/dev/null | tail -n 1)
[ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "run --rope-base 500: '$a', config 500: '$b'"
"$heed" logits -m "$m" --ids 1,2 -o "$tmp/r4.st" --rope-base 0 2>&1 | grep -q "rope-base" && ok || bad "--rope-base 0 accepted"
"$heed" logits -m "$data/models/gpt2" --ids 1,2 -o "$tmp/r4.st" --rope-base 500 2>&1 | grep -q "no RoPE" && ok ||
  bad "--rope-base on gpt2 (learned positions) accepted"
# --attn-log-scale (its exact effect is checked in tests/test_model_opts.c): N0 past every position
# changes nothing, N0 = 2 changes the perplexity, N0 = 1 is refused
a=$("$heed" ppl -m "$m" --ids "$rids" --attn-log-scale 1000000 2>/dev/null | tail -n 1)
b=$("$heed" ppl -m "$m" --ids "$rids" --attn-log-scale 2 2>/dev/null | tail -n 1)
[ -n "$a" ] && [ "$a" = "$c" ] && [ -n "$b" ] && [ "$b" != "$c" ] && ok ||
  bad "ppl --attn-log-scale 1e6: '$a', 2: '$b', off: '$c'"
a=$("$heed" run -m "$m" --ids "$rids" -n 4 --greedy --print-ids --attn-log-scale 1000000 2>/dev/null | tail -n 1)
b=$("$heed" run -m "$m" --ids "$rids" -n 4 --greedy --print-ids 2>/dev/null | tail -n 1)
[ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "run --attn-log-scale 1e6: '$a', off: '$b'"
"$heed" logits -m "$m" --ids 1,2 -o "$tmp/r4.st" --attn-log-scale 1 2>&1 | grep -q "attn-log-scale" && ok ||
  bad "--attn-log-scale 1 accepted"

# heed bench model --quick --json: prefill and decode lines for f32 and bf16, every field a number > 0
# (params and tokens whole), and no temporary model left behind
bdir=$(mktemp -d)
out=$(TMPDIR="$bdir" "$heed" bench model --quick --json 2>/dev/null)
num='[0-9]+(\.[0-9]+)?'
for c in prefill decode; do
  for d in F32 BF16; do
    line=$(grep "\"case\": \"$c\", \"dtype\": \"$d\"" <<<"$out")
    good=1
    [ "$(grep -c . <<<"$line")" -eq 1 ] || good=0
    for f in params tokens; do grep -Eq "\"$f\": [1-9][0-9]*," <<<"$line" || good=0; done
    for f in tok_per_s gflops sgemm_peak_gflops peak_ratio gbps read_bw_gbps bw_ratio; do
      grep -Eq "\"$f\": $num[,}]" <<<"$line" && ! grep -Eq "\"$f\": 0(\.0+)?[,}]" <<<"$line" || good=0
    done
    [ "$good" -eq 1 ] && ok || bad "bench model --quick --json: case $c dtype $d: '$line'"
  done
done
[ -z "$(ls -A "$bdir")" ] && ok || bad "bench model left files in TMPDIR: $(ls -A "$bdir")"
rm -rf "$bdir"

finish cli_model_test
