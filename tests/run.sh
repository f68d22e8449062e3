#!/usr/bin/env bash
# Sets up (or reuses) .venv, installs requirements + dev requirements, lints, runs the tests.
#   bash tests/run.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# Reinstall only when the requirement files changed (a stamp holds their hash).
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt
  echo "$want" > "$stamp"
fi
.venv/bin/ruff check --config tests/ruff.toml .
.venv/bin/ruff format --check --config tests/ruff.toml .
exec .venv/bin/python -m pytest -n 2 --dist loadfile -q "$@" tests
