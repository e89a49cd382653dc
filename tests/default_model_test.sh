#!/usr/bin/env bash
# default_model_test.sh — the embedded default model (models/default): the CLI finds it when -m is left
# out, generates from it deterministically, its held-out perplexity is the one its model card states,
# and its attention shows what the card records: a first-token sink head and an induction head.
# Usage: default_model_test.sh HEED
set -u
heed="$1"
root="$(cd "$(dirname "$0")/.." && pwd)"
card="$root/models/default/README.md"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/check.sh"
unset HEED_MODEL

# a figure the card states as `NAME: VALUE` (the first one)
card_value() { grep -o "$1: [0-9.]*" "$card" | head -1 | sed 's/.*: //'; }
# 1 when |a - b| <= tol * |b|
close() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b; print (d <= t * m) ? 1 : 0 }'; }

# generation without -m: the same text twice from the same seed, and greedy output is not empty
"$heed" run -p "And it came to pass" -n 24 --temp 0.8 --top-k 40 --seed 7 >"$tmp/a" 2>/dev/null && ok || bad "run without -m failed"
"$heed" run -p "And it came to pass" -n 24 --temp 0.8 --top-k 40 --seed 7 >"$tmp/b" 2>/dev/null
cmp -s "$tmp/a" "$tmp/b" && [ -s "$tmp/a" ] && ok || bad "seeded generation is not reproducible or empty"
ids=$("$heed" run -p "And it came to pass" -n 8 --greedy --print-ids 2>/dev/null | tail -1)
echo "$ids" | grep -Eq '^\[[0-9]+(, ?[0-9]+){7}\]$' && ok || bad "--print-ids: got '$ids'"

# held-out perplexity, as the card says (`heed ppl -f models/default/heldout.txt --ctx 256`)
want=$(card_value "held-out perplexity")
line=$("$heed" ppl -f "$root/models/default/heldout.txt" --ctx 256 2>/dev/null | tail -1)
got=$(echo "$line" | sed -n 's/.*"ppl": *\([0-9.e+-]*\).*/\1/p')
[ -n "$want" ] && [ -n "$got" ] && [ "$(close "$got" "$want" 0.002)" = 1 ] && ok ||
  bad "held-out perplexity: got '$got' ($line), the card says '$want'"

# a first-token sink: the card's strongest sink head puts more than 0.9 of its attention on BOS
"$heed" heads --score sink --json -p "$(head -c 600 "$root/models/default/heldout.txt")" >"$tmp/sink" 2>/dev/null
top=$(sed -n 's/.*"rank": 1,.*"score": \([0-9.e+-]*\).*/\1/p' "$tmp/sink")
[ -n "$top" ] && [ "$(awk -v s="$top" 'BEGIN { print (s > 0.9) }')" = 1 ] && ok || bad "no first-token sink head (top alpha_0 '$top')"

# an induction head on [BOS, r, r] (TransformerLens' test, n = 50): the row_mean the card records, within
# 2%, and well above uniform attention (~0.015)
want=$(card_value "induction row_mean")
"$heed" heads --score induction --json >"$tmp/ind" 2>/dev/null
got=$(sed -n 's/.*"rank": 1,.*"row_mean": \([0-9.e+-]*\).*/\1/p' "$tmp/ind")
[ -n "$want" ] && [ -n "$got" ] && [ "$(close "$got" "$want" 0.02)" = 1 ] &&
  [ "$(awk -v s="$got" 'BEGIN { print (s > 0.3) }')" = 1 ] && ok || bad "induction head: row_mean '$got', the card says '$want'"

finish default_model
