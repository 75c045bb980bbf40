#!/usr/bin/env bash
# The whole comparison in one device call on a 4-GPU machine, ours and the peers side by side
# (after deploy/gpu/build_cluster_bundle.sh and deploy/gpu/build_bundle.sh here, their bin/
# folders merged into one carried bundle, see deploy/gpu/pack_bundle.sh):
#   run(command="bash deploy/gpu/run_sweep_on_device.sh", carry=[".carry/dev"],
#       kind="nvidia-h200-x4")
# In order of importance, each step bounded, later steps skipped once BUDGET_S (default 540)
# seconds have passed:
#   kvr     runahead bench, Llama-2-7B shapes, 4 and 2 GPUs, over GPU peer copies
#   cp      PyTorch context parallelism (ring attention, load-balanced), 4 and 2 GPUs
#   tsp     TSP in our runtime (paper form and zigzag), 4 and 2 GPUs
#   hf      Hugging Face transformers and our ttft_bench on one GPU
#   links   KV-Runahead and TSP at 4 GPUs on a 10 GB/s link and on a noisy link
#   falcon  Falcon-7B shapes (multi-query attention) at 4 GPUs, 8k tokens
#   llama3  Llama-3-8B shapes (grouped-query attention) at 4 GPUs
# Everything lands in $OUT/sweep.tgz; the summaries are printed.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
out=${OUT:-/tmp/runahead-sweep}
work=/tmp/sweep
mkdir -p "$work" "$out"
budget=${BUDGET_S:-540}
steps=${*:-kvr tsp cp links falcon llama3 hf}
start=$SECONDS
export REPEAT=${REPEAT:-2}

step() {  # step NAME TIMEOUT command...
  local name=$1 limit=$2
  shift 2
  local left=$((budget - (SECONDS - start)))
  if ((left < 20)); then
    echo "=== $name skipped: the time budget is spent"
    return 0
  fi
  ((limit > left)) && limit=$left
  echo "=== $name (at most ${limit} s, $((SECONDS - start)) s elapsed)"
  timeout "$limit" "$@" || echo "=== $name ended with status $?"
}

for name in $steps; do
  case "$name" in
    kvr)
      step kvr 150 env OUT="$work/kvr" WORKER_COUNTS="4 2" \
        bash deploy/gpu/run_cluster_on_device.sh bench 2>&1 | grep -E "^(scheme|kvr-|single) " ;;
    cp)
      step cp 200 env OUT="$work/peers" GPU_COUNTS="4 2" STEPS=cp \
        bash deploy/gpu/run_peers_on_device.sh 2>&1 | grep -E "selected|check at|^\{|error" | tail -20 ;;
    tsp)
      step tsp 90 env OUT="$work/peers" GPU_COUNTS="4 2" STEPS="check tsp" \
        bash deploy/gpu/run_peers_on_device.sh 2>&1 | grep -E "^(scheme|tsp-)|check|error" ;;
    hf)
      step hf 120 env OUT="$work/one" bash deploy/gpu/run_on_device.sh bench hf 2>&1 |
        grep -E "tokens|ttft|HF|hf" | tail -12 ;;
    links)
      step kvr-links 90 env OUT="$work/kvr" WORKER_COUNTS=4 TOKENS=8192,16384 \
        SCHEMES=kvr-even,kvr-balanced bash deploy/gpu/run_cluster_on_device.sh slow noisy 2>&1 |
        grep -E "^(scheme|kvr-|single) "
      step tsp-links 90 env OUT="$work/peers" GPU_COUNTS=4 TOKENS=8192,16384 \
        STEPS="tsp-slow tsp-noisy" bash deploy/gpu/run_peers_on_device.sh 2>&1 |
        grep -E "^(scheme|tsp-)|error" ;;
    falcon)
      step kvr-falcon 60 env OUT="$work/falcon" WORKER_COUNTS=4 TOKENS=8192 \
        MODEL=random:falcon-7b bash deploy/gpu/run_cluster_on_device.sh bench 2>&1 |
        grep -E "^(scheme|kvr-|single) "
      step tsp-falcon 60 env OUT="$work/peers" GPU_COUNTS=4 TOKENS=8192 MODEL=falcon-7b \
        STEPS=tsp bash deploy/gpu/run_peers_on_device.sh 2>&1 | grep -E "^(scheme|tsp-)|error" ;;
    llama3)
      step kvr-llama3 70 env OUT="$work/llama3" WORKER_COUNTS=4 MODEL=random:llama3-8b \
        bash deploy/gpu/run_cluster_on_device.sh bench 2>&1 | grep -E "^(scheme|kvr-|single) "
      step tsp-llama3 60 env OUT="$work/peers" GPU_COUNTS=4 MODEL=llama3-8b STEPS=tsp \
        bash deploy/gpu/run_peers_on_device.sh 2>&1 | grep -E "^(scheme|tsp-)|error" ;;
    *) echo "unknown step '$name'" ;;
  esac
done
tar czf "$out/sweep.tgz" -C "$work" .
echo "done in $((SECONDS - start)) s"
