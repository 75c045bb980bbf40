#!/usr/bin/env bash
# Runs the GPU tests and benchmarks on the GPU machine, from the repository root, in one device
# call (after deploy/gpu/build_bundle.sh here):
#   bash deploy/gpu/run_on_device.sh tests bench hf        (carry .carry/gpu)
# Steps: tests (cuda_test), memcheck (kernel tests under compute-sanitizer), bench (ttft_bench),
# hf (Hugging Face peer), attn-ncu (one profile of the attention kernel), staging
# (staged_copy_bench: a K/V block between GPUs through host memory, whole and in chunks), power
# (SM clock and power draw sampled while ttft_bench and the HF peer run).
# Logs go to $OUT (the device tool brings them back); a summary is printed last.
# TOKENS (default 4096,16384,32768) sets the prompt lengths; GTEST_FILTER narrows the tests;
# STAGING_ARGS adds flags to staged_copy_bench (e.g. "--sizes-mib 64 --chunks-mib 2,8"),
# TTFT_ARGS to ttft_bench (e.g. "--matmul-autotune both"); HF_MODEL (llama2-7b, llama3-8b) picks
# the HF peer's shapes.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bundle=$root/.carry/gpu
out=${OUT:-/tmp/runahead-gpu}
mkdir -p "$out"
export LD_LIBRARY_PATH="$bundle/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
# NVLink multicast stays off for anything that might reach NCCL.
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export PYTHONUNBUFFERED=1
tokens=${TOKENS:-4096,16384,32768}

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm \
    --format=csv
} 2>&1 | tee "$out/device.txt"
missing=$(ldd "$bundle/bin/cuda_test" "$bundle/bin/ttft_bench" "$bundle/bin/staged_copy_bench" 2>&1 |
  grep "not found" | sort -u)
[[ -z "$missing" ]] || echo "missing libraries: $missing"

status=0
for step in "$@"; do
  case "$step" in
    tests)
      "$bundle/bin/cuda_test" --gtest_output="xml:$out/cuda_test.xml" \
        ${GTEST_FILTER:+--gtest_filter="$GTEST_FILTER"} >"$out/cuda_test.log" 2>&1 || status=1
      ;;
    bench)
      # shellcheck disable=SC2086  # TTFT_ARGS is a list of flags
      "$bundle/bin/ttft_bench" --tokens "$tokens" ${TTFT_ARGS:-} --json "$out/ttft.jsonl" 2>&1 |
        tee "$out/ttft_bench.log" || status=1
      ;;
    hf)
      python3 "$root/bench/ttft/hf_ttft.py" --tokens "$tokens" --model "${HF_MODEL:-llama2-7b}" \
        --json "$out/ttft.jsonl" 2>&1 |
        tee "$out/hf.log" || status=1
      ;;
    memcheck)
      compute-sanitizer --tool memcheck --error-exitcode 9 "$bundle/bin/cuda_test" \
        --gtest_filter='CudaKernelTest.*:Shapes/CudaAttentionTest.*' >"$out/memcheck.log" 2>&1 ||
        status=1
      tail -n 5 "$out/memcheck.log"
      ;;
    attn-ncu)
      ncu --clock-control none --kernel-name regex:attention_ --launch-count 1 \
        --section SpeedOfLight --section Occupancy --section WarpStateStats \
        "$bundle/bin/ttft_bench" --tokens 16384 --warmup 0 --repeats 1 >"$out/ncu.txt" 2>&1 ||
        status=1
      ;;
    power)
      # SM clock and power, sampled every 50 ms, while ttft_bench and then the HF peer run.
      for who in ours hf; do
        nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,power.limit,temperature.gpu,clocks_event_reasons.active \
          --format=csv -lms 50 -i 0 >"$out/smi_$who.csv" 2>&1 &
        sampler=$!
        if [[ $who == ours ]]; then
          "$bundle/bin/ttft_bench" --tokens "$tokens" --no-profile --repeats 5 \
            >"$out/power_ours.log" 2>&1 || status=1
        else
          python3 "$root/bench/ttft/hf_ttft.py" --tokens "$tokens" >"$out/power_hf.log" 2>&1 ||
            status=1
        fi
        kill "$sampler"
      done
      cat "$out/power_ours.log" "$out/power_hf.log"
      python3 "$root/bench/ttft/power_summary.py" "$out/smi_ours.csv" "$out/smi_hf.csv"
      ;;
    staging)
      # shellcheck disable=SC2086  # STAGING_ARGS is a list of flags
      "$bundle/bin/staged_copy_bench" ${STAGING_ARGS:-} --csv "$out/staging.csv" 2>&1 |
        tee "$out/staging.log" || status=1
      ;;
    *) echo "unknown step '$step' (tests, memcheck, bench, hf, attn-ncu, staging, power)"; status=2 ;;
  esac
done

echo "=== summary ==="
if [[ -f "$out/cuda_test.log" ]]; then
  grep -E "rel-err|argmax|FAILED|PASSED|SKIPPED|tests ran" "$out/cuda_test.log" | tail -n 70
fi
for log in ttft_bench hf staging; do [[ -f "$out/$log.log" ]] && cat "$out/$log.log"; done
exit $status
