#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine (as root), builds runahead, and runs one of:
#   demo   the main job: a local cluster on this machine answering a prompt with a real model
#   test   the whole test suite, then tests under sanitizers (SANITIZERS, default "address
#          thread"; empty skips them), then every fuzz target for FUZZ_SECONDS (default 30) each
#   build  only installs and builds
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${RUNAHEAD_BUILD_DIR:-$root/build}"
action="${1:-demo}"

packages=(build-essential cmake ninja-build pkg-config git python3 python3-pip python3-venv
  libasio-dev libucx-dev ucx-utils capnproto libcapnp-dev libspdlog-dev libfmt-dev
  libopenblas-dev nlohmann-json3-dev libsentencepiece-dev libpcre2-dev libgtest-dev
  libgmock-dev libcli11-dev clang-format iproute2 procps libcpp-httplib-dev libssl-dev curl
  clang libclang-rt-14-dev libomp-dev)  # the fuzz targets (fuzz/run_fuzzers.sh)

install_packages() {
  local missing=()
  for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$package")
  done
  if ((${#missing[@]})); then
    echo "bootstrap: installing ${missing[*]}" >&2
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
}

build() {
  cmake -S "$root" -B "$build_dir" -G Ninja -DRUNAHEAD_WERROR=ON >/dev/null
  cmake --build "$build_dir" -j "$(nproc)"
}

case "$action" in
  build)
    install_packages
    build
    ;;
  test)
    install_packages
    build
    # The real-model tests need SmolLM2 (fetched once into a cache outside the repository).
    RUNAHEAD_SMOLLM2_GGUF="$("$root/deploy/fetch_model.sh")"
    export RUNAHEAD_SMOLLM2_GGUF
    export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
    ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)" --timeout 600
    # Clang builds of their own (build-asan/, build-tsan/): the unit and cluster tests under
    # ASan+UBSan, the actor runtime and cluster tests under TSan (sanitizers/).
    for sanitizer in ${SANITIZERS-address thread}; do
      echo "bootstrap: the tests under the $sanitizer sanitizer (sanitizers/run_sanitized_tests.sh)" >&2
      bash "$root/sanitizers/run_sanitized_tests.sh" "$sanitizer"
    done
    # A separate clang build (build-fuzz/) with ASan and UBSan; about 6 minutes on 2 cores.
    echo "bootstrap: fuzzing the decoders of untrusted input (fuzz/run_fuzzers.sh)" >&2
    bash "$root/fuzz/run_fuzzers.sh"
    ;;
  demo)
    install_packages
    build
    exec "$root/deploy/demo.sh" "$build_dir"
    ;;
  *)
    echo "usage: $0 demo|test|build" >&2
    exit 2
    ;;
esac
