#!/usr/bin/env bash
# Sets up (or reuses) .venv, installs requirements + dev requirements and, where npm exists,
# tools/' npm packages (launch/setup_node.sh), lints, runs the tests.
#   bash tests/run.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup_venv.sh requirements.txt requirements-dev.txt
bash launch/setup_node.sh
.venv/bin/ruff check --config tests/ruff.toml .
.venv/bin/ruff format --check --config tests/ruff.toml .
# Two pytest workers for CI's two cores; each test file stays on one worker so
# its module fixtures are built once. FAST=1: the lane for iterating (under 3 min):
# tests marked slow (end-to-end trainings, sweeps, servers in subprocesses) are left out;
# CI runs everything.
marks=()
if [[ "${FAST:-0}" == "1" ]]; then
  marks=(-m "not slow")
fi
exec .venv/bin/python -m pytest -n 2 --dist loadfile -q "${marks[@]}" "$@" tests
