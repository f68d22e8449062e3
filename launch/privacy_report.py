"""Privacy of one video through an exported autoencoder: faces, re-identification, quality, epsilon.

  python -m launch.privacy_report --ae_workdir=runs/ae --video=runs/demo/world/Arrest/Arrest001_x264.avi \
      [--max_frames=64] [--output_dir=D] [--latent_ldp_noise=S --latent_ldp_bound=C]

Prints one JSON object (frames, faces_original, faces_reconstructed,
face_detection_rate, ssim, psnr, mse, re-identification, the latents' norms,
the latent-DP epsilon when --latent_ldp_noise > 0, the training epsilon from
ae_workdir/metrics.json when that file exists) and writes it with a
side-by-side PNG under --output_dir (default ae_workdir/privacy_report).
What is measured: ``ppvad_jax/pipelines/privacy_report.py``.
"""

import json
import sys

from absl import app, flags

from ppvad_jax.data import errors
from ppvad_jax.evaluation import faces, reidentification
from ppvad_jax.pipelines import privacy_report as report_pipeline
from ppvad_jax.privacy import accounting, latent_ldp

_WORKDIR = flags.DEFINE_string("ae_workdir", None, "Autoencoder workdir (with export/).", required=True)
_VIDEO = flags.DEFINE_string("video", None, "Any video file OpenCV can read.", required=True)
_MAX_FRAMES = flags.DEFINE_integer("max_frames", 64, "Frames to measure (from the start).")
_STRIDE = flags.DEFINE_integer("frame_stride", 1, "Keep every k-th frame.")
_OUTPUT = flags.DEFINE_string("output_dir", None, "Where to write; default ae_workdir/privacy_report.")
_LDP_NOISE = flags.DEFINE_float("latent_ldp_noise", 0.0, "Latent DP noise multiplier sigma; 0 = off.")
_LDP_BOUND = flags.DEFINE_float("latent_ldp_bound", 1.0, "Latent DP L2 bound C (latent units).")
_LDP_DELTA = flags.DEFINE_float("latent_ldp_delta", 1e-5, "Latent DP delta.")
_BACKENDS = flags.DEFINE_list(
    "face_backends", ["centerface", "haar", "lbp"], "Face detectors; the first is the headline."
)
_UPSCALE = flags.DEFINE_float(
    "face_upscale", 2.0, "Enlarge frames before face detection: finds faces under 24 px, at 4x the cost."
)
_REID = flags.DEFINE_list("reid_features", list(reidentification.FEATURES), "Re-id features; empty skips.")
_SEED = flags.DEFINE_integer("seed", 0, "Latent DP noise seed.")


def main(argv):
    del argv
    try:
        ldp = latent_ldp.LatentLdpConfig(
            enabled=_LDP_NOISE.value > 0,
            noise_multiplier=_LDP_NOISE.value,
            l2_bound=_LDP_BOUND.value,
            delta=_LDP_DELTA.value,
        )
        report = report_pipeline.run(
            ae_workdir=_WORKDIR.value,
            video=_VIDEO.value,
            max_frames=_MAX_FRAMES.value,
            frame_stride=_STRIDE.value,
            output_dir=_OUTPUT.value,
            ldp_config=ldp,
            face_backends=tuple(_BACKENDS.value),
            face_config=faces.FaceDetectorConfig(upscale=_UPSCALE.value),
            reid_features=tuple(_REID.value),
            seed=_SEED.value,
        )
    except (FileNotFoundError, errors.DataError, ValueError) as e:
        sys.exit(f"error: {e}")
    print(json.dumps(accounting.json_safe(report), indent=2))


if __name__ == "__main__":
    app.run(main)
