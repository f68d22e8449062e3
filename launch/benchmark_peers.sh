#!/usr/bin/env bash
# Times the paper's autoencoder step in TensorFlow (+ TF Privacy DPSequential) and PyTorch
# (+ Opacus) against this project's, in one run on the same machine; prints JSON lines and
# a summary with ratios. Peers live in their own venvs (never in requirements.txt):
#   bash launch/benchmark_peers.sh [BATCH] [HEIGHT] [WIDTH]
# Venvs: $PEERS_DIR/peer-tf (tensorflow-cpu 2.15.1, tensorflow-privacy 0.9.0) and
#        $PEERS_DIR/peer-torch (torch 2.13.0 CPU, opacus); PEERS_DIR defaults to .venv-peers.
set -euo pipefail
cd "$(dirname "$0")/.."
BATCH="${1:-16}"; HEIGHT="${2:-240}"; WIDTH="${3:-320}"
PEERS_DIR="${PEERS_DIR:-.venv-peers}"
mkdir -p "$PEERS_DIR"
if [ ! -x "$PEERS_DIR/peer-tf/bin/python" ]; then
  python3 -m venv "$PEERS_DIR/peer-tf"
  "$PEERS_DIR/peer-tf/bin/pip" install -q "tensorflow-cpu==2.15.1" "tensorflow-privacy==0.9.0"
fi
if [ ! -x "$PEERS_DIR/peer-torch/bin/python" ]; then
  python3 -m venv "$PEERS_DIR/peer-torch"
  "$PEERS_DIR/peer-torch/bin/pip" install -q "torch==2.13.0" opacus
fi
bash launch/setup_venv.sh requirements.txt
args=(--batch_size="$BATCH" --height="$HEIGHT" --width="$WIDTH" --repeats=3)
"$PEERS_DIR/peer-torch/bin/python" launch/peers/torch_ae.py "${args[@]}" | tail -n 1 > "$PEERS_DIR/torch.json"
"$PEERS_DIR/peer-tf/bin/python" launch/peers/tf_ae.py "${args[@]}" 2>/dev/null | tail -n 1 > "$PEERS_DIR/tf.json"
.venv/bin/python -m launch.benchmark_dp "${args[@]}" 2>/dev/null | sed -n '/^{/,$p' > "$PEERS_DIR/ours.json"
.venv/bin/python - "$PEERS_DIR" <<'PY'
import json, pathlib, sys
d = pathlib.Path(sys.argv[1])
torch, tf, ours = (json.loads((d / f).read_text()) for f in ("torch.json", "tf.json", "ours.json"))
# The trainer's defaults: DP layerwise, non-private jax.grad (configs/autoencoder.py).
dp, plain = ours["dp_layerwise"]["seconds_per_step"], ours["plain_autodiff"]["seconds_per_step"]
print(json.dumps({
    "seconds_per_step": {"ours_plain": plain, "ours_dp": dp, **{k: v for k, v in {**torch, **tf}.items() if k.endswith("_s")}},
    "ours_dp_over_tf_privacy_dpsequential": round(dp / tf["tf_privacy_dpsequential_s"], 2),
    "ours_dp_over_opacus": round(dp / torch["opacus_hooks_s"], 2),
    "ours_plain_over_torch_plain": round(plain / torch["torch_plain_s"], 2),
    "ours_dp_over_ours_plain": round(dp / plain, 3),
}, indent=2))
PY
