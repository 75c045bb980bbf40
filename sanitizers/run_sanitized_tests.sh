#!/usr/bin/env bash
# Builds the project with clang under sanitizers (cmake/Sanitizers.cmake) and runs tests in it:
#   sanitizers/run_sanitized_tests.sh address   ASan + UBSan in build-asan/: the unit and cluster
#                                               tests (all but the real-model ones)
#   sanitizers/run_sanitized_tests.sh thread    TSan in build-tsan/: the actor runtime, worker,
#                                               slice run, control plane and cluster tests
# Extra arguments go to ctest (e.g. -R ClusterTest). Every report is fatal and goes to a file in
# BUILD/sanitizer-reports/, so a report from a process a test started (a worker, a coordinator)
# fails the run too, even when the test itself passed; the reports are printed at the end.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mode="${1:-}"
shift || true
jobs="$(nproc)"

case "$mode" in
  address)
    sanitize=address,undefined
    build_dir="${RUNAHEAD_ASAN_BUILD_DIR:-$root/build-asan}"
    # real_model_test runs SmolLM2 (seconds of compute per case unsanitized); it skips without
    # RUNAHEAD_SMOLLM2_GGUF, and the normal suite runs it.
    build_targets=(all)
    ctest_selection=(-LE '^real_model_test$')
    ;;
  thread)
    sanitize=thread
    build_dir="${RUNAHEAD_TSAN_BUILD_DIR:-$root/build-tsan}"
    # The threaded code: the actor runtime and what runs on it (worker, slice run, control
    # plane, the coordinator and workers of the cluster tests, real processes included).
    tests=(runtime_test worker_test slice_run_test control_plane_test coordinator_protocol_test
      cluster_test device_fault_test cluster_generation_test)
    build_targets=(runahead embedded_coordinator "${tests[@]}")
    ctest_selection=(-L "^($(IFS='|'; echo "${tests[*]}")|embedded_example)\$")
    ;;
  *)
    echo "usage: $0 address|thread [CTEST-ARGS...]" >&2
    exit 2
    ;;
esac

launcher=()
if [[ "${RUNAHEAD_SANITIZE_CCACHE:-1}" == 1 ]] && command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
cmake -S "$root" -B "$build_dir" -G Ninja -DRUNAHEAD_SANITIZE="$sanitize" -DRUNAHEAD_WERROR=ON \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}" >/dev/null
start=$SECONDS
cmake --build "$build_dir" -j "$jobs" --target "${build_targets[@]}"
echo "sanitize($mode): built in $((SECONDS - start)) s" >&2

reports="$build_dir/sanitizer-reports"
rm -rf "$reports"
mkdir -p "$reports"
suppressions="$root/sanitizers"
# print_suppressions=0: a used suppression writes no file, so every file is a report.
common="log_path=$reports/report:print_stacktrace=1:halt_on_error=1:print_suppressions=0"
export ASAN_OPTIONS="$common:detect_leaks=1:strict_init_order=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="$common"
export LSAN_OPTIONS="suppressions=$suppressions/lsan.supp:print_suppressions=0"
export TSAN_OPTIONS="$common:second_deadlock_stack=1:suppressions=$suppressions/tsan.supp"
export OMP_WAIT_POLICY=passive
if [[ "$mode" == thread ]]; then
  # libomp is not built with TSan: the sync of its parallel teams is invisible to TSan, and
  # every parallel region of the CPU kernels would report races (sanitizers/tsan.supp). One
  # OpenMP thread per process keeps the kernels on the calling thread; the actors' threads,
  # what TSan is here for, are unchanged.
  export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
  TSAN_OPTIONS="$TSAN_OPTIONS:ignore_noninstrumented_modules=1"
fi
# The suite's real-model tests are not run here (see above).
unset RUNAHEAD_SMOLLM2_GGUF

start=$SECONDS
status=0
ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" --timeout 600 \
  "${ctest_selection[@]}" "$@" || status=$?
echo "sanitize($mode): tests ran in $((SECONDS - start)) s" >&2

shopt -s nullglob
found=("$reports"/report*)
if ((${#found[@]})); then
  for report in "${found[@]}"; do
    echo "sanitize($mode): report $report:" >&2
    cat "$report" >&2
  done
  echo "sanitize($mode): ${#found[@]} sanitizer report(s), above" >&2
  exit 1
fi
((status == 0)) || exit "$status"
echo "sanitize($mode): no sanitizer report" >&2
