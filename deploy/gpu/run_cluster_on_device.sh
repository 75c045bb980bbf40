#!/usr/bin/env bash
# KV-Runahead across the GPUs of the device machine, in one device call (after
# deploy/gpu/build_cluster_bundle.sh here): `runahead local --device cuda` with 1 and with all
# GPUs on the same prompts; the tokens of every multi-GPU run must equal the one-GPU run's.
#   MODEL (default random:mini-llama), TOKENS (prompt lengths, default 1000,3000)
# Logs go to $OUT; a summary is printed last.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bundle=$root/.carry/cluster
out=${OUT:-/tmp/runahead-cluster}
mkdir -p "$out"
export LD_LIBRARY_PATH="$bundle/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export UCX_MODULE_DIR="$bundle/ucx-modules"  # no modules of the machine's own UCX build
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
model=${MODEL:-random:mini-llama}
gpus=$(nvidia-smi --list-gpus | wc -l)
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$out/device.txt"
ldd "$bundle/bin/runahead" | grep "not found" && echo "missing libraries"

status=0
for length in ${TOKENS:-1000 3000}; do
  ids=$(python3 -c "import random; random.seed($length); print(','.join(str(random.randrange(500)) for _ in range($length)))")
  for workers in 1 $(seq 2 "$gpus"); do
    "$bundle/bin/runahead" local --workers "$workers" --device cuda --model "$model" \
      --tokens "$ids" --max-new-tokens 8 --transports tcp --json \
      >"$out/run_${length}_${workers}.json" 2>"$out/run_${length}_${workers}.log" || status=1
  done
done
python3 - "$out" <<'PY' || status=1
import glob, json, os, sys
out = sys.argv[1]
ok = True
for one in sorted(glob.glob(os.path.join(out, "run_*_1.json"))):
    length = one.split("_")[-2]
    base = json.load(open(one)) if os.path.getsize(one) else None
    for run in sorted(glob.glob(os.path.join(out, f"run_{length}_*.json"))):
        workers = run.rsplit("_", 1)[1].split(".")[0]
        data = json.load(open(run)) if os.path.getsize(run) else None
        same = base is not None and data is not None and data["tokens"] == base["tokens"]
        ok = ok and same
        print(f"{length:>6} tokens, {workers} GPU(s): "
              + (f"TTFT {data['ttft_ms']:.1f} ms, tokens {'==' if same else '!='} 1 GPU" if data else "FAILED"))
sys.exit(0 if ok else 1)
PY
echo "status $status"
exit $status
