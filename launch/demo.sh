#!/usr/bin/env bash
# The main job on the embedded default: sets up (or reuses) .venv, then runs the
# demo on a synthetic world and prints where the report is.
#   bash launch/demo.sh [--workdir=runs/demo] [--num_videos=21] ...
# Each --NAME=VALUE is the field NAME of configs/demo.py (passed on as
# --config.NAME=VALUE); --config.NAME=VALUE and --config=FILE pass unchanged. --serve keeps
# the operator console up on the demo's live store at the end (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup_venv.sh requirements.txt
bash launch/setup_node.sh  # where npm exists: the model files of --config.detector.backend=centernet_coco
args=()
for arg in "$@"; do
  case "$arg" in
    --config=* | --config.*) args+=("$arg") ;;
    --serve) args+=("--config.serve_console=True") ;;  # keep the operator console up at the end
    --*=*) args+=("--config.${arg#--}") ;;
    *) args+=("$arg") ;;
  esac
done
exec .venv/bin/python -m launch.demo --config=configs/demo.py ${args[@]+"${args[@]}"}
