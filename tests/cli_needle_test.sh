#!/usr/bin/env bash
# cli_needle_test.sh — `heed needle` (../shared/CLI.md) on the embedded default model with a small grid: the
# table and the JSON line agree cell by cell, recalls are in [0, 1], the needle sits where the depth says, --png
# draws each cell in the colour of its recall, --heads scores heads over the recalled cells, --intervene is
# reproducible and changes the run, and bad lists, depths, lengths, files and policies are clear errors that
# write no file.
# Usage: cli_needle_test.sh HEED
set -u
heed="$1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/check.sh"
grid=(--ctx-lens 64,128 --depths 0,50,100 --threads 1) # one thread: seconds even on a busy machine

# the table, then one JSON line last; every cell once, recalls in [0, 1], the table's cells the JSON's
"$heed" needle "${grid[@]}" >"$tmp/out" 2>"$tmp/err"; [ $? -eq 0 ] && ok || bad "default run: $(cat "$tmp/err")"
tail -n 1 "$tmp/out" >"$tmp/json"
python3 - "$tmp/json" "$tmp/out" <<'EOF' && ok || bad "table and JSON: $(cat "$tmp/out")"
import json, sys
d = json.load(open(sys.argv[1]))
lines = open(sys.argv[2]).read().splitlines()
assert d["ctx_lens"] == [64, 128] and d["depths"] == [0, 50, 100] and d["kv"] == "full", d
assert d["answer"] == "7241" and d["bos"] is True and d["n"] >= 1
cells = d["cells"]
assert sorted((c["ctx_len"], c["depth"]) for c in cells) == [(l, x) for l in (64, 128) for x in (0, 50, 100)]
for c in cells:
    assert 0 <= c["recall"] <= 1 and 1 <= len(c["ids"]) <= d["n"] and isinstance(c["text"], str), c
    assert 1 <= c["needle_at"] < c["ctx_len"], c
assert abs(d["mean_recall"] - sum(c["recall"] for c in cells) / 6) < 1e-12
at = {(c["ctx_len"], c["depth"]): c["needle_at"] for c in cells}
for l in (64, 128):  # depth 0 right after BOS; deeper is later
    assert at[(l, 0)] == 1 and at[(l, 0)] <= at[(l, 50)] <= at[(l, 100)], at
hdr = lines.index(next(x for x in lines if x.split()[:3] == ["depth", "64", "128"]))
for i, depth in enumerate((0, 50, 100)):
    row = lines[hdr + 1 + i].split()
    assert float(row[0]) == depth, row
    for j, l in enumerate((64, 128)):
        c = next(c for c in cells if c["ctx_len"] == l and c["depth"] == depth)
        assert abs(float(row[1 + j]) - c["recall"]) < 6e-4, (row, c)
EOF
grep -q 'needle recall' "$tmp/out" && ! grep -q '^{' <(head -n -1 "$tmp/out") && ok || bad "table: $(cat "$tmp/out")"
# --json: stdout is the JSON line alone, the same as the run's
"$heed" needle "${grid[@]}" --json >"$tmp/j2" 2>"$tmp/err"
[ "$(wc -l <"$tmp/j2")" -eq 1 ] && cmp -s "$tmp/j2" "$tmp/json" && grep -q 'needle recall' "$tmp/err" && ok ||
  bad "--json: $(cat "$tmp/j2")"

# a needle the default model does retrieve at some cells: after " And the light of the" it says " earth" where the
# needle is near (see the JSON); recall is 0 or 1 by the words of each text, head scores are means over the
# recalled cells of counts of 1/|needle| (so score * |needle| * cells is whole), and -n limits the ids
known=(--needle " And the light of the earth was the light of the sun." --question " And the light of the" --answer earth -n 3)
"$heed" needle "${grid[@]}" "${known[@]}" --heads --json --png "$tmp/grid.png" >"$tmp/h.json" 2>"$tmp/h.err"
python3 - "$tmp/h.json" <<'EOF' && ok || bad "--answer/--heads: $(cat "$tmp/h.json" "$tmp/h.err")"
import json, re, sys
d = json.load(open(sys.argv[1]))
n_rec = 0
for c in d["cells"]:
    assert len(c["ids"]) <= 3
    assert c["recall"] == ("earth" in re.findall(r"[a-z0-9]+", c["text"].lower())), c
    n_rec += c["recall"] > 0.5
h, nt = d["heads"], d["needle_tokens"]
assert 0 < n_rec < 6 and h["cells"] == n_rec and h["recall_above"] == 0.5, (n_rec, h)
s = [e["score"] for e in h["scores"]]
assert len(s) == 32 and s == sorted(s, reverse=True) and s[0] > 0, s
for x in s:
    assert 0 <= x <= 3 / nt + 1e-6 and abs(x * nt * n_rec - round(x * nt * n_rec)) < 1e-4, x
assert sorted((e["layer"], e["head"]) for e in h["scores"]) == [(l, k) for l in range(4) for k in range(8)]
EOF
grep -q '^retrieval heads: mean over the [1-5] of 6 cells with recall > 0.5' "$tmp/h.err" &&
  [ "$(grep -cE '^ +[0-9]+ +[0-3] +[0-7] +[0-9.]+$' "$tmp/h.err")" -eq 10 ] && ok || bad "--heads table: $(cat "$tmp/h.err")"
"$heed" needle "${grid[@]}" --heads >"$tmp/out" 2>/dev/null
grep -q 'no cell recalled the answer' "$tmp/out" &&
  tail -n 1 "$tmp/out" | grep -q '"heads":{"recall_above":0.5,"cells":0,"scores":\[\]}' && ok || bad "--heads without a recalled cell: $(tail -n 3 "$tmp/out")"

# --png (of the run above): each cell drawn in the colour scale at its recall (0 dark blue .. 1 yellow,
# src/report/png.c), and both ends appear
python3 - "$tmp/grid.png" "$tmp/h.json" <<'EOF' && ok || bad "--png"
import json, struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n"
pos, idat, w = 8, b"", 0
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR": w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
    if kind == b"IDAT": idat += body
    pos += 12 + n
assert depth == 8 and ctype == 2 and h == 3 * 24 and w > 2 * 24, (w, h)
raw, rows, prev = zlib.decompress(idat), [], bytearray(w * 3)
for y in range(h):  # undo the PNG filters
    f, line = raw[y * (w * 3 + 1)], bytearray(raw[y * (w * 3 + 1) + 1:(y + 1) * (w * 3 + 1)])
    for i in range(len(line)):
        a, b = line[i - 3] if i >= 3 else 0, prev[i]
        c = prev[i - 3] if i >= 3 else 0
        p = a + b - c
        pred = [0, a, b, (a + b) // 2, a if abs(p - a) <= min(abs(p - b), abs(p - c)) else b if abs(p - b) <= abs(p - c) else c][f]
        line[i] = (line[i] + pred) & 255
    rows.append(line)
    prev = line
colour, seen = {0: (20, 12, 70), 1: (250, 230, 50)}, set()
for c in json.load(open(sys.argv[2]))["cells"]:
    r, col = [0, 50, 100].index(c["depth"]), [64, 128].index(c["ctx_len"])
    px = tuple(rows[r * 24 + 12][(col * 24 + 12) * 3:(col * 24 + 12) * 3 + 3])
    assert px == colour[c["recall"]], (c, px)
    seen.add(px)
assert len(seen) == 2
EOF

# --intervene: accepted, reproducible, and ablating every head of layer 0 changes what is generated
abl=(); for h in 0 1 2 3 4 5 6 7; do abl+=(--intervene "ablate:0.$h"); done
"$heed" needle "${grid[@]}" "${abl[@]}" --json >"$tmp/i1" 2>/dev/null
"$heed" needle "${grid[@]}" "${abl[@]}" --json >"$tmp/i2" 2>/dev/null
[ -s "$tmp/i1" ] && cmp -s "$tmp/i1" "$tmp/i2" && ok || bad "--intervene not reproducible"
python3 -c 'import json, sys; a, b = ([c["ids"] for c in json.load(open(f))["cells"]] for f in sys.argv[1:]); assert a != b' \
  "$tmp/i1" "$tmp/json" && ok || bad "ablating layer 0 changed nothing"
"$heed" needle "${grid[@]}" --intervene bos:9.0 2>"$tmp/err" >/dev/null; [ $? -ne 0 ] && grep -q 'bos:9.0' "$tmp/err" && ok ||
  bad "--intervene on a head the model lacks: $(cat "$tmp/err")"

# a haystack file and the default lengths (4 up to 256): at 30% depth the needle goes back to the last sentence
# end, recomputed here from the haystack's tokens (each decoded alone) and the question's length
printf 'one two three four five six seven eight. nine ten eleven twelve. ' >"$tmp/hay.txt"
"$heed" needle --haystack "$tmp/hay.txt" --depths 30 --threads 1 --json >"$tmp/f.json" 2>"$tmp/err"
"$heed" tokenize --no-special <"$tmp/hay.txt" | tr -d '[] ' | tr , '\n' >"$tmp/hay.ids"
while read -r id; do "$heed" detokenize --ids "$id"; echo; done <"$tmp/hay.ids" >"$tmp/hay.toks"
printf ' What is the secret number? The secret number is' | "$heed" tokenize --no-special >"$tmp/q.ids"
python3 - "$tmp/f.json" "$tmp/hay.toks" "$tmp/q.ids" <<'EOF' && ok || bad "--haystack placement: $(cat "$tmp/err" "$tmp/f.json")"
import json, math, sys
d = json.load(open(sys.argv[1]))
toks = open(sys.argv[2]).read().split("\n")[:-1]
n_q, n = len(json.load(open(sys.argv[3]))), len(toks)
assert d["ctx_lens"] == [64, 128, 192, 256] and d["depths"] == [30] and d["haystack_tokens"] == n, d
brk = [toks[i - 1].rstrip(" ").endswith(".") for i in range(n)]  # toks[-1]: the haystack repeats
assert sum(brk) == 2, toks
for c in d["cells"]:
    F = c["ctx_len"] - 1 - d["needle_tokens"] - n_q
    p = math.floor(0.3 * F + 0.5)
    while 0 < p < F and not brk[p % n]: p -= 1
    assert c["needle_at"] == 1 + p, (c, p)
EOF

# errors: exit status, a message naming the problem, no PNG left behind
err() { # err STATUS PATTERN ARGS...: heed needle ARGS fails with STATUS and a stderr line matching PATTERN
  local want="$1" pat="$2"; shift 2
  "$heed" needle "$@" --png "$tmp/e.png" >"$tmp/eout" 2>"$tmp/err"; local rc=$?
  [ "$rc" -eq "$want" ] && grep -q -- "$pat" "$tmp/err" && [ ! -e "$tmp/e.png" ] && [ ! -s "$tmp/eout" ] && ok ||
    bad "needle $*: status $rc, $(cat "$tmp/err")"
}
err 2 "--depths '0,101'" --depths 0,101
err 2 "--depths '0,,5'" --depths 0,,5
err 2 "--ctx-lens '64,abc'" --ctx-lens 64,abc
err 2 "--ctx-lens '64.5'" --ctx-lens 64.5
err 2 "--ctx-lens ''" --ctx-lens ""
err 1 "context length 20: too small" --ctx-lens 64,20
err 1 "context length 512: past the model's positions (256" --ctx-lens 512
err 1 "--haystack: .*$tmp/none" --haystack "$tmp/none"
: >"$tmp/empty.txt"
err 1 "haystack: no tokens" --haystack "$tmp/empty.txt"
err 2 "unknown KV policy" --kv streaming:sink=4,window=60
err 2 "go with --needle" --question " Why?"
err 2 "-n takes" -n 0
err 2 "unknown option" --bogus
"$heed" needle --help | grep -q 'usage: heed needle' && ok || bad "--help"

finish cli_needle
