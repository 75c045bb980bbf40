#!/usr/bin/env bash
# Bad input on the command line: one clear line naming what is wrong, a non-zero exit, no crash.
set -uo pipefail
runahead="$1"
data="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failures=0

# expect_failure NAME NEEDLE COMMAND...: the command exits 1 and its stderr names NEEDLE.
expect_failure() {
  local name="$1" needle="$2"
  shift 2
  "$@" >"$work/out" 2>"$work/err"
  local code=$?
  if [[ $code -ne 1 ]] || ! grep -qF -- "$needle" "$work/err"; then
    echo "FAIL $name: exit $code, stderr:"
    cat "$work/err"
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

echo "$((7 - failures)) passed, $failures failed"
[[ $failures -eq 0 ]]
