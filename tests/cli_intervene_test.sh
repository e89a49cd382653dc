#!/usr/bin/env bash
# cli_intervene_test.sh — `--intervene SPEC` on heed run, ppl and logits with the tiny llama3-old checkpoint of
# tests/data/models: identity edits leave perplexity and greedy generations as they were, real edits move them,
# and bad SPECs (malformed, or a head the model lacks) are refused with a message naming the SPEC.
# Usage: cli_intervene_test.sh HEED
set -u
heed="$1"
data="$(cd "$(dirname "$0")" && pwd)/data"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/check.sh"
m="$data/models/llama3-old"
ids=1,17,33,5,80,17,33,5,80,200,9,41

ppl() { "$heed" ppl -m "$m" --ids "$ids" "$@" 2>"$tmp/err" | tail -1 | sed 's/.*"ppl": \([0-9.e+-]*\).*/\1/'; }
# 1 when $1 and $2 agree within relative $3
close() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; print (a != "" && d <= t * a) ? 1 : 0 }'; }

base=$(ppl)
[ -n "$base" ] && ok || bad "ppl without intervention printed nothing"
for spec in act:0.1:1 act:1.3:1 var:0.2:2-6:0 steer:1.0:3-8:0 inhibit:1.2:0; do
  got=$(ppl --intervene "$spec")
  [ "$(close "$got" "$base" 1e-5)" = 1 ] && ok || bad "ppl identity $spec: $got, expected $base"
done
got=$(ppl --intervene act:0.1:1 --intervene steer:1.0:3-8:0 --intervene inhibit:0.3:0)
[ "$(close "$got" "$base" 1e-5)" = 1 ] && ok || bad "ppl three identity edits: $got, expected $base"
for spec in bos:0.1 ablate:1.1 mean:0.2 var:1.2:2-6:1 steer:0.0:3-8:0.9 inhibit:1.0:0.5 act:0.2:0.1; do
  got=$(ppl --intervene "$spec")
  [ -n "$got" ] && [ "$(close "$got" "$base" 1e-3)" = 0 ] && ok || bad "ppl $spec: $got, expected a change from $base"
done

gen() { "$heed" run -m "$m" --ids 1,17,33,5 -n 8 --greedy --print-ids "$@" 2>"$tmp/err" | tail -1; }
g0=$(gen)
[ -n "$g0" ] && [ "$g0" = "$(gen --intervene inhibit:0.0:0 --intervene act:1.1:1)" ] && ok ||
  bad "run with identity edits generated $(gen --intervene inhibit:0.0:0), expected $g0"
[ "$g0" != "$(gen --intervene bos:0.0 --intervene bos:0.1 --intervene bos:1.0 --intervene bos:1.1)" ] && ok ||
  bad "run with four heads on BOS generated the same $g0"

# scale:L.H:x multiplies the head's output: x = 1 is the identity, x = 0 is ablate, two factors multiply
got=$(ppl --intervene scale:1.1:1)
[ "$got" = "$base" ] && ok || bad "ppl scale:1.1:1: $got, expected exactly $base"
[ "$(ppl --intervene scale:1.1:0)" = "$(ppl --intervene ablate:1.1)" ] && ok || bad "scale:1.1:0 differs from ablate:1.1"
got=$(ppl --intervene scale:1.1:0.5 --intervene scale:1.1:0.5)
[ "$got" = "$(ppl --intervene scale:1.1:0.25)" ] && [ "$(close "$got" "$base" 1e-3)" = 0 ] && ok ||
  bad "scale:1.1:0.5 twice: $got, expected scale:1.1:0.25 and a change from $base"
[ "$(ppl --intervene scale:0.2:-1.5)" != "$base" ] && ok || bad "scale:0.2:-1.5 left the perplexity as it was"

"$heed" logits -m "$m" --ids "$ids" -o "$tmp/base.st" && ok || bad "logits without intervention failed"
"$heed" logits -m "$m" --ids "$ids" -o "$tmp/bos.st" --intervene bos:1.0 && ok || bad "logits --intervene failed"
cmp -s "$tmp/base.st" "$tmp/bos.st" && bad "logits --intervene bos:1.0 wrote the same file" || ok

# refusals: exit 2 for a malformed SPEC, 1 for a head the model lacks; the message names the SPEC
refuse() { # refuse RC SPEC TEXT: every command refuses SPEC with RC and a message holding TEXT
  local cmd rc
  for cmd in "run --ids 1,2 -n 1" "ppl --ids 1,2,3" "logits --ids 1,2 -o $tmp/x.st"; do
    # shellcheck disable=SC2086
    "$heed" $cmd -m "$m" --intervene "$2" >/dev/null 2>"$tmp/err"
    rc=$?
    [ "$rc" = "$1" ] && grep -q -- "--intervene $2: .*$3" "$tmp/err" && ok ||
      bad "heed ${cmd%% *} --intervene $2: rc $rc, stderr: $(head -1 "$tmp/err")"
  done
}
refuse 2 foo:0.1 "expected bos, act"
refuse 2 bos:0 "expected L.H"
refuse 2 var:0.1 "key span"
refuse 2 steer:0.1:3-5:1.5 "in \[0, 1\]"
refuse 2 act:0.1:0.4x "in \[0, 1\]"
refuse 2 bos:0.1:0.5 "takes no amount"
refuse 2 mean:0.1:0.5 "takes no amount"
refuse 1 bos:2.0 "no such layer or head"
refuse 1 inhibit:0.4 "no such layer or head"
refuse 1 ablate:0.7 "2 layers of 4 heads"
refuse 1 scale:2.0:0.5 "2 layers of 4 heads"
refuse 2 scale:0.1 "expected scale:L.H:x"
refuse 2 scale:0.1:inf "expected scale:L.H:x"
refuse 2 ablate:0.1:0.5 "takes no amount"
refuse 1 var:0.1:0-4 "span must start at >= 1"
refuse 1 steer:0.1:5-5 "0 <= a < b"
"$heed" ppl -m "$m" --ids 1,2,3 --intervene bos:0.1 --intervene act:0.1 >/dev/null 2>"$tmp/err"
[ $? = 1 ] && grep -q -- "--intervene act:0.1: .*same head" "$tmp/err" && ok || bad "two edits of one head: $(cat "$tmp/err")"

finish cli_intervene
