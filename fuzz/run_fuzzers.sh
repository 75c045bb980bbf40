#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/CMakeLists.txt) with clang in build-fuzz/ and runs each
# for FUZZ_SECONDS (default 30) from its seeds in fuzz/corpus/TARGET/. Fails on any crash,
# sanitizer report (ASan, UBSan, leaks), input slower than 10 s or memory above 2 GiB; the
# input that did it is left in build-fuzz/fuzz-work/TARGET/artifacts/.
#   fuzz/run_fuzzers.sh                  all targets
#   fuzz/run_fuzzers.sh gguf profile     only these
# New inputs the fuzzers find go to build-fuzz/fuzz-work/TARGET/corpus/, never into the
# repository's seeds; copy an interesting one there by hand.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${RUNAHEAD_FUZZ_BUILD_DIR:-$root/build-fuzz}"
seconds="${FUZZ_SECONDS:-30}"

# Longest input per target: a little above its largest seed.
declare -A max_len=(
  [control_frame]=4096
  [ucx_wire]=1024
  [safetensors]=4096
  [gguf]=16384
  [tokenizer_json]=32768
  [profile]=4096
)
targets=("$@")
((${#targets[@]})) || targets=(control_frame ucx_wire safetensors gguf tokenizer_json profile)
for target in "${targets[@]}"; do
  [[ -n "${max_len[$target]:-}" ]] || { echo "run_fuzzers: unknown target $target" >&2; exit 2; }
done

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
cmake -S "$root" -B "$build_dir" -G Ninja -DRUNAHEAD_FUZZ=ON -DRUNAHEAD_CUDA=OFF \
  -DRUNAHEAD_WERROR=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}" >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target "${targets[@]/%/_fuzzer}"

# JSON inputs get a dictionary of the formats' syntax and keys.
declare -A dict=([safetensors]=json.dict [tokenizer_json]=json.dict [profile]=json.dict)

export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
failed=()
for target in "${targets[@]}"; do
  work="$build_dir/fuzz-work/$target"
  mkdir -p "$work/corpus" "$work/artifacts"
  options=()
  [[ -n "${dict[$target]:-}" ]] && options+=(-dict="$root/fuzz/${dict[$target]}")
  echo "fuzz: $target for ${seconds} s (max_len ${max_len[$target]})"
  if ! "$build_dir/fuzz/${target}_fuzzer" "${options[@]}" -max_total_time="$seconds" \
    -max_len="${max_len[$target]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" "$work/corpus" "$root/fuzz/corpus/$target" \
    >"$work/log" 2>&1; then
    echo "fuzz: $target FAILED; the end of $work/log:" >&2
    tail -n 60 "$work/log" >&2
    failed+=("$target")
    continue
  fi
  grep -E "^stat::number_of_executed_units|^#[0-9]+ *DONE" "$work/log" | tail -n 2 | sed "s/^/fuzz: $target: /"
done
if ((${#failed[@]})); then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${seconds} s without a finding"
