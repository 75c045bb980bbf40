#!/usr/bin/env bash
# Authentication drills with real processes, as an operator meets them: `runahead keygen`
# writes private keys and never overwrites one; a coordinator without keys refuses a
# non-loopback address unless --insecure; a key file others may read is refused naming it; a
# coordinator with keys admits a worker with the cluster key, refuses one without a key or with
# the client key (it exits, naming why), refuses clients without the client key or with another,
# serves the one with it, and logs each refusal without showing a key.
set -uo pipefail
runahead="$1"
work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
export OMP_WAIT_POLICY=passive
failures=0
passed=0
check() {  # check NAME CONDITION-EXIT-CODE
  if [[ $2 -eq 0 ]]; then
    echo "ok   $1"
    passed=$((passed + 1))
  else
    echo "FAIL $1"
    for file in "$work"/*.err; do [[ -s $file ]] && { echo "--- $file"; tail -n 5 "$file"; }; done
    failures=$((failures + 1))
  fi
}

# Starts a coordinator in the background with the given flags; sets coordinator_pid and
# address (empty if it did not start within 20 s).
start_coordinator() {
  local log="$1"
  shift
  "$runahead" coordinator --model random:tiny-llama --listen 127.0.0.1:0 "$@" >"$work/$log.out" 2>"$work/$log.err" &
  coordinator_pid=$!
  pids+=("$coordinator_pid")
  address=""
  for _ in $(seq 200); do
    address=$(sed -n 's/^coordinator listening on //p' "$work/$log.out")
    [[ -n $address ]] && return 0
    sleep 0.1
  done
}

"$runahead" keygen "$work/cluster.key" "$work/client.key" "$work/other.key" >"$work/keygen.out" \
  2>"$work/keygen.err"
check "keygen writes three keys" $?
[[ $(stat -c %a "$work/cluster.key") == 600 && $(wc -c <"$work/cluster.key") -eq 65 ]]
check "a key file is 64 hexadecimal digits, mode 0600" $?
cp "$work/cluster.key" "$work/before"
"$runahead" keygen "$work/cluster.key" >/dev/null 2>"$work/again.err"
[[ $? -eq 1 ]] && grep -q "never overwritten" "$work/again.err" && cmp -s "$work/cluster.key" "$work/before"
check "keygen refuses to overwrite a key" $?

"$runahead" coordinator --model random:tiny-llama --listen 0.0.0.0:0 >"$work/open.out" 2>"$work/open.err"
[[ $? -eq 1 ]] && grep -q -- "--insecure" "$work/open.err" && grep -q "0.0.0.0:0" "$work/open.err" &&
  [[ $(wc -l <"$work/open.err") -eq 1 ]]
check "a keyless coordinator refuses 0.0.0.0 without --insecure" $?
"$runahead" coordinator --model random:tiny-llama --listen 0.0.0.0:0 --cluster-key-file "$work/cluster.key" \
  >"$work/half.out" 2>"$work/half.err"
[[ $? -eq 1 ]] && grep -q -- "give --client-key-file" "$work/half.err"
check "a coordinator with the cluster key alone refuses 0.0.0.0" $?
"$runahead" coordinator --model random:tiny-llama --listen 0.0.0.0:0 --insecure >"$work/insecure.out" 2>"$work/insecure.err" &
insecure_pid=$!
pids+=("$insecure_pid")
started=1
for _ in $(seq 100); do
  grep -q "^coordinator listening on 0.0.0.0:" "$work/insecure.out" && { started=0; break; }
  sleep 0.1
done
kill "$insecure_pid" 2>/dev/null
check "--insecure lets a keyless coordinator listen on 0.0.0.0" $started

cp "$work/cluster.key" "$work/loose.key"
chmod 644 "$work/loose.key"
"$runahead" coordinator --model random:tiny-llama --cluster-key-file "$work/loose.key" --client-key-file "$work/client.key" \
  >/dev/null 2>"$work/loose.err"
[[ $? -eq 1 ]] && grep -q "$work/loose.key" "$work/loose.err" && grep -q "chmod 600" "$work/loose.err"
check "a key file others may read is refused, naming it" $?
"$runahead" coordinator --model random:tiny-llama --cluster-key-file "$work/cluster.key" \
  --client-key-file "$work/cluster.key" >/dev/null 2>"$work/same.err"
[[ $? -eq 1 ]] && grep -q "are the same" "$work/same.err"
check "one key for both roles is refused" $?

start_coordinator coordinator --cluster-key-file "$work/cluster.key" \
  --client-key-file "$work/client.key"
[[ -n $address ]]
check "a coordinator with keys starts on loopback" $?
[[ -n $address ]] || exit 1

worker() {  # worker NAME [FLAGS...]: a tiny CPU worker of this coordinator
  local name="$1"
  shift
  "$runahead" worker --coordinator "$address" --model random:tiny-llama --name "$name" \
    --threads 1 --probe-tokens 8 --transports tcp "$@"
}
workers_named() {  # the names of the workers status shows
  "$runahead" status --coordinator "$address" --client-key-file "$work/client.key" --json |
    python3 -c 'import json,sys; print(" ".join(w["name"] for w in json.load(sys.stdin)["workers"]))'
}

worker good --cluster-key-file "$work/cluster.key" >/dev/null 2>"$work/good.err" &
pids+=($!)
joined=1
for _ in $(seq 300); do
  [[ $(workers_named 2>/dev/null) == "good" ]] && { joined=0; break; }
  sleep 0.1
done
check "a worker with the cluster key joins" $joined

worker nokey >/dev/null 2>"$work/nokey.err"
[[ $? -eq 1 ]] && grep -q "did not authenticate" "$work/nokey.err" &&
  grep -q -- "--cluster-key-file" "$work/nokey.err"
check "a worker without the key is refused and exits, naming why" $?
worker wrongrole --cluster-key-file "$work/client.key" >/dev/null 2>"$work/wrongrole.err"
[[ $? -eq 1 ]] && grep -q "did not prove the key in $work/client.key" "$work/wrongrole.err"
check "a worker with the client key is refused and exits" $?
[[ $(workers_named) == "good" ]]
check "only the worker with the key is registered" $?

"$runahead" status --coordinator "$address" >/dev/null 2>"$work/status-nokey.err"
[[ $? -eq 1 ]] && grep -q -- "--client-key-file" "$work/status-nokey.err"
check "status without the client key is refused" $?
"$runahead" submit --coordinator "$address" --tokens 1,2,3 --client-key-file "$work/cluster.key" \
  >"$work/submit-wrong.out" 2>"$work/submit-wrong.err"
[[ $? -eq 1 ]] && [[ ! -s "$work/submit-wrong.out" ]] && grep -q "did not prove" "$work/submit-wrong.err"
check "submit with the cluster key as client key is refused" $?
"$runahead" submit --coordinator "$address" --tokens 1,2,3 --client-key-file "$work/other.key" \
  >/dev/null 2>"$work/submit-other.err"
[[ $? -eq 1 ]]
check "submit with another key is refused" $?
"$runahead" submit --coordinator "$address" --tokens 5,6,7,8,9 --max-new-tokens 3 --json \
  --client-key-file "$work/client.key" >"$work/submit.out" 2>"$work/submit.err"
[[ $? -eq 0 ]] && python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert len(r["tokens"]) == 3' \
  "$work/submit.out"
check "submit with the client key is served" $?

grep -q "refusing connection .*worker nokey.*did not authenticate" "$work/coordinator.err"
check "the coordinator logs the refusal, naming the worker" $?
key_text=$(cat "$work/cluster.key" "$work/client.key" | cut -c1-16)
leaked=0
for part in $key_text; do
  grep -rq "$part" "$work"/*.err "$work"/*.out && leaked=1
done
check "no key material in any log or output" $leaked

# A client with a key trusts only a coordinator that proves it.
start_coordinator keyless
"$runahead" status --coordinator "$address" --client-key-file "$work/client.key" \
  >/dev/null 2>"$work/keyless-status.err"
[[ $? -eq 1 ]] && grep -q "cannot prove it back" "$work/keyless-status.err"
check "a client with a key refuses a coordinator without one" $?

echo "$passed passed, $failures failed"
[[ $failures -eq 0 ]]
