#!/usr/bin/env bash
# Builds the GPU tests and benchmarks on this (GPU-less) machine and gathers the shared
# libraries the GPU machine lacks into .carry/gpu, which git ignores and the device tool carries:
#   deploy/gpu/build_bundle.sh            # then: run(command="bash deploy/gpu/run_on_device.sh
#                                         #        tests bench hf", carry=[".carry/gpu"])
# The GPU machine has glibc, libstdc++, the CUDA runtime and cuBLAS; everything else travels.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-$root/build-gpu-bundle}
bundle=$root/.carry/gpu
# TARGETS="cuda_test" builds a subset (a quicker bundle for a test-only call).
read -r -a targets <<<"${TARGETS:-cuda_test ttft_bench tsp_bench staged_copy_bench}"

cmake -S "$root" -B "$build" -G Ninja -DRUNAHEAD_WERROR=ON -DRUNAHEAD_CUDA=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target "${targets[@]}" -j"${JOBS:-2}"

rm -rf "$bundle"
mkdir -p "$bundle/bin" "$bundle/lib"
binaries=()
for target in "${targets[@]}"; do
  binary=$(find "$build" -type f -name "$target" -perm -u+x | head -n 1)
  [[ -n "$binary" ]] || { echo "build_bundle: $target was not built" >&2; exit 1; }
  # Host debug info only; the device code and its line table stay in the fat binary.
  strip --strip-debug -o "$bundle/bin/$target" "$binary"
  binaries+=("$bundle/bin/$target")
done

ldd "${binaries[@]}" | awk '/=> \// {print $3}' | sort -u | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so* | libm.so* | libpthread.so* | libdl.so* | librt.so* | ld-linux* | libgcc_s.so* | \
      libstdc++.so* | libcuda.so* | libcudart.so* | libcublas.so* | libcublasLt.so*) ;;
    # NCCL (218 MB) comes from PyTorch's wheel there (deploy/gpu/run_peers_on_device.sh).
    libnccl.so*) ;;
    *) cp -L "$lib" "$bundle/lib/" ;;
  esac
done
du -sh "$bundle" "$bundle"/bin/* "$bundle"/lib/*
