"""Benchmark of the data layer; prints one JSON object.

  python -m launch.benchmark_data [--num_videos=7] [--seconds=6] [--flow_pairs=48]

Measured in one run on the same machine, so the ratios are meaningful:
- synthetic world generation, frames/s;
- dataset preparation at 240x320 with 0 (in-process) and N worker processes:
  source frames decoded per second and examples written per second;
- optical flow at 240x320, ms per frame: DIS and Farneback in this process,
  and DIS batched over N processes (process start-up included);
- the motion-energy AUC of the world (hard anomalies vs normal frames, all splits).
"""

import json
import pathlib
import platform
import tempfile
import time

import numpy as np
from absl import app, flags

from configs import ucf_crime2local as data_config
from ppvad_jax.data import dataset_report, flow, prepare, ucf_layout
from ppvad_jax.data.synthetic import world
from ppvad_jax.evaluation import roc

_NUM_VIDEOS = flags.DEFINE_integer("num_videos", 7, "Videos in the benchmark world.")
_SECONDS = flags.DEFINE_float("seconds", 6.0, "Seconds per video.")
_FLOW_PAIRS = flags.DEFINE_integer("flow_pairs", 48, "Frame pairs for the flow timings.")
_WORKERS = flags.DEFINE_integer("workers", 2, "Worker processes for the parallel runs.")


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main(argv):
    del argv
    prepare.quiet_tfds()
    out = {"machine": f"{platform.machine()}, {platform.processor() or '?'}", "workers": _WORKERS.value}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        params = world.WorldParams(num_videos=_NUM_VIDEOS.value, seconds=_SECONDS.value, seed=1)
        manifest, seconds = timed(lambda: world.generate_world(tmp / "world", params))
        source_frames = sum(v["frames"] for v in manifest["videos"])
        out["synthetic_frames_per_s"] = round(source_frames / seconds, 1)
        config = data_config.get_config()  # paper resolution, 240x320
        for workers in (0, _WORKERS.value):
            summary, seconds = timed(
                lambda w=workers: prepare.prepare(
                    manual_dir=tmp / "world", data_dir=tmp / f"tfds{w}", config=config, num_workers=w
                )
            )
            examples = sum(sum(f.values()) for f in summary["frames"].values())
            out[f"prepare_w{workers}"] = {
                "seconds": round(seconds, 2),
                "source_frames_per_s": round(source_frames / seconds, 1),
                "examples_per_s": round(examples / seconds, 1),
            }
        out["prepare_speedup"] = round(
            out[f"prepare_w{_WORKERS.value}"]["source_frames_per_s"]
            / out["prepare_w0"]["source_frames_per_s"],
            2,
        )
        dataset_dir = summary["dataset_dir"]
        videos = {}
        for split in ("train", "validation", "test"):
            videos.update(dataset_report.examples_by_video(dataset_dir, split))
        examples = [e for v in videos.values() for e in v]
        pairs = examples[: _FLOW_PAIRS.value]
        prevs = np.stack([e["prev_frame"] for e in pairs])
        frames = np.stack([e["frame"] for e in pairs])
        for method in ("dis", "farneback"):
            flow.flow_images(prevs[:2], frames[:2], method=method)  # warm-up
            _, seconds = timed(lambda m=method: flow.flow_images(prevs, frames, method=m))
            out[f"flow_{method}_ms_per_frame"] = round(1000 * seconds / len(pairs), 2)
        _, seconds = timed(lambda: flow.flow_images(prevs, frames, num_workers=_WORKERS.value, chunk=8))
        out[f"flow_dis_{_WORKERS.value}proc_ms_per_frame"] = round(1000 * seconds / len(pairs), 2)
        kept = [e for e in examples if int(e["label"]) != ucf_layout.SOFT]
        out["motion_energy_auc_all_splits"] = round(
            roc.roc_auc(
                [int(e["label"]) == ucf_layout.HARD for e in kept], dataset_report.motion_energy(kept)
            ),
            3,
        )
        out["examples"] = len(examples)
        out["source_frames"] = source_frames
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    app.run(main)
