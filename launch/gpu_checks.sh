#!/usr/bin/env bash
# Every GPU check (DP step, detectors, SAS, serving) in one bounded run, for a session that is lent a device.
#
# Here first:  bash launch/device_wheels.sh      (Python 3.12 wheels the device image lacks, .whl/)
#              mkdir -p .darknet && cp ../shared/data/darknet/*.cfg .darknet/   (for the detector)
#              echo /.darknet/ >> .git/info/exclude
# Then, one call:  run(command="bash launch/gpu_checks.sh", carry=[".whl", ".darknet"], timeout_s=590)
# On this CPU, with tiny sizes, to check the wiring:  SMOKE=1 bash launch/gpu_checks.sh
#
# Each check runs under `timeout`, so the script ends inside the device call's limit (540 s in
# at most) even when one hangs; a failed check is recorded and the next one runs. Results: one JSON
# line per check in $OUT/gpu_checks.jsonl (rc, seconds, the benchmark's own JSON) and the
# checks' stderr tails in $OUT/gpu_checks.log; $OUT is the device tool's folder, or
# runs/gpu_checks here. Targets: DP autoencoder >= 1,000 frames/s at 240x320 batch 64 and batch
# 256 compiling; SAS >= 1e10 frames/s; 32 cameras at 10 FPS at 240x320 with
# p99 < 200 ms; ResNet-50 and YOLOv4 frames/s for the record.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu_checks}
mkdir -p "$OUT"
RESULTS="$OUT/gpu_checks.jsonl"
LOG="$OUT/gpu_checks.log"
: >"$RESULTS"
: >"$LOG"
export PYTHONUNBUFFERED=1
PY=${PY:-python3}
if [ -n "${SMOKE:-}" ] && [ -x .venv/bin/python ]; then
  PY=.venv/bin/python  # here: the project's own environment
elif compgen -G ".whl/*.whl" >/dev/null; then  # the device: its python3 plus the carried wheels
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
WORK=$(mktemp -d)

if [ -n "${SMOKE:-}" ]; then  # tiny sizes: the wiring, not the numbers
  SAS=(--videos=8 --frames=1000); DP64=(--batch_size=2 --height=48 --width=64 --repeats=1)
  DP256=(--batch_size=4 --height=48 --width=64 --repeats=1 --variants=dp_layerwise)
  BACKBONE=(--batch_size=2 --size=64 --repeats=1 --torch=false)
  DETECTOR=(--cfg=yolov4-tiny --height=128 --width=128 --batch_size=1 --repeats=1)
  AE_SIZE=(--height=64 --width=96); LOAD=(--cameras=2 --fps=5 --seconds=4 --max_frames=20)
  WORLD=(--num_videos=2 --seconds=1); SERVER=(); VEC=(--ks=1,2 --batch_size=2 --height=48 --width=64 --steps=1)
else
  SAS=(--videos=128 --frames=100000 --python_videos=1); DP64=(--batch_size=64 --height=240 --width=320 --repeats=5)
  DP256=(--batch_size=256 --height=240 --width=320 --repeats=1 --variants=dp_layerwise)
  BACKBONE=(--batch_size=64 --size=224 --repeats=5 --torch=false)
  DETECTOR=(--cfg=yolov4 --height=416 --width=416 --batch_size=16 --repeats=5)
  AE_SIZE=(--height=240 --width=320); LOAD=(--cameras=32 --fps=10 --seconds=20 --max_frames=200)
  WORLD=(--num_videos=8 --seconds=3); VEC=(--ks=1,4,8,16 --batch_size=8 --height=120 --width=160 --steps=3)
  SERVER=(--server_flag=--config.engine.max_batch=32 --server_flag=--config.engine.max_queue=512
    --server_flag=--config.engine.flow_threads=12 --server_flag=--config.engine.max_pending_per_camera=32)
fi

check() {  # check NAME SECONDS MODULE ARGS...: runs one benchmark, records one JSON line
  local name=$1 limit=$2
  shift 2
  echo "== $name (limit ${limit}s): $*" | tee -a "$LOG"
  local start=$SECONDS
  timeout "$limit" "$PY" -m "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
  local rc=$?
  tail -c 3000 "$WORK/$name.err" >>"$LOG"
  "$PY" - "$name" "$rc" "$((SECONDS - start))" "$WORK/$name.out" >>"$RESULTS" <<'PYEOF'
import json, sys
name, rc, seconds, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
text = open(path).read()
result = None
starts = [i for i, c in enumerate(text) if c == "{" and (i == 0 or text[i - 1] == "\n")]
for i in reversed(starts):  # the last JSON object printed, one line or indented
    try:
        result = json.loads(text[i:])
        break
    except json.JSONDecodeError:
        continue
print(json.dumps({"check": name, "rc": rc, "timed_out": rc in (124, 137), "seconds": seconds, "result": result}))
PYEOF
  tail -n 1 "$RESULTS" | cut -c1-400
}

"$PY" -c "import jax, json; print(json.dumps({'jax': jax.__version__, 'devices': [str(d) for d in jax.devices()]}))" \
  | tee -a "$LOG"
nvidia-smi -L 2>/dev/null | tee -a "$LOG"
check sas 40 launch.benchmark_sas "${SAS[@]}"
check dp_batch64 140 launch.benchmark_dp "${DP64[@]}"
check dp_batch256_compiles 90 launch.benchmark_dp "${DP256[@]}"
check backbone 40 launch.benchmark_backbone "${BACKBONE[@]}"
check vectorized_sweep 120 launch.benchmark_vectorized "${VEC[@]}"
if [ -d .darknet ] || [ -d ../shared/data/darknet ]; then
  check detector 40 launch.benchmark_detector "${DETECTOR[@]}" --darknet_dir="$( [ -d .darknet ] && echo .darknet || echo ../shared/data/darknet)"
else
  echo '{"check": "detector", "skipped": "no .darknet folder with yolov4 cfgs was carried"}' >>"$RESULTS"
fi
# Serving: an untrained paper-size autoencoder (throughput does not depend on the weights), a
# small synthetic world for the cameras' videos, then the loopback load test.
timeout 30 "$PY" -m launch.export_random_autoencoder --out_dir="$WORK/ae" "${AE_SIZE[@]}" >>"$LOG" 2>&1
timeout 40 "$PY" -m launch.make_synthetic --out_dir="$WORK/world" --num_workers=8 "${WORLD[@]}" >>"$LOG" 2>&1
check load_test 120 launch.load_test "${LOAD[@]}" --ae_export="$WORK/ae" --videos="$WORK/world/*/*.avi" \
  --workdir="$WORK/load" "${SERVER[@]}"
echo "results: $RESULTS"
rm -rf "$WORK"
