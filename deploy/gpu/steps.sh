# Sourced by deploy/gpu/gpu.sh for `run`: the steps (step_<name>, "-" in a name as "_") and
# what they share. `deploy/gpu/gpu.sh --help` describes each step and its settings. Each step
# returns non-zero when it failed. Needs `root` and `self` from gpu.sh.
# shellcheck shell=bash

# The bundle, $OUT, the environment every step runs in, and the device's description.
run_setup() {
  local bundle_dir=${BUNDLE:-$root/.carry/gpu}
  bundle=$(cd "$bundle_dir" 2>/dev/null && pwd) || {
    echo "no bundle at $bundle_dir: build it with deploy/gpu/gpu.sh bundle and bring it along" >&2
    bundle=$bundle_dir
  }
  export BUNDLE=$bundle  # the sweep's own runs find it from anywhere
  bin=$bundle/bin
  out=${OUT:-/tmp/runahead-gpu}
  mkdir -p "$out"
  out=$(cd "$out" && pwd)
  cd "$root" || return 1
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/runahead-gpu.XXXXXX") || return 1
  # shellcheck disable=SC2064  # the folder is known now
  trap "rm -rf '$scratch'" EXIT
  mkdir -p "$scratch/lib" "$scratch/ucx-modules"
  local packed
  for packed in "$bundle"/lib/*.xz; do
    [[ -f "$packed" ]] || continue
    xz -dc "$packed" >"$scratch/lib/$(basename "${packed%.xz}")" || return 1
  done
  # Our binaries find the bundle's libraries first; Python (the peers) keeps its own.
  lib_path="$bundle/lib:$scratch/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  ours=(env "LD_LIBRARY_PATH=$lib_path")
  # The bundle's UCX must not load the transport modules of the host's own UCX build.
  export UCX_MODULE_DIR="$scratch/ucx-modules"
  # NVLink multicast stays off for everything that might reach NCCL.
  export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
  export PYTHONUNBUFFERED=1
  export RUNAHEAD_TEST_DATA=${RUNAHEAD_TEST_DATA:-$root/tests/data}

  gpus=$(nvidia-smi --list-gpus | wc -l)
  gpu_counts=${GPU_COUNTS:-$gpus}
  model=${MODEL:-llama2-7b}
  tokens=${TOKENS:-4096,16384,32768}
  repeat=${REPEAT:-3}
  {
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
    nvidia-smi topo -m
  } 2>&1 | tee "$out/device.txt"
  local binary missing
  for binary in "$bin"/*; do
    # tsp_bench needs the host's NCCL, which tsp_setup finds.
    [[ -f "$binary" && $(basename "$binary") != tsp_bench ]] || continue
    missing=$("${ours[@]}" ldd "$binary" 2>&1 | grep "not found" | sort -u)
    [[ -z "$missing" ]] || echo "$(basename "$binary") is missing libraries: $missing" |
      tee -a "$out/device.txt"
  done
  return 0
}

# MODEL for runahead (random:PRESET unless it names a checkpoint) and for the peers (a preset).
kvr_model() {
  case $1 in
    random:* | */* | *.gguf) echo "$1" ;;
    *) echo "random:$1" ;;
  esac
}
peer_model() { echo "${1#random:}"; }

# A command's status through `| tee`.
tee_to() { # tee_to FILE [-a] command...: runs the command, its output to the terminal and FILE
  local file=$1 append=()
  shift
  [[ $1 == -a ]] && { append=(-a); shift; }
  "$@" 2>&1 | tee "${append[@]}" "$file"
  return "${PIPESTATUS[0]}"
}

# --- one GPU ---

step_cuda_test() {
  local filter=() result
  [[ -n ${GTEST_FILTER:-} ]] && filter=(--gtest_filter="$GTEST_FILTER")
  "${ours[@]}" "$bin/cuda_test" --gtest_output="xml:$out/cuda_test.xml" "${filter[@]}" \
    >"$out/cuda_test.log" 2>&1
  result=$?
  grep -E "rel-err|argmax|FAILED|PASSED|SKIPPED|tests ran" "$out/cuda_test.log" | tail -n 70
  return $result
}

step_memcheck() {
  local result
  "${ours[@]}" compute-sanitizer --tool memcheck --error-exitcode 9 "$bin/cuda_test" \
    --gtest_filter='CudaKernelTest.*:Shapes/CudaAttentionTest.*' >"$out/memcheck.log" 2>&1
  result=$?
  tail -n 5 "$out/memcheck.log"
  return $result
}

step_ttft() {
  # shellcheck disable=SC2086  # TTFT_ARGS is a list of flags
  tee_to "$out/ttft_bench.log" "${ours[@]}" "$bin/ttft_bench" --model "$(peer_model "$model")" \
    --tokens "$tokens" ${TTFT_ARGS:-} --json "$out/ttft.jsonl"
}

step_hf() {
  tee_to "$out/hf.log" python3 bench/ttft/hf_ttft.py --tokens "$tokens" \
    --model "$(peer_model "$model")" --json "$out/ttft.jsonl"
}

step_attn_ncu() {
  "${ours[@]}" ncu --clock-control none --kernel-name regex:attention_ --launch-count 1 \
    --section SpeedOfLight --section Occupancy --section WarpStateStats \
    "$bin/ttft_bench" --model "$(peer_model "$model")" --tokens 16384 --warmup 0 --repeats 1 \
    >"$out/ncu.txt" 2>&1
}

step_power() {
  # SM clock and power, sampled every 50 ms, while ttft_bench and then the HF peer run.
  local who sampler result=0
  for who in ours hf; do
    nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,power.limit,temperature.gpu,clocks_event_reasons.active \
      --format=csv -lms 50 -i 0 >"$out/smi_$who.csv" 2>&1 &
    sampler=$!
    if [[ $who == ours ]]; then
      "${ours[@]}" "$bin/ttft_bench" --model "$(peer_model "$model")" --tokens "$tokens" \
        --no-profile --repeats 5 >"$out/power_ours.log" 2>&1 || result=1
    else
      python3 bench/ttft/hf_ttft.py --model "$(peer_model "$model")" --tokens "$tokens" \
        >"$out/power_hf.log" 2>&1 || result=1
    fi
    kill "$sampler"
    wait "$sampler" 2>/dev/null
  done
  cat "$out/power_ours.log" "$out/power_hf.log"
  python3 bench/ttft/power_summary.py "$out/smi_ours.csv" "$out/smi_hf.csv" || result=1
  return $result
}

step_staging() {
  # shellcheck disable=SC2086  # STAGING_ARGS is a list of flags
  tee_to "$out/staging.log" "${ours[@]}" "$bin/staged_copy_bench" ${STAGING_ARGS:-} \
    --csv "$out/staging.csv"
}

# --- one runahead worker per GPU ---

# kvr_bench LABEL [runahead bench flag...]: `runahead bench` once per GPU count.
kvr_bench() {
  local label=$1 count result=0
  shift
  for count in $gpu_counts; do
    tee_to "$out/bench_${label}_${count}.log" timeout "${BENCH_TIMEOUT:-400}" "${ours[@]}" \
      "$bin/runahead" bench --workers "$count" --device cuda --model "$(kvr_model "$model")" \
      --tokens "$tokens" --repeat "$repeat" --warmup 1 --link "$label" \
      --schemes "${SCHEMES:-single,kvr-even,kvr-balanced}" \
      --csv "$out/bench_${label}_${count}.csv" "$@" || result=1
  done
  return $result
}

# start_cluster PORT TAG NAME MODEL [FLAG...]: a coordinator and one worker per GPU (named NAME0,
# NAME1, ...; the FLAGs go to the last one), logs $out/TAG_*.log; their pids in `pids`.
start_cluster() {
  local port=$1 tag=$2 name=$3 cluster_model=$4 g
  shift 4
  "${ours[@]}" "$bin/runahead" coordinator --listen "127.0.0.1:$port" --model "$cluster_model" \
    >"$out/${tag}_coordinator.log" 2>&1 &
  pids=($!)
  for ((g = 0; g < gpus; ++g)); do
    local last=()
    ((g == gpus - 1)) && last=("$@")
    "${ours[@]}" "$bin/runahead" worker --coordinator "127.0.0.1:$port" --device "cuda:$g" \
      --model "$cluster_model" --name "$name$g" "${last[@]}" >"$out/${tag}_worker$g.log" 2>&1 &
    pids+=($!)
    # Workers join in GPU order, which is the chain order of requests over all of them.
    for _ in $(seq 600); do
      grep -q "joined" "$out/${tag}_worker$g.log" && break
      sleep 0.2
    done
  done
}
stop_cluster() {
  kill "${pids[@]}" 2>/dev/null
  wait "${pids[@]}" 2>/dev/null
}

# `count` random token ids below 500, seeded.
random_ids() {
  python3 -c "import random; random.seed($1); print(','.join(str(random.randrange(500)) for _ in range($2)))"
}

step_check() {
  local length variant workers extra ids result=0
  for length in ${CHECK_TOKENS:-1000 3000}; do
    ids=$(random_ids "$length" "$length")
    for variant in 1 peer ucx; do
      workers=$gpus
      extra=()
      case $variant in
        1) workers=1 ;;
        # Chunks of 64 KiB: several per block even for the small model.
        ucx) extra=(--no-peer-copy --transports tcp --staging-chunk-mib 0.0625) ;;
      esac
      timeout "${CHECK_TIMEOUT:-300}" "${ours[@]}" "$bin/runahead" local --workers "$workers" \
        --device cuda --model "$(kvr_model "${CHECK_MODEL:-mini-llama}")" --tokens "$ids" \
        --max-new-tokens 8 --json "${extra[@]}" >"$out/check_${length}_${variant}.json" \
        2>"$out/check_${length}_${variant}.log" || result=1
    done
  done
  python3 - "$out" <<'PY' || result=1
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
  return $result
}

step_kvr() { kvr_bench nvlink; }

step_kvr_slow() {
  kvr_bench "slow${LINK_GBPS:-10}" --no-peer-copy --transports posix,sysv,self \
    --link-gbps "${LINK_GBPS:-10}"
}

step_kvr_noisy() { kvr_bench noisy --link-jitter-ms "${JITTER_MS:-2}"; }

step_kvr_staged() {
  local chunk result=0
  for chunk in ${STAGING_CHUNKS:-4 0}; do
    kvr_bench "staged-chunk$chunk" --no-peer-copy --transports posix,sysv,self \
      --staging-chunk-mib "$chunk" || result=1
  done
  return $result
}

step_calibrate() {
  # A coordinator and one worker per GPU, `runahead calibrate` on them (cost model and searched
  # partitions), then `bench` with the profile: kvr-balanced (the model's cuts) and
  # kvr-searched (the measured table).
  local port=${CAL_PORT:-47411} result=0
  start_cluster "$port" cal c "$(kvr_model "$model")"
  tee_to "$out/calibrate.log" timeout "${CAL_TIMEOUT:-400}" "${ours[@]}" "$bin/runahead" \
    calibrate --coordinator "127.0.0.1:$port" --out "$out/profile.json" \
    --model "$(kvr_model "$model")" --lengths "${CAL_LENGTHS:-4096,16384,32768}" \
    --search-lengths "${SEARCH_LENGTHS:-16384,32768}" --repeat "${CAL_REPEAT:-2}" \
    --search-budget "${SEARCH_BUDGET:-24}" || result=1
  stop_cluster
  if [[ -f "$out/profile.json" ]]; then
    SCHEMES=kvr-balanced,kvr-searched kvr_bench profiled --profile "$out/profile.json" || result=1
  fi
  return $result
}

step_fault() {
  # One worker per GPU, the last with an injected device fault (FAULT_AFTER matrix products
  # after joining): the first request must fail naming it, the worker must leave, and the next
  # request must run on the others.
  local port=${FAULT_PORT:-47412} ids first second
  start_cluster "$port" fault f "$(kvr_model "${CHECK_MODEL:-mini-llama}")" \
    --inject-device-fault-after-matmuls "${FAULT_AFTER:-6}"
  ids=$(random_ids 7 2000)
  timeout 60 "${ours[@]}" "$bin/runahead" submit --coordinator "127.0.0.1:$port" --tokens "$ids" \
    --max-new-tokens 4 --json >"$out/fault_first.json" 2>"$out/fault_first.log"
  first=$?
  sleep 2
  timeout 30 "${ours[@]}" "$bin/runahead" status --coordinator "127.0.0.1:$port" --json \
    >"$out/fault_status.json" 2>&1
  timeout 60 "${ours[@]}" "$bin/runahead" submit --coordinator "127.0.0.1:$port" --tokens "$ids" \
    --max-new-tokens 4 --json >"$out/fault_second.json" 2>"$out/fault_second.log"
  second=$?
  stop_cluster
  echo "first request (exit $first): $(tail -n 2 "$out/fault_first.log")"
  echo "status after it: $(cat "$out/fault_status.json")"
  echo "second request (exit $second): $(head -c 300 "$out/fault_second.json")"
  if [[ $first -eq 0 || $second -ne 0 ]] ||
    ! grep -q "injected device fault" "$out/fault_first.log"; then
    echo "fault: FAILED"
    return 1
  fi
  echo "fault: ok"
}

# --- the multi-GPU peers ---

# tsp_bench's environment: the host has NCCL only inside PyTorch's wheels (nvidia/nccl/lib
# below site-packages).
tsp_setup() {
  [[ -n ${tsp_env+set} ]] && return 0
  local nccl_lib
  nccl_lib=$(
    python3 - <<'PY'
import glob, os, site
roots = site.getsitepackages() + [site.getusersitepackages()]
for root in roots:
    hits = sorted(glob.glob(os.path.join(root, "nvidia", "nccl", "lib", "libnccl.so*")) +
                  glob.glob(os.path.join(root, "nvidia", "*", "lib", "libnccl.so*")))
    if hits:
        print(os.path.dirname(hits[0]))
        break
PY
  )
  echo "NCCL for tsp_bench: ${nccl_lib:-NOT FOUND}" | tee -a "$out/device.txt"
  tsp_env=(env "LD_LIBRARY_PATH=${nccl_lib:+$nccl_lib:}$lib_path")
  local missing
  missing=$("${tsp_env[@]}" ldd "$bin/tsp_bench" 2>&1 | grep "not found" | sort -u)
  [[ -z "$missing" ]] || echo "tsp_bench is missing libraries: $missing" | tee -a "$out/device.txt"
}

# tsp_sweep [tsp_bench flag...]: both TSP schemes once per GPU count, rows appended to tsp.csv.
tsp_sweep() {
  local count result=0
  tsp_setup
  for count in $gpu_counts; do
    tee_to "$out/tsp_bench.log" -a timeout "${TSP_TIMEOUT:-300}" "${tsp_env[@]}" "$bin/tsp_bench" \
      --model "$(peer_model "$model")" --gpus "$count" --tokens "$tokens" --repeat "$repeat" \
      --csv "$out/tsp.csv" "$@" || result=1
  done
  return $result
}

step_tsp_check() {
  local count result=0
  tsp_setup
  for count in $gpu_counts; do
    tee_to "$out/tsp_check.log" -a timeout "${CHECK_TIMEOUT:-180}" "${tsp_env[@]}" \
      "$bin/tsp_bench" --check --model "$(peer_model "$model")" --gpus "$count" || result=1
  done
  return $result
}

step_tsp() { tsp_sweep --link nvlink; }

step_tsp_slow() { tsp_sweep --link "slow${LINK_GBPS:-10}" --link-gbps "${LINK_GBPS:-10}"; }

step_tsp_noisy() { tsp_sweep --link noisy --link-jitter-ms "${JITTER_MS:-2}"; }

step_cp() {
  local count result=0
  for count in $gpu_counts; do
    tee_to "$out/torch_cp.log" -a timeout "${CP_TIMEOUT:-420}" python3 -m torch.distributed.run \
      --standalone --nproc-per-node "$count" bench/ttft/torch_cp.py \
      --model "$(peer_model "$model")" --tokens "$tokens" --repeat "$repeat" \
      --csv "$out/torch_cp.csv" --json "$out/torch_cp.jsonl" || result=1
  done
  return $result
}

# Figures of tsp.csv and torch_cp.csv. plot_sweep.py pools rows by scheme, model, GPUs and
# length, so each link condition is plotted on its own: tsp.csv is split by its link column
# (nvlink goes with torch_cp.csv into plots/, every other condition into plots/<link>/).
plot_peers() {
  python3 -c "import matplotlib" 2>/dev/null || return 0
  local links=() nvlink_csvs=() link result=0
  if [[ -f "$out/tsp.csv" ]]; then
    mapfile -t links < <(
      python3 - "$out/tsp.csv" "$scratch/split" <<'PY'
import csv, os, sys
path, folder = sys.argv[1], sys.argv[2]
os.makedirs(folder, exist_ok=True)
with open(path, newline="") as f:
    reader = csv.DictReader(f)
    groups = {}
    for row in reader:
        groups.setdefault(row.get("link") or "nvlink", []).append(row)
for link, rows in sorted(groups.items()):
    with open(os.path.join(folder, f"tsp_{link}.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=reader.fieldnames)
        writer.writeheader()
        writer.writerows(rows)
    print(link)
PY
    )
  fi
  [[ -f "$scratch/split/tsp_nvlink.csv" ]] && nvlink_csvs+=("$scratch/split/tsp_nvlink.csv")
  [[ -f "$out/torch_cp.csv" ]] && nvlink_csvs+=("$out/torch_cp.csv")
  if ((${#nvlink_csvs[@]})); then
    python3 bench/plot_sweep.py "${nvlink_csvs[@]}" --out "$out/plots" || result=1
  fi
  for link in "${links[@]}"; do
    [[ "$link" == nvlink ]] && continue
    echo "--- link $link"
    python3 bench/plot_sweep.py "$scratch/split/tsp_$link.csv" --out "$out/plots/$link" ||
      result=1
  done
  return $result
}

# --- the whole comparison ---

# sweep_part NAME LIMIT command...: runs the command for at most LIMIT seconds, less when the
# sweep's budget is nearly spent, and not at all when it is.
sweep_part() {
  local name=$1 limit=$2 left
  shift 2
  left=$((sweep_budget - (SECONDS - sweep_start)))
  if ((left < 20)); then
    echo "=== $name skipped: the time budget is spent"
    return 0
  fi
  ((limit > left)) && limit=$left
  echo "=== $name (at most ${limit} s, $((SECONDS - sweep_start)) s elapsed)"
  timeout "$limit" "$@" || echo "=== $name ended with status $?"
}

step_sweep() {
  local work="$scratch/sweep" part
  sweep_budget=${BUDGET_S:-540}
  sweep_start=$SECONDS
  mkdir -p "$work"
  # Each part is a run of its own, with its own settings and folder.
  local again=(env REPEAT="${REPEAT:-2}" bash "$self" run)
  local ours_lines="^(scheme|kvr-[a-z]+|single) " peer_lines="^(scheme|tsp-)|error"
  for part in ${SWEEP:-kvr tsp cp links falcon llama3 hf}; do
    case "$part" in
      kvr)
        sweep_part kvr 150 env OUT="$work/kvr" GPU_COUNTS="4 2" "${again[@]}" kvr 2>&1 |
          grep -E "$ours_lines"
        ;;
      cp)
        sweep_part cp 200 env OUT="$work/peers" GPU_COUNTS="4 2" "${again[@]}" cp 2>&1 |
          grep -E "selected|check at|^\{|error" | tail -20
        ;;
      tsp)
        sweep_part tsp 90 env OUT="$work/peers" GPU_COUNTS="4 2" "${again[@]}" tsp-check tsp 2>&1 |
          grep -E "$peer_lines|check"
        ;;
      hf)
        sweep_part hf 120 env OUT="$work/one" "${again[@]}" ttft hf 2>&1 |
          grep -E "tokens|ttft|HF|hf" | tail -12
        ;;
      links)
        sweep_part kvr-links 90 env OUT="$work/kvr" GPU_COUNTS=4 TOKENS=8192,16384 \
          SCHEMES=kvr-even,kvr-balanced "${again[@]}" kvr-slow kvr-noisy 2>&1 |
          grep -E "$ours_lines"
        sweep_part tsp-links 90 env OUT="$work/peers" GPU_COUNTS=4 TOKENS=8192,16384 \
          "${again[@]}" tsp-slow tsp-noisy 2>&1 | grep -E "$peer_lines"
        ;;
      falcon)
        sweep_part kvr-falcon 60 env OUT="$work/falcon" GPU_COUNTS=4 TOKENS=8192 MODEL=falcon-7b \
          "${again[@]}" kvr 2>&1 | grep -E "$ours_lines"
        sweep_part tsp-falcon 60 env OUT="$work/peers" GPU_COUNTS=4 TOKENS=8192 MODEL=falcon-7b \
          "${again[@]}" tsp 2>&1 | grep -E "$peer_lines"
        ;;
      llama3)
        sweep_part kvr-llama3 70 env OUT="$work/llama3" GPU_COUNTS=4 MODEL=llama3-8b \
          "${again[@]}" kvr 2>&1 | grep -E "$ours_lines"
        sweep_part tsp-llama3 60 env OUT="$work/peers" GPU_COUNTS=4 MODEL=llama3-8b \
          "${again[@]}" tsp 2>&1 | grep -E "$peer_lines"
        ;;
      *) echo "unknown sweep part '$part' (kvr tsp cp links falcon llama3 hf)" ;;
    esac
  done
  tar czf "$out/sweep.tgz" -C "$work" .
  echo "sweep done in $((SECONDS - sweep_start)) s"
}

# --- running them ---

run_steps() {
  local steps=() step status=0 peers_ran=0
  for step in "$@"; do
    case "$step" in
      cluster) steps+=(check kvr) ;;
      peers) steps+=(tsp-check tsp cp) ;;
      *) steps+=("$step") ;;
    esac
  done
  for step in "${steps[@]}"; do
    declare -F "step_${step//-/_}" >/dev/null || {
      echo "unknown step '$step' (deploy/gpu/gpu.sh --help lists them)" >&2
      exit 2
    }
  done
  run_setup || exit 1
  for step in "${steps[@]}"; do
    echo "=== $step"
    "step_${step//-/_}" || {
      echo "=== $step failed"
      status=1
    }
    case "$step" in tsp | tsp-slow | tsp-noisy | cp) peers_ran=1 ;; esac
  done
  if ((peers_ran)); then plot_peers || status=1; fi
  echo "status $status"
  exit $status
}
