#!/usr/bin/env bash
# Packs what one device call needs into .carry/dev, under the carry limit (64 MiB with the
# working tree): the cluster bundle (runahead and its libraries) plus the GPU bundle's binaries
# (cuda_test, ttft_bench, tsp_bench, staged_copy_bench), with OpenBLAS compressed. Run after
# deploy/gpu/build_cluster_bundle.sh and deploy/gpu/build_bundle.sh; on the device, start the
# command with `bash deploy/gpu/unpack_bundle.sh &&`.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dev=$root/.carry/dev
rm -rf "$dev"
cp -r "$root/.carry/cluster" "$dev"
cp "$root"/.carry/gpu/bin/* "$dev/bin/"
xz -T2 -6 "$dev/lib/libopenblas.so.0"
du -sh "$dev"
