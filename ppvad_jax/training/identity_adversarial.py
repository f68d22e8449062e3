"""Identity-adversarial fine-tuning of a trained autoencoder, on public data only.

The idea of Wu et al. (TPAMI 2020) and TeD-SPAD (ICCV 2023): train the camera's model against an
adversary that tries to recognise people from what the server sees, so that identity does not
survive while the scene does. Here it is a post-processing stage of an exported autoencoder
(DP-trained or not), both halves updated, on public data only:

- **scene:** the reconstruction error on crops of the public images (``data.public_images``);
- **faces:** the 100 LFW crops of scikit-image (``reidentification.lfw_faces``: public, and not
  the evaluation's 24 people of ``evaluation.face_attacks``), grey, upscaled to a third of the
  frame height and pasted on public crops; the error outside the face box keeps the scene
  around a face, and the adversary's confusion on the face box removes identity:
  ``loss = mse(scene) + mse(around faces) + weight * (log 100 - entropy(adversary(face box)))``
  ``+ erase_weight * mse(face box, the box's mean colour)`` (erasure: the encoder learns to
  drop what it sees of a face, as the camera's fill redaction does by hand);
- **adversary:** a small CNN that names which of the 100 faces a reconstructed box shows, trained
  in alternation with plain Adam and restarted from scratch every ``restart_every`` steps (a
  decoder that fools one fixed adversary has often found its blind spot, not removed identity).

Privacy accounting: nothing private is read, so the result is a post-processing of the source
model: its DP epsilon (membership of the training frames) holds unchanged and is copied into
the new metrics.json with the source named. What this stage buys is measured, not bounded:
``launch.frame_privacy`` on the new export (BUILD_NOTES.md).
"""

import json
import pathlib
import shutil
import time

import cv2
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm

from ppvad_jax.data import public_images
from ppvad_jax.evaluation import privacy_report, reidentification
from ppvad_jax.models import autoencoder, autoencoder_io

PATCH = 32  # the adversary's input side
FACE_FRACTION = 1 / 3  # pasted face side / frame height


class Adversary(nn.Module):
    """Which of ``classes`` faces a [N, 32, 32, 3] patch shows (logits)."""

    classes: int

    @nn.compact
    def __call__(self, x):
        for features in (32, 64, 128):
            x = nn.relu(nn.Conv(features, (3, 3), strides=(2, 2))(x))
        return nn.Dense(self.classes)(x.mean(axis=(1, 2)))


def face_batch(rng, faces, count, height, width, *, tint=False):
    """``(frames uint8 [B, H, W, 3], labels [B], corners [B, 2])``: a face on a public crop each.

    ``tint``: each grey face multiplied by a random skin-like colour (R > G > B), so that what is
    learnt on LFW's grey crops meets colour faces.
    """
    side = int(round(FACE_FRACTION * height))
    frames = public_images.random_crops(rng, count, height, width)
    labels = rng.integers(0, len(faces), count)
    corners = np.stack(
        [rng.integers(0, height - side + 1, count), rng.integers(0, width - side + 1, count)], axis=1
    )
    for frame, label, (y, x) in zip(frames, labels, corners, strict=True):
        face = cv2.resize(faces[label], (side, side), interpolation=cv2.INTER_LINEAR)[..., None]
        if tint:
            face = np.clip(face * rng.uniform([0.9, 0.65, 0.5], [1.1, 0.9, 0.8]).astype(np.float32), 0, 1)
        frame[y : y + side, x : x + side] = np.round(face * 255).astype(np.uint8)
    return frames, labels, corners


def _patches(images, corners, side):
    """The face boxes of ``images`` [B, H, W, 3] at ``corners``, resized to PATCH x PATCH."""

    def crop(image, corner):
        return jax.lax.dynamic_slice(image, (corner[0], corner[1], 0), (side, side, 3))

    boxes = jax.vmap(crop)(images, corners)
    return jax.image.resize(boxes, (len(images), PATCH, PATCH, 3), "linear")


def _box_mask(shape, corners, side):
    """[B, H, W] 1 inside each face box."""
    rows, cols = jnp.arange(shape[0])[None, :, None], jnp.arange(shape[1])[None, None, :]
    y0, x0 = corners[:, 0][:, None, None], corners[:, 1][:, None, None]
    return ((rows >= y0) & (rows < y0 + side) & (cols >= x0) & (cols < x0 + side)).astype(jnp.float32)


def make_steps(model, adversary, ae_tx, adv_tx, *, side, weight, classes, erase_weight=0.0):
    """The two jitted steps: the adversary's (cross-entropy) and the autoencoder's (module docstring)."""

    def adversary_loss(adv_params, patches, labels):
        logits = adversary.apply({"params": adv_params}, patches)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), logits

    @jax.jit
    def adversary_step(adv_params, adv_opt, ae_params, frames, labels, corners):
        recon = model.apply({"params": ae_params}, autoencoder.to_unit_range(frames))
        patches = _patches(jax.lax.stop_gradient(recon), corners, side)
        (loss, logits), grads = jax.value_and_grad(adversary_loss, has_aux=True)(adv_params, patches, labels)
        updates, adv_opt = adv_tx.update(grads, adv_opt, adv_params)
        accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
        return optax.apply_updates(adv_params, updates), adv_opt, loss, accuracy

    def ae_loss(ae_params, adv_params, scene, frames, corners):
        x_scene, x_faces = autoencoder.to_unit_range(scene), autoencoder.to_unit_range(frames)
        scene_mse = jnp.mean((model.apply({"params": ae_params}, x_scene) - x_scene) ** 2)
        recon = model.apply({"params": ae_params}, x_faces)
        outside = 1.0 - _box_mask(x_faces.shape[1:3], corners, side)
        around = jnp.sum(((recon - x_faces) ** 2).mean(-1) * outside) / jnp.maximum(outside.sum(), 1.0)
        probs = jax.nn.softmax(adversary.apply({"params": adv_params}, _patches(recon, corners, side)))
        entropy = -jnp.sum(probs * jnp.log(probs + 1e-12), axis=-1).mean()
        confusion = jnp.log(classes) - entropy  # 0 when the adversary can only guess
        # Erasure: inside the box the target is the box's mean colour (what redaction's fill
        # sends), so the encoder itself learns to drop the face.
        box = _box_mask(x_faces.shape[1:3], corners, side)[..., None]
        fill = (x_faces * box).sum(axis=(1, 2), keepdims=True) / (side * side)
        erase = jnp.sum(((recon - fill) ** 2) * box) / (box.sum() * 3)
        loss = scene_mse + around + weight * confusion + erase_weight * erase
        return loss, (scene_mse, around, confusion)

    @jax.jit
    def ae_step(ae_params, ae_opt, adv_params, scene, frames, corners):
        value_and_grad = jax.value_and_grad(ae_loss, has_aux=True)
        (loss, parts), grads = value_and_grad(ae_params, adv_params, scene, frames, corners)
        updates, ae_opt = ae_tx.update(grads, ae_opt, ae_params)
        return optax.apply_updates(ae_params, updates), ae_opt, loss, parts

    return adversary_step, ae_step


def finetune(source_workdir, out_workdir, *, steps, weight=1.0, batch_size=8, learning_rate=3e-4,
             restart_every=100, adversary_steps=1, erase_weight=0.0, tint=False, seed=0):  # fmt: skip
    """Fine-tunes ``source_workdir/export`` (module docstring) into ``out_workdir``; returns metrics.

    ``out_workdir`` gets ``export/`` and ``metrics.json``: the source's metrics (its epsilon:
    this stage is post-processing on public data) plus ``identity_adversarial``, what was done
    and the adversary's accuracy on the reconstructions before and after.
    """
    source, out = pathlib.Path(source_workdir), pathlib.Path(out_workdir)
    if min(steps, restart_every, adversary_steps) < 1:
        raise ValueError(
            f"steps and restart_every and adversary_steps must be >= 1, got {steps}, {restart_every}, "
            f"{adversary_steps}"
        )
    params, spec = autoencoder_io.load_params(source / "export")
    # Read with the weights, not at the end: a source retrained meanwhile must not lend its epsilon.
    metrics_path = source / "metrics.json"
    source_metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else None
    height, width = spec["frame_shape"][:2]
    features = tuple(spec["encoder_features"])
    faces = reidentification.lfw_faces()
    model, adversary = autoencoder.Autoencoder(features=features), Adversary(classes=len(faces))
    side = int(round(FACE_FRACTION * height))
    ae_tx, adv_tx = optax.adam(learning_rate), optax.adam(1e-3)
    adversary_step, ae_step = make_steps(model, adversary, ae_tx, adv_tx, side=side, weight=weight,
                                         classes=len(faces), erase_weight=erase_weight)  # fmt: skip
    rng = np.random.default_rng(seed)
    init_adv = jax.jit(lambda key: adversary.init(key, jnp.zeros((1, PATCH, PATCH, 3)))["params"])
    ae_opt = ae_tx.init(params)
    before = _adversary_accuracy(adversary_step, init_adv, adv_tx, params, faces, rng, height, width, seed)
    start, history = time.perf_counter(), []
    for step in tqdm.trange(steps, desc="identity-adversarial fine-tuning", unit="step"):
        if step % restart_every == 0:  # a fresh adversary (module docstring)
            adv_params = init_adv(jax.random.key(seed * 7919 + step))
            adv_opt = adv_tx.init(adv_params)
        for _ in range(adversary_steps):  # a stronger adversary per autoencoder step, at its cost
            frames, labels, corners = face_batch(rng, faces, batch_size, height, width, tint=tint)
            adv_params, adv_opt, _, acc = adversary_step(adv_params, adv_opt, params, frames, labels, corners)
        scene = public_images.random_crops(rng, batch_size, height, width)
        params, ae_opt, loss, parts = ae_step(params, ae_opt, adv_params, scene, frames, corners)
        history.append([float(loss), *map(float, parts), float(acc)])
    if not np.isfinite(history[-1][0]):
        raise FloatingPointError(f"identity-adversarial fine-tuning diverged (loss {history[-1][0]})")
    after = _adversary_accuracy(adversary_step, init_adv, adv_tx, params, faces, rng, height, width, seed)
    settings = {"steps": steps, "weight": weight, "batch_size": batch_size, "learning_rate": learning_rate,
                "restart_every": restart_every, "adversary_steps": adversary_steps,
                "erase_weight": erase_weight, "tint": tint, "seed": seed}  # fmt: skip
    record = {
        **settings,
        "source": str(source),
        "training_data": "public only: " + public_images.DESCRIPTION + "; scikit-image lfw_subset faces",
        "fresh_adversary_accuracy_before": before,
        "fresh_adversary_accuracy_after": after,
        "chance": 1 / len(faces),
        "final_scene_mse": history[-1][1],
        "final_confusion": history[-1][3],
        "seconds": round(time.perf_counter() - start, 2),
        "privacy": "post-processing of the source on public data: the source's epsilon holds unchanged",
    }
    _write(out, params, spec, record, source_metrics, metrics_path)
    return json.loads((out / "metrics.json").read_text())


def _adversary_accuracy(adversary_step, init_adv, adv_tx, params, faces, rng, height, width, seed, steps=300):
    """A fresh adversary trained ``steps`` on the model's reconstructions, then scored on new ones."""
    adv_params = init_adv(jax.random.key(seed + 104729))
    adv_opt = adv_tx.init(adv_params)
    for _ in range(steps):
        frames, labels, corners = face_batch(rng, faces, 16, height, width)
        adv_params, adv_opt, _, _ = adversary_step(adv_params, adv_opt, params, frames, labels, corners)
    accs = []
    for _ in range(8):
        frames, labels, corners = face_batch(rng, faces, 16, height, width)
        accs.append(float(adversary_step(adv_params, adv_opt, params, frames, labels, corners)[3]))
    return float(np.mean(accs))


def _write(out, params, spec, record, source_metrics, metrics_path):
    """The export and metrics.json, written beside ``out`` and swapped in whole."""
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    extra = {
        k: v
        for k, v in spec.items()
        if k not in ("frame_shape", "latent_shape", "encoder_features", "frame_range")
    }
    extra["identity_adversarial"] = record
    height, width = spec["frame_shape"][:2]
    autoencoder_io.export(partial / "export", params, height=height, width=width,
                          features=tuple(spec["encoder_features"]), extra=extra)  # fmt: skip
    # The source's privacy fields only (its epsilon holds: post-processing); its quality numbers
    # were measured on another model and are not copied.
    source_metrics = source_metrics or {}
    metrics = {k: source_metrics[k] for k in privacy_report.TRAINING_PRIVACY_KEYS if k in source_metrics}
    metrics.update(privacy_of=str(metrics_path) if source_metrics else None, identity_adversarial=record)
    (partial / "metrics.json").write_text(json.dumps(metrics, indent=2))
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
