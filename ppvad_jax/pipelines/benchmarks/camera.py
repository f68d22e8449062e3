"""What the camera runs, timed: encoder alone, with face redaction (each method), per frame.

Frames are real photographs with a face (skimage's astronaut and camera man, matplotlib's
Grace Hopper) at the export's size; every call is one frame, as a camera encodes. Timings are
interleaved medians (``timing.interleaved_median_seconds``); ``ratio`` is each case over the
encoder alone, measured in the same run, which is what survives a noisy machine.
"""

import os
import platform

from ppvad_jax.data import face_photos
from ppvad_jax.models import face_redaction
from ppvad_jax.pipelines.benchmarks import timing
from ppvad_jax.serving import camera_encoder


def run(export_dir, *, repeats=20, upscale=2.0):
    plain = camera_encoder.CameraEncoder(export_dir)
    frames = face_photos.photos(plain.size)
    cases = {"encoder": plain}
    for method in face_redaction.METHODS:
        redactor = face_redaction.FaceRedactor(method, upscale=upscale)
        cases[f"redact_{method}"] = camera_encoder.CameraEncoder(export_dir, redactor=redactor)

    def call(encoder):
        return lambda: [encoder.latent(f, frame_index=i) for i, f in enumerate(frames)]

    seconds = timing.interleaved_median_seconds({k: call(v) for k, v in cases.items()}, repeats)
    per_frame = {k: v / len(frames) for k, v in seconds.items()}
    return {
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
        "frame_shape": list(plain.frame_shape),
        "redaction_upscale": upscale,
        "ms_per_frame": {k: round(1000 * v, 2) for k, v in per_frame.items()},
        "frames_per_s": {k: round(1 / v, 1) for k, v in per_frame.items()},
        "ratio_to_encoder": {k: round(v / per_frame["encoder"], 2) for k, v in per_frame.items()},
        "faces_redacted_per_frame": {
            k: v.faces_redacted / ((repeats + 1) * len(frames)) for k, v in cases.items() if v.redactor
        },
    }
