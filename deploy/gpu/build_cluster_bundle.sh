#!/usr/bin/env bash
# Builds the runahead binary with the CUDA backend on this (GPU-less) machine and gathers what
# the GPU machine lacks (Cap'n Proto, spdlog, UCX 1.13, OpenBLAS, SentencePiece, PCRE2, ...)
# into .carry/cluster, for deploy/gpu/run_cluster_on_device.sh:
#   deploy/gpu/build_cluster_bundle.sh
#   run(command="bash deploy/gpu/run_cluster_on_device.sh", carry=[".carry/cluster"],
#       kind="nvidia-h100-x2")
# The GPU machine has glibc, libstdc++, the CUDA runtime and cuBLAS; everything else travels.
# UCX travels whole (its 1.16 there is another build): the run script keeps UCX from loading
# that build's transport modules.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-$root/build-cluster-bundle}
bundle=$root/.carry/cluster

cmake -S "$root" -B "$build" -G Ninja -DRUNAHEAD_WERROR=ON -DRUNAHEAD_CUDA=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo ${CMAKE_CXX_COMPILER_LAUNCHER:+-DCMAKE_CXX_COMPILER_LAUNCHER=$CMAKE_CXX_COMPILER_LAUNCHER} >/dev/null
cmake --build "$build" --target runahead -j"${JOBS:-2}"

rm -rf "$bundle"
mkdir -p "$bundle/bin" "$bundle/lib" "$bundle/ucx-modules"
strip -o "$bundle/bin/runahead" "$build/tools/runahead"
ldd "$bundle/bin/runahead" | awk '/=> \// {print $3}' | sort -u | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so* | libm.so* | libpthread.so* | libdl.so* | librt.so* | ld-linux* | libgcc_s.so* | \
      libstdc++.so* | libcuda.so* | libcudart.so* | libcublas.so* | libcublasLt.so*) ;;
    *) cp -L "$lib" "$bundle/lib/" ;;
  esac
done
strip --strip-unneeded "$bundle"/lib/*.so* 2>/dev/null || true
du -sh "$bundle" "$bundle"/bin/* "$bundle"/lib/* | sort -h | tail -n 12
