#!/usr/bin/env bash
# The main job on the embedded default: sets up (or reuses) .venv, then runs the
# demo on a synthetic world and prints where the report is.
#   bash launch/demo.sh [--workdir=runs/demo] [--num_videos=21] ...
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup_venv.sh requirements.txt
exec .venv/bin/python -m launch.demo "$@"
