"""What the server can still see: one video through an exported autoencoder, measured.

``run(...)`` (called by ``launch.privacy_report``) reads any video OpenCV can
decode, resizes its frames to the autoencoder's input (``export/spec.json``),
encodes them with the camera half, optionally privatises each latent
(``privacy.latent_ldp``), decodes with the server half, and reports:

- image quality of the reconstructions (MSE, PSNR, SSIM: paper section 5.1.1);
- faces found on originals vs reconstructions (``evaluation.faces``; the
  paper's section 5.2.2 experiment, with the cascades standing in for DeepFace);
- re-identification of real faces (``evaluation.reidentification``: the LFW
  crops and the astronaut, tiled into frames of the autoencoder's size and sent
  through the same camera -> server path);
- the latents' L2 norms (to choose the latent-DP bound) and, when latent DP is
  on, its per-frame epsilon;
- the autoencoder's training epsilon as ``launch.train_autoencoder`` wrote it
  in ``workdir/metrics.json`` (copied, never recomputed; absent if the file is).

Outputs under ``output_dir``: ``privacy_report.json`` and
``faces_side_by_side.png`` (original | reconstruction, faces boxed: orange
CenterFace, green Haar, magenta LBP). The headline is CenterFace, the strong
detector (``models.centerface``); the cascades stay as the weak, paper-era
references. The pieces (reading the export and the video, the camera -> server
path, the picture) are ``evaluation.privacy_report``. Face detection dominates
the cost: three detectors on two copies of every frame, most of it the LBP
cascade (``face_backends=("centerface", "haar")`` drops it); BUILD_NOTES.md has
the measured seconds per frame.
"""

import json
import pathlib

import cv2
import jax
import jax.numpy as jnp
import numpy as np

from ppvad_jax.evaluation import faces, image_quality, reidentification
from ppvad_jax.evaluation import privacy_report as pieces
from ppvad_jax.privacy import accounting, latent_ldp


def _face_fields(counts, face_backends, face_config):
    """The headline backend's face counts, then every backend's, then the detector settings."""
    by_backend = {name: c.summary() for name, c in counts.items()}
    headline = by_backend[face_backends[0]]
    return {
        "faces_original": headline["faces_original"],
        "faces_reconstructed": headline["faces_reconstructed"],
        "faces_matched": headline["faces_matched"],
        "face_detection_rate": headline["detection_rate"],
        "matched_face_detection_rate": headline["matched_detection_rate"],
        "face_backend": face_backends[0],
        "faces_by_backend": by_backend,
        "face_detector": {"upscale": face_config.upscale, "min_size": face_config.min_size},
    }


def _quality_fields(quality, norms):
    return {
        "mse": quality["mse"],
        "psnr": quality["psnr"],
        "ssim": quality["ssim"],
        "nonfinite_quality_frames": quality["ssim_nonfinite"],
        "latent_l2_norm": {
            "p10": float(np.percentile(norms, 10)),
            "median": float(np.median(norms)),
            "p90": float(np.percentile(norms, 90)),
        },
    }


def _latent_ldp_fields(ldp_config, norms):
    if not ldp_config.enabled:
        return {"enabled": False}
    out = latent_ldp.epsilon(ldp_config)
    out["clipped_fraction"] = float(np.mean(norms > ldp_config.l2_bound))
    return out


def _reidentification(reconstruct, reid_features, frame_shape, batch_size):
    """Top-1 re-identification of the gallery's faces sent through ``reconstruct``, per feature space."""
    identities = reidentification.identity_set()
    probes = reidentification.crops_through(
        lambda f: pieces.reconstruct_all(reconstruct, f, batch_size=batch_size)[0],
        identities.probes,
        frame_shape,
    )
    return {
        "gallery": f"{identities.num_identities} identities (lfw_subset faces + astronaut), "
        "3 augmented views each; probes through the same camera -> server path",
        **{f: reidentification.attack(identities, probes, feature=f) for f in reid_features},
    }


def _write(report, out_dir, picture):
    """The side-by-side PNG and the report's JSON under ``out_dir``; their paths go into ``report``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / "faces_side_by_side.png"
    if not cv2.imwrite(str(png), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {png}")
    report["side_by_side_png"] = str(png)
    report["report_json"] = str(out_dir / "privacy_report.json")
    (out_dir / "privacy_report.json").write_text(json.dumps(accounting.json_safe(report), indent=2))


def run(
    *,
    ae_workdir,
    video,
    max_frames=64,
    frame_stride=1,
    output_dir=None,
    ldp_config=None,
    face_backends=("centerface", "haar", "lbp"),
    face_config=None,
    reid_features=reidentification.FEATURES,
    batch_size=8,
    seed=0,
):
    """Measures one video (module docstring); returns the report dict, also written as JSON.

    Args:
      output_dir: where the JSON and PNG go; None: ``ae_workdir/privacy_report``.
      ldp_config: a ``latent_ldp.LatentLdpConfig``; None: off.
      face_config: a ``faces.FaceDetectorConfig``; None: its defaults.
      reid_features: re-identification feature spaces to attack in; () skips it.
    """
    if not face_backends:
        raise ValueError("face_backends is empty: name at least one (the first is the headline)")
    ldp_config = ldp_config or latent_ldp.LatentLdpConfig()
    face_config = face_config or faces.FaceDetectorConfig()
    height, width = pieces.export_spec(ae_workdir)["frame_shape"][:2]
    # The video before the model: a bad file is reported without waiting for the model to load.
    size = (height, width)
    originals = pieces.read_video(video, size=size, max_frames=max_frames, frame_stride=frame_stride)
    encode_fn, decode_fn, _ = pieces.load_autoencoder(ae_workdir)
    reconstruct = pieces.make_path(encode_fn, decode_fn, ldp_config, jax.random.key(seed))
    recon, norms = pieces.reconstruct_all(reconstruct, originals, batch_size=batch_size)
    quality = image_quality.summarize(
        image_quality.per_frame(jnp.asarray(originals, jnp.float32) / 255.0, jnp.asarray(recon))
    )
    counts = faces.count_faces(originals, recon, backends=face_backends, config=face_config)
    report = {
        "video": str(video),
        "ae_workdir": str(ae_workdir),
        "frames": int(len(originals)),
        "frame_shape": [int(height), int(width), 3],
        "frame_stride": frame_stride,
        **_face_fields(counts, face_backends, face_config),
        **_quality_fields(quality, norms),
        "latent_ldp": _latent_ldp_fields(ldp_config, norms),
        "autoencoder_training_privacy": pieces.training_privacy(ae_workdir),
    }
    if reid_features:
        report["reidentification"] = _reidentification(
            reconstruct, reid_features, (height, width, 3), batch_size
        )
    out_dir = pathlib.Path(output_dir) if output_dir else pathlib.Path(ae_workdir) / "privacy_report"
    _write(report, out_dir, pieces.side_by_side(originals, recon, counts))
    return report
