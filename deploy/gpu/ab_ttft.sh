#!/usr/bin/env bash
# One-GPU TTFT of two builds on the same card, alternating: ttft_bench and `runahead bench
# --schemes single` at TOKENS (default 4096,16384,32768), ROUNDS times (default 2).
# Bundles: .carry/gpu/bin (this tree, `deploy/gpu/gpu.sh bundle runahead ttft_bench`) and
# .carry/gpu/base (runahead and ttft_bench of the tree to compare with, built the same way).
set -u
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
carry="$root/.carry/gpu"
export LD_LIBRARY_PATH="$carry/lib:/usr/local/cuda/lib64"
[[ -f "$carry/lib/libopenblas.so.0.xz" && ! -f "$carry/lib/libopenblas.so.0" ]] &&
  xz -dk "$carry/lib/libopenblas.so.0.xz"
tokens=${TOKENS:-4096,16384,32768}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
for round in $(seq 1 "${ROUNDS:-2}"); do
  for side in base bin; do
    echo "== $side, round $round: ttft_bench"
    timeout 150 "$carry/$side/ttft_bench" --model llama2-7b --tokens "$tokens" 2>&1 | tail -4
    echo "== $side, round $round: runahead bench --schemes single"
    timeout 200 "$carry/$side/runahead" bench --workers 1 --device cuda --model random:llama2-7b \
      --tokens "$tokens" --schemes single --repeat 3 2>&1 | tail -5
  done
done
