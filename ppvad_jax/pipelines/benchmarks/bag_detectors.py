"""The bag-of-objects backends on the same frames, one run: COCO CenterNet (JAX) against the classic
OpenCV detectors, their speed and how many of the people in view each counts.

Frames are rendered from the synthetic world at its 240x320: ``frames_per_video`` evenly spaced
frames of 3 s of one video of each class (seed 0). A person is "in view" when drawn with
feet at least 10 pixels inside the frame's sides (``people_in_view``, from the scene, so
overlapping people count too). Each backend computes the bag as the classifier's input
builder calls it, ``bag(frames)``:
- ``centernet_bag_fps``: ``CenterNetBagDetector.bag`` (default letterbox), everything:
  OpenCV pad and resize to 512x512, the jitted network, peaks, NMS, counts, the copy back;
- ``centernet_network_fps``: the jitted network alone on already-resized frames;
- ``classic_bag_fps``: ``ClassicDetector.bag`` (HOG + three Haar cascades, one frame at a time).
Frames/s are batch_size / median seconds per call on the first ``batch_size`` frames, over
``repeats`` calls after one warm-up, timed in turns. Counts, over all frames, per backend
(CenterNet with either ``resize``): ``persons_counted`` (sum of the bag's person entries),
``frames_person_agrees`` (frames where "counted at least one person" equals "at least one
in view") and ``other_classes`` (what else was counted, by class). ``load_average_1min``
says how busy the machine was.
"""

import os
import time

import cv2
import jax
import numpy as np

from ppvad_jax.data import ucf_layout
from ppvad_jax.data.synthetic import render, scenarios, world
from ppvad_jax.models import classic_detector
from ppvad_jax.models.centernet import bag_detector
from ppvad_jax.pipelines.benchmarks import detector, timing


def synthetic_frames(frames_per_video, *, seed=0, seconds=3.0):
    """(frames [N, 240, 320, 3] uint8, people in view per frame [N]) over one video per class."""
    num_frames = int(seconds * world.FPS)
    picks = np.linspace(5, num_frames - 1, frames_per_video).astype(int)
    frames, in_view = [], []
    for index, video_class in enumerate(ucf_layout.CLASSES):
        rng = np.random.default_rng([seed, index])
        background, layout = render.background(rng)
        scene = scenarios.build_scene(rng, video_class, num_frames, layout, crowd=3, difficulty=0.5)
        video = list(world.render_frames(scene, background, layout, rng, 0.5))
        for t in picks:
            frames.append(video[t])
            in_view.append(sum(bool(a.visible[t]) and 10 <= a.x[t] < render.WIDTH - 10 for a in scene.actors))
    return np.stack(frames), np.array(in_view)


def _counts(bags, classes, in_view):
    person = bags[:, classes.index("person")]
    others = {c: int(n) for c, n in zip(classes, bags.sum(0), strict=True) if c != "person" and n}
    return {
        "persons_counted": int(person.sum()),
        "frames_person_agrees": int(np.sum((person >= 1) == (in_view >= 1))),
        "other_classes": dict(sorted(others.items(), key=lambda kv: -kv[1])),
    }


def run(*, batch_size, repeats, frames_per_video=5, model_dir=None):
    """The benchmark's JSON object (module docstring)."""
    frames, in_view = synthetic_frames(frames_per_video)
    batch = frames[:batch_size]
    centernet = bag_detector.CenterNetBagDetector(model_dir, batch_size=batch_size)
    stretched = bag_detector.CenterNetBagDetector(model_dir, batch_size=batch_size, resize="stretch")
    classic = classic_detector.ClassicDetector()
    images = jax.device_put(centernet.preprocess(batch))
    network = jax.jit(centernet.graph.apply)
    start = time.perf_counter()
    jax.block_until_ready(network(centernet.params, images))
    compile_s = time.perf_counter() - start
    seconds = timing.interleaved_median_seconds(
        {
            "centernet_bag": lambda: centernet.bag(batch),
            "centernet_network": lambda: jax.block_until_ready(network(centernet.params, images)),
            "classic_bag": lambda: classic.bag(batch),
        },
        repeats,
    )
    out = {
        "machine": f"{detector.cpu_model()}, {os.cpu_count()} cores",
        "frame_height": int(frames.shape[1]),
        "frame_width": int(frames.shape[2]),
        "centernet_input": list(centernet.size[::-1]),
        "batch_size": batch_size,
        "repeats": repeats,
        "jax_device": str(jax.devices()[0]),
        "opencv": cv2.__version__,
        "opencv_threads": cv2.getNumThreads(),
        "centernet_model": str(centernet.model_json),
        "centernet_conf_threshold": centernet.conf_threshold,
        "centernet_network_compile_s": round(compile_s, 2),
    }
    out.update({f"{name}_fps": round(batch_size / t, 2) for name, t in seconds.items()})
    out["centernet_over_classic"] = round(out["centernet_bag_fps"] / out["classic_bag_fps"], 3)
    out["frames"] = len(frames)
    out["people_in_view"] = int(in_view.sum())
    out["frames_with_people_in_view"] = int(np.sum(in_view >= 1))
    out["counts"] = {
        "centernet_letterbox": _counts(centernet.bag(frames), bag_detector.COCO_CLASSES, in_view),
        "centernet_stretch": _counts(stretched.bag(frames), bag_detector.COCO_CLASSES, in_view),
        "classic": _counts(classic.bag(frames), classic_detector.CLASSES, in_view),
    }
    out["load_average_1min"] = round(os.getloadavg()[0], 2)
    return out
