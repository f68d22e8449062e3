"""Non-private pretraining of the autoencoder on public images, the starting point of a DP run.

  pretrain(out_dir, height=120, width=160, features=(64, 32, 16), steps=300, ...)

writes an export (``autoencoder_io``) whose ``spec.json`` says it saw only
``public_images.DESCRIPTION``. The DP trainer takes it through
``config.init_from`` and refuses any export that does not say so: starting a
DP run from weights fitted to the private frames would leak them outside the
epsilon. The epsilon of the DP run is unchanged by the initialisation (the
public data is not part of the private dataset), and the DP run's metrics
record where it started.

Cost: a few minutes for the demo's steps on a 2-core CPU (BUILD_NOTES.md has
the figures); the result is reused when the same settings ask again.
"""

import json
import pathlib
import shutil
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm

from ppvad_jax.data import public_images
from ppvad_jax.models import autoencoder, autoencoder_io


def make_step(model, tx):
    """One pure Adam step on the mean squared reconstruction error of a uint8 batch."""

    def loss_fn(params, frames_uint8):
        x = autoencoder.to_unit_range(frames_uint8)
        return jnp.mean((model.apply({"params": params}, x) - x) ** 2)

    @jax.jit
    def step(params, opt_state, frames_uint8):
        loss, grads = jax.value_and_grad(loss_fn)(params, frames_uint8)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def pretrain(out_dir, *, height, width, features, steps, batch_size=8, learning_rate=3e-3, seed=0):
    """Trains on public crops (or reuses ``out_dir`` if it holds the same run); returns its spec."""
    out_dir = pathlib.Path(out_dir)
    if height % autoencoder.DOWNSAMPLE or width % autoencoder.DOWNSAMPLE:
        raise ValueError(
            f"height and width must be multiples of {autoencoder.DOWNSAMPLE}, got {height}x{width}"
        )
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    run = {
        "training_data": public_images.DESCRIPTION,
        "private": False,
        "pretrain_steps": int(steps),
        "pretrain_batch_size": int(batch_size),
        "pretrain_learning_rate": float(learning_rate),
        "pretrain_schedule": "cosine decay to 0",
        "pretrain_seed": int(seed),
    }
    spec_path = out_dir / "spec.json"
    # The frame size is not part of the match: the model is fully convolutional, so one export
    # starts runs at any size (the demo's 120x160 autoencoder and its 72x96 sweep points).
    if spec_path.is_file():
        spec = json.loads(spec_path.read_text())
        if {k: spec.get(k) for k in run} == run and spec["encoder_features"] == list(features):
            return spec
    model = autoencoder.Autoencoder(features=tuple(features))
    # Cosine decay to zero: at a constant 3e-3 the test PSNR swung between 20.5 and 23.4 dB
    # from one 150-step check to the next (measured on demo frames, BUILD_NOTES.md).
    tx = optax.adam(optax.cosine_decay_schedule(learning_rate, steps))
    params = jax.jit(model.init)(jax.random.key(seed), jnp.zeros((1, height, width, 3)))["params"]
    opt_state = tx.init(params)
    step = make_step(model, tx)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    loss = None
    for _ in tqdm.trange(steps, desc="public pretraining", unit="step"):
        params, opt_state, loss = step(
            params, opt_state, public_images.random_crops(rng, batch_size, height, width)
        )
    loss = float(loss)
    if not np.isfinite(loss):
        raise FloatingPointError(f"public pretraining diverged (loss {loss}); lower the learning rate")
    run.update(pretrain_final_loss=loss, pretrain_seconds=round(time.perf_counter() - start, 2))
    # Written beside the target and swapped in whole, so a killed run never leaves half an export.
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    autoencoder_io.export(partial, params, height=height, width=width, features=tuple(features), extra=run)
    shutil.rmtree(out_dir, ignore_errors=True)
    partial.rename(out_dir)
    return json.loads(spec_path.read_text())


def check_public(spec, export_dir):
    """Raises ValueError unless an export's spec says it was trained on public data only."""
    data = str(spec.get("training_data", ""))
    if spec.get("private") is not False or not data.startswith("public"):
        raise ValueError(
            f"{export_dir} does not say it was trained on public data only (training_data={data!r}): "
            "a DP run may start only from weights that never saw the private frames, or the "
            "epsilon would not cover them. Make one with ppvad_jax.training.public_pretrain."
        )
