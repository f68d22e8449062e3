"""Frame privacy per camera mechanism: the strong attackers of ``evaluation.face_attacks``.

  python -m launch.frame_privacy --ae_workdir=runs/demo/autoencoder_dpadam \
      --mechanisms=clear,blur6,ae,redact_fill+ae,ldp1.0+ae

A mechanism is what the camera does before the server sees the frame, written as ``+``-joined
steps (in any order: the camera runs redaction, then blur, then the autoencoder): ``clear``
(nothing: the reference), ``blur<sigma>`` (a Gaussian blur of the whole frame, no autoencoder:
the naive anonymiser), ``redact_<method>[@margin]`` (face redaction at the camera,
``models.face_redaction``; its default margin unless given), ``ldp<sigma>`` (latent local DP,
noise multiplier sigma, on the autoencoder's latent; only with ``ae``), ``ae`` (the exported
autoencoder: encode at the camera, decode at the server). Each row reports the attacks, the
latent-LDP epsilon per frame where there is one (``privacy.latent_ldp``: the frame's content,
unit one frame) and, separately, the autoencoder's training epsilon (DP-SGD: membership of
*training* frames; it says nothing about these frames).
"""

import dataclasses
import json
import pathlib
import re
from collections.abc import Callable
from typing import NamedTuple

import cv2
import jax
import numpy as np

from ppvad_jax.evaluation import face_attacks
from ppvad_jax.evaluation import privacy_report as pieces
from ppvad_jax.models import face_redaction
from ppvad_jax.privacy import accounting, latent_ldp

_STEP = re.compile(
    r"^(clear|ae|blur(?P<blur>[0-9.]+)|redact_(?P<redact>[a-z]+)(@(?P<margin>[0-9.]+))?|ldp(?P<ldp>[0-9.]+))$"
)
_STEPS = "clear, ae, blurS, redact_M[@margin], ldpS"


@dataclasses.dataclass(frozen=True)
class Mechanism:
    name: str
    blur: float | None = None
    redact: str | None = None
    margin: float | None = None  # of the redacted box's side, each side; None: FaceRedactor's default
    ldp: float | None = None
    ae: bool = False

    @property
    def redaction_spec(self):
        """``models.face_redaction.from_spec``'s "method[@margin]", "" without redaction."""
        if not self.redact:
            return ""
        return self.redact if self.margin is None else f"{self.redact}@{self.margin:g}"

    @property
    def trains_classifier(self):
        """Whether a classifier can be trained on what it sends (``config.camera_redaction`` and
        an autoencoder reproduce it; a blur or latent noise are not classifier inputs here)."""
        return self.ae and self.ldp is None and self.blur is None


class CameraPath(NamedTuple):
    path: Callable  # uint8 frames -> what the server sees, uint8
    ldp: latent_ldp.LatentLdpConfig
    redactor: face_redaction.FaceRedactor | None


def parse(name) -> Mechanism:
    """``Mechanism`` of a name (module docstring); ValueError naming the bad step."""
    fields = {"name": name}
    for step in name.split("+"):
        m = _STEP.match(step)
        if m is None:
            raise ValueError(f"unknown step {step!r} in mechanism {name!r}: {_STEPS}")
        if m["blur"]:
            fields["blur"] = float(m["blur"])
        elif m["redact"]:
            if m["redact"] not in face_redaction.METHODS:
                raise ValueError(f"redaction {m['redact']!r} in {name!r}: one of {face_redaction.METHODS}")
            fields["redact"] = m["redact"]
            if m["margin"]:
                fields["margin"] = float(m["margin"])
        elif m["ldp"]:
            fields["ldp"] = float(m["ldp"])
        elif step == "ae":
            fields["ae"] = True
    mech = Mechanism(**fields)
    if mech.ldp is not None and not mech.ae:
        raise ValueError(f"{name!r}: ldp needs the autoencoder's latent (add +ae)")
    if name != "clear" and "clear" in name.split("+"):
        raise ValueError(f"{name!r}: clear is a mechanism of its own")
    return mech


def camera_path(mech: Mechanism, autoencoder, *, l2_bound, seed, batch_size=8) -> CameraPath:
    """The mechanism's ``CameraPath``: its path, latent-LDP config and redactor."""
    ldp = latent_ldp.LatentLdpConfig(
        enabled=mech.ldp is not None, noise_multiplier=mech.ldp or 0.0, l2_bound=l2_bound
    )
    redactor = face_redaction.from_spec(mech.redaction_spec)
    reconstruct = pieces.make_path(*autoencoder[:2], ldp, jax.random.key(seed)) if mech.ae else None

    def path(frames):
        out = np.stack([redactor.redact(f)[0] for f in frames]) if redactor else frames
        if mech.blur:
            out = np.stack([cv2.GaussianBlur(f, (0, 0), mech.blur) for f in out])
        if reconstruct is not None:
            recon, _ = pieces.reconstruct_all(reconstruct, out, batch_size=batch_size)
            out = np.round(np.clip(recon, 0, 1) * 255).astype(np.uint8)
        return out

    return CameraPath(path, ldp, redactor)


def median_latent_norm(autoencoder, frames, batch_size=8):
    """The latents' median L2 norm on ``frames``: the LDP bound C when none is given."""
    reconstruct = pieces.make_path(*autoencoder[:2], latent_ldp.LatentLdpConfig(), jax.random.key(0))
    return float(np.median(pieces.reconstruct_all(reconstruct, frames, batch_size=batch_size)[1]))


def run(
    *, ae_workdir, mechanisms, views=5, gallery_views=2, seed=0, l2_bound=None, output_dir=None, persons=None
):
    """One row per mechanism (module docstring), written to ``output_dir/frame_privacy.json``.

    ``persons``: ``face_attacks.Person`` list; None: ``face_attacks.people()`` (all 24).
    """
    mechs = [parse(m) for m in mechanisms]  # a bad name fails before anything loads
    size = tuple(pieces.export_spec(ae_workdir)["frame_shape"][:2])
    autoencoder = pieces.load_autoencoder(ae_workdir) if any(m.ae for m in mechs) else None
    attackers = face_attacks.Attackers.build(
        size=size, views=views, gallery_views=gallery_views, seed=seed, persons=persons
    )
    if l2_bound is None and autoencoder is not None:
        l2_bound = median_latent_norm(autoencoder, attackers.sightings.frames)
    rows = []
    for i, mech in enumerate(mechs):
        path, ldp, redactor = camera_path(mech, autoencoder, l2_bound=l2_bound or 1.0, seed=seed * 1000 + i)
        row = {"mechanism": mech.name, **attackers.evaluate(path)}
        row["latent_ldp_epsilon"] = latent_ldp.epsilon(ldp)["epsilon_pld"] if ldp.enabled else None
        if redactor is not None:  # a miss leaks: how many real faces the camera's redaction covers
            row["redaction_recall"] = face_attacks.redaction_recall(redactor.redact, sizes=(size,))
        rows.append(row)
    report = {
        "ae_workdir": str(ae_workdir),
        "frame_shape": [*size, 3],
        "latent_ldp_l2_bound": l2_bound,
        "autoencoder_training_privacy": pieces.training_privacy(ae_workdir),
        "guarantees": GUARANTEES,
        "rows": rows,
    }
    out = pathlib.Path(output_dir) if output_dir else pathlib.Path(ae_workdir) / "frame_privacy"
    out.mkdir(parents=True, exist_ok=True)
    (out / "frame_privacy.json").write_text(json.dumps(accounting.json_safe(report), indent=2))
    (out / "frame_privacy.md").write_text(markdown(report))
    return report


GUARANTEES = {
    "training_epsilon": "DP-SGD accountant: membership of one training frame; not these frames",
    "latent_ldp_epsilon": "Gaussian mechanism on one frame's latent: that frame's content, per frame",
    "attacks": "empirical: what CenterFace and dlib (naive, adaptive, linking) recover; no bound",
}


def _recall_cell(recall):
    if not recall:
        return "-"
    (got,) = recall.values()
    return f"{got['covered']}/{got['faces']} ({got['pixels_redacted']:.0%} of pixels)"


def markdown(report) -> str:
    head = (
        "| mechanism | CenterFace rate | naive top-1 | adaptive top-1 | adaptive AUC | linking top-1 "
        "| background control top-1 | latent-LDP epsilon | redaction recall, group photos |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| {r['mechanism']} | {r['detection_rate']:.2f} | {r['naive']['top1']:.2f} | "
        f"{r['adaptive']['top1']:.2f} | {r['adaptive']['roc_auc']:.2f} | {r['linking']['top1']:.2f} | "
        f"{r['background_control']['top1']:.2f} | "
        f"{'-' if r['latent_ldp_epsilon'] is None else format(r['latent_ldp_epsilon'], '.3g')} | "
        f"{_recall_cell(r.get('redaction_recall'))} |"
        for r in report["rows"]
    ]
    rows = report["rows"]
    chance = f"chance top-1 {rows[0]['chance_top1']:.3f} ({rows[0]['people']} people)" if rows else ""
    return head + "\n".join(lines) + f"\n\n{chance}; {report['frame_shape'][0]}x{report['frame_shape'][1]}.\n"
