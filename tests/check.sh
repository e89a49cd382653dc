# check.sh — sourced by the shell tests: pass/fail counters and the closing summary line.
pass=0 fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
# Prints "NAME: [EXTRA; ]N passed, M failed", then the plain closing line; returns non-zero on failures.
finish() {
  echo "$1: ${2:+$2; }$pass passed, $fail failed"
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}
