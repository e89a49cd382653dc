#!/usr/bin/env bash
# viewer_browser_test.sh — the page `heed inspect` writes, opened in headless Chromium (Debian's chromium):
# the DOM its script builds (grid cells = layers x heads, score selector and tables, a head's token view and a
# pinned token), a hostile --title that stays text, screenshots that are not blank (counted by png_ink), the
# --png heatmaps, and a 4096-token page: its size bounded and its DOM built within a time limit.
# Exits 77 (ctest: skipped) only when chromium is not installed.
# Usage: viewer_browser_test.sh HEED PNG_INK
set -u
heed="$1" png_ink="$2"
data="$(cd "$(dirname "$0")" && pwd)/data"
. "$(dirname "$0")/check.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# heed inspect's errors (these need no browser): a clear message, a non-zero status, no file written
m1="$data/models/llama3-old"
err() { # EXPECTED-MESSAGE ARGS...: fails unless heed inspect exits non-zero saying EXPECTED-MESSAGE
  local want="$1"
  shift
  if "$heed" inspect "$@" >/dev/null 2>"$tmp/err"; then bad "inspect $* exited 0"
  elif grep -qF -- "$want" "$tmp/err"; then ok
  else bad "inspect $*: expected '$want', got: $(cat "$tmp/err")"; fi
}
err "-o OUT.html is required" -m "$m1" --ids 1,2
HEED_MODEL="$tmp/none" err "$tmp/none" --ids 1,2 -o "$tmp/x.html"
err "unknown option" -m "$m1" --ids 1,2 -o "$tmp/x.html" --zoom 2
err "--layers 2: expected" -m "$m1" --ids 1,2,3 -o "$tmp/x.html" --layers 2
err "--heads 1-x: expected" -m "$m1" --ids 1,2,3 -o "$tmp/x.html" --heads 1-x
err "--heads 3-1: expected" -m "$m1" --ids 1,2,3 -o "$tmp/x.html" --heads 3-1
err "tokenizer.json" -m "$m1" -p hello -o "$tmp/x.html"
err "outside the vocabulary" -m "$m1" --ids 1,400 -o "$tmp/x.html"
[ -e "$tmp/x.html" ] && bad "a failed inspect wrote its page" || ok
touch "$tmp/file"
err "--png $tmp/file/png: cannot create" -m "$m1" --ids 1,2,3 -o "$tmp/x.html" --png "$tmp/file/png"
err "/nonexistent-dir/x.html" -m "$m1" --ids 1,2,3 -o /nonexistent-dir/x.html

chrome=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chrome" ]; then
  echo "viewer_browser: SKIPPED: chromium is not installed (scripts/deps.sh installs Debian's chromium)"
  [ "$fail" -eq 0 ] || finish viewer_browser
  exit 77
fi
# Headless, with a profile of its own; virtual time lets the page's asynchronous decoding finish first.
browse() {
  timeout 300 "$chrome" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$tmp/profile" \
    --virtual-time-budget=20000 "$@" 2>/dev/null
}
n_of() { grep -o -- "$1" "$2" | wc -l; } # occurrences of a pattern in a file

# gpt2's golden checkpoint (2 layers x 4 heads) with the gpt2 tokenizer; 40 ids below its vocabulary of 320
m="$tmp/gpt2"
mkdir -p "$m"
ln -s "$data/models/gpt2"/*.json "$data/models/gpt2"/*.safetensors "$m"/
cp "$data/tok/gpt2"/tokenizer*.json "$m"/
ids=$(awk 'BEGIN { for (i = 0; i < 40; i++) printf "%s%d", i ? "," : "", (i * 37 + 11) % 300 }')
title='</script><script>document.body.dataset.pwned=1</script><!--'
if "$heed" inspect -m "$m" --ids "$ids" -o "$tmp/page.html" --png "$tmp/png" --title "$title" 2>"$tmp/err"; then ok
else bad "inspect: $(cat "$tmp/err")"; fi
[ "$(ls "$tmp/png" 2>/dev/null | grep -c '^L[01]_H[0-3]\.png$')" -eq 8 ] && ok || bad "--png: $(ls "$tmp/png")"
read -r w h _ colour < <("$png_ink" "$tmp/png/L1_H2.png")
[ "${w:-0}" -gt 400 ] && [ "${h:-0}" -ge 400 ] && [ "${colour:-0}" -gt 100000 ] && ok ||
  bad "--png L1_H2.png: ${w:-?} x ${h:-?}, ${colour:-?} coloured pixels"
grep -Eq 'https?://|<script src|<link ' "$tmp/page.html" && bad "the page refers to something outside it" || ok

# the grid, the score selector and tables the script builds, the title as text, and a head opened from the
# address with query 30 pinned: its token view holds both columns
browse --dump-dom "file://$tmp/page.html#L1H2q30" >"$tmp/dom.html"
grep -q '<body data-ready="1"' "$tmp/dom.html" && ok || bad "thumbnails not drawn (no data-ready)"
[ "$(n_of 'class="cell[ "]' "$tmp/dom.html")" -eq 8 ] && ok || bad "grid: $(n_of 'class="cell[ "]' "$tmp/dom.html") cells, expected 2 x 4"
[ "$(n_of '<option' "$tmp/dom.html")" -eq 7 ] && ok || bad "score selector: $(n_of '<option' "$tmp/dom.html") options, expected 7"
[ "$(n_of '<table class="score"' "$tmp/dom.html")" -eq 6 ] && ok || bad "$(n_of '<table class="score"' "$tmp/dom.html") score tables, expected 6"
grep -q 'data-pwned' "$tmp/dom.html" && bad "a script from the title ran" || ok
[ "$(n_of '<script' "$tmp/dom.html")" -eq 2 ] && ok || bad "$(n_of '<script' "$tmp/dom.html") script elements, expected 2"
grep -qF '<h1 id="title">&lt;/script&gt;&lt;script&gt;document.body.dataset.pwned=1&lt;/script&gt;&lt;!--</h1>' \
  "$tmp/dom.html" && ok || bad "the title is not shown as text"
grep -q 'data-head="L1H2"' "$tmp/dom.html" && grep -q 'data-pinned="q30"' "$tmp/dom.html" && ok ||
  bad "head L1H2 with q30 pinned: $(grep -o '<body[^>]*>' "$tmp/dom.html")"
[ "$(n_of 'class="tok' "$tmp/dom.html")" -eq 80 ] && ok || bad "token view: $(n_of 'class="tok' "$tmp/dom.html") tokens, expected 2 x 40"

# interactions, dispatched by a script added to a copy of the page once head L1H2 is open: the wheel over the
# heatmap zooms to a 20 x 20 window around its centre; hovering key 5 lights up the queries that attend to it;
# choosing the last score (entropy, index 5) in the selector recolours the grid and retitles its cells
sed 's|</body>|<script>\
(function wait() {\
  if (document.body.dataset.head !== "L1H2") return setTimeout(wait, 20);\
  const heat = document.getElementById("heat"), r = heat.getBoundingClientRect();\
  heat.dispatchEvent(new WheelEvent("wheel", { deltaY: -100, clientX: r.left + r.width / 2,\
                                               clientY: r.top + r.height / 2, bubbles: true, cancelable: true }));\
  document.querySelectorAll("#hv-k .tok")[5].dispatchEvent(new MouseEvent("mouseover", { bubbles: true }));\
  const sel = document.getElementById("score");\
  sel.value = "5";\
  sel.dispatchEvent(new Event("change"));\
  document.body.dataset.events = "sent";\
})();\
</script></body>|' "$tmp/page.html" >"$tmp/events.html"
browse --dump-dom "file://$tmp/events.html#L1H2" >"$tmp/events_dom.html"
grep -q 'data-events="sent"' "$tmp/events_dom.html" && ok || bad "the events were not sent"
# (the event's coordinates are whole pixels: the window may start a row or column off the centre)
zoom=$(grep -o '<div id="zoom" class="muted">[^<]*' "$tmp/events_dom.html")
read -r r0 r1 c0 c1 < <(sed -n 's/.*rows \([0-9]*\)–\([0-9]*\), columns \([0-9]*\)–\([0-9]*\).*/\1 \2 \3 \4/p' <<<"$zoom")
[ $((${r1:-0} - ${r0:-0})) -eq 19 ] && [ $((${c1:-0} - ${c0:-0})) -eq 19 ] && [ "${r0:-0}" -ge 9 ] && [ "${r0:-0}" -le 11 ] &&
  [ "${c0:-0}" -ge 9 ] && [ "${c0:-0}" -le 11 ] && ok || bad "zoom: $zoom"
lit=$(sed -n 's|.*<div class="col q" id="hv-q">\(.*\)</div><div><canvas id="hv-lines".*|\1|p' "$tmp/events_dom.html" |
      grep -o 'rgba(255, 120, 0' | wc -l)
[ "$lit" -ge 1 ] && [ "$lit" -le 35 ] && ok || bad "hovering key 5 lit $lit queries, expected 1 to 35 (those from 5 on)"
grep -q '<div id="tip">key 5 ' "$tmp/events_dom.html" && ok || bad "tip: $(grep -o '<div id="tip">[^<]*' "$tmp/events_dom.html")"
[ "$(n_of 'class="cell[^"]*"[^>]*title="L[01] H[0-3] entropy = [0-9.]*"' "$tmp/events_dom.html")" -eq 8 ] && ok ||
  bad "after choosing entropy: $(grep -o '<div class="cell[^>]*>' "$tmp/events_dom.html" | head -2)"

# screenshots: the checker sees a blank page as blank, and the head view as coloured (thumbnails, heatmap)
echo '<!DOCTYPE html><html><body></body></html>' >"$tmp/blank.html"
browse --window-size=800,600 --screenshot="$tmp/blank.png" "file://$tmp/blank.html" >/dev/null
read -r w h ink colour < <("$png_ink" "$tmp/blank.png")
[ "${w:-0}" -eq 800 ] && [ "${ink:-1}" -eq 0 ] && ok || bad "blank page: ${w:-?} wide, ${ink:-?} inked pixels"
browse --window-size=1280,1000 --screenshot="$tmp/shot.png" "file://$tmp/page.html#L1H2q30" >/dev/null
read -r w h ink colour < <("$png_ink" "$tmp/shot.png")
# the heatmap alone is 520 x 520 coloured pixels
[ "${w:-0}" -eq 1280 ] && [ "${ink:-0}" -gt 250000 ] && [ "${colour:-0}" -gt 250000 ] && ok ||
  bad "screenshot: ${w:-?} x ${h:-?}, ${ink:-?} inked and ${colour:-?} coloured pixels"

# 4096 tokens (llama3-new: RoPE, no position table) with the full map of one head: size and time to build
big=$(awk 'BEGIN { x = 7; printf "1"; for (i = 1; i < 4096; i++) { x = (x * 1103515245 + 12345) % 2147483648;
                   printf ",%d", 3 + int(x / 65536) % 317 } }')
if "$heed" inspect -m "$data/models/llama3-new" --ids "$big" --layers 0 --heads 0 -o "$tmp/big.html" 2>"$tmp/err"; then ok
else bad "inspect 4096 tokens: $(cat "$tmp/err")"; fi
size=$(stat -c %s "$tmp/big.html" 2>/dev/null || echo 0)
[ "$size" -gt 1000000 ] && [ "$size" -lt 12000000 ] && ok || bad "4096-token page: $size bytes, expected 1 to 12 MB"
t0=$(date +%s%N)
browse --dump-dom "file://$tmp/big.html#L0H0q4000" >"$tmp/bigdom.html"
ms=$((($(date +%s%N) - t0) / 1000000))
grep -q 'data-head="L0H0"' "$tmp/bigdom.html" && grep -q 'data-pinned="q4000"' "$tmp/bigdom.html" && ok ||
  bad "4096 tokens: head L0H0 with q4000 pinned not built: $(grep -o '<body[^>]*>' "$tmp/bigdom.html")"
[ "$(n_of 'class="tok' "$tmp/bigdom.html")" -eq 8192 ] && ok || bad "4096 tokens: $(n_of 'class="tok' "$tmp/bigdom.html") tokens"
# a generous limit: the machines running the suite are shared (about 10 s on an idle core)
[ "$ms" -lt 120000 ] && ok || bad "4096 tokens: chromium took $ms ms"

finish viewer_browser "4096-token page $size bytes, built in chromium in $ms ms"
