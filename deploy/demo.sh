#!/usr/bin/env bash
# The main job on the built-in default: a small model run through the sliced prefill.
set -euo pipefail
build_dir="$1"
exec "$build_dir/tools/runahead" generate --model random:tiny-llama --tokens 1,2,3,4,5,6,7,8 \
  --slices 3 --max-new-tokens 8
