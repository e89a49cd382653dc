#!/usr/bin/env bash
# cli_train_test.sh — `heed train` end to end on tiny models: a synthetic task and a text corpus with a
# tokenizer trained by `heed train-tokenizer`; the checkpoint directory, the CSV log, an exact resume (the
# log of 2 + 2 steps equals that of 4 straight), the runtime running what was trained, and clear errors.
# Usage: cli_train_test.sh HEED
set -u
heed="$1"
root="$(cd "$(dirname "$0")/.." && pwd)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/check.sh"
small="--layers 1 --hidden 32 --heads 2 --kv-heads 1 --ffn 48 --seq 32 --batch 2 --eval-every 2 --eval-batches 1"

# a synthetic task: 4 steps straight, and 2 + 2 with --resume, give the same losses
"$heed" train -o "$tmp/a" --task repeat --task-vocab 64 $small --steps 4 --log "$tmp/a.csv" 2>"$tmp/err" && ok ||
  bad "train --task repeat: $(cat "$tmp/err")"
for f in config.json model.safetensors train_state.safetensors generation_config.json; do
  [ -s "$tmp/a/$f" ] && ok || bad "checkpoint lacks $f"
done
[ "$(head -1 "$tmp/a.csv")" = "step,tokens,loss,lr,grad_norm,tokens_per_s,eval_loss,eval_ppl,eval_acc" ] &&
  [ "$(wc -l <"$tmp/a.csv")" -eq 5 ] && ok || bad "log: $(cat "$tmp/a.csv")"
grep -q "^step 4/4 .*eval loss" "$tmp/err" && ok || bad "progress line: $(tail -2 "$tmp/err")"
# 2 steps of a 4-step run (--stop-after), then --resume: the same log as 4 steps straight (tokens/s aside)
"$heed" train -o "$tmp/b" --task repeat --task-vocab 64 $small --steps 4 --stop-after 2 --log "$tmp/b.csv" 2>/dev/null
[ "$(wc -l <"$tmp/b.csv")" -eq 3 ] && ok || bad "--stop-after 2: $(cat "$tmp/b.csv")"
"$heed" train -o "$tmp/b" --resume --task repeat --task-vocab 64 --seq 32 --batch 2 --steps 4 --eval-every 2 \
  --eval-batches 1 --log "$tmp/b.csv" 2>"$tmp/err" && grep -q "from step 2" "$tmp/err" && ok || bad "resume: $(cat "$tmp/err")"
cut -d, -f1-5,7-9 "$tmp/a.csv" >"$tmp/a8"
cut -d, -f1-5,7-9 "$tmp/b.csv" >"$tmp/b8"
cmp -s "$tmp/a8" "$tmp/b8" && ok || bad "2 + 2 resumed steps differ from 4: $(diff "$tmp/a8" "$tmp/b8")"

# text: a tokenizer trained by heed, a corpus, and the runtime generating from the checkpoint
head -c 20000 "$root/models/default/heldout.txt" >"$tmp/corpus.txt"
"$heed" train-tokenizer -f "$tmp/corpus.txt" -o "$tmp/tok" --vocab 300 2>/dev/null && ok || bad "train-tokenizer"
"$heed" train -o "$tmp/t" --text "$tmp/corpus.txt" --tokenizer "$tmp/tok" --heldout 0.1 --repeat-frac 0.5 \
  --repeat-shuffle $small --steps 3 --bf16 2>"$tmp/err" && ok || bad "train --text: $(cat "$tmp/err")"
[ -s "$tmp/t/tokenizer.json" ] && [ ! -e "$tmp/t/train_state.safetensors" ] && ok || bad "bf16 checkpoint files"
grep -q '"bos_token_id":.*0' "$tmp/t/config.json" && grep -q '"eos_token_id":.*1' "$tmp/t/config.json" && ok ||
  bad "config.json lacks bos/eos: $(cat "$tmp/t/config.json")"
"$heed" run -m "$tmp/t" -p "And it came" -n 4 --greedy >/dev/null 2>&1 && ok || bad "heed run on the trained model"

# every mixer trains a step and saves
for mixer in sigmoid sink selective moh window s2 linear gconv; do
  "$heed" train -o "$tmp/m-$mixer" --task repeat --task-vocab 64 $small --heads 4 --kv-heads 2 --mixer "$mixer" \
    --window 8 --s2 4,1,2 --moh 1,2 --steps 1 2>"$tmp/err" && [ -s "$tmp/m-$mixer/model.safetensors" ] && ok ||
    bad "mixer $mixer: $(cat "$tmp/err")"
done

# errors: a clear message, a non-zero status, nothing written
err() { # EXPECTED-MESSAGE ARGS...
  local want="$1"
  shift
  if "$heed" train "$@" >/dev/null 2>"$tmp/err"; then bad "train $* exited 0"
  elif grep -qF -- "$want" "$tmp/err"; then ok
  else bad "train $*: expected '$want', got: $(cat "$tmp/err")"; fi
}
err "-o DIR is required" --task repeat
err "exactly one of" -o "$tmp/x" --task repeat --data "$tmp/none.tok"
err "--task nope" -o "$tmp/x" --task nope
err "--mixer nope" -o "$tmp/x" --task repeat --mixer nope
err "--lr -1" -o "$tmp/x" --task repeat --lr -1
err "cannot open" -o "$tmp/x" --text "$tmp/none.txt" --tokenizer "$tmp/tok"
err "n_heads" -o "$tmp/x" --task repeat --heads 3 --kv-heads 2 --hidden 30
[ ! -e "$tmp/x" ] && ok || bad "a failed run left $tmp/x"

finish cli_train
