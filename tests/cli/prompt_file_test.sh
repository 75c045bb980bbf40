#!/usr/bin/env bash
# Prompts from files and standard input (--tokens-file, --prompt-file): a prompt longer than one
# command-line argument may be (128 KiB) goes through `generate` and a local cluster and gives
# the same tokens; bad files get one line naming the file and the entry.
set -uo pipefail
runahead="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failures=0
fail() {
  echo "FAIL $*"
  failures=$((failures + 1))
}

# 48,000 ids of a 97-token vocabulary, one per line: larger than one argument may be.
tokens=${PROMPT_FILE_TOKENS:-48000}
python3 -c "import random; random.seed(7); print('\n'.join(str(random.randrange(97)) for _ in range($tokens)))" \
  >"$work/ids.txt"
bytes=$(wc -c <"$work/ids.txt")
if ((tokens == 48000 && bytes <= 131072)); then fail "the prompt file has only $bytes bytes"; fi
model=random:long-tiny-llama

json_tokens() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d['prompt_token_count'], d['tokens'])" "$1"; }

"$runahead" generate --model "$model" --tokens-file "$work/ids.txt" --max-new-tokens 4 --json \
  >"$work/generate.json" 2>"$work/generate.err" || fail "generate --tokens-file: $(tail -n 3 "$work/generate.err")"
"$runahead" local --workers 2 --model "$model" --tokens-file - --max-new-tokens 4 --json \
  <"$work/ids.txt" >"$work/local.json" 2>"$work/local.err" || fail "local --tokens-file -: $(tail -n 3 "$work/local.err")"
one=$(json_tokens "$work/generate.json" 2>/dev/null)
two=$(json_tokens "$work/local.json" 2>/dev/null)
if [[ -z "$one" || "$one" != "$two" ]]; then
  fail "generate gave '$one', a local cluster of 2 gave '$two'"
elif [[ "$one" != "$tokens "* ]]; then
  fail "the prompt arrived as '${one%% *}' tokens, not $tokens"
else
  echo "ok   $tokens-token prompt from a file and from standard input: $one"
fi

# Text from a file through a real tokenizer equals the same text given with --prompt.
if [[ -n "${RUNAHEAD_SMOLLM2_GGUF:-}" && -f "${RUNAHEAD_SMOLLM2_GGUF:-}" ]]; then
  text=$'The capital of France is\nParis, and the capital of Italy is'
  printf '%s' "$text" >"$work/prompt.txt"
  "$runahead" generate --model "$RUNAHEAD_SMOLLM2_GGUF" --prompt "$text" --max-new-tokens 4 \
    --json >"$work/text_arg.json" 2>"$work/text_arg.err" || fail "generate --prompt: $(tail -n 3 "$work/text_arg.err")"
  "$runahead" generate --model "$RUNAHEAD_SMOLLM2_GGUF" --prompt-file - --max-new-tokens 4 \
    --json <"$work/prompt.txt" >"$work/text_file.json" 2>"$work/text_file.err" || fail "generate --prompt-file -: $(tail -n 3 "$work/text_file.err")"
  one=$(json_tokens "$work/text_arg.json" 2>/dev/null)
  two=$(json_tokens "$work/text_file.json" 2>/dev/null)
  if [[ -z "$one" || "$one" != "$two" ]]; then
    fail "--prompt gave '$one', --prompt-file gave '$two'"
  else
    echo "ok   SmolLM2 text from standard input equals --prompt: $one"
  fi
else
  echo "skip SmolLM2 --prompt-file: RUNAHEAD_SMOLLM2_GGUF names no file"
fi

# expect_failure NAME NEEDLE COMMAND...: exit 1 and one stderr line naming NEEDLE.
expect_failure() {
  local name="$1" needle="$2"
  shift 2
  "$@" >"$work/out" 2>"$work/err" </dev/null
  local code=$?
  if [[ $code -ne 1 ]] || ! grep -qF -- "$needle" "$work/err" || [[ $(wc -l <"$work/err") -ne 1 ]]; then
    fail "$name: exit $code; stderr: $(cat "$work/err")"
  else
    echo "ok   $name: $(cat "$work/err")"
  fi
}
printf '1, 2,\n3 x4 5\n' >"$work/bad.txt"
expect_failure "an entry that is not an id" "token 4 (\"x4\")" \
  "$runahead" generate --model random:tiny-llama --tokens-file "$work/bad.txt"
printf '1 2 99999999999\n' >"$work/big.txt"
expect_failure "an id past 2^31" "token 3" \
  "$runahead" generate --model random:tiny-llama --tokens-file "$work/big.txt"
expect_failure "a missing file" "$work/missing.txt" \
  "$runahead" generate --model random:tiny-llama --tokens-file "$work/missing.txt"
: >"$work/empty.txt"
expect_failure "an empty prompt file" "empty.txt" \
  "$runahead" generate --model random:tiny-llama --tokens-file "$work/empty.txt"
expect_failure "two sources" "one way" \
  "$runahead" generate --model random:tiny-llama --tokens 1,2 --tokens-file "$work/ids.txt"
expect_failure "an empty prompt file for text" "empty.txt" \
  "$runahead" generate --model random:tiny-llama --prompt-file "$work/empty.txt"

exit $((failures > 0))
