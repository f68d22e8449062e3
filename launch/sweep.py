"""Noise-multiplier sweep: epsilon table first, then one autoencoder per point, measured and reported.

  python -m launch.sweep --config=configs/sweep_noise.py:runlocal=True \
      --config.autoencoder.data.dataset_dir=runs/demo/data/ucf_crime2local/runlocal/1.0.0 \
      --config.optimizers=dpsgd,dpadam --config.noise_multipliers=0.5,1.0 --workdir=runs/sweep

Rerunning with the same workdir skips finished points and resumes the others.
Across machines, each task of a job array runs its share into one shared workdir, then one
gathers (the assignment is a stable hash of each point's name):

  python -m launch.sweep ... --workdir=/shared/sweep --config.shard=I/N     # task I of N
  python -m launch.sweep ... --workdir=/shared/sweep --report_only          # results and plots
``--parallel=N`` runs N points at once in spawned processes (pinned one per GPU
when there are GPUs); by default one process per GPU on a multi-GPU machine,
else one point at a time in this process. Writes W/results.csv, W/results.md,
W/epsilon_plan.md, W/timing.json and plots (``ppvad_jax/pipelines/sweep/``); compiled
programs are cached in W/xla_cache.
"""

import json
import pathlib
import sys

import jax
from absl import app, flags
from ml_collections import config_flags

from ppvad_jax.pipelines.sweep import run

_WORKDIR = flags.DEFINE_string(
    "workdir", None, "The sweep's directory (points under W/points).", required=True
)
_PARALLEL = flags.DEFINE_integer(
    "parallel", None, "Worker processes; 1: one point at a time in this process; default: one per GPU."
)
_CACHE = flags.DEFINE_string(
    "compilation_cache", "xla_cache",
    "Persistent XLA cache, relative to --workdir (shared by the workers; a resumed sweep does not "
    "recompile); empty: off.",
)  # fmt: skip
_REPORT_ONLY = flags.DEFINE_bool(
    "report_only", False, "Run nothing: gather results and plots of the finished points (after shards)."
)
_CONFIG = config_flags.DEFINE_config_file(
    "config", "configs/sweep_noise.py", "Config file.", lock_config=True
)


def main(argv):
    del argv
    if _CACHE.value:  # on CPU a DP step of the paper's model compiles for about a minute
        jax.config.update("jax_compilation_cache_dir", str(pathlib.Path(_WORKDIR.value) / _CACHE.value))
    try:
        summary = run.run_sweep(
            _CONFIG.value, _WORKDIR.value, parallel=_PARALLEL.value, report_only=_REPORT_ONLY.value
        )
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        sys.exit(f"error: {e}")
    timing = summary["timing"]
    keys = ("sweep_wall_seconds", "points_wall_seconds", "one_by_one_seconds", "mode", "points_run")
    print(json.dumps({k: timing[k] for k in keys}, indent=2))
    failed = [r["point"] for r in summary["rows"] if r.get("status") == "failed"]
    if failed:
        sys.exit(f"{len(failed)} point(s) failed: {', '.join(failed)} (see {_WORKDIR.value}/results.md)")


if __name__ == "__main__":
    app.run(main)
