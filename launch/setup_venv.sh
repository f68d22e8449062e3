#!/usr/bin/env bash
# Creates or reuses .venv and installs the given requirement files into it,
# only when their contents changed since the last install (a stamp holds a hash).
#   bash launch/setup_venv.sh requirements.txt [requirements-dev.txt]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(echo "$@" | tr ' /' '__').sha256"
want=$(cat "$@" | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "installing $* into .venv (a few minutes the first time)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  args=()
  for f in "$@"; do args+=(-r "$f"); done
  .venv/bin/python -m pip install --quiet "${args[@]}"
  echo "$want" > "$stamp"
fi
