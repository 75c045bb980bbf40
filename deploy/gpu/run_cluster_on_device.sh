#!/usr/bin/env bash
# KV-Runahead across the GPUs of the device machine, in one device call (after
# deploy/gpu/build_cluster_bundle.sh here):
#   run(command="bash deploy/gpu/run_cluster_on_device.sh check bench", carry=[".carry/cluster"],
#       kind="nvidia-h100-x2")
# Steps (arguments; default "check bench"):
#   check  `runahead local --device cuda` with 1 GPU, with all GPUs over GPU peer copies, and
#          with all GPUs through UCX (--no-peer-copy, tcp): the tokens must equal the one-GPU
#          run's. CHECK_MODEL (default random:mini-llama), CHECK_TOKENS (default "1000 3000").
#   bench  `runahead bench` on WORKER_COUNTS GPUs (default: all): single, kvr-even,
#          kvr-balanced at TOKENS (default 4096,16384,32768) for MODEL (default
#          random:llama2-7b), over GPU peer copies.
#   slow   the same K/V through UCX over shared memory, capped at 10 GB/s (LINK_GBPS).
#   noisy  GPU peer copies with up to JITTER_MS (default 2) ms of random delay per block.
#   calibrate  `runahead calibrate` on a coordinator and one worker per GPU (CAL_LENGTHS,
#          SEARCH_LENGTHS, CAL_REPEAT, SEARCH_BUDGET), then bench kvr-balanced and kvr-searched
#          with the profile (link label "profiled").
#   fault  one worker per GPU, the last failing on purpose (--inject-device-fault-after-matmuls
#          FAULT_AFTER, default 6): the request fails naming it, it leaves, the next runs.
#   staged K/V through host memory and UCX shared memory, no cap, in chunks of each of
#          STAGING_CHUNKS MiB (default "4 0"; 0: whole blocks, no pipelining within a block).
# Logs and CSV files go to $OUT; a summary is printed last.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bundle=$root/.carry/cluster
out=${OUT:-/tmp/runahead-cluster}
mkdir -p "$out"
export LD_LIBRARY_PATH="$bundle/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export UCX_MODULE_DIR="$bundle/ucx-modules"  # no modules of the machine's own UCX build
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
runahead=$bundle/bin/runahead
gpus=$(nvidia-smi --list-gpus | wc -l)
steps=${*:-check bench}
model=${MODEL:-random:llama2-7b}
tokens=${TOKENS:-4096,16384,32768}
repeat=${REPEAT:-3}
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  nvidia-smi topo -m
} 2>&1 | tee "$out/device.txt"
ldd "$runahead" | grep "not found" && echo "missing libraries"

bench() {  # bench LABEL [runahead bench options...], once per worker count
  local label=$1 result=0
  shift
  for workers in ${WORKER_COUNTS:-$gpus}; do
    timeout "${BENCH_TIMEOUT:-400}" "$runahead" bench --workers "$workers" --device cuda \
      --model "$model" --tokens "$tokens" --repeat "$repeat" --warmup 1 --link "$label" \
      --schemes "${SCHEMES:-single,kvr-even,kvr-balanced}" \
      --csv "$out/bench_${label}_${workers}.csv" "$@" 2>&1 | tee "$out/bench_${label}_${workers}.log"
    [[ ${PIPESTATUS[0]} -eq 0 ]] || result=1
  done
  return $result
}

# start_cluster PORT TAG NAME MODEL [FLAG...]: a coordinator and one worker per GPU (named NAME0,
# NAME1, ...; the FLAGs go to the last one), logs $out/TAG_*.log; their pids in `pids`.
start_cluster() {
  local port=$1 tag=$2 name=$3 cluster_model=$4
  shift 4
  "$runahead" coordinator --listen "127.0.0.1:$port" >"$out/${tag}_coordinator.log" 2>&1 &
  pids=($!)
  for ((g = 0; g < gpus; ++g)); do
    local last=()
    ((g == gpus - 1)) && last=("$@")
    "$runahead" worker --coordinator "127.0.0.1:$port" --device "cuda:$g" \
      --model "$cluster_model" --name "$name$g" "${last[@]}" >"$out/${tag}_worker$g.log" 2>&1 &
    pids+=($!)
    # Workers join in GPU order, which is the chain order of requests over all of them.
    for _ in $(seq 600); do grep -q "joined" "$out/${tag}_worker$g.log" && break; sleep 0.2; done
  done
}
stop_cluster() {
  kill "${pids[@]}" 2>/dev/null
  wait "${pids[@]}" 2>/dev/null
}

status=0
for step in $steps; do
  case "$step" in
    check)
      for length in ${CHECK_TOKENS:-1000 3000}; do
        ids=$(python3 -c "import random; random.seed($length); print(','.join(str(random.randrange(500)) for _ in range($length)))")
        for variant in 1 peer ucx; do
          workers=$gpus
          extra=()
          case $variant in
            1) workers=1 ;;
            # Chunks of 64 KiB: several per block even for the small model.
            ucx) extra=(--no-peer-copy --transports tcp --staging-chunk-mib 0.0625) ;;
          esac
          timeout 300 "$runahead" local --workers "$workers" --device cuda \
            --model "${CHECK_MODEL:-random:mini-llama}" --tokens "$ids" --max-new-tokens 8 \
            --json "${extra[@]}" >"$out/check_${length}_${variant}.json" \
            2>"$out/check_${length}_${variant}.log" || status=1
        done
      done
      python3 - "$out" <<'PY' || status=1
import glob, json, os, sys
out = sys.argv[1]
ok = True
for one in sorted(glob.glob(os.path.join(out, "check_*_1.json"))):
    length = one.split("_")[-2]
    load = lambda p: json.load(open(p)) if os.path.getsize(p) else None
    base = load(one)
    for variant in ("1", "peer", "ucx"):
        data = load(os.path.join(out, f"check_{length}_{variant}.json"))
        same = base is not None and data is not None and data["tokens"] == base["tokens"]
        ok = ok and same
        print(f"check {length:>6} tokens, {variant:>4}: " + (
            f"TTFT {data['ttft_ms']:.1f} ms, tokens {'==' if same else '!='} 1 GPU"
            if data else "FAILED"))
sys.exit(0 if ok else 1)
PY
      ;;
    bench) bench nvlink || status=1 ;;
    slow)
      bench "slow${LINK_GBPS:-10}" --no-peer-copy --transports posix,sysv,self \
        --link-gbps "${LINK_GBPS:-10}" || status=1
      ;;
    noisy) bench noisy --link-jitter-ms "${JITTER_MS:-2}" || status=1 ;;
    staged)
      for chunk in ${STAGING_CHUNKS:-4 0}; do
        bench "staged-chunk$chunk" --no-peer-copy --transports posix,sysv,self \
          --staging-chunk-mib "$chunk" || status=1
      done
      ;;
    calibrate)
      # A coordinator and one worker per GPU, `runahead calibrate` on them (cost model and
      # searched partitions), then `bench` with the profile: kvr-balanced (the model's cuts)
      # and kvr-searched (the measured table).
      port=${CAL_PORT:-47411}
      start_cluster "$port" cal c "$model"
      timeout "${CAL_TIMEOUT:-400}" "$runahead" calibrate --coordinator "127.0.0.1:$port" \
        --out "$out/profile.json" --model "$model" --lengths "${CAL_LENGTHS:-4096,16384,32768}" \
        --search-lengths "${SEARCH_LENGTHS:-16384,32768}" --repeat "${CAL_REPEAT:-2}" \
        --search-budget "${SEARCH_BUDGET:-24}" 2>&1 | tee "$out/calibrate.log"
      [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
      stop_cluster
      if [[ -f "$out/profile.json" ]]; then
        SCHEMES=kvr-balanced,kvr-searched bench profiled --profile "$out/profile.json" || status=1
      fi
      ;;
    fault)
      # One worker per GPU, the last with an injected device fault (FAULT_AFTER matrix products
      # after joining): the first request must fail naming it, the worker must leave, and the
      # next request must run on the others.
      port=${FAULT_PORT:-47412}
      start_cluster "$port" fault f "${CHECK_MODEL:-random:mini-llama}" \
        --inject-device-fault-after-matmuls "${FAULT_AFTER:-6}"
      ids=$(python3 -c "import random; random.seed(7); print(','.join(str(random.randrange(500)) for _ in range(2000)))")
      timeout 60 "$runahead" submit --coordinator "127.0.0.1:$port" --tokens "$ids" \
        --max-new-tokens 4 --json >"$out/fault_first.json" 2>"$out/fault_first.log"
      first=$?
      sleep 2
      timeout 30 "$runahead" status --coordinator "127.0.0.1:$port" --json >"$out/fault_status.json" 2>&1
      timeout 60 "$runahead" submit --coordinator "127.0.0.1:$port" --tokens "$ids" \
        --max-new-tokens 4 --json >"$out/fault_second.json" 2>"$out/fault_second.log"
      second=$?
      stop_cluster
      echo "first request (exit $first): $(tail -n 2 "$out/fault_first.log")"
      echo "status after it: $(cat "$out/fault_status.json")"
      echo "second request (exit $second): $(head -c 300 "$out/fault_second.json")"
      if [[ $first -eq 0 || $second -ne 0 ]] || ! grep -q "injected device fault" "$out/fault_first.log"; then
        echo "fault: FAILED"; status=1
      else
        echo "fault: ok"
      fi
      ;;
    *) echo "unknown step '$step' (check, bench, slow, noisy, staged, calibrate, fault)"; status=2 ;;
  esac
done
echo "status $status"
exit $status
