"""Trains the paper's autoencoder, privately (DP-SGD / DP-Adam / DP-Adagrad) or not (Adam).

``train_and_evaluate(config, workdir)`` runs everything: data, mesh, jitted
step, orbax checkpoints (a killed run resumes to the same result), the paper's
stop rules, evaluation and the outputs:

- ``workdir/metrics.json``: test MSE / PSNR / SSIM, epsilon (RDP and PLD) with
  delta, sampling rate, steps, noise multiplier, unit of privacy;
- ``workdir/reconstructions.png``: originals above reconstructions;
- ``workdir/export/{encoder,decoder}.msgpack``: the two halves, for the camera
  and the server (``models.autoencoder_io``);
- ``workdir/tensorboard``: TensorBoard event files.
"""

import concurrent.futures
import dataclasses
import json
import math
import pathlib
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
import tqdm
from absl import logging
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from ppvad_jax.data import autoencoder_data, contact_sheet
from ppvad_jax.evaluation import image_quality
from ppvad_jax.models import autoencoder, autoencoder_io, per_example
from ppvad_jax.privacy import accounting, batch_selection, clipping, run_secret
from ppvad_jax.privacy import plan as dp_plan
from ppvad_jax.training import audit_canaries, common, optimizers, public_pretrain, run_spec, sharded_step

# --- Losses and steps -------------------------------------------------------------------------


def make_batch_losses(model):
    """Per-unit losses of a batch of units at once ([B, H, W, 3] frames or [B, F, H, W, 3] clips)."""

    def batch_losses(params, units_uint8):
        frames = autoencoder.to_unit_range(units_uint8)
        clip = frames.ndim == 5
        rows = frames.reshape(-1, *frames.shape[-3:]) if clip else frames
        per_row = jnp.mean(jnp.square(model.apply({"params": params}, rows) - rows), axis=(1, 2, 3))
        return per_row.reshape(frames.shape[0], -1).mean(axis=1) if clip else per_row

    return batch_losses


def _dp_grads_fn(plan, unit_grads_fn, microbatch_size):
    """The private gradient: the plan's clipped sum, one noise draw per step, / the expected batch."""

    def dp_grads(params, batch, is_padding, step, noise_multiplier, noise_key):
        grads, clip = plan.noisy_gradient(
            unit_grads_fn,
            params,
            batch,
            is_padding,
            jax.random.fold_in(noise_key, step),  # replicated: the same noise on every device
            noise_multiplier=noise_multiplier,
            microbatch_size=microbatch_size,
        )
        metrics = {
            "loss": clip.loss_sum / jnp.maximum(clip.num_examples - clip.num_nonfinite, 1),
            "units": clip.num_examples,
            "clipped_fraction": clip.num_clipped / jnp.maximum(clip.num_examples, 1),
            "nonfinite": clip.num_nonfinite,
        }
        return grads, metrics

    return dp_grads


def _plain_grads_fn(batch_losses, plain_method, rows_per_unit):
    """The non-private gradient of the mean loss over real, finite units."""

    def plain_grads(params, batch, is_padding, step, noise_multiplier, noise_key):
        del step, noise_multiplier, noise_key
        keep = jnp.logical_not(is_padding)
        if plain_method == "layerwise":  # the same per-layer contraction as DP, summed unclipped
            per_unit, losses = per_example.per_example_grads(
                batch_losses, params, batch, rows_per_example=rows_per_unit
            )
            finite = jnp.logical_and(keep, jnp.isfinite(losses))
            count = jnp.maximum(finite.sum(), 1)
            weights = jnp.where(finite, 1.0 / count, 0.0)

            def weighted_sum(g):  # where() first: a NaN unit times weight 0 is still NaN
                mask = finite.reshape((-1,) + (1,) * (g.ndim - 1))
                return jnp.tensordot(weights, jnp.where(mask, g, 0.0), axes=1)

            grads = jax.tree.map(weighted_sum, per_unit)
            loss = common.masked_mean(losses, finite)
        else:

            def mean_loss(p):
                losses = batch_losses(p, batch)
                finite = jnp.logical_and(keep, jnp.isfinite(losses))
                return common.masked_mean(losses, finite), finite

            (loss, finite), grads = jax.value_and_grad(mean_loss, has_aux=True)(params)
        metrics = {
            "loss": loss,
            "units": keep.sum(),
            "clipped_fraction": jnp.float32(0),
            "nonfinite": jnp.logical_and(keep, jnp.logical_not(finite)).sum(),
        }
        return grads, metrics

    return plain_grads


def make_train_step(model, tx, config, *, private, plan, noise_key, mesh):
    """The jitted ``train_step(state, batch, is_padding) -> (state, metrics)``.

    ``plan``: the run's ``privacy.plan.DpPlan`` (None when not private). The metrics include
    statistics of the batch (loss, real units, clipped fraction, non-finite units): private
    data, which the loop publishes only for non-private runs.
    """
    step_fn = make_step_fn(model, tx, config, private=private, plan=plan)

    def train_step(state, batch, is_padding, noise_multiplier):
        return step_fn(state, batch, is_padding, noise_multiplier, noise_key)

    return sharded_step.jit_train_step(train_step, mesh, config.dp.noise_multiplier)


def make_step_fn(model, tx, config, *, private, plan):
    """The pure, unjitted ``step(state, batch, is_padding, noise_multiplier, noise_key)``: what
    ``make_train_step`` jits for one run and ``training.vectorized`` vmaps over several."""
    if config.grad_method not in ("layerwise", "autodiff"):
        raise ValueError(f"grad_method must be 'layerwise' or 'autodiff', got {config.grad_method!r}")
    layerwise = config.grad_method == "layerwise"
    plain_method = config.get("plain_grad_method", "autodiff")
    if plain_method not in ("layerwise", "autodiff"):
        raise ValueError(f"plain_grad_method must be 'layerwise' or 'autodiff', got {plain_method!r}")
    if private and plan is None:
        raise ValueError("a private step needs its DpPlan")
    # vmap(grad) over a sharded batch: XLA (jax/jaxlib 0.10.2, CPU) computes wrong per-example
    # kernel gradients for lax.conv_general_dilated (tests/repro_vmap_sharded_conv.py, ~100%
    # error). The autoencoder never differentiates a lax convolution with respect to its kernel:
    # tap_conv's and phase_conv_transpose's kernel gradients are matrix products, and the 8-device
    # check (tests/multidevice_dp_check.py) confirms autodiff DP agrees with 1 device. A model
    # that used lax convolutions would need that check rerun before trusting autodiff here.
    batch_losses = make_batch_losses(model)
    rows_per_unit = config.dp.frames_per_video if config.dp.unit == "video" else 1
    if layerwise:
        unit_grads_fn = per_example.layerwise_grads_fn(batch_losses, rows_per_unit)
    else:
        unit_grads_fn = clipping.vmap_grads_fn(lambda params, unit: batch_losses(params, unit[None])[0])

    if private:
        grads_fn = _dp_grads_fn(plan, unit_grads_fn, config.dp.microbatch_size)
    else:
        grads_fn = _plain_grads_fn(batch_losses, plain_method, rows_per_unit)

    def step_fn(state, batch, is_padding, noise_multiplier, noise_key):
        grads, metrics = grads_fn(state.params, batch, is_padding, state.step, noise_multiplier, noise_key)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics["grad_norm"] = optax.tree.norm(grads)
        return common.TrainState(state.step + 1, params, opt_state), metrics

    return step_fn


def make_eval_step(model, mesh):
    """``eval_step(params, frames uint8 [B, H, W, 3]) -> (per-frame metrics, reconstructions)``."""

    def eval_step(params, frames_uint8):
        frames = autoencoder.to_unit_range(frames_uint8)
        recon = model.apply({"params": params}, frames)
        return image_quality.per_frame(frames, recon), recon

    replicated = NamedSharding(mesh, P())
    data = NamedSharding(mesh, P("data"))
    return jax.jit(eval_step, in_shardings=(replicated, data), out_shardings=(data, data))


# --- Evaluation -------------------------------------------------------------------------------


def evaluate(eval_step, params, source, units, *, batch_size, mesh, max_frames=None):
    """Per-frame MSE / PSNR / SSIM over every frame of ``units`` (optionally the first max_frames)."""
    records = np.concatenate(units.records)[:max_frames]
    data = NamedSharding(mesh, P("data"))
    values = {"mse": [], "psnr": [], "ssim": []}
    for start in range(0, len(records), batch_size):
        chunk = records[start : start + batch_size]
        frames = source.fetch(np.pad(chunk, (0, batch_size - len(chunk)), mode="edge"))
        metrics, _ = eval_step(params, common.to_global(frames, data))
        for name in values:
            values[name].append(common.to_host(metrics[name])[: len(chunk)])
    return {name: np.concatenate(v) for name, v in values.items()}


def reconstruction_grid(eval_step, params, source, units, *, batch_size, mesh, count=6):
    records = np.concatenate(units.records)
    pick = records[contact_sheet.pick_evenly(len(records), count)]
    frames = source.fetch(np.pad(pick, (0, max(0, batch_size - len(pick))), mode="edge"))[:batch_size]
    _, recon = eval_step(params, common.to_global(frames, NamedSharding(mesh, P("data"))))
    recon = (common.to_host(recon)[: len(pick)] * 255).round().astype(np.uint8)
    labels = [0] * len(pick)
    return contact_sheet.contact_sheet(
        np.concatenate([frames[: len(pick)], recon]),
        labels + labels,
        list(pick) * 2,
        title="originals (top) and reconstructions (bottom)",
        columns=len(pick),
    )


# --- The loop ---------------------------------------------------------------------------------


def make_plan(config, num_units):
    """The DP mechanism of a private run on ``num_units`` training units (``privacy.plan``)."""
    return dp_plan.DpPlan(
        num_units=num_units,
        expected_batch_size=float(config.dp.expected_batch_size),
        noise_multiplier=float(config.dp.noise_multiplier),
        l2_clip_norm=float(config.dp.l2_clip_norm),
        delta=config.dp.delta or accounting.default_delta(num_units),
        unit=config.dp.unit,
        allow_large_delta=bool(config.dp.get("allow_large_delta", False)),
    )


def planned_steps(config, sampling_rate):
    """The schedule's maximum: ``max_epochs`` epochs of ``ceil(1/q)`` steps, capped by ``max_steps``."""
    steps = max(1, math.ceil(1 / sampling_rate)) * config.schedule.max_epochs
    return min(steps, config.schedule.max_steps) if config.schedule.max_steps else steps


def privacy_report(config, *, num_units, steps_run, planned):
    """Epsilon of what was run (``DpPlan.report``), or a plain statement that it is not private."""
    plan = make_plan(config, num_units) if optimizers.is_private(config.optimizer) else None
    return common.privacy_report(
        plan, steps_run=steps_run, planned=planned, insecure_seed=config.dp.insecure_fixed_seed
    )


def check_data(config, source):
    want = (config.data.height, config.data.width, 3)
    if source.frame_shape != want:
        raise ValueError(
            f"dataset {config.data.dataset_dir} has frames of shape {source.frame_shape}, the config "
            f"wants {want}: prepare the data at that size or set --config.data.height/width"
        )
    autoencoder.check_frames(np.zeros((1, *want)))


def split_units(config):
    """``(splits, videos)``: the train / validation / test units this config trains and evaluates on.

    ``config.data.train_subset`` (a .npy of pool indices, ``autoencoder_data.resplit``): a
    membership attack's reference model, trained on a chosen part of the pool.
    """
    splits, videos = autoencoder_data.split_units(
        config.data.dataset_dir,
        source_split=config.data.source_split,
        videos_per_class=config.data.videos_per_class,
        unit=config.dp.unit,
        frames_per_video=config.dp.frames_per_video,
        fractions=tuple(config.data.fractions),
        seed=config.seed,
    )
    if config.data.get("train_subset"):
        splits = autoencoder_data.resplit(splits, np.load(config.data.train_subset))
    return splits, videos


def log_step(writer, progress, metrics, step, *, private):
    """TensorBoard and progress bar for one logged step; returns the non-finite count it saw.

    A private run logs only the norm of the noisy gradient (post-processing of the DP release):
    its batch's loss, realised size, clipped fraction and non-finite count are un-noised
    statistics of training units. A non-finite noisy gradient means diverged weights (public);
    a non-private run checks its loss instead.
    """
    watched = "grad_norm" if private else "loss"
    if not np.isfinite(metrics[watched]):
        raise FloatingPointError(f"training {watched} is {metrics[watched]} at step {step}")
    shown = {"grad_norm": metrics["grad_norm"]} if private else metrics
    progress.set_postfix({k: f"{float(v):.4g}" for k, v in shown.items() if k in ("loss", "grad_norm")})
    for name, value in shown.items():
        writer.add_scalar(f"train/{name}", float(value), step)
    return 0 if private else int(metrics["nonfinite"])


def tensorboard_note(private):
    """What ``workdir/tensorboard`` holds, for metrics.json: whether it is safe to share."""
    if private:
        return ("train/grad_norm (the noisy gradient: covered by epsilon) and validation metrics "
                "(held-out frames: NOT covered by epsilon, like every evaluation number)")  # fmt: skip
    return "PRIVATE: per-step training loss and batch statistics of the training frames, un-noised"


RUN_SPEC = "run_spec.json"

# Settings a resumed run may change: when to stop, evaluate and save, how gradients are computed
# (same values, other memory or speed), and delta (accounting only, recomputed at the end).
_RESUMABLE_CHANGES = {
    None: ("schedule", "grad_method", "plain_grad_method"),
    "dp": ("microbatch_size", "batch_bucket", "delta"),
}


def _run_spec(config):
    """What the run depends on: the config less ``_RESUMABLE_CHANGES``, plus the contents of its
    dataset and of its starting export (a path can be rebuilt or retrained in place)."""
    spec = run_spec.settings(config, _RESUMABLE_CHANGES)
    spec["data"]["dataset_dir"] = str(pathlib.Path(config.data.dataset_dir).absolute())
    spec["dataset_fingerprint"] = run_spec.dataset_fingerprint(config.data.dataset_dir)
    if not config.audit.canaries:  # no audit: the same run as before the field existed (resumes)
        spec.pop("audit", None)
    if config.init_from:
        spec["init_from"] = str(pathlib.Path(config.init_from).absolute())
        spec["init_fingerprint"] = run_spec.export_fingerprint(config.init_from)
    return spec


def can_resume(config, workdir):
    """Whether ``workdir`` holds this config's run (or nothing): what ``train_and_evaluate`` checks."""
    return run_spec.can_resume(workdir, _run_spec(config), RUN_SPEC)


def block_rule(meta, quality, patience):
    """The paper's block rule, pure: ``meta`` after one block's validation SSIM / PSNR. Stops
    when neither improved for ``patience`` blocks."""
    meta = dict(meta)
    best = meta["best_quality"]
    if best is None or quality["ssim"] > best[0] or quality["psnr"] > best[1]:
        meta["best_quality"] = [
            max(quality["ssim"], best[0] if best else -1),
            max(quality["psnr"], best[1] if best else -1),
        ]
        meta["stale_blocks"] = 0
        return meta
    meta["stale_blocks"] += 1
    if meta["stale_blocks"] >= patience:
        meta["stopped"] = f"SSIM and PSNR stable for {meta['stale_blocks']} blocks"
    return meta


def epoch_rule(meta, val_mse, patience):
    """Patience in epochs, pure: ``meta`` after one epoch's validation MSE."""
    meta = dict(meta)
    best = meta["epoch_best_val"]
    if best is None or val_mse < best:
        meta["epoch_best_val"], meta["stale_epochs"] = val_mse, 0
        return meta
    meta["stale_epochs"] += 1
    if meta["stale_epochs"] >= patience:
        meta["stopped"] = f"validation loss did not improve for {meta['stale_epochs']} epochs"
    return meta


FRESH_META = {
    "epoch_best_val": None,
    "stale_epochs": 0,
    "best_quality": None,
    "stale_blocks": 0,
    "stopped": "",
}


def _inputs(config):
    """Splits, frames and the DP plan, validated before anything compiles."""
    if not config.data.dataset_dir:
        raise ValueError(
            "set --config.data.dataset_dir to a prepared dataset (python -m launch.prepare_data)"
        )
    splits, videos = split_units(config)
    source = autoencoder_data.FrameSource(config.data.dataset_dir, config.data.source_split)
    check_data(config, source)
    # A private run's mechanism is validated before anything runs (E <= N, delta < 1/N).
    plan, sampling_rate = _plan_and_rate(config, len(splits["train"]))
    return splits, videos, source, plan, sampling_rate


def _plan_and_rate(config, num_units):
    """The DP plan (None if not private) and the sampling rate for ``num_units`` training units."""
    if optimizers.is_private(config.optimizer):
        plan = make_plan(config, num_units)
        return plan, plan.sampling_rate
    return None, min(1.0, config.dp.expected_batch_size / num_units)


def create_train_state(config, model, tx, *, private):
    """Initial state: seeded random weights (public), or ``init_from``'s, checked to be public."""
    shape = (1, config.data.height, config.data.width, 3)

    @jax.jit
    def init_state(key):  # one compiled program, not one per initializer op
        params = model.init(key, jnp.zeros(shape))["params"]
        return common.TrainState(jnp.int32(0), params, tx.init(params))

    if not config.init_from:
        return init_state(jax.random.key(config.seed)), None
    params, init_spec = autoencoder_io.load_params(config.init_from)
    if private:
        public_pretrain.check_public(init_spec, config.init_from)
    if tuple(init_spec["encoder_features"]) != tuple(config.model_features):
        raise ValueError(
            f"{config.init_from} has encoder widths {tuple(init_spec['encoder_features'])}, the config "
            f"wants {tuple(config.model_features)}"
        )
    return common.TrainState(jnp.int32(0), params, tx.init(params)), init_spec


@dataclasses.dataclass
class _Run:
    """What the loop and the outputs share: built once by ``train_and_evaluate``."""

    config: ml_collections.ConfigDict
    workdir: pathlib.Path
    private: bool
    splits: dict
    source: autoencoder_data.FrameSource
    sampler: batch_selection.PoissonSampler
    mesh: jax.sharding.Mesh
    manager: ocp.CheckpointManager
    train_step: object
    eval_step: object
    eval_batch: int
    sampling_rate: float
    max_steps: int

    def evaluate(self, params, split, max_frames=None):
        return evaluate(
            self.eval_step, params, self.source, self.splits[split], batch_size=self.eval_batch,
            mesh=self.mesh, max_frames=max_frames,
        )  # fmt: skip

    def load_batch(self, step):
        data = NamedSharding(self.mesh, P("data"))
        batch = self.sampler.sample(step)
        records = np.stack([self.splits["train"].records[i] for i in batch.indices])  # [B, frames]
        frames = self.source.fetch(records if self.config.dp.unit == "video" else records[:, 0])
        return common.to_global(frames, data), common.to_global(batch.is_padding, data)


def _after_step(run, writer, state, meta, done):
    """Validation rules and checkpoints after step ``done``: the new ``meta``."""
    config, schedule = run.config, run.config.schedule
    steps_per_epoch = max(1, math.ceil(1 / run.sampling_rate))
    expected_batch = run.sampling_rate * len(run.splits["train"])
    steps_per_block = max(1, math.ceil(schedule.block_frames / expected_batch))
    if schedule.quality_patience_blocks and done % steps_per_block == 0:
        quality = image_quality.summarize(run.evaluate(state.params, "validation", schedule.quality_frames))
        writer.add_scalar("block/ssim", quality["ssim"], done)
        writer.add_scalar("block/psnr", quality["psnr"], done)
        meta = block_rule(meta, quality, schedule.quality_patience_blocks)
    if done % steps_per_epoch == 0:
        val = image_quality.summarize(run.evaluate(state.params, "validation"))
        writer.add_scalar("validation/mse", val["mse"], done)
        meta = epoch_rule(meta, val["mse"], config.schedule.patience_epochs)
    if done % schedule.checkpoint_every_steps == 0 or done % steps_per_epoch == 0:
        common.save(run.manager, state.step, state, meta)
    return meta


def _train(run, state, meta, writer, *, interrupt_at_step):
    """The loop: ``(state, meta, non-finite units logged, seconds)``, or None if interrupted."""
    start_time = time.perf_counter()
    prefetch = concurrent.futures.ThreadPoolExecutor(1)
    next_batch = prefetch.submit(run.load_batch, int(state.step))
    progress = tqdm.tqdm(
        total=run.max_steps, initial=int(state.step), desc=f"{run.config.optimizer} autoencoder", unit="step"
    )
    nonfinite_total = 0
    while int(state.step) < run.max_steps and not meta["stopped"]:
        step = int(state.step)
        if interrupt_at_step is not None and step >= interrupt_at_step:
            prefetch.shutdown(wait=True)
            run.manager.wait_until_finished()
            return None
        frames, is_padding = next_batch.result()
        next_batch = prefetch.submit(run.load_batch, step + 1)
        state, metrics = run.train_step(state, frames, is_padding)
        done = step + 1
        progress.update(1)
        if done % run.config.schedule.log_every_steps == 0 or done == run.max_steps:
            nonfinite_total += log_step(writer, progress, jax.device_get(metrics), done, private=run.private)
        meta = _after_step(run, writer, state, meta, done)
    progress.close()
    prefetch.shutdown(wait=False)
    meta = dict(meta, stopped=meta["stopped"] or f"reached {run.max_steps} steps")
    if run.manager.latest_step() != int(state.step):
        common.save(run.manager, state.step, state, meta)
    run.manager.wait_until_finished()
    return state, meta, nonfinite_total, time.perf_counter() - start_time


def _metrics(
    run, state, meta, *, quality, test_frames, nonfinite_total, seconds, start_step, videos, init_spec
):
    config, steps, num_units = run.config, int(state.step), len(run.splits["train"])
    out = {
        "optimizer": config.optimizer,
        "mse": quality["mse"],
        "psnr": quality["psnr"],
        "ssim": quality["ssim"],
        "test_frames": test_frames,
        "nonfinite_test_frames": quality["mse_nonfinite"],
        # Non-private runs only: a count of private training units is private (DP runs drop
        # non-finite units inside the clipped sum and publish nothing about them).
        "nonfinite_train_units_logged": None if run.private else nonfinite_total,
        "tensorboard": tensorboard_note(run.private),
        "steps": steps,
        "stopped_because": meta["stopped"],
        "expected_batch_size": run.sampling_rate * num_units,
        "sampling_rate": run.sampling_rate,
        "train_units": num_units,
        "planned_steps": run.max_steps,
        "unit_of_privacy": config.dp.unit,
        "videos": videos,
        "resolution": [config.data.height, config.data.width],
        "devices": jax.device_count(),
        "train_seconds_this_run": round(seconds, 2),
        "steps_this_run": steps - start_step,
        "init_from": config.init_from or None,
        "init_training_data": init_spec.get("training_data", "not stated") if init_spec else "random init",
    }
    out.update(privacy_report(config, num_units=num_units, steps_run=steps, planned=run.max_steps))
    return out


def _audit(run, params, canaries, metrics):
    """Every canary scored by the trained model; the audit at the run's own delta."""
    e = run.eval_batch
    mse = evaluate(run.eval_step, params, run.source, canaries["units"], batch_size=e, mesh=run.mesh)["mse"]
    delta = metrics["delta"] if run.private else run.config.audit.delta
    return audit_canaries.result(
        run.config, canaries, mse, epsilon_upper=metrics.get("epsilon_pld"), delta=delta
    )


def _write_outputs(run, state, metrics):
    """metrics.json, the reconstruction grid and the exported halves; on a multi-host run, by
    process 0 alone (every host computed the same values; the grid's all-gather runs on all)."""
    config = run.config
    grid = reconstruction_grid(
        run.eval_step, state.params, run.source, run.splits["test"], batch_size=run.eval_batch, mesh=run.mesh
    )
    if jax.process_index() != 0:
        return
    (run.workdir / "metrics.json").write_text(
        json.dumps(accounting.json_safe(metrics), indent=2, default=str)
    )
    contact_sheet.save_png(run.workdir / "reconstructions.png", grid)
    autoencoder_io.export(
        run.workdir / "export", state.params, height=config.data.height, width=config.data.width,
        features=tuple(config.model_features),
    )  # fmt: skip


def _make_run(config, workdir, *, splits, source, plan, sampling_rate, secret, manager, model, tx):
    private = plan is not None
    mesh = common.make_mesh()
    granularity = math.lcm(config.dp.microbatch_size, jax.device_count())
    if private:
        sampler = plan.sampler(secret, 0, granularity=granularity, bucket=config.dp.batch_bucket)
    else:
        sampler = batch_selection.PoissonSampler(
            num_units=len(splits["train"]), sampling_rate=sampling_rate, seed=secret.sampler_entropy(0),
            granularity=granularity, bucket=config.dp.batch_bucket,
        )  # fmt: skip
    train_step = make_train_step(
        model, tx, config, private=private, plan=plan, noise_key=secret.jax_key(run_secret.NOISE), mesh=mesh
    )
    return _Run(
        config=config, workdir=workdir, private=private, splits=splits, source=source, sampler=sampler,
        mesh=mesh, manager=manager, train_step=train_step, eval_step=make_eval_step(model, mesh),
        eval_batch=math.lcm(config.schedule.eval_batch_size, jax.device_count()),
        sampling_rate=sampling_rate, max_steps=planned_steps(config, sampling_rate),
    )  # fmt: skip


def train_and_evaluate(config, workdir, *, interrupt_at_step=None):
    """Trains, evaluates and writes the outputs; resumes from ``workdir`` if it holds a checkpoint.

    Args:
      interrupt_at_step: for tests: stop abruptly (no final save) once this
        step is reached, as a killed job would.

    Returns:
      The metrics dict written to ``workdir/metrics.json`` (None if interrupted).
    """
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    splits, videos, source, plan, sampling_rate = _inputs(config)
    # Checkpoints in workdir resume only if they come from the same run (fails before compiling).
    run_spec.check_and_record(workdir, _run_spec(config), filename=RUN_SPEC, what="an autoencoder")
    manager = common.checkpoint_manager(workdir / "checkpoints")
    # Batches and noise from the run's secret (the public seed if not private).
    secret = run_secret.for_run(
        manager.directory, private=plan is not None, seed=config.seed,
        insecure_fixed_seed=config.dp.insecure_fixed_seed, fresh=manager.latest_step() is None,
    )  # fmt: skip
    canaries = None
    if config.audit.canaries:  # coins from the secret: only now can the units and the plan be final
        splits, source, canaries = audit_canaries.add(config, splits, source, secret)
        plan, sampling_rate = _plan_and_rate(config, len(splits["train"]))
    dtype = jnp.bfloat16 if config.dtype == "bfloat16" else None
    model = autoencoder.Autoencoder(dtype=dtype, features=tuple(config.model_features))
    tx = optimizers.make(config.optimizer, config.learning_rate)
    state, init_spec = create_train_state(config, model, tx, private=plan is not None)
    run = _make_run(
        config, workdir, splits=splits, source=source, plan=plan, sampling_rate=sampling_rate,
        secret=secret, manager=manager, model=model, tx=tx,
    )  # fmt: skip
    replicated = NamedSharding(run.mesh, P())
    state, meta = jax.device_put(state, replicated), dict(FRESH_META)
    if manager.latest_step() is not None:
        state, meta = common.restore(manager, jax.tree.map(ocp.utils.to_shape_dtype_struct, state))
        state = jax.device_put(state, replicated)
        logging.info("resumed from step %d", int(state.step))
    start_step = int(state.step)
    writer = common.summary_writer(workdir / "tensorboard")
    trained = _train(run, state, meta, writer, interrupt_at_step=interrupt_at_step)
    if trained is None:
        return None
    state, meta, nonfinite_total, seconds = trained
    test = run.evaluate(state.params, "test")
    metrics = _metrics(
        run, state, meta, quality=image_quality.summarize(test), test_frames=int(len(test["mse"])),
        nonfinite_total=nonfinite_total, seconds=seconds, start_step=start_step, videos=videos,
        init_spec=init_spec,
    )  # fmt: skip
    if canaries is not None:
        metrics["audit"] = _audit(run, state.params, canaries, metrics)
    _write_outputs(run, state, metrics)
    writer.close()
    return metrics
