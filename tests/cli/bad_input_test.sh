#!/usr/bin/env bash
# Bad input on the command line: one clear line naming what is wrong on stderr, nothing on
# stdout, a non-zero exit, no crash.
set -uo pipefail
runahead="$1"
data="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failures=0

# expect_failure NAME NEEDLE COMMAND...: the command exits 1, its stderr is one line naming
# NEEDLE, and its stdout is empty.
expect_failure() {
  local name="$1" needle="$2"
  shift 2
  "$@" >"$work/out" 2>"$work/err"
  local code=$?
  local lines
  lines=$(wc -l <"$work/err")
  if [[ $code -ne 1 ]] || ! grep -qF -- "$needle" "$work/err" || [[ $lines -ne 1 ]] ||
    [[ -s "$work/out" ]]; then
    echo "FAIL $name: exit $code, $lines stderr lines, $(wc -c <"$work/out") bytes on stdout;" \
      "stderr:"
    cat "$work/err"
    echo "stdout:"
    cat "$work/out"
    failures=$((failures + 1))
  else
    echo "ok   $name: $(head -n 1 "$work/err")"
  fi
}

expect_failure "missing model" "no-such-dir" \
  "$runahead" generate --model "$work/no-such-dir" --tokens 1,2
expect_failure "token outside the vocabulary" "97" \
  "$runahead" generate --model random:tiny-llama --tokens 1,2,500
expect_failure "prompt longer than the model's limit" "256" \
  "$runahead" generate --model random:tiny-llama --tokens "$(seq -s, 1 300 | sed 's/[0-9]*/5/g')"
expect_failure "unknown preset" "unknown model preset" \
  "$runahead" generate --model random:nope --tokens 1
cp -r "$data/golden/llama_mha" "$work/unknown_arch"
sed -i 's/LlamaForCausalLM/MysteryForCausalLM/; s/"model_type": *"llama"/"model_type": "mystery"/' \
  "$work/unknown_arch/config.json"
expect_failure "unknown architecture" "Mystery" \
  "$runahead" generate --model "$work/unknown_arch" --tokens 1,2
cp -r "$data/golden/llama_mha" "$work/truncated"
truncate -s 5000 "$work/truncated/model.safetensors"
expect_failure "truncated safetensors" "model.safetensors" \
  "$runahead" generate --model "$work/truncated" --tokens 1,2
expect_failure "cluster with no prompt" "--prompt" \
  "$runahead" local --workers 1 --model random:tiny-llama
expect_failure "negative --logits" "--logits -1" \
  "$runahead" generate --model random:tiny-llama --tokens 1,2 --logits -1 --json
expect_failure "--logits above the vocabulary" "97" \
  "$runahead" generate --model random:tiny-llama --tokens 1,2 --logits 98 --json
expect_failure "submit with a negative --logits" "--logits -4" \
  "$runahead" submit --coordinator 127.0.0.1:1 --tokens 1,2 --logits -4

echo "$((10 - failures)) passed, $failures failed"
[[ $failures -eq 0 ]]
