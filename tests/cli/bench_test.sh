#!/usr/bin/env bash
# runahead bench on a local cluster of CPU workers: every scheme and length gets its timed runs,
# the CSV has one row per run with the partition it ran with, and bad options are refused.
set -uo pipefail
runahead="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export OMP_WAIT_POLICY=passive

if ! "$runahead" bench --workers 2 --model random:tiny-llama --tokens 40,120 --repeat 2 \
  --warmup 1 --verify 4 --csv "$work/runs.csv" >"$work/out" 2>"$work/err"; then
  echo "FAIL bench run:"
  cat "$work/err"
  exit 1
fi
head -n 1 "$work/runs.csv" | grep -qx "scheme,model,gpus,tokens,ttft_ms,repeat,link,mfu,cuts" ||
  { echo "FAIL header: $(head -n 1 "$work/runs.csv")"; exit 1; }
rows=$(tail -n +2 "$work/runs.csv" | wc -l)
[[ $rows -eq 12 ]] || { echo "FAIL: $rows rows, expected 3 schemes x 2 lengths x 2 runs"; exit 1; }
# single runs on one worker over the whole prompt; kvr-even splits 120 tokens in two halves.
grep -q "^single,tiny-llama,1,120,.*,0:120$" "$work/runs.csv" || { echo "FAIL single row"; exit 1; }
grep -q "^kvr-even,tiny-llama,2,120,.*,0:60:120$" "$work/runs.csv" || { echo "FAIL even row"; exit 1; }
grep -q "^kvr-balanced " "$work/out" || { echo "FAIL summary"; cat "$work/out"; exit 1; }
verified=$(grep -c "^verify .* 4 tokens equal one worker's" "$work/out")
[[ $verified -eq 4 ]] || { echo "FAIL: $verified of 4 verifications"; cat "$work/out"; exit 1; }

"$runahead" bench --model random:tiny-llama --tokens 64 --schemes kvr-searched >/dev/null \
  2>"$work/err" && { echo "FAIL kvr-searched without a profile was accepted"; exit 1; }
grep -q "needs --profile" "$work/err" || { echo "FAIL: $(cat "$work/err")"; exit 1; }
"$runahead" bench --model random:tiny-llama --tokens 100000 >/dev/null 2>"$work/err" &&
  { echo "FAIL a length past the model's limit was accepted"; exit 1; }
grep -q "100000" "$work/err" || { echo "FAIL: $(cat "$work/err")"; exit 1; }
echo "ok"
