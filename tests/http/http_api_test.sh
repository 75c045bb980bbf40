#!/usr/bin/env bash
# The HTTP API against a local cluster on SmolLM2: curl for raw SSE and error objects, the openai
# package for plain and streamed chat and completions, prometheus_client for /metrics, greedy
# text equal to `runahead generate`, and a client that disconnects mid-stream freeing the worker.
set -uo pipefail
runahead="$1"
venv="$2"
if [[ -z "${RUNAHEAD_SMOLLM2_GGUF:-}" || ! -f "${RUNAHEAD_SMOLLM2_GGUF:-}" ]]; then
  echo "skip HTTP API: RUNAHEAD_SMOLLM2_GGUF names no file (deploy/fetch_model.sh)"
  exit 0
fi
model="$RUNAHEAD_SMOLLM2_GGUF"
work="$(mktemp -d)"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$work"' EXIT
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv" && "$venv/bin/pip" install -q openai prometheus_client ||
    { echo "FAIL cannot install openai and prometheus_client into $venv"; exit 1; }
fi
echo "test-key-1" >"$work/keys"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$runahead" coordinator --listen 127.0.0.1:0 --http "127.0.0.1:$port" --model "$model" \
  --http-api-key-file "$work/keys" --http-max-tokens 4096 >"$work/coordinator.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q "HTTP API on" "$work/coordinator.out" && break; sleep 0.1; done
control=$(awk '/coordinator listening on/ {print $4}' "$work/coordinator.out")
"$runahead" worker --coordinator "$control" --model "$model" >"$work/worker.out" 2>&1 &
pids+=($!)
for _ in $(seq 600); do curl -sf "127.0.0.1:$port/ready" >/dev/null && break; sleep 0.2; done
expected=$("$runahead" generate --model "$model" --prompt "The capital of France is" \
  --max-new-tokens 8 --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["text"])')
HTTP_BASE="http://127.0.0.1:$port" EXPECTED_TEXT="$expected" "$venv/bin/python" \
  "$(dirname "$0")/http_api_test.py"
