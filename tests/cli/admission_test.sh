#!/usr/bin/env bash
# Admission with real processes: a request while no worker is registered fails after the
# coordinator's --no-worker-timeout; `submit --timeout` bounds the whole request, also when the
# coordinator is stopped (SIGSTOP) before or after the request reached it; a prompt longer than
# the context is refused at once, naming both lengths. Each case: exit 1, one clear stderr line,
# and the time taken within its bound.
set -uo pipefail
runahead="$1"
work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill -CONT "$pid" 2>/dev/null
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT
failures=0
passed=0

# start_coordinator NAME FLAGS...: starts one on a free port; sets $address and $coordinator_pid.
start_coordinator() {
  local name="$1"
  shift
  "$runahead" coordinator --model random:tiny-llama --listen 127.0.0.1:0 "$@" >"$work/$name.out" 2>"$work/$name.err" &
  coordinator_pid=$!
  pids+=("$coordinator_pid")
  for _ in $(seq 1 200); do
    address=$(sed -n 's/^coordinator listening on //p' "$work/$name.out")
    [[ -n "$address" ]] && return 0
    sleep 0.05
  done
  echo "FAIL: coordinator $name did not start"
  cat "$work/$name.err"
  exit 1
}

now_ms() { date +%s%3N; }

# expect_failure NAME NEEDLE MIN_MS MAX_MS COMMAND...: exits 1 within [MIN_MS, MAX_MS] with
# NEEDLE on stderr.
expect_failure() {
  local name="$1" needle="$2" min="$3" max="$4"
  shift 4
  local start code took
  start=$(now_ms)
  "$@" >"$work/out" 2>"$work/err"
  code=$?
  took=$(($(now_ms) - start))
  if [[ $code -ne 1 ]] || ! grep -qF -- "$needle" "$work/err" || ((took < min || took > max)); then
    echo "FAIL $name: exit $code after $took ms (want 1 within [$min, $max] ms); stderr:"
    cat "$work/err"
    failures=$((failures + 1))
  else
    echo "ok   $name ($took ms): $(tail -n 1 "$work/err")"
    passed=$((passed + 1))
  fi
}

start_coordinator quick --no-worker-timeout 1
expect_failure "no worker: fails after --no-worker-timeout" "no worker to run it" 900 15000 \
  "$runahead" submit --coordinator "$address" --tokens 1,2,3 --timeout 30
quick="$address"

start_coordinator patient --no-worker-timeout 60
expect_failure "submit --timeout while the request waits" "its own deadline" 1900 15000 \
  "$runahead" submit --coordinator "$address" --tokens 1,2,3 --timeout 2

# Stopped after the request reached it: the client gives up by itself and says so.
"$runahead" submit --coordinator "$address" --tokens 1,2,3 --timeout 5 >"$work/late.out" \
  2>"$work/late.err" &
late=$!
for _ in $(seq 1 100); do
  "$runahead" status --coordinator "$address" 2>/dev/null | grep -q " 1 queued" && break
  sleep 0.05
done
kill -STOP "$coordinator_pid"
start=$(now_ms)
wait "$late"
code=$?
took=$(($(now_ms) - start))
# Either the request's own deadline or the coordinator's silence (liveness) ends it first.
if [[ $code -ne 1 ]] || ! grep -qE "(no answer from|nothing heard from) the coordinator at $address" "$work/late.err" ||
  ((took > 15000)); then
  echo "FAIL submit --timeout with the coordinator stopped mid-request: exit $code after" \
    "$took ms more; stderr:"
  cat "$work/late.err"
  failures=$((failures + 1))
else
  echo "ok   submit --timeout, coordinator stopped mid-request ($took ms after the stop):" \
    "$(tail -n 1 "$work/late.err")"
  passed=$((passed + 1))
fi

# Stopped before the client connects: the Hello is never answered.
expect_failure "submit --timeout on a stopped coordinator" "$address" 1900 15000 \
  "$runahead" submit --coordinator "$address" --tokens 1,2,3 --timeout 2
kill -CONT "$coordinator_pid"

# A worker of random:tiny-llama (256 positions, 97 token ids) on the quick coordinator.
"$runahead" worker --coordinator "$quick" --model random:tiny-llama --name w0 \
  --transports tcp >"$work/worker.out" 2>"$work/worker.err" &
pids+=("$!")
for _ in $(seq 1 600); do
  "$runahead" status --coordinator "$quick" 2>/dev/null | grep -q w0 && break
  sleep 0.1
done
expect_failure "prompt longer than the context" "more than the model's limit of 256" 0 15000 \
  "$runahead" submit --coordinator "$quick" --tokens "$(seq -s, 1 300 | sed 's/[0-9]*/5/g')"
expect_failure "token outside the vocabulary" "outside the vocabulary [0, 97)" 0 15000 \
  "$runahead" submit --coordinator "$quick" --tokens 1,2,500
expect_failure "negative temperature" "temperature" 0 15000 \
  "$runahead" submit --coordinator "$quick" --tokens 1,2 --temperature -1
if ! "$runahead" submit --coordinator "$quick" --tokens 1,2,3 --max-new-tokens 2 --timeout 60 \
  >"$work/ok.out" 2>"$work/ok.err"; then
  echo "FAIL a good request after the refusals:"
  cat "$work/ok.err"
  failures=$((failures + 1))
else
  echo "ok   a good request after the refusals"
  passed=$((passed + 1))
fi

echo "$passed passed, $failures failed"
[[ $failures -eq 0 ]]
