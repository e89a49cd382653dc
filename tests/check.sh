# check.sh — sourced by the shell tests: pass/fail counters, the closing summary line, and zero_weight.
pass=0 fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
# Prints "NAME: [EXTRA; ]N passed, M failed", then the plain closing line; returns non-zero on failures.
finish() {
  echo "$1: ${2:+$2; }$pass passed, $fail failed"
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}

# zero_weight SRC DST REGEX: a copy of model dir SRC in DST (its *.json and model.safetensors) with every
# tensor whose name matches REGEX (grep -o syntax, dots escaped) zeroed in place, at the offsets its
# safetensors header gives.
zero_weight() {
  mkdir -p "$2" && cp "$1"/*.json "$1"/model.safetensors "$2"/
  local f="$2/model.safetensors" hlen
  hlen=$(od -A n -t u8 -N 8 "$f" | tr -d ' ')
  head -c $((8 + hlen)) "$f" | grep -ao "\"$3\":{[^}]*}" |
    sed 's/.*"data_offsets":\[\([0-9]*\),\([0-9]*\)\].*/\1 \2/' | while read -r a b; do
      dd if=/dev/zero of="$f" bs=1 seek=$((8 + hlen + a)) count=$((b - a)) conv=notrunc status=none
    done
}
