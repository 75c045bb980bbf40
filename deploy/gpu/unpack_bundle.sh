#!/usr/bin/env bash
# On the device: undoes deploy/gpu/pack_bundle.sh's compression and points the run scripts'
# bundle folders (.carry/cluster, .carry/gpu) at .carry/dev.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
xz -d -f "$root/.carry/dev/lib/libopenblas.so.0.xz" 2>/dev/null || true
ln -sfn dev "$root/.carry/cluster"
ln -sfn dev "$root/.carry/gpu"
