"""One phase of the classifier's training: its batches, its epochs, early stopping on a validation
metric, and the checkpointed record a killed phase resumes from.

The stopping rule is a pure function of the record (``epoch_rule``), as the autoencoder's are
(``autoencoder.epoch_rule``, ``block_rule``): ``run_phase`` only trains an epoch, validates,
applies the rule and saves. ``training.classifier`` builds what a phase needs and runs its two.
"""

import math
import time
from collections.abc import Callable, Iterable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import tqdm
from absl import logging
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from ppvad_jax.training import common

# --- Batches ----------------------------------------------------------------------------------


def pad_to(n: int, multiple: int) -> int:
    """``n`` rounded up to a multiple of ``multiple`` (a batch every device gets a share of)."""
    return multiple * math.ceil(n / multiple)


def run_batches(fn, params, make_batch, n, *, batch_size, mesh):
    """``fn(params, batch)`` over all n examples in padded batches; real rows' outputs concatenated."""
    data = NamedSharding(mesh, P("data"))
    size = pad_to(batch_size, jax.device_count())
    out = []
    for start in range(0, n, size):
        idx = np.arange(start, min(n, start + size))
        batch = make_batch(np.pad(idx, (0, size - len(idx)), mode="edge"))
        batch = jax.tree.map(lambda a: common.to_global(np.asarray(a), data), batch)
        out.append(np.asarray(fn(params, batch))[: len(idx)])
    return np.concatenate(out)


def epoch_batches(train_ids, epoch, *, config, private, sampler, steps_per_epoch):
    """(indices, is_padding) of each step of one epoch.

    Non-private: a permutation seeded by (seed, epoch), cut into chunks of
    alpha*K candidates (K without mining). Private: Poisson samples of rate
    alpha*K/N, padded to bucketed sizes (the accountant's assumption).
    """
    alpha = max(1, config.hard_mining_alpha)
    chunk = pad_to(alpha * config.batch_size, jax.device_count())
    if private:
        for i in range(steps_per_epoch):
            b = sampler.sample(epoch * steps_per_epoch + i)
            # top-K selection needs at least K rows; extra padding is never selected.
            size = max(len(b.indices), chunk)
            idx = np.pad(train_ids[b.indices], (0, size - len(b.indices)), mode="edge")
            yield idx, np.pad(b.is_padding, (0, size - len(b.indices)), constant_values=True)
        return
    order = train_ids[np.random.default_rng([config.seed, epoch]).permutation(len(train_ids))]
    for start in range(0, len(order) - chunk + 1 if len(order) >= chunk else 1, chunk):
        idx = order[start : start + chunk]
        pad = chunk - len(idx)
        yield np.pad(idx, (0, pad), mode="edge"), np.arange(chunk) >= len(idx)


# --- The stopping rule ------------------------------------------------------------------------


# What early stopping can watch: the name in the config and whether lower is better.
SELECTION_METRICS = {"val_loss": True, "val_auc": False}


def _improves(value, best, metric):
    if best is None:
        return True
    return value < best if SELECTION_METRICS[metric] else value > best


def fresh_record(metric: str) -> dict:
    """The record of a phase that has not run an epoch (JSON, saved with every checkpoint)."""
    return {"epoch": 0, "metric": metric, "best_val": None, "best_epoch": None, "stale": 0, "steps": 0,
            "history": []}  # fmt: skip


def epoch_rule(
    record: dict, val: dict, *, metric: str, steps: int, train_loss: float | None, seconds: float
) -> tuple[dict, bool]:
    """``(record after epoch record["epoch"], whether that epoch is the new best)``, pure.

    ``val[metric]`` against ``record["best_val"]`` picks the best epoch (a tie is no
    improvement) and counts ``stale`` epochs for patience; the epoch's numbers join the history.
    The input record is not changed.
    """
    epoch = record["epoch"]
    improved = _improves(val[metric], record["best_val"], metric)
    new = dict(record)
    if improved:
        new.update(best_val=val[metric], stale=0, best_epoch=epoch)
    else:
        new["stale"] = record["stale"] + 1
    new["epoch"] = epoch + 1
    new["steps"] = record["steps"] + steps
    new["history"] = [
        *record["history"],
        {"epoch": epoch, "train_loss": train_loss, **val, "steps": steps, "seconds": seconds},
    ]
    return new, improved


# --- The loop ---------------------------------------------------------------------------------


class EpochRun(NamedTuple):
    """What one epoch of steps gives back (``train_epoch``)."""

    state: common.TrainState
    steps: int
    train_loss: float | None  # mean over the epoch's steps; None for a private run or no step


def train_epoch(
    state: common.TrainState, train_step: Callable, batches: Iterable, *, max_steps: int, private: bool
) -> EpochRun:
    """Steps over ``batches`` (at most ``max_steps``; 0: all of them).

    A non-private run fetches each step's loss to the host (one sync per step, cheap next to a
    step); a private run fetches none: the loss is an un-noised statistic of training frames.
    """
    losses = []
    for batch, is_padding in batches:
        state, metrics = train_step(state, batch, is_padding)
        losses.append(None if private else float(metrics["loss"]))
        if max_steps and len(losses) >= max_steps:
            break
    train_loss = float(np.mean(losses)) if losses and not private else None
    return EpochRun(state, len(losses), train_loss)


def run_phase(
    name, state, best, *, train_step, batches, validate, metric, phase, manager, record, private=False
):
    """Epochs with early stopping on a validation metric. Returns (state, best_params).

    ``batches(epoch)`` yields ``(batch, is_padding)``; ``validate(params) -> {"val_loss": ...,
    "val_auc": ...}``; ``metric`` names the one that picks the best epoch and counts patience.
    ``record`` (JSON, saved with every checkpoint) carries epoch, best value and patience count,
    so a killed run resumes at the next epoch with the same data order (epochs are seeded by their
    number); it is updated in place, and is what the caller reports. A private run records no
    training loss: it is an un-noised statistic of the training frames.
    """
    progress = tqdm.tqdm(
        total=phase.max_epochs, initial=record["epoch"], desc=f"classifier {name}", unit="epoch"
    )
    while record["epoch"] < phase.max_epochs and record["stale"] < phase.patience:
        epoch, start = record["epoch"], time.perf_counter()
        state, steps, train_loss = train_epoch(
            state, train_step, batches(epoch), max_steps=phase.max_steps_per_epoch, private=private
        )
        val = validate(state.params)
        if not all(np.isfinite(v) for v in val.values()):
            raise FloatingPointError(f"classifier {name}: validation {val} after epoch {epoch}")
        seconds = round(time.perf_counter() - start, 2)
        new, improved = epoch_rule(
            record, val, metric=metric, steps=steps, train_loss=train_loss, seconds=seconds
        )
        if improved:
            best = jax.tree.map(jnp.copy, state.params)  # a copy: the next step donates state's buffers
        record.update(new)
        progress.update(1)
        progress.set_postfix({metric: f"{val[metric]:.4f}", "best": f"{record['best_val']:.4f}"})
        common.save(manager, record["epoch"], {"state": state, "best": best}, record)
    manager.wait_until_finished()
    progress.close()
    record["done"] = True
    return state, best


def resume(manager, state, metric):
    """(state, best, record) from the phase's latest checkpoint, or fresh ones.

    Raises ValueError if the checkpoint chose its best epoch by another metric: its best value
    would be compared with numbers of another kind.
    """
    if manager.latest_step() is None:
        return state, jax.tree.map(jnp.copy, state.params), fresh_record(metric)
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, {"state": state, "best": state.params})
    restored_state, meta = common.restore(manager, abstract)
    # Checkpoints from before the choice existed stopped on validation loss.
    have = meta.get("metric", "val_loss")
    if have != metric:
        raise ValueError(
            f"{manager.directory} chose its best epoch by {have}, this config by {metric} "
            "(early_stopping_metric): use a new --workdir, or move the old one away to retrain"
        )
    logging.info("resumed classifier phase at epoch %d", meta["epoch"])
    return restored_state["state"], restored_state["best"], dict(meta, metric=metric)
