#!/usr/bin/env bash
# fuzz.sh — builds the libFuzzer targets (fuzz/fuzz_*.c) with clang, the library instrumented for
# coverage + ASan + UBSan, and runs each for N seconds from a seed corpus (real configs, a small
# safetensors file, token files, probe JSONL sets). Usage: scripts/fuzz.sh [SECONDS]   (default 20; HEED_FUZZ_BUILD picks the build dir)
# Exits non-zero when a target crashes; the crashing input is left in the build dir.
set -euo pipefail
secs=${1:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${HEED_FUZZ_BUILD:-$root/build-fuzz}
jobs=${HEED_FUZZ_JOBS:-2}

# An already configured build (make test's sanitizer build, configured with HEED_FUZZ=ON) is reused.
[ -f "$build/CMakeCache.txt" ] ||
    cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DHEED_FUZZ=ON -DHEED_SANITIZE=ON \
          -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=()
for f in "$root"/fuzz/fuzz_*.c; do targets+=("$(basename "$f" .c)"); done
cmake --build "$build" -j"$jobs" --target "${targets[@]}" >/dev/null

# Seeds: every JSON fixture for the config target; a two-tensor file for the safetensors target;
# small tokenizer.json files for the tokenizer target.
seeds="$build/fuzz-seeds"
rm -rf "$seeds" && for t in "${targets[@]}"; do mkdir -p "$seeds/$t"; done
i=0
while IFS= read -r -d '' j; do cp "$j" "$seeds/fuzz_config/seed$((i++)).json"; done \
    < <(find "$root/tests/data/config" -name '*.json' -size -64k -print0)
hdr='{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[1,2],"data_offsets":[8,12]}}'
n=${#hdr}
{ printf "$(printf '\\x%02x\\x%02x\\x00\\x00\\x00\\x00\\x00\\x00' $((n & 255)) $((n >> 8)))"; printf '%s' "$hdr"; \
  head -c 12 /dev/zero; } > "$seeds/fuzz_safetensors/seed0.safetensors"

# The trained golden tokenizers seed the tokenizer target.
while IFS= read -r -d '' j; do cp "$j" "$seeds/fuzz_tokenizer/seed$((i++)).json"; done \
    < <(find "$root/tests/data/tok" -name 'tokenizer.json' -size -64k -print0)

# Multiple-choice items (heed act-search) with token ids, and one line of each kind of field.
cp "$root/tests/data/act/cloze_ids.jsonl" "$seeds/fuzz_mc/seed0.jsonl"
printf '{"prompt_ids": [0, 5], "choice_ids": [[7], [8, 9]], "label": 1, "id": "x"}\n\n{"prompt": "a", "choices": ["b", "c"], "label": 0}\n' \
    > "$seeds/fuzz_mc/seed1.jsonl"

# Token files: four 16-bit ids, and two 32-bit ids (format in include/heed.h).
printf 'HEEDTOK\0\x01\0\0\0\x10\0\0\0\x04\0\0\0\0\0\0\0\x01\0\x02\0\x03\0\x04\x01' \
    > "$seeds/fuzz_tokfile/seed0.tok"
printf 'HEEDTOK\0\x01\0\0\0\x20\0\0\0\x02\0\0\0\0\0\0\0\x70\x11\x01\0\x05\0\0\0' \
    > "$seeds/fuzz_tokfile/seed1.tok"

# Labelled sets of heed probe: the committed style set, and a line with ids.
cp "$root/tests/data/probe/styles.jsonl" "$seeds/fuzz_probe_data/seed0.jsonl"
printf '{"ids": [0, 7, 2147483647], "label": -3}\n\n{"text": "caf\\u00e9", "label": 4, "x": null}\n' \
    > "$seeds/fuzz_probe_data/seed1.jsonl"

status=0
for t in "${targets[@]}"; do
    corpus="$build/fuzz-corpus/$t"
    mkdir -p "$corpus"
    dict="$root/fuzz/${t#fuzz_}.dict"
    args=(-max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1
          -artifact_prefix="$build/$t-")
    [ -f "$dict" ] && args+=(-dict="$dict")
    echo "fuzz.sh: $t for ${secs}s"
    if ! (cd "$build" && "./$t" "${args[@]}" "$corpus" "$seeds/$t" 2>"$build/$t.log"); then
        echo "fuzz.sh: $t FAILED; see $build/$t.log and $build/$t-*" >&2
        tail -30 "$build/$t.log" >&2
        status=1
    else
        grep -E "stat::number_of_executed_units|cov:" "$build/$t.log" | tail -2
    fi
done
exit $status
