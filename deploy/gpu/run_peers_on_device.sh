#!/usr/bin/env bash
# The multi-GPU baselines on the GPU machine, from the repository root, in one device call
# (after deploy/gpu/build_bundle.sh here):
#   run(command="bash deploy/gpu/run_peers_on_device.sh", carry=[".carry/gpu"],
#       kind="nvidia-h100-x4")
# Steps (STEPS, default "check tsp cp"):
#   check  tsp_bench --check: both TSP schemes' last-token logits against a one-GPU prefill;
#   tsp        tsp_bench, schemes tsp-paper and tsp-strong (bench/tsp/README.md), link "nvlink";
#   tsp-slow   the same over an emulated link of LINK_GBPS GB/s (default 10), link "slow<GBPS>";
#   tsp-noisy  the same with JITTER_MS (default 2) of random delay per all-gather step, "noisy";
#   cp         bench/ttft/torch_cp.py under torchrun: PyTorch context parallelism (ring attention).
# MODEL (default llama2-7b), TOKENS (default 4096,16384,32768), REPEAT (default 3),
# GPU_COUNTS (default: every GPU nvidia-smi lists; e.g. "2 4" runs both counts), BUNDLE (default
# .carry/gpu).
# CSV rows go to $OUT (tsp.csv: scheme,model,gpus,tokens,ttft_ms,repeat,link; every tsp step
# appends to it) with the logs; a summary is printed last; bench/plot_sweep.py turns the CSV
# files into figures, one folder per link condition.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bundle=${BUNDLE:-$root/.carry/gpu}
out=${OUT:-/tmp/runahead-peers}
mkdir -p "$out"
cd "$root" || exit 1
# NVLink multicast stays off for everything that reaches NCCL.
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export PYTHONUNBUFFERED=1
model=${MODEL:-llama2-7b}
tokens=${TOKENS:-4096,16384,32768}
repeat=${REPEAT:-3}
all_gpus=$(nvidia-smi --list-gpus | wc -l)
gpu_counts=${GPU_COUNTS:-$all_gpus}
steps=${STEPS:-check tsp cp}

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
  nvidia-smi topo -m
} 2>&1 | tee "$out/device.txt"

# This machine has NCCL only inside PyTorch's wheels (nvidia/nccl/lib below site-packages).
nccl_lib=$(python3 - <<'PY'
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
tsp_env=(env "LD_LIBRARY_PATH=$bundle/lib:${nccl_lib:+$nccl_lib:}/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}")
tsp="$bundle/bin/tsp_bench"
missing=$("${tsp_env[@]}" ldd "$tsp" 2>&1 | grep "not found" | sort -u)
[[ -z "$missing" ]] || echo "tsp_bench is missing libraries: $missing" | tee -a "$out/device.txt"

# Both TSP schemes on $1 GPUs; the other arguments name (and shape) the link.
tsp_sweep() {
  local gpus=$1
  shift
  timeout "${TSP_TIMEOUT:-300}" "${tsp_env[@]}" "$tsp" --model "$model" --gpus "$gpus" \
    --tokens "$tokens" --repeat "$repeat" --csv "$out/tsp.csv" "$@" 2>&1 |
    tee -a "$out/tsp_bench.log"
  return "${PIPESTATUS[0]}"
}

status=0
for step in $steps; do
  for gpus in $gpu_counts; do
    case "$step" in
      check)
        timeout "${CHECK_TIMEOUT:-180}" "${tsp_env[@]}" "$tsp" --check --model "$model" \
          --gpus "$gpus" 2>&1 | tee -a "$out/tsp_check.log"
        [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
        ;;
      tsp) tsp_sweep "$gpus" --link nvlink || status=1 ;;
      tsp-slow)
        tsp_sweep "$gpus" --link "slow${LINK_GBPS:-10}" --link-gbps "${LINK_GBPS:-10}" || status=1
        ;;
      tsp-noisy)
        tsp_sweep "$gpus" --link noisy --link-jitter-ms "${JITTER_MS:-2}" || status=1
        ;;
      cp)
        timeout "${CP_TIMEOUT:-420}" python3 -m torch.distributed.run --standalone \
          --nproc-per-node "$gpus" bench/ttft/torch_cp.py --model "$model" --tokens "$tokens" \
          --repeat "$repeat" --csv "$out/torch_cp.csv" --json "$out/torch_cp.jsonl" 2>&1 |
          tee -a "$out/torch_cp.log"
        [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
        ;;
      *) echo "unknown step '$step' (check, tsp, tsp-slow, tsp-noisy, cp)"; status=2 ;;
    esac
  done
done

echo "=== summary ==="
[[ -f "$out/tsp_check.log" ]] && grep -E "^check|error|failed" "$out/tsp_check.log"
[[ -f "$out/tsp_bench.log" ]] && grep -E "^(scheme|tsp-)|error|failed" "$out/tsp_bench.log"
[[ -f "$out/torch_cp.log" ]] &&
  grep -E "selected|check at|unusable|^[0-9]+ |error|Error" "$out/torch_cp.log" | tail -n 40
# plot_sweep.py pools rows by scheme, model, GPUs and length, so each link condition is plotted
# on its own: tsp.csv is split by its link column (nvlink goes with torch_cp.csv into plots/,
# every other condition into plots/<link>/).
if python3 -c "import matplotlib" 2>/dev/null; then
  links=()
  if [[ -f "$out/tsp.csv" ]]; then
    mapfile -t links < <(python3 - "$out/tsp.csv" "$out/split" <<'PY'
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
  nvlink_csvs=()
  [[ -f "$out/split/tsp_nvlink.csv" ]] && nvlink_csvs+=("$out/split/tsp_nvlink.csv")
  [[ -f "$out/torch_cp.csv" ]] && nvlink_csvs+=("$out/torch_cp.csv")
  if ((${#nvlink_csvs[@]})); then
    python3 bench/plot_sweep.py "${nvlink_csvs[@]}" --out "$out/plots" || status=1
  fi
  for link in "${links[@]}"; do
    [[ "$link" == nvlink ]] && continue
    echo "--- link $link"
    python3 bench/plot_sweep.py "$out/split/tsp_$link.csv" --out "$out/plots/$link" || status=1
  done
fi
echo "status $status"
exit $status
