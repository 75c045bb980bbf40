#!/usr/bin/env bash
# The GPU work's one entry point: build a bundle here, run steps with it on any GPU host.
# `deploy/gpu/gpu.sh --help` lists the commands, the steps and their settings.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
self="$here/gpu.sh"

usage() {
  cat <<'EOF'
Usage:
  deploy/gpu/gpu.sh bundle [TARGET...]   build here, pack into .carry/gpu
  deploy/gpu/gpu.sh run STEP...          on a GPU host with the bundle, run the steps in order
  deploy/gpu/gpu.sh --help

bundle: configures BUILD_DIR (default build-gpu-bundle) with the CUDA backend
(RelWithDebInfo), builds the targets (arguments, else $TARGETS, else runahead cuda_test
ttft_bench tsp_bench staged_copy_bench; JOBS parallel jobs, default 2), and writes to
.carry/gpu their binaries (bin/) and every shared library they load that a GPU host may lack
(lib/, from this machine's Debian packages; glibc, libstdc++, the CUDA driver and runtime, cuBLAS
and NCCL are the host's). Libraries are stripped; past BUNDLE_LIMIT_MIB (default 48) OpenBLAS
travels xz-compressed, and `run` unpacks it. git ignores .carry/.

run: from the repository root of a checkout on the GPU host (any host with nvidia-smi and the
bundle; python3 with torch and transformers for hf, cp and power). Logs, CSV and JSON go to $OUT
(default /tmp/runahead-gpu); the device's description to $OUT/device.txt; the exit status is
non-zero when a step failed. The bundle is $BUNDLE (default .carry/gpu).

Steps, one GPU:
  cuda-test   cuda_test, GTEST_FILTER narrows it                      cuda_test.log
  memcheck    compute-sanitizer memcheck of the kernel and attention tests  memcheck.log
  ttft        ttft_bench at TOKENS for MODEL; TTFT_ARGS adds flags    ttft_bench.log, ttft.jsonl
  hf          the Hugging Face peer (bench/ttft/hf_ttft.py), same lengths   hf.log, ttft.jsonl
  attn-ncu    Nsight Compute profile of one attention launch at 16k   ncu.txt
  power       SM clock and power sampled every 50 ms while ttft_bench, then the HF peer run
              (bench/ttft/power_summary.py summarizes)                smi_ours.csv, smi_hf.csv
  staging     staged_copy_bench (two GPUs if present); STAGING_ARGS adds flags  staging.csv
Steps, one runahead worker per GPU (`runahead local`, `bench`, `calibrate`); the kvr steps run
for each count in GPU_COUNTS (default: every GPU), check, calibrate and fault on every GPU:
  check       `runahead local --device cuda` on 1 GPU, on all over GPU peer copies and on all
              through UCX tcp in 64 KiB staging chunks: the greedy tokens must equal one GPU's.
              CHECK_MODEL (default mini-llama), CHECK_TOKENS (default "1000 3000")
  kvr         `runahead bench`, SCHEMES (default single,kvr-even,kvr-balanced) at TOKENS,
              over GPU peer copies, link label nvlink                  bench_nvlink_<gpus>.csv
  kvr-slow    the same through UCX shared memory capped at LINK_GBPS (default 10) GB/s
  kvr-noisy   GPU peer copies with up to JITTER_MS (default 2) ms of delay per block
  kvr-staged  through host memory and UCX shared memory, chunks of each of STAGING_CHUNKS MiB
              (default "4 0"; 0: whole blocks)
  calibrate   a coordinator and one worker per GPU, `runahead calibrate` (CAL_LENGTHS,
              SEARCH_LENGTHS, CAL_REPEAT, SEARCH_BUDGET), then kvr-balanced and kvr-searched
              with the profile, link label profiled                  profile.json
  fault       one worker per GPU, the last failing on purpose after FAULT_AFTER (default 6)
              matrix products: the request fails naming it, it leaves, the next request runs
Steps, the multi-GPU peers, for each count in GPU_COUNTS:
  tsp-check   tsp_bench --check: both TSP schemes' logits against one GPU
  tsp         tsp_bench, tsp-paper and tsp-strong, link nvlink          tsp.csv
  tsp-slow    the same over an emulated LINK_GBPS GB/s link, link slow<LINK_GBPS>
  tsp-noisy   the same with JITTER_MS ms of jitter per all-gather step, link noisy
  cp          PyTorch context parallelism (bench/ttft/torch_cp.py under torchrun)  torch_cp.csv
  (plots of tsp.csv and torch_cp.csv go to $OUT/plots when matplotlib is there)
Groups, and the whole comparison:
  cluster     check kvr
  peers       tsp-check tsp cp
  sweep       ours and the peers side by side on a 4-GPU host, each part bounded, later parts
              skipped once BUDGET_S (default 540) seconds have passed; SWEEP picks the parts
              (default "kvr tsp cp links falcon llama3 hf"; links: kvr-slow, kvr-noisy, tsp-slow,
              tsp-noisy at 4 GPUs; falcon, llama3: those models at 4 GPUs); REPEAT default 2
              here; everything in $OUT/sweep.tgz

Settings common to the steps: MODEL, a preset of model/random_model.h (default llama2-7b;
runahead gets random:MODEL unless MODEL is a path or already random:...; hf takes llama2-7b or
llama3-8b), TOKENS (default 4096,16384,32768), REPEAT (default 3). Timeouts in seconds:
BENCH_TIMEOUT (400), CAL_TIMEOUT (400), TSP_TIMEOUT (300), CP_TIMEOUT (420), CHECK_TIMEOUT
(300 per check run, 180 per tsp-check). Ports: CAL_PORT (47411), FAULT_PORT (47412).

Examples:
  deploy/gpu/gpu.sh bundle                                   # here
  TARGETS=cuda_test deploy/gpu/gpu.sh bundle                 # here, tests only
  bash deploy/gpu/gpu.sh run cuda-test memcheck ttft hf      # there, one GPU
  GPU_COUNTS="2 4" TOKENS=16384,32768 bash deploy/gpu/gpu.sh run cluster cp
EOF
}

bundle() {
  local build=${BUILD_DIR:-$root/build-gpu-bundle}
  local out=$root/.carry/gpu
  local targets=("$@")
  ((${#targets[@]})) || read -r -a targets <<<"${TARGETS:-runahead cuda_test ttft_bench tsp_bench staged_copy_bench}"

  cmake -S "$root" -B "$build" -G Ninja -DRUNAHEAD_WERROR=ON -DRUNAHEAD_CUDA=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || return 1
  cmake --build "$build" --target "${targets[@]}" -j"${JOBS:-2}" || return 1

  rm -rf "$out"
  mkdir -p "$out/bin" "$out/lib"
  local target binary binaries=()
  for target in "${targets[@]}"; do
    binary=$(find "$build" -type f -name "$target" -perm -u+x | head -n 1)
    [[ -n "$binary" ]] || { echo "bundle: $target was not built" >&2; return 1; }
    # The test and bench binaries keep their symbols (readable failures); host debug info goes.
    # The device code and its line table stay in the fat binary either way.
    if [[ $target == runahead ]]; then
      strip -o "$out/bin/$target" "$binary"
    else
      strip --strip-debug -o "$out/bin/$target" "$binary"
    fi
    binaries+=("$out/bin/$target")
  done

  local lib
  ldd "${binaries[@]}" | awk '/=> \// {print $3}' | sort -u | while read -r lib; do
    case "$(basename "$lib")" in
      libc.so* | libm.so* | libpthread.so* | libdl.so* | librt.so* | ld-linux* | libgcc_s.so* | \
        libstdc++.so* | libcuda.so* | libcudart.so* | libcublas.so* | libcublasLt.so*) ;;
      # NCCL (218 MB) comes from PyTorch's wheel on the GPU host (see `run`).
      libnccl.so*) ;;
      *) cp -L "$lib" "$out/lib/" ;;
    esac
  done
  strip --strip-unneeded "$out"/lib/*.so* 2>/dev/null || true
  # Past BUNDLE_LIMIT_MIB the largest library travels compressed, keeping the bundle and the
  # working tree under the device tool's carry limit (64 MiB together).
  if (($(du -sm "$out" | cut -f1) > ${BUNDLE_LIMIT_MIB:-48})) && [[ -f "$out/lib/libopenblas.so.0" ]]; then
    xz -T"${JOBS:-2}" -6 "$out/lib/libopenblas.so.0"
  fi
  du -sh "$out"/bin/* "$out"/lib/* | sort -h | tail -n 12
  du -sh "$out"
}

case "${1:-}" in
  bundle)
    shift
    bundle "$@"
    ;;
  run)
    shift
    (($#)) || { usage >&2; exit 2; }
    # shellcheck source=deploy/gpu/steps.sh
    source "$here/steps.sh"
    run_steps "$@"
    ;;
  -h | --help | help) usage ;;
  *)
    usage >&2
    exit 2
    ;;
esac
