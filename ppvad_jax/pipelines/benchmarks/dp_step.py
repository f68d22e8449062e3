"""Step time of the autoencoder, non-private vs DP, in one run.

Times full optimizer steps (the trainer's own jitted step, Adam vs DP-Adam with
every unit of the batch real, no padding), median of ``repeats`` after one
warm-up step that includes compilation (reported separately):
- ``plain_autodiff``: jax.grad, the textbook non-private step;
- ``plain_layerwise``: the non-private step the trainer uses;
- ``dp_layerwise``: per-example clipping + noise, the trainer's DP step;
- ``dp_vmap``: the same with vmap(grad) per-example gradients.
"""

import dataclasses
import platform
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from ppvad_jax.models import autoencoder
from ppvad_jax.pipelines.benchmarks import timing
from ppvad_jax.training import autoencoder as trainer
from ppvad_jax.training import common, optimizers

# Variant name -> (optimizer, gradient method).
VARIANTS = {"plain_autodiff": ("adam", "autodiff"), "plain_layerwise": ("adam", "layerwise"),
            "dp_layerwise": ("dpadam", "layerwise"), "dp_vmap": ("dpadam", "autodiff")}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Shape:
    batch_size: int  # units per step, all real
    height: int
    width: int
    dtype: str  # float32 | bfloat16
    microbatch_size: int  # DP microbatch; 0: the whole batch


def _step_config(base, optimizer, grad_method, shape):
    config = ml_collections.ConfigDict(base.to_dict())
    config.optimizer = optimizer
    config.grad_method = grad_method
    config.plain_grad_method = grad_method
    config.dp.microbatch_size = shape.microbatch_size or shape.batch_size
    config.dtype = shape.dtype
    config.dp.expected_batch_size = shape.batch_size
    return config


def time_variant(base, optimizer, grad_method, shape, repeats):
    """One variant's seconds per step, frames/s and first step with compilation."""
    config = _step_config(base, optimizer, grad_method, shape)
    mesh = common.make_mesh()
    model = autoencoder.Autoencoder(dtype=jnp.bfloat16 if shape.dtype == "bfloat16" else None)
    tx = optimizers.make(optimizer, 1e-4)
    frames_shape = (shape.batch_size, shape.height, shape.width, 3)
    params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, *frames_shape[1:])))["params"]
    state = jax.device_put(common.TrainState(jnp.int32(0), params, tx.init(params)), NamedSharding(mesh, P()))
    private = optimizers.is_private(optimizer)
    # Every unit of the batch real: a plan whose expected batch is the batch (N = 10 batches).
    plan = trainer.make_plan(config, 10 * shape.batch_size) if private else None
    step = trainer.make_train_step(
        model, tx, config, private=private, plan=plan, noise_key=jax.random.key(1), mesh=mesh
    )
    data = NamedSharding(mesh, P("data"))
    frames = common.to_global(np.random.default_rng(0).integers(0, 256, frames_shape, dtype=np.uint8), data)
    padding = common.to_global(np.zeros(frames_shape[0], bool), data)
    carry = {"state": state}

    def one_step():
        carry["state"], metrics = step(carry["state"], frames, padding)
        jax.block_until_ready(metrics)

    start = time.perf_counter()
    one_step()
    first = time.perf_counter() - start
    seconds = timing.median_seconds(one_step, repeats)
    return {"seconds_per_step": round(seconds, 3), "frames_per_s": round(shape.batch_size / seconds, 2),
            "first_step_with_compile_s": round(first, 1)}  # fmt: skip


def check_variants(names):
    """A ValueError naming what is known, for an unknown variant (before anything compiles)."""
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        raise ValueError(f"unknown --variants {unknown}; choose from {sorted(VARIANTS)}")


def run(base, names, shape, repeats):
    """The benchmark's JSON object: each named variant (``VARIANTS``) and their ratios.

    Args:
      base: an autoencoder config (``configs/autoencoder.py``); each variant sets its
        optimizer, gradient method, dtype and batch on a copy.
    """
    check_variants(names)
    out = {
        "machine": f"{platform.machine()}, {jax.device_count()} x {jax.devices()[0].device_kind}",
        "batch_size": shape.batch_size,
        "resolution": [shape.height, shape.width],
        "dtype": shape.dtype,
        "jax": jax.__version__,
    }
    for name in names:
        out[name] = time_variant(base, *VARIANTS[name], shape, repeats)
        print(f"{name}: {out[name]}", flush=True)

    def ratio(a, b, digits=3):
        if a in out and b in out:
            out[f"{a}_over_{b}"] = round(out[a]["seconds_per_step"] / out[b]["seconds_per_step"], digits)

    ratio("dp_layerwise", "plain_layerwise")
    ratio("dp_layerwise", "plain_autodiff")
    ratio("dp_vmap", "dp_layerwise", 2)
    return out
