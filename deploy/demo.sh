#!/usr/bin/env bash
# The main job: a local cluster on this machine (a coordinator and two worker processes) runs
# SmolLM2-135M-Instruct, fetched once into a cache outside the repository. The prompt's prefill
# is split between the workers with KV-Runahead; the continuation streams as it is generated,
# followed by the time to first token and where each worker's time went.
set -euo pipefail
build_dir="$1"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
model="$("$here/fetch_model.sh")"
# Idle OpenMP threads that spin steal the cores from the ones working when the machine is
# shared or has few cores; sleeping instead keeps the small model's steps fast.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
exec "$build_dir/tools/runahead" local --workers 2 --model "$model" \
  --prompt "The three most important inventions of the last century are" \
  --max-new-tokens 32
