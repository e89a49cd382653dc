#!/usr/bin/env bash
# sink_sweep.sh — the third-phase sweep of models/default/README.md ("Why the sink is in 2-6 heads"): four
# fine-tunes of the default model side by side (weight decay 0.1 / 0.5 / 1.0 at peak lr 1e-3, and 0.5 at
# 2e-3), then each one's Sink^0.3 on four held-out excerpts, its best induction head and its held-out
# perplexity. Needs 16 cores to finish in about 6 minutes (it ran on the GPU machine's CPU).
# Usage: scripts/sink_sweep.sh HEED CORPUS_DIR OUT   (CORPUS_DIR from scripts/make_corpus.sh, with tok/ from
#        `heed train-tokenizer`; OUT receives the logs and a summary)
set -u
heed=${1:?usage: sink_sweep.sh HEED CORPUS_DIR OUT} corpus=${2:?} out=${3:?}
root="$(cd "$(dirname "$0")/.." && pwd)"
model="$root/models/default"
mkdir -p "$out"
runs=("wd0.1 0.1 1e-3" "wd0.5 0.5 1e-3" "wd1.0 1.0 1e-3" "wd0.5-lr2e-3 0.5 2e-3")
for r in "${runs[@]}"; do
    set -- $r
    mkdir -p "$out/$1"
    cp "$model"/{config.json,generation_config.json,model.safetensors,tokenizer.json,tokenizer_config.json} "$out/$1/"
    "$heed" train -o "$out/$1" --resume --text "$corpus/train.txt" --tokenizer "$corpus/tok" --batch 8 --seq 256 \
        --steps 1000 --lr "$3" --min-lr 1e-4 --warmup 50 --wd "$2" --repeat-frac 0.25 --repeat-shuffle \
        --eval-every 250 --eval-batches 4 --save-every 100 --threads 4 --log "$out/$1.csv" 2>"$out/$1.err" &
done
wait
for r in "${runs[@]}"; do
    set -- $r
    "$heed" train -o "$out/$1" --resume --steps 1 --bf16 --text "$corpus/train.txt" --tokenizer "$corpus/tok" \
        2>>"$out/$1.err"
    {
        echo "== $1: weight decay $2, peak lr $3"
        for off in 0 3000 9000 15000; do
            "$heed" heads -m "$out/$1" --score sink -p "$(tail -c +$((off + 1)) "$model/heldout.txt" | head -c 260)" |
                grep Sink
        done
        "$heed" heads -m "$out/$1" --score induction | sed -n 1,3p
        "$heed" ppl -m "$out/$1" -f "$model/heldout.txt" --ctx 256 | tail -1
    } >>"$out/summary.txt" 2>&1
done
cat "$out/summary.txt"
