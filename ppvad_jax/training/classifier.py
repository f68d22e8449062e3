"""Training the two-stream anomaly classifier (paper sections 3.4.3-3.4.4 and 4.3).

The recipe, all configurable (``configs/classifier.py``):
- inputs are what the server sees: frames through a trained autoencoder (or
  none, the clear-frame baseline), flow between reconstructions, bag of objects
  (``classifier_inputs``, cached once);
- phase 1 trains only the head at 1e-5 on backbone features computed once
  (the backbones are frozen, so recomputing them every epoch would be pure
  waste: a ResNet-50 forward is ~0.2 s per frame on the 2-core CPU); phase 2
  trains everything at 1e-6 on the cached images; both stop when the
  validation loss (or, with ``early_stopping_metric='val_auc'``, the validation
  FL-AUC) has not improved for ``patience`` epochs and keep the best;
- loss: binary cross-entropy with class weights 1 (normal) : 2 (anomaly); soft
  anomalies are neither fully normal nor fully anomalous (section 3.4.4): their
  target is ``soft_label`` (0.5), and the ``_ha`` variants drop them from
  training altogether (test keeps them, as normal);
- hard-sample mining (alpha = 3): each step scores alpha*K candidates drawn
  without replacement, in inference mode, and trains on the K with the highest
  loss less its floor (the target's entropy, nonzero only for soft targets:
  ``weighted_excess_bce``); an epoch is then N / (alpha K) steps (the paper's
  1/alpha of the data);
  ``_no_hm`` variants train on plain batches of K;
- optimizers adam | dpsgd | dpadam | dpadagrad, the DP ones through the same
  privatizer as the autoencoder.

DP and hard mining. Under DP the candidates are a Poisson sample (rate
alpha*K/N) and the K hardest are trained on. Adding one example to the data can
bring it into the top K and push another example out, so the clipped sum moves
by up to 2C, not C: the accountant is given noise_multiplier / 2 (recorded as
``accounted_noise_multiplier``). Without mining the sensitivity is C.
The unit of privacy is one training frame.

Layout, as flax's imagenet trainer: the steps (``make_steps``), the inputs (``_build_inputs``,
``_selection``), the model (``create_model``, ``_phase1_features``), one phase
(``train_phase``; its loop and stopping rule are ``classifier_phases``) and the outputs
(``_write_outputs``), put together by ``train_and_evaluate``.
"""

import dataclasses
import functools
import json
import pathlib
from collections.abc import Callable, Iterator
from typing import NamedTuple

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from ppvad_jax.data import ucf_layout
from ppvad_jax.evaluation import roc
from ppvad_jax.models import backbones, bag_backends, face_redaction, resnet_weights, two_stream
from ppvad_jax.privacy import accounting, clipping, run_secret
from ppvad_jax.privacy import plan as dp_plan
from ppvad_jax.training import common, optimizers, run_spec, sharded_step

# Imported by name, not as a module: the phase machinery keeps the names it had here before it
# moved (tests call classifier.run_phase, classifier.resume, classifier.epoch_batches).
from ppvad_jax.training.classifier_phases import (
    SELECTION_METRICS,
    epoch_batches,
    pad_to,
    resume,
    run_batches,
    run_phase,
)

NORMAL, SOFT, HARD = 0, 1, 2


def targets_and_mask(labels, *, hard_only, soft_label):
    """Training targets in [0, 1] and which frames train at all."""
    labels = np.asarray(labels)
    target = np.where(labels == HARD, 1.0, np.where(labels == SOFT, soft_label, 0.0)).astype(np.float32)
    keep = labels != SOFT if hard_only else np.ones(len(labels), bool)
    return target, keep


def _class_weight(target, class_weights):
    """``class_weights[0]`` (normal) ... ``[1]`` (anomaly); a soft target t gets w0 + t (w1 - w0)."""
    return class_weights[0] + target * (class_weights[1] - class_weights[0])


def weighted_bce(logits, target, class_weights):
    """Per-example BCE, weighted by the target's class weight."""
    return _class_weight(target, class_weights) * optax.sigmoid_binary_cross_entropy(logits, target)


def weighted_excess_bce(logits, target, class_weights):
    """Weighted BCE less its minimum over logits: the weighted KL(target || sigmoid(logit)).

    What hard-sample mining ranks by. For 0/1 targets it is the BCE itself. A soft target t
    cannot score below its entropy H(t) (0.69 at t = 0.5), so ranking by BCE would fill the
    mined batch with soft frames however well they are already fitted.
    """
    entropy = -(jax.scipy.special.xlogy(target, target) + jax.scipy.special.xlogy(1 - target, 1 - target))
    excess = optax.sigmoid_binary_cross_entropy(logits, target) - entropy
    return _class_weight(target, class_weights) * excess


# --- Steps ------------------------------------------------------------------------------------


class Steps(NamedTuple):
    """The compiled steps of one phase (``make_steps``)."""

    # ``train(state, batch, is_padding) -> (state, {"loss"})``, jitted over the mesh, state donated.
    train: Callable
    # ``logits(params, batch) -> [B]`` in inference mode: validation.
    logits: Callable


def example_losses_fn(apply_fn: Callable, class_weights: tuple) -> Callable:
    """``example_losses(params, batch, *, train, rng) -> [B]``: each example's weighted BCE."""

    def example_losses(params, batch, *, train, rng):
        logits = apply_fn(params, batch["inputs"], train=train, rng=rng)
        return weighted_bce(logits, batch["target"], class_weights)

    return example_losses


def select_hardest(apply_fn: Callable, params, batch, is_padding, *, k: int, class_weights: tuple):
    """``(batch, is_padding)`` of the K hardest real candidates; padding is never chosen.

    Ranked by inference-mode excess loss (``weighted_excess_bce``), outside the gradient: one
    extra forward over alpha*K candidates per step, no backward through the choice.
    """
    logits = apply_fn(params, batch["inputs"], train=False, rng=None)
    losses = weighted_excess_bce(logits, batch["target"], class_weights)
    losses = jnp.where(is_padding, -jnp.inf, jax.lax.stop_gradient(losses))
    _, idx = jax.lax.top_k(losses, k)
    return jax.tree.map(lambda a: a[idx], batch), is_padding[idx]


def _private_grads_fn(
    example_losses: Callable, plan: dp_plan.DpPlan, *, noise_key: jax.Array, microbatch_size: int | None
) -> Callable:
    """``grads(params, step, batch, is_padding, rng, noise_multiplier) -> (grads, loss)``: the
    plan's noisy clipped sum, one noise draw per step.

    Every example gets its own dropout key, split from the step's ``rng``: ``vmap`` over one key
    would give every example of the batch the same mask.
    """

    def unit_loss(params, example):  # one example and its own dropout key
        one = jax.tree.map(lambda a: a[None], example["batch"])
        rng = jax.random.wrap_key_data(example["dropout"])
        return example_losses(params, one, train=True, rng=rng)[0]

    unit_grads_fn = clipping.vmap_grads_fn(unit_loss)

    def private_grads(params, step, batch, is_padding, rng, noise_multiplier):
        per_example_keys = jax.random.key_data(jax.random.split(rng, is_padding.shape[0]))
        grads, clip = plan.noisy_gradient(
            unit_grads_fn,
            params,
            {"batch": batch, "dropout": per_example_keys},
            is_padding,
            jax.random.fold_in(noise_key, step),  # replicated: one draw per step
            noise_multiplier=noise_multiplier,
            microbatch_size=microbatch_size,
        )
        return grads, clip.loss_sum / jnp.maximum(clip.num_examples - clip.num_nonfinite, 1)

    return private_grads


def _plain_grads_fn(example_losses: Callable) -> Callable:
    """``grads(params, step, batch, is_padding, rng, noise_multiplier) -> (grads, loss)``: the
    gradient of the mean loss over real rows (``step`` and ``noise_multiplier`` unused)."""

    def plain_grads(params, step, batch, is_padding, rng, noise_multiplier):
        del step, noise_multiplier
        keep = jnp.logical_not(is_padding)

        def mean_loss(p):
            return common.masked_mean(example_losses(p, batch, train=True, rng=rng), keep)

        loss, grads = jax.value_and_grad(mean_loss)(params)
        return grads, loss

    return plain_grads


def make_train_step(
    apply_fn: Callable, tx: optax.GradientTransformation, config, *, private: bool,
    plan: dp_plan.DpPlan | None, noise_key: jax.Array, dropout_key: jax.Array, mesh: jax.sharding.Mesh,
) -> Callable:  # fmt: skip
    """The jitted ``train_step(state, batch, is_padding) -> (state, {"loss"})``, mining the K
    hardest of the batch first when ``config.hard_mining_alpha > 1`` (``make_steps``)."""
    class_weights = tuple(config.class_weights)
    mining = config.hard_mining_alpha > 1
    k = config.batch_size
    if private and plan is None:
        raise ValueError("a private step needs its DpPlan")
    example_losses = example_losses_fn(apply_fn, class_weights)
    if private:
        microbatch = config.dp.microbatch_size or None  # 0: the whole batch at once
        grads_fn = _private_grads_fn(example_losses, plan, noise_key=noise_key, microbatch_size=microbatch)
    else:
        grads_fn = _plain_grads_fn(example_losses)

    def train_step(state, batch, is_padding, noise_multiplier):
        if mining:
            batch, is_padding = select_hardest(
                apply_fn, state.params, batch, is_padding, k=k, class_weights=class_weights
            )
        rng = jax.random.fold_in(dropout_key, state.step)
        grads, loss = grads_fn(state.params, state.step, batch, is_padding, rng, noise_multiplier)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        # The loss of a private batch is an un-noised statistic of training data: the caller
        # publishes it only for non-private runs.
        return common.TrainState(state.step + 1, params, opt_state), {"loss": loss}

    return sharded_step.jit_train_step(train_step, mesh, config.dp.noise_multiplier)


def inference_fn(apply_fn: Callable) -> Callable:
    """``logits(params, batch) -> [B]`` in inference mode (no dropout), not yet jitted."""
    return lambda params, batch: apply_fn(params, batch["inputs"], train=False, rng=None)


def make_steps(
    apply_fn: Callable, tx: optax.GradientTransformation, config, *, private: bool,
    plan: dp_plan.DpPlan | None, noise_key: jax.Array, dropout_key: jax.Array, mesh: jax.sharding.Mesh,
) -> Steps:  # fmt: skip
    """``Steps(train, logits)`` of one phase.

    ``apply_fn(params, inputs, *, train, rng) -> logits [B]``; a batch is
    ``{"inputs": ..., "target": [B]}``. ``plan``: the run's ``DpPlan`` (None if not private).
    ``noise_key`` and ``dropout_key`` are independent (``run_secret``); each step folds in its
    number. Under DP every example gets its own dropout key (``_private_grads_fn``).
    """
    train = make_train_step(
        apply_fn, tx, config, private=private, plan=plan, noise_key=noise_key, dropout_key=dropout_key,
        mesh=mesh,
    )  # fmt: skip
    replicated = NamedSharding(mesh, P())
    data = NamedSharding(mesh, P("data"))
    logits = jax.jit(inference_fn(apply_fn), in_shardings=(replicated, data))
    return Steps(train, logits)


# --- Detector, autoencoder, DP plan, run spec -------------------------------------------------


def make_detector(config):
    d = config.detector
    return bag_backends.make(
        d.backend, model_dir=d.model_dir, conf_threshold=d.conf_threshold, input_size=d.get("input_size")
    )


def _autoencoder(config):
    """(export dir or None, the autoencoder's metrics.json or None)."""
    if not config.autoencoder_workdir:
        return None, None
    workdir = pathlib.Path(config.autoencoder_workdir)
    export = workdir / "export"
    if not (export / "spec.json").is_file():
        raise FileNotFoundError(
            f"{export}/spec.json not found: train it with python -m launch.train_autoencoder"
        )
    metrics = workdir / "metrics.json"
    return export, json.loads(metrics.read_text()) if metrics.is_file() else None


# One raw frame sits in up to two training records: as a record's frame and as the next
# record's previous frame (1/10 s earlier, which is the previous record in a 10 FPS segment).
RECORDS_PER_FRAME = 2


def make_plan(config, num_units, *, mining):
    """The DP mechanism of a private run on ``num_units`` training records (``privacy.plan``).

    The unit of privacy is a raw frame (``RECORDS_PER_FRAME`` records); with mining the
    candidates are a Poisson sample of rate alpha K / N and one record moves the top-K sum by
    up to 2C. The noisy sum is divided by K, the number of examples trained on.
    """
    alpha = config.hard_mining_alpha if mining else 1
    return dp_plan.DpPlan(
        num_units=int(num_units),
        expected_batch_size=float(alpha * config.batch_size),
        noise_multiplier=float(config.dp.noise_multiplier),
        l2_clip_norm=float(config.dp.l2_clip_norm),
        delta=config.dp.delta or accounting.default_delta(num_units),
        unit="frame",
        records_per_unit=RECORDS_PER_FRAME,
        selection_factor=2 if mining else 1,
        allow_large_delta=bool(config.dp.get("allow_large_delta", False)),
        divisor=float(config.batch_size),
    )


def planned_steps(config, steps_per_epoch):
    """The most steps the enabled phases' schedules allow (what a private run is accounted for)."""
    total = 0
    for phase in (config.phase1, config.phase2):
        if phase.enabled:
            per_epoch = min(steps_per_epoch, phase.max_steps_per_epoch or steps_per_epoch)
            total += phase.max_epochs * per_epoch
    return total


def privacy_report(config, *, private, num_units, mining, steps_run, planned):
    """Epsilon of what was run (``DpPlan.report``), or a plain statement that it is not private."""
    plan = make_plan(config, num_units, mining=mining) if private else None
    return common.privacy_report(
        plan, steps_run=steps_run, planned=planned, insecure_seed=config.dp.insecure_fixed_seed
    )


# What the classifier's metrics repeat of its autoencoder's (keys of the trainer's metrics.json).
_AE_PRIVACY_KEYS = (
    "epsilon_rdp", "epsilon_pld", "delta", "unit_of_privacy", "optimizer", "noise_multiplier", "private",
    "accounted_noise_multiplier", "accounted_sampling_rate", "accounted_steps", "insecure_fixed_seed",
)  # fmt: skip


# Settings a resumed run may change: when to stop, caches' places, batch shapes of evaluation,
# microbatching and padding (same values, other memory), and delta (accounting only).
_RESUMABLE = {
    None: ("eval_batch_size", "inputs_dir", "features_dir"),
    "dp": ("microbatch_size", "batch_bucket", "delta"),
    "phase1": ("max_epochs", "patience"),
    "phase2": ("max_epochs", "patience"),
}


def run_settings(config):
    """The config a checkpoint depends on: everything but ``_RESUMABLE`` (optimizer, every dp.*
    that shapes the mechanism, batch size, mining, variant, seed, learning rates...)."""
    return run_spec.settings(config, _RESUMABLE)


def _check_checkpoints_match(workdir, features_spec, config=None):
    """Refuses to resume checkpoints of another run; records the inputs and settings of a new one.

    The head's checkpoints say nothing of the features they were fitted to, nor of the settings
    that trained them: resuming them after the dataset, the autoencoder, the optimizer or a DP
    setting changed would continue one run as another, and account it as the new one.
    """
    spec = dict(features_spec, run=run_settings(config)) if config is not None else features_spec
    run_spec.check_and_record(workdir, spec, filename="inputs_spec.json", what="a classifier")


# --- Variant and inputs -----------------------------------------------------------------------


class Variant(NamedTuple):
    """What the variant's name and the optimizer decide (``_resolve``)."""

    streams: int  # 1: the spatial stream only; 2: spatial and motion
    use_bag: bool  # the bag of objects joins the head's input
    hard_only: bool  # ``_ha``: soft anomalies do not train
    mining: bool  # hard-sample mining: alpha > 1 and not ``_no_hm``
    private: bool  # a DP optimizer


def _resolve(config):
    """``(config, Variant)``: the config with references resolved (alpha 1 without mining), refusing
    settings whose privacy claim would not hold."""
    streams, use_bag = two_stream.parse_variant(config.variant)
    hard_only = config.variant.endswith("_ha")
    mining = not config.variant.endswith("_no_hm") and config.hard_mining_alpha > 1
    config = config.copy_and_resolve_references()
    if not mining:
        config.hard_mining_alpha = 1
    private = optimizers.is_private(config.optimizer)
    if private and config.phase2.enabled and jax.device_count() > 1:
        # Phase 2 clips vmap(grad) per-example gradients through the ResNet-50s' lax convolutions,
        # whose kernel gradients XLA gets wrong on a sharded batch (jax/jaxlib 0.10.2; repro:
        # tests/repro_vmap_sharded_conv.py). A wrong per-example gradient breaks the clipping
        # bound, so the DP claim would not hold: refuse rather than print an epsilon.
        raise ValueError(
            f"private phase 2 on {jax.device_count()} devices is refused: vmap(grad) conv kernel gradients "
            "are wrong on a sharded batch (tests/repro_vmap_sharded_conv.py); run it on one device "
            "(CUDA_VISIBLE_DEVICES=0) or set --config.phase2.enabled=False"
        )
    if not config.data.dataset_dir:
        raise ValueError(
            "set --config.data.dataset_dir to a prepared dataset (python -m launch.prepare_data)"
        )
    if config.standardize_features and private:
        raise ValueError(
            "standardize_features computes per-feature statistics of the training set, which the DP "
            "guarantee does not cover: turn it off for private training"
        )
    return config, Variant(streams, use_bag, hard_only, mining, private)


class Inputs(NamedTuple):
    """What the server would see, cached (``_build_inputs``)."""

    ae_metrics: dict | None  # the autoencoder's metrics.json; None for clear frames or none written
    spec: dict  # what the cached inputs were built from (paths and contents' fingerprints)
    detector: object  # the bag-of-objects backend (``bag_backends``)
    data: dict  # split -> frames, flows, bags, labels... (``classifier_inputs.build_split``)


def _build_inputs(config, workdir) -> Inputs:
    """What the server would see, per split, built once and cached under ``inputs_dir``."""
    from ppvad_jax.training import classifier_inputs  # noqa: PLC0415 (data.prepare imports TFDS: seconds)

    export, ae_metrics = _autoencoder(config)
    inputs_dir = pathlib.Path(config.inputs_dir or workdir / "inputs")
    spec = {
        "dataset": str(pathlib.Path(config.data.dataset_dir).absolute()),
        "autoencoder": str(export.absolute()) if export else None,
        # Every detector setting (backend, folder, threshold, input size) changes the bags.
        "detector": json.loads(json.dumps(config.detector.to_dict())),
        # Contents, not only paths: a dataset rebuilt or an autoencoder retrained in place must not
        # meet its predecessor's cached inputs (hashing a few MB costs milliseconds).
        "dataset_fingerprint": run_spec.dataset_fingerprint(config.data.dataset_dir),
        "autoencoder_fingerprint": run_spec.export_fingerprint(export),
        "camera_redaction": config.camera_redaction or None,
    }
    redactor = face_redaction.from_spec(config.camera_redaction)
    reconstructor = classifier_inputs.Reconstructor(export, redactor=redactor)
    detector = make_detector(config)
    data = {
        split: classifier_inputs.build_split(
            config.data.dataset_dir,
            split,
            inputs_dir,
            reconstructor=reconstructor,
            detector=detector,
            size=config.input_size,
            spec=spec,
        )  # fmt: skip
        for split in ("train", "validation", "test")
    }
    return Inputs(ae_metrics, spec, detector, data)


class Selection(NamedTuple):
    """Targets, the frames that train and validate, and what picks the best epoch (``_selection``)."""

    train_target: np.ndarray  # [train frames] in [0, 1]: 0 normal, soft_label soft, 1 hard
    val_target: np.ndarray  # [validation frames], the same rule
    train_ids: np.ndarray  # the training frames that train (all but soft ones under ``_ha``)
    val_ids: np.ndarray  # the validation frames the loss is taken over (the same rule)
    val_labels: np.ndarray  # NORMAL / SOFT / HARD of every validation frame
    val_auc_defined: bool  # validation holds hard anomalies and other frames
    metric: str  # early_stopping_metric, checked: a key of SELECTION_METRICS


def _selection(config, data, *, hard_only) -> Selection:
    """Targets, the frames that train and validate, and the early-stopping metric (checked)."""
    train_target, train_keep = targets_and_mask(
        data["train"]["labels"], hard_only=hard_only, soft_label=config.soft_label
    )
    val_target, val_keep = targets_and_mask(
        data["validation"]["labels"], hard_only=hard_only, soft_label=config.soft_label
    )
    train_ids = np.flatnonzero(train_keep)
    val_ids = np.flatnonzero(val_keep)
    val_labels = np.asarray(data["validation"]["labels"])
    val_auc_defined = bool((val_labels == HARD).any() and (val_labels != HARD).any())
    metric = config.get("early_stopping_metric", "val_loss")
    if metric not in SELECTION_METRICS:
        raise ValueError(f"early_stopping_metric must be one of {tuple(SELECTION_METRICS)}, got {metric!r}")
    if metric == "val_auc" and not val_auc_defined:
        raise ValueError(
            "early_stopping_metric='val_auc' needs hard-anomaly and other frames in the validation split; "
            f"it has {int((val_labels == HARD).sum())} hard of {len(val_labels)}: use val_loss"
        )
    if len(train_ids) < config.batch_size * config.hard_mining_alpha:
        raise ValueError(
            f"{len(train_ids)} training frames, fewer than one step's "
            f"{config.batch_size * config.hard_mining_alpha} candidates: lower batch_size or add data"
        )
    return Selection(train_target, val_target, train_ids, val_ids, val_labels, val_auc_defined, metric)


# --- Model ------------------------------------------------------------------------------------


def create_model(
    config, variant: Variant, backbone: resnet_weights.Backbone
) -> two_stream.TwoStreamClassifier:
    """The two-stream classifier on ``backbone``'s normalisation and input transform."""
    return two_stream.TwoStreamClassifier(
        streams=variant.streams, use_bag=variant.use_bag, head_width=config.head_width,
        dropout=config.dropout, norm=backbone.spec["norm"], preprocessing=backbone.spec["preprocessing"],
        size=config.input_size, standardize=config.standardize_features, backbone=backbone.spec["backbone"],
    )  # fmt: skip


def _init_variables(config, model, backbone, *, n_bag, streams):
    """A fresh head (seeded: its initial weights are public) on the backbones' weights."""
    one = np.zeros((1, config.input_size, config.input_size, 3), np.uint8)
    init = jax.jit(lambda k: model.init(k, one, one, np.zeros((1, n_bag), np.float32)))
    variables = flax.core.unfreeze(init(jax.random.key(config.seed)))
    for stream in ("spatial", "motion")[:streams]:
        for collection, values in backbone.variables.items():
            # Own buffers per stream: the train step donates its state, and a buffer donated twice fails.
            variables.setdefault(collection, {})[stream] = jax.tree.map(jnp.array, values)
    return variables


# What of a backbone's spec decides its features ("backbone": two random inits of one seed and norm
# but another architecture must not share a cache).
_BACKBONE_KEYS = ("backbone", "source", "sha256", "norm", "seed", "random_init")


def _features_spec(config, inputs_spec: dict, backbone: resnet_weights.Backbone, *, streams: int) -> dict:
    """What phase 1's cached features depend on: the inputs, the backbone, the streams, the size.

    A mismatch recomputes the cache, never reuses it; the same spec keys the checkpoints.
    """
    return {
        "inputs": inputs_spec,
        "backbone": {k: backbone.spec.get(k) for k in _BACKBONE_KEYS},
        "streams": streams,
        "size": config.input_size,
    }


def _phase1_features(config, workdir, model, variables, data, features_spec, *, mesh):
    """Phase 1's input: frozen-backbone features of every split, computed once and cached."""
    features_fn = jax.jit(lambda v, b: model.apply(v, b["frames"], b["flows"], method=model.features))

    def feature_batch(split):
        d = data[split]
        return lambda idx: {"frames": d["frames"][idx], "flows": d["flows"][idx]}

    features_dir = pathlib.Path(config.features_dir or workdir / "features")
    spec_path = features_dir / "spec.json"
    stale = not spec_path.is_file() or json.loads(spec_path.read_text()) != features_spec
    features = {}
    for split in data:
        path = features_dir / f"{split}.npy"
        if path.is_file() and not stale:
            features[split] = np.load(path)
            continue
        logging.info("phase 1: backbone features for %s (%d frames)", split, len(data[split]["labels"]))
        features[split] = run_batches(
            features_fn, variables, feature_batch(split), len(data[split]["labels"]),
            batch_size=config.eval_batch_size, mesh=mesh,
        )  # fmt: skip
        features_dir.mkdir(parents=True, exist_ok=True)
        np.save(path, features[split])
    features_dir.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(json.dumps(features_spec, indent=2, default=str))
    return features


def _standardization(train_features, train_bags, train_ids, use_bag):
    """Per-feature statistics of the head's input over the training frames (bag as log1p)."""
    head_in = train_features[train_ids]
    if use_bag:
        head_in = np.concatenate([head_in, np.log1p(train_bags[train_ids])], axis=1)
    std = head_in.std(axis=0)
    return {
        "head": {
            "mean": jnp.asarray(head_in.mean(axis=0)),
            "scale": jnp.asarray(np.where(std > 1e-6, 1.0 / np.maximum(std, 1e-6), 1.0)),
        }
    }


def _frozen_stats(config, variables: dict, features: dict, data: dict, train_ids, *, use_bag: bool) -> dict:
    """The collections no phase trains: the backbones' statistics and, with
    ``standardize_features``, the head input's standardization."""
    stats = {k: v for k, v in variables.items() if k != "params"}
    if config.standardize_features:
        stats["standardization"] = _standardization(
            features["train"], data["train"]["bags"], train_ids, use_bag
        )
    return stats


class ApplyFns(NamedTuple):
    """``apply(params, inputs, *, train, rng) -> logits [B]`` of what each phase trains."""

    head: Callable  # params: the head's; inputs: cached "features" and "bag" (phase 1)
    full: Callable  # params: all of them; inputs: "frames", "flows" and "bag" (phase 2)


def make_apply_fns(model: two_stream.TwoStreamClassifier, stats: dict) -> ApplyFns:
    """The two phases' forward passes, with the collections no phase trains (``stats``) bound in."""
    head_stats = {"standardization": stats["standardization"]} if "standardization" in stats else {}

    def head_apply(head, inputs, *, train, rng):
        rngs = {"dropout": rng} if train else {}
        return model.apply(
            {"params": {"head": head}, **head_stats},
            inputs["features"],
            inputs["bag"],
            train=train,
            rngs=rngs,
            method=model.classify,
        )

    def full_apply(params, inputs, *, train, rng):
        rngs = {"dropout": rng} if train else {}
        return model.apply(
            {"params": params, **stats},
            inputs["frames"],
            inputs["flows"],
            inputs["bag"],
            train=train,
            rngs=rngs,
        )

    return ApplyFns(head_apply, full_apply)


# --- Phases -----------------------------------------------------------------------------------


class Phase(NamedTuple):
    """One of the two phases of training."""

    name: str  # its checkpoint directory, and its key in metrics["phases"]
    kind: str  # "head": the head on cached features; "full": everything on the images
    # Its own batches, noise and dropout (run_secret streams): never the other phase's again.
    stream: int
    settings: ml_collections.ConfigDict  # config.phase1 or config.phase2


def phases_of(config) -> tuple[Phase, ...]:
    """Phase 1 (the head at its own rate on frozen-backbone features), then phase 2 (everything)."""
    return (Phase("phase1", "head", 1, config.phase1), Phase("phase2", "full", 2, config.phase2))


@dataclasses.dataclass(frozen=True)
class _Run:
    """What the phases and the outputs share: built once by ``train_and_evaluate``."""

    config: ml_collections.ConfigDict
    workdir: pathlib.Path
    variant: Variant
    inputs: Inputs
    selection: Selection
    backbone: resnet_weights.Backbone
    stats: dict  # the collections no phase trains (``_frozen_stats``)
    features: dict  # split -> frozen-backbone features, phase 1's input
    apply: ApplyFns
    mesh: jax.sharding.Mesh
    plan: dp_plan.DpPlan | None  # None: not private
    secret: run_secret.RunSecret
    steps_per_epoch: int


def _make_run(config, workdir, *, variant, inputs, selection, backbone, stats, features, model, mesh) -> _Run:
    """The run's schedule, its DP plan (validated before anything trains) and its secret."""
    num_units = len(selection.train_ids)
    candidates = pad_to(config.hard_mining_alpha * config.batch_size, jax.device_count())
    steps_per_epoch = max(1, num_units // candidates)
    plan = make_plan(config, num_units, mining=variant.mining) if variant.private else None
    checkpoints = workdir / "checkpoints"
    fresh = not any(
        (checkpoints / n).is_dir() and any((checkpoints / n).iterdir()) for n in ("phase1", "phase2")
    )
    secret = run_secret.for_run(
        checkpoints, private=variant.private, seed=config.seed,
        insecure_fixed_seed=config.dp.insecure_fixed_seed, fresh=fresh,
    )  # fmt: skip
    return _Run(
        config=config, workdir=workdir, variant=variant, inputs=inputs, selection=selection,
        backbone=backbone, stats=stats, features=features, apply=make_apply_fns(model, stats), mesh=mesh,
        plan=plan, secret=secret, steps_per_epoch=steps_per_epoch,
    )  # fmt: skip


def batch_fn(data: dict, features: dict, split: str, target: np.ndarray, kind: str) -> Callable:
    """``make(idx) -> {"inputs", "target"}`` of rows ``idx`` of ``split``: cached features and bag
    for the head (``kind`` "head"), frames, flows and bag for the whole model ("full")."""
    d = data[split]

    def make(idx):
        inputs = {"bag": d["bags"][idx]}
        if kind == "head":
            inputs["features"] = features[split][idx]
        else:
            inputs["frames"], inputs["flows"] = d["frames"][idx], d["flows"][idx]
        return {"inputs": inputs, "target": target[idx]}

    return make


def train_batches(
    epoch: int, *, make_batch: Callable, train_ids: np.ndarray, config, private: bool, sampler,
    steps_per_epoch: int, sharding: NamedSharding,
) -> Iterator:  # fmt: skip
    """``(batch, is_padding)`` of each step of ``epoch`` (``epoch_batches``), gathered on the host
    from the cached inputs and placed as global arrays sharded over the data axis."""
    put = functools.partial(common.to_global, sharding=sharding)
    for idx, pad in epoch_batches(
        train_ids, epoch, config=config, private=private, sampler=sampler, steps_per_epoch=steps_per_epoch
    ):
        batch = jax.tree.map(lambda a: put(np.asarray(a)), make_batch(idx))
        yield batch, put(np.asarray(pad))


def validation_metrics(
    params, *, logits_fn: Callable, make_batch: Callable, selection: Selection, class_weights: tuple,
    batch_size: int, mesh: jax.sharding.Mesh,
) -> dict:  # fmt: skip
    """Validation loss over the frames that train (the paper's rule) and FL-AUC over all frames,
    hard anomalies positive, as the test split is scored (only where both kinds are present)."""
    n = len(selection.val_labels)
    logits = run_batches(logits_fn, params, make_batch, n, batch_size=batch_size, mesh=mesh)
    ids = selection.val_ids
    loss = weighted_bce(jnp.asarray(logits[ids]), jnp.asarray(selection.val_target[ids]), class_weights)
    out = {"val_loss": float(jnp.mean(loss))}
    if selection.val_auc_defined:
        out["val_auc"] = roc.roc_auc(selection.val_labels == HARD, logits.astype(np.float64))
    return out


class EpochFns(NamedTuple):
    """What ``run_phase`` calls each epoch (``_epoch_fns``)."""

    batches: Callable  # batches(epoch) -> iterator of (batch, is_padding) (``train_batches``)
    validate: Callable  # validate(params) -> {"val_loss", "val_auc"?} (``validation_metrics``)


def _epoch_fns(run: _Run, phase: Phase, logits_fn: Callable) -> EpochFns:
    """``phase``'s training batches (from its own sampler stream under DP) and its validation."""
    config, selection, kind = run.config, run.selection, phase.kind
    data, features = run.inputs.data, run.features
    sampler = None
    if run.variant.private:
        sampler = run.plan.sampler(
            run.secret, phase.stream, granularity=jax.device_count(), bucket=config.dp.batch_bucket
        )
    batches = functools.partial(
        train_batches, make_batch=batch_fn(data, features, "train", selection.train_target, kind),
        train_ids=selection.train_ids, config=config, private=run.variant.private, sampler=sampler,
        steps_per_epoch=run.steps_per_epoch, sharding=NamedSharding(run.mesh, P("data")),
    )  # fmt: skip
    validate = functools.partial(
        validation_metrics, logits_fn=logits_fn,
        make_batch=batch_fn(data, features, "validation", selection.val_target, kind), selection=selection,
        class_weights=tuple(config.class_weights), batch_size=config.eval_batch_size, mesh=run.mesh,
    )  # fmt: skip
    return EpochFns(batches, validate)


class PhaseResult(NamedTuple):
    """What a phase gives back (``train_phase``)."""

    params: dict  # every parameter of the model, the phase's best merged in
    record: dict  # its record (``classifier_phases.epoch_rule``), as reported in metrics["phases"]


def train_phase(run: _Run, phase: Phase, params: dict, *, best_to_beat: float | None) -> PhaseResult:
    """Trains ``phase`` from ``params`` (or resumes it, or finds it done) and keeps its best epoch.

    ``best_to_beat``: phase 1's best validation value, which phase 2 must beat to replace it.
    """
    config, private = run.config, run.variant.private
    tx = optimizers.make(config.optimizer, phase.settings.learning_rate, config.get("weight_decay", 0.0))
    start_params = params["head"] if phase.kind == "head" else params
    state = common.TrainState(jnp.int32(0), start_params, tx.init(start_params))
    manager = common.checkpoint_manager(run.workdir / "checkpoints" / phase.name)
    state, best, record = resume(manager, state, run.selection.metric)
    if record["best_val"] is None and best_to_beat is not None:
        record["best_val"] = best_to_beat
    steps = make_steps(
        run.apply.head if phase.kind == "head" else run.apply.full, tx, config, private=private,
        plan=run.plan, mesh=run.mesh, noise_key=run.secret.jax_key(run_secret.NOISE, phase.stream),
        dropout_key=run.secret.jax_key(run_secret.DROPOUT, phase.stream),
    )  # fmt: skip
    epoch_fns = _epoch_fns(run, phase, steps.logits)
    if not record.get("done"):
        state, best = run_phase(
            phase.name, state, best, train_step=steps.train, batches=epoch_fns.batches,
            validate=epoch_fns.validate, metric=run.selection.metric, phase=phase.settings, manager=manager,
            record=record, private=private,
        )  # fmt: skip
        common.save(manager, record["epoch"] + 1, {"state": state, "best": best}, record, force=True)
        manager.wait_until_finished()
    return PhaseResult(dict(params, head=best) if phase.kind == "head" else best, record)


class Trained(NamedTuple):
    """What the phases give back (``train_phases``)."""

    params: dict  # the best parameters of the last phase that ran
    records: dict  # phase name -> its record


def train_phases(run: _Run, params: dict) -> Trained:
    """The enabled phases in order, each from the best parameters of the one before."""
    records = {}
    for phase in phases_of(run.config):
        if not phase.settings.enabled:
            continue
        to_beat = records["phase1"]["best_val"] if phase.kind == "full" and "phase1" in records else None
        params, records[phase.name] = train_phase(run, phase, params, best_to_beat=to_beat)
    return Trained(params, records)


# --- Outputs ----------------------------------------------------------------------------------


def _test_logits(run: _Run, params: dict) -> np.ndarray:
    """Logits of every test frame, with the best parameters of the last phase that is enabled."""
    test = run.inputs.data["test"]
    n = len(test["labels"])
    if run.config.phase2.enabled:
        apply_fn, test_params, kind = run.apply.full, params, "full"
    else:
        apply_fn, test_params, kind = run.apply.head, params["head"], "head"
    make_batch = batch_fn(run.inputs.data, run.features, "test", np.zeros(n, np.float32), kind)  # no target
    return run_batches(
        jax.jit(inference_fn(apply_fn)), test_params, make_batch, n, batch_size=run.config.eval_batch_size,
        mesh=run.mesh,
    )  # fmt: skip


def _export_spec(config, *, streams, use_bag, backbone, detector):
    """What the server needs to rebuild the classifier from its export (``two_stream.load_export``)."""
    return {
        "variant": config.variant,
        "streams": streams,
        "use_bag": use_bag,
        "head_width": config.head_width,
        "norm": backbone.spec["norm"],
        "preprocessing": backbone.spec["preprocessing"],
        "backbone": backbone.spec["backbone"],
        "size": config.input_size,
        "standardize": bool(config.standardize_features),
        "bag_classes": list(detector.classes),
        "detector": dict(config.detector),
        "backbone_random_init": bool(backbone.random_init),
        "frame_resize": "cv2.INTER_AREA from the reconstruction (and flow image) to size x size",
    }


def _save_predictions(workdir, confidence, test):
    """``predictions.npz``: what ``evaluation.anomaly_report`` scores."""
    np.savez(
        workdir / "predictions.npz", confidence=confidence, labels=test["labels"],
        video_index=test["video_index"], frame_index=test["frame_index"], videos=np.asarray(test["videos"]),
        video_is_anomalous=np.asarray([ucf_layout.video_class(v) != "Normal" for v in test["videos"]]),
    )  # fmt: skip


def _provenance(config, backbone, ae_metrics):
    """Where the classifier's weights and inputs came from, for metrics.json."""
    return {
        "backbone": {k: v for k, v in backbone.spec.items() if k != "sha256"},
        "backbone_random_init": bool(backbone.random_init),
        "detector": config.detector.backend,
        "autoencoder_workdir": str(config.autoencoder_workdir) if config.autoencoder_workdir else None,
        "autoencoder_privacy": {k: ae_metrics.get(k) for k in _AE_PRIVACY_KEYS} if ae_metrics else None,
    }


def _metrics(run: _Run, records: dict, *, test_frames: int) -> dict:
    """metrics.json: the run's settings, each phase's record, provenance and the privacy report
    (composed with the autoencoder's when both trained on the same frames)."""
    config, variant, ae_metrics = run.config, run.variant, run.inputs.ae_metrics
    num_units = len(run.selection.train_ids)
    steps = sum(r["steps"] for r in records.values())
    metrics = {
        "variant": config.variant,
        "optimizer": config.optimizer,
        "hard_mining_alpha": config.hard_mining_alpha,
        "hard_anomalies_only": variant.hard_only,
        "train_frames": int(num_units),
        "test_frames": int(test_frames),
        "phases": records,
        "steps": steps,
        **_provenance(config, run.backbone, ae_metrics),
        **privacy_report(
            config,
            private=variant.private,
            num_units=num_units,
            mining=variant.mining,
            steps_run=steps,
            planned=planned_steps(config, run.steps_per_epoch),
        ),  # fmt: skip
    }
    if ae_metrics:  # both models were trained on the same frames: their composition
        metrics["combined_privacy"] = dp_plan.combined([ae_metrics, metrics], ["autoencoder", "classifier"])
    return metrics


def _write_outputs(run: _Run, trained: Trained) -> dict:
    """Test predictions, the export for the server and metrics.json; returns the metrics."""
    config, workdir, variant = run.config, run.workdir, run.variant
    confidence = np.asarray(jax.nn.sigmoid(_test_logits(run, trained.params)), np.float32)
    two_stream.export(
        workdir / "export", {"params": trained.params, **run.stats},
        _export_spec(
            config, streams=variant.streams, use_bag=variant.use_bag, backbone=run.backbone,
            detector=run.inputs.detector,
        ),
    )  # fmt: skip
    _save_predictions(workdir, confidence, run.inputs.data["test"])
    metrics = _metrics(run, trained.records, test_frames=len(confidence))
    (workdir / "metrics.json").write_text(json.dumps(accounting.json_safe(metrics), indent=2, default=str))
    return metrics


def train_and_evaluate(config, workdir):
    """Builds the inputs, trains phase 1 and phase 2, writes predictions and metrics. Resumable.

    Returns:
      The metrics dict written to ``workdir/metrics.json``.
    """
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    config, variant = _resolve(config)
    # Inputs: what the server would see, cached.
    inputs = _build_inputs(config, workdir)
    selection = _selection(config, inputs.data, hard_only=variant.hard_only)
    # Model: backbones from converted weights (or a loudly flagged random init) + a fresh head.
    backbone = backbones.load(
        config.backbone.get("name", "resnet50"), config.backbone.pretrained or None,
        norm=config.backbone.norm, seed=config.seed,
    )  # fmt: skip
    model = create_model(config, variant, backbone)
    mesh = common.make_mesh()
    n_bag = inputs.data["train"]["bags"].shape[1]
    variables = _init_variables(config, model, backbone, n_bag=n_bag, streams=variant.streams)
    features_spec = _features_spec(config, inputs.spec, backbone, streams=variant.streams)
    # Checkpoints in workdir resume only if they come from the same inputs and settings.
    _check_checkpoints_match(workdir, features_spec, config)
    features = _phase1_features(config, workdir, model, variables, inputs.data, features_spec, mesh=mesh)
    stats = _frozen_stats(
        config, variables, features, inputs.data, selection.train_ids, use_bag=variant.use_bag
    )
    run = _make_run(
        config, workdir, variant=variant, inputs=inputs, selection=selection, backbone=backbone, stats=stats,
        features=features, model=model, mesh=mesh,
    )  # fmt: skip
    return _write_outputs(run, train_phases(run, variables["params"]))
