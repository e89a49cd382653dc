#!/usr/bin/env bash
# cli_act_test.sh — `heed act-search` (ACT's head search) on the default model with the items of tests/data/act:
# the text items and their token ids give the same search; the baseline's, the best head's and the selected
# set's accuracy and mean margin are reproduced from `heed logits --intervene` with the printed flags (log-softmax
# sums in python3); the ranking and selection rule hold on the JSON; beta 1 (ACT's identity) gains nothing; a run
# repeats exactly on another thread count; bad files and options are refused with messages naming the file and line.
# Usage: cli_act_test.sh HEED
set -u
heed="$1"
data="$(cd "$(dirname "$0")" && pwd)/data"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/check.sh"
# The default model is tiny: OpenBLAS's own threads would only spin against heed's on a small machine.
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
ids="$data/act/cloze_ids.jsonl" # the first 8 items of cloze.jsonl as token ids
head -8 "$data/act/cloze.jsonl" >"$tmp/text8.jsonl"

# threshold -1e-9 keeps the heads that do not hurt (gain >= 0): on these items several, so the set is tested
"$heed" act-search --data "$ids" --threshold -1e-9 --json >"$tmp/a.out" 2>"$tmp/err" && ok ||
  bad "act-search failed: $(cat "$tmp/err")"
"$heed" act-search --data "$tmp/text8.jsonl" --threshold -1e-9 --json --threads 1 >"$tmp/t.out" 2>&1
cmp -s "$tmp/a.out" "$tmp/t.out" && ok ||
  bad "text items on 1 thread and their ids differ: $(diff "$tmp/a.out" "$tmp/t.out")"
grep -q '^ACT head search: 8 items, layers 2-2 (8 heads), beta 0.4, threshold -1e-09$' "$tmp/a.out" && ok ||
  bad "header (default layers 2..L-2 = 2 on the 4-layer model): $(head -1 "$tmp/a.out")"

# The JSON line: every head once, ranked by (gain, margin gain), selected = gain >= 0 (a prefix of 2 or more
# heads), the table agrees.
python3 - "$tmp/a.out" <<'EOF' && ok || bad "JSON checks of $tmp/a.out"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
j = json.loads(lines[-1])
h = j["heads"]
assert sorted((x["layer"], x["head"]) for x in h) == [(2, k) for k in range(8)], h
keys = [(x["gain"], x["margin_gain"]) for x in h]
assert keys == sorted(keys, reverse=True), keys
for x in h:
    assert abs(x["gain"] - (x["correct"] - j["baseline"]["correct"]) / 8) < 1e-12
    assert x["selected"] == (x["gain"] > -1e-9), x
assert [x["rank"] for x in h] == list(range(1, 9))
sel = [x for x in h if x["selected"]]
assert sel == h[:len(sel)] and j["selected"]["count"] == len(sel) >= 2
assert j["selected"]["intervene"] == ["act:%d.%d:0.4" % (x["layer"], x["head"]) for x in sel]
flags = [l for l in lines if l.startswith("flags:")]
assert flags == (["flags: " + " ".join("--intervene " + s for s in j["selected"]["intervene"])] if sel else []), flags
rows = [l.split() for l in lines if l[:4].strip().isdigit()]
want = [(x["layer"], x["head"], "yes" if x["selected"] else "no") for x in h]
assert [(int(r[1]), int(r[2]), r[8]) for r in rows] == want
for r, x in zip(rows, h):
    assert abs(float(r[3]) - x["accuracy"]) < 1e-4 and abs(float(r[6]) - x["margin"]) < 1e-4
EOF

# Reproduction: accuracy and mean margin from `heed logits` over prompt + choice with the same flags.
reproduce() { # reproduce NAME FLAGS...: checks the JSON entry NAME (baseline, head L.H, selected) against heed logits
  python3 - "$heed" "$ids" "$tmp" "$tmp/a.out" "$@" <<'EOF'
import json, math, struct, subprocess, sys
heed, ids, tmp, out, name, flags = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:]
j = json.loads(open(out).read().splitlines()[-1])
if name == "baseline": want = j["baseline"]
elif name == "selected": want = j["selected"]
else: want = [x for x in j["heads"] if "%d.%d" % (x["layer"], x["head"]) == name][0]
def logits(seq):
    path = tmp + "/l.st"
    subprocess.run([heed, "logits", "--ids", ",".join(map(str, seq)), "-o", path] + flags, check=True)
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    t = json.loads(b[8:8 + n])["logits"]
    T, V = t["shape"]
    a, _ = t["data_offsets"]
    x = struct.unpack("<%df" % (T * V), b[8 + n + a:8 + n + a + 4 * T * V])
    return [x[r * V:(r + 1) * V] for r in range(T)]
correct = correct_norm = 0
margin = 0.0
items = [json.loads(l) for l in open(ids)]
for it in items:
    P, lp = it["prompt_ids"], []
    for ch in it["choice_ids"]:
        rows, s = logits(P + ch), 0.0
        for t in range(len(ch)):
            r = rows[len(P) + t - 1]
            m = max(r)
            s += r[ch[t]] - m - math.log(sum(math.exp(v - m) for v in r))
        lp.append(s)
    k = it["label"]
    correct += max(range(len(lp)), key=lambda c: (lp[c], -c)) == k
    norm = [lp[c] / len(ch) for c, ch in enumerate(it["choice_ids"])]
    correct_norm += max(range(len(lp)), key=lambda c: (norm[c], -c)) == k
    margin += lp[k] - max(v for c, v in enumerate(lp) if c != k)
margin /= len(items)
ok = (correct, correct_norm) == (want["correct"], want["correct_norm"]) and abs(margin - want["margin"]) < 1e-4
print("%s: heed logits %d/%d, per-token %d, margin %.6f; act-search %d, %d, %.6f" %
      (name, correct, len(items), correct_norm, margin, want["correct"], want["correct_norm"], want["margin"]))
sys.exit(0 if ok else 1)
EOF
}
reproduce baseline >"$tmp/r" 2>&1 && ok || bad "baseline not reproduced: $(cat "$tmp/r")"
top=$(tail -1 "$tmp/a.out" | python3 -c 'import json, sys; h = json.load(sys.stdin)["heads"][0]
print("%d.%d" % (h["layer"], h["head"]))')
reproduce "$top" --intervene "act:$top:0.4" >"$tmp/r" 2>&1 && ok || bad "head $top not reproduced: $(cat "$tmp/r")"
read -r -a flags < <(sed -n 's/^flags: //p' "$tmp/a.out")
reproduce selected "${flags[@]}" >"$tmp/r" 2>&1 && ok || bad "selected set not reproduced: $(cat "$tmp/r")"

# beta 1 is ACT's identity: no head of layer 3 gains or loses (margins within float rounding); threshold -1
# selects all 8, evaluated together like the baseline.
out=$("$heed" act-search --data "$ids" --beta 1 --threshold -1 --layers 3-3 --json 2>&1)
python3 - "$out" <<'EOF' && ok || bad "beta 1: $out"
import json, sys
j = json.loads(sys.argv[1].splitlines()[-1])
b = j["baseline"]
assert j["layers"] == [3, 3] and j["selected"]["count"] == 8
assert sorted(x["head"] for x in j["heads"]) == list(range(8)) and {x["layer"] for x in j["heads"]} == {3}
for x in j["heads"] + [j["selected"]]:
    assert x["correct"] == b["correct"] and x["correct_norm"] == b["correct_norm"], x
    assert abs(x["margin"] - b["margin"]) < 1e-4, x
assert len(j["selected"]["intervene"]) == 8 and j["selected"]["intervene"][0].endswith(":1")
EOF
grep -q '^selected 8 heads together' <<<"$out" && ok || bad "beta 1 summary line: $out"

# Refusals: exit 2 for options, 1 for data; the message names the file and line.
expect() { printf '%s' "$1" >"$tmp/want"; }
refuse() { # refuse RC ARGS...: act-search ARGS exits with RC and a message matching the last expect
  local rc want="$1"
  shift
  "$heed" act-search "$@" >/dev/null 2>"$tmp/err"
  rc=$?
  [ "$rc" = "$want" ] && grep -q -- "$(cat "$tmp/want")" "$tmp/err" && ok ||
    bad "act-search $*: rc $rc, stderr: $(cat "$tmp/err")"
}
expect "give --data"; refuse 2
expect "--beta: expected a number in \[0, 1\]"; refuse 2 --data "$ids" --beta 1.5
expect "--layers: expected A-B"; refuse 2 --data "$ids" --layers 3-1
expect "--threshold: expected a number"; refuse 2 --data "$ids" --threshold x
expect "--layers 0-4: this model has layers 0..3"; refuse 1 --data "$ids" --layers 0-4
expect "$tmp/none.jsonl"; refuse 1 --data "$tmp/none.jsonl"
bad_line() { # bad_line TEXT JSON: a file whose line 2 is JSON is refused with TEXT
  head -1 "$ids" >"$tmp/bad.jsonl"
  printf '%s\n' "$2" >>"$tmp/bad.jsonl"
  expect "$tmp/bad.jsonl:2: $1"
  refuse 1 --data "$tmp/bad.jsonl"
}
bad_line "not valid JSON" '{"prompt_ids": [1, 2], "choice_ids": [[3], [4]], "label": 0'
bad_line "no \"label\"" '{"prompt_ids": [1, 2], "choice_ids": [[3], [4]]}'
bad_line "\"label\": expected a choice index 0..1" '{"prompt_ids": [1, 2], "choice_ids": [[3], [4]], "label": 2}'
bad_line "\"choices\": 1 choice, expected at least 2" '{"prompt": "And God", "choices": [" said"], "label": 0}'
bad_line "\"choices\"\[1\] is empty" '{"prompt": "And God", "choices": [" said", ""], "label": 0}'
bad_line "expected exactly one of \"prompt\" and \"prompt_ids\"" '{"choices": [" a", " b"], "label": 0}'
# ids past the vocabulary (4096) are found when scored, naming the line
printf '%s\n' '{"prompt_ids": [0, 5], "choice_ids": [[3], [4096]], "label": 0}' >"$tmp/big.jsonl"
expect "line 1: choice 1 id 4096 is outside the model's vocabulary"; refuse 1 --data "$tmp/big.jsonl"
# text items need a tokenizer: llama3-old has none
expect "no tokenizer"; refuse 1 -m "$data/models/llama3-old" --data "$data/act/cloze.jsonl"

finish cli_act
