#!/usr/bin/env bash
# Runs examples/embedded_coordinator with two worker processes and checks it prints the first
# token, the tokens of a single-process run (`runahead generate`) and TTFT.
set -euo pipefail
example="$1"
runahead="$2"
out="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT
prompt=1,2,3,4,5,6,7,8,9,10
# Created first: the loop below may read it before the example's redirection does.
: >"$out/stdout"
"$example" 127.0.0.1:0 2 "$prompt" random:tiny-llama >"$out/stdout" 2>"$out/stderr" &
example_pid=$!
for _ in $(seq 100); do
  address="$(sed -n 's/^listening on //p' "$out/stdout")"
  [[ -n "$address" ]] && break
  sleep 0.1
done
[[ -n "$address" ]] || { echo "the example did not start"; cat "$out/stderr"; exit 1; }
for i in 0 1; do
  OMP_WAIT_POLICY=passive "$runahead" worker --coordinator "$address" --model random:tiny-llama \
    --name "w$i" --threads 1 --transports tcp 2>>"$out/workers" &
done
wait "$example_pid" || { echo "the example failed"; cat "$out/stdout" "$out/stderr"; exit 1; }
grep -q "^TTFT: " "$out/stdout"
# The example asks for 8 tokens.
want="$("$runahead" generate --model random:tiny-llama --tokens "$prompt" --max-new-tokens 8 --json |
  sed -n 's/.*"tokens":\[\([0-9,]*\)\].*/\1/p' | tr , ' ')"
got="$(sed -n 's/^tokens: //p' "$out/stdout")"
[[ -n "$want" && "$got" == "$want" ]] ||
  { echo "the cluster's tokens '$got' differ from one process's '$want'"; exit 1; }
grep -q "^first token: ${want%% *}\$" "$out/stdout"
cat "$out/stdout"
