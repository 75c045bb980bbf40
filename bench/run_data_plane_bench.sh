#!/usr/bin/env bash
# K/V throughput of the data plane next to ucx_perftest (ucp_am_bw) on the same transport,
# message size and window, both between two processes on this machine.
#
#   bench/run_data_plane_bench.sh [TRANSPORTS] [BLOCK_BYTES] [BLOCKS] [WINDOW] [REPEATS]
#
# TRANSPORTS is a UCX_TLS list (tcp; posix,sysv,self for shared memory). The two tools run in
# turns, REPEATS times each; the median of each is reported, in MiB/s (ucx_perftest's "MB/s").
# BUILD_DIR (default: build) is where data_plane_bench was built. UCX picks the devices for
# both tools (here lo, and eth0's address, which the kernel also loops back); set
# UCX_NET_DEVICES=lo to compare over one device. DATA_PLANE_BENCH_FLAGS adds flags to
# data_plane_bench.
set -euo pipefail

transports=${1:-tcp}
block_bytes=${2:-67108864}  # 4096 tokens x 2 x 4096 x 2 bytes: one layer of a 7B model, bf16
blocks=${3:-40}
window=${4:-4}
repeats=${5:-5}
warmup=4

root=$(cd "$(dirname "$0")/.." && pwd)
bench=${BUILD_DIR:-$root/build}/bench/data_plane_bench
[[ -x $bench ]] || { echo "no $bench: build the data_plane_bench target" >&2; exit 1; }
command -v ucx_perftest >/dev/null || { echo "ucx_perftest not found (package ucx-utils)" >&2; exit 1; }

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }

ours=()
theirs=()
for ((i = 0; i < repeats; i++)); do
  ours+=("$("$bench" --transports "$transports" --block-bytes "$block_bytes" --blocks "$blocks" \
              --warmup "$warmup" --window "$window" --json ${DATA_PLANE_BENCH_FLAGS:-} |
            sed -E 's/.*"sender_mib_per_s": ([0-9.]+).*/\1/')")

  port=$((20000 + RANDOM % 20000))
  args=(-t ucp_am_bw -s "$block_bytes" -n "$blocks" -w "$warmup" -O "$window" -p "$port")
  UCX_TLS=$transports ucx_perftest "${args[@]}" >/dev/null 2>&1 &
  server=$!
  sleep 0.5
  line=$(UCX_TLS=$transports ucx_perftest 127.0.0.1 "${args[@]}" 2>/dev/null | grep '^Final:')
  wait "$server" || true
  # Final: iterations, overhead 50%ile/average/overall, bandwidth average/overall, rate ...
  theirs+=("$(awk '{print $7}' <<<"$line")")
done

ours_median=$(printf '%s\n' "${ours[@]}" | median)
theirs_median=$(printf '%s\n' "${theirs[@]}" | median)
ratio=$(awk -v a="$ours_median" -v b="$theirs_median" 'BEGIN {printf "%.0f", 100 * a / b}')

echo "date:        $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine:     $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "transports:  $transports (UCX_NET_DEVICES=${UCX_NET_DEVICES:-all}); block $block_bytes bytes; $blocks blocks after $warmup warm-up; window $window"
echo "flags:       ${DATA_PLANE_BENCH_FLAGS:-(none)}"
echo "runs (MiB/s): data_plane_bench ${ours[*]}; ucx_perftest ${theirs[*]}"
echo "median:      data_plane_bench $ours_median MiB/s, ucx_perftest $theirs_median MiB/s ($ratio%)"
