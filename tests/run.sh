#!/usr/bin/env bash
# Sets up (or reuses) .venv, installs requirements + dev requirements, lints, runs the tests.
#   bash tests/run.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup_venv.sh requirements.txt requirements-dev.txt
.venv/bin/ruff check --config tests/ruff.toml .
.venv/bin/ruff format --check --config tests/ruff.toml .
# Two pytest workers for CI's two cores; each test file stays on one worker so
# its module fixtures are built once.
exec .venv/bin/python -m pytest -n 2 --dist loadfile -q "$@" tests
