"""Step-time benchmark of the autoencoder: non-private vs DP, in one run; prints JSON.

  python -m launch.benchmark_dp --batch_size=16 --height=240 --width=320 [--dtype=float32] [--vmap]

Times full optimizer steps (the trainer's own jitted step, Adam vs DP-Adam with
every unit of the batch real, no padding), median of --repeats after one
warm-up step that includes compilation (reported separately):
- ``plain_autodiff``: jax.grad, the textbook non-private step;
- ``plain_layerwise``: the non-private step the trainer uses;
- ``dp_layerwise``: per-example clipping + noise, the trainer's DP step;
- ``dp_vmap`` (with --vmap): the same with vmap(grad) per-example gradients.
"""

import json
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from configs import autoencoder as ae_config
from ppvad_jax.models import autoencoder
from ppvad_jax.training import autoencoder as trainer
from ppvad_jax.training import common, optimizers

_BATCH = flags.DEFINE_integer("batch_size", 16, "Units per step (all real).")
_HEIGHT = flags.DEFINE_integer("height", 240, "Frame height.")
_WIDTH = flags.DEFINE_integer("width", 320, "Frame width.")
_DTYPE = flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "Compute dtype.")
_MICRO = flags.DEFINE_integer("microbatch_size", 0, "DP microbatch; 0: the whole batch.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed steps per variant.")
_VMAP = flags.DEFINE_bool("vmap", False, "Also time DP with vmap(grad) per-example gradients (slow on CPU).")
_VARIANTS = flags.DEFINE_list(
    "variants",
    ["plain_autodiff", "plain_layerwise", "dp_layerwise"],
    "Which steps to time (each compiles its own program: on a GPU, compilation dominates a short run).",
)


def time_variant(optimizer, grad_method):
    config = ae_config.get_config(f"optimizer={optimizer}")
    config.grad_method = grad_method
    config.plain_grad_method = grad_method
    config.dp.microbatch_size = _MICRO.value or _BATCH.value
    config.dtype = _DTYPE.value
    config.dp.expected_batch_size = _BATCH.value
    mesh = common.make_mesh()
    model = autoencoder.Autoencoder(dtype=jnp.bfloat16 if _DTYPE.value == "bfloat16" else None)
    tx = optimizers.make(optimizer, 1e-4)
    shape = (_BATCH.value, _HEIGHT.value, _WIDTH.value, 3)
    params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, *shape[1:])))["params"]
    state = jax.device_put(common.TrainState(jnp.int32(0), params, tx.init(params)), NamedSharding(mesh, P()))
    private = optimizers.is_private(optimizer)
    # Every unit of the batch real: a plan whose expected batch is the batch (N = 10 batches).
    plan = trainer.make_plan(config, 10 * _BATCH.value) if private else None
    step = trainer.make_train_step(
        model, tx, config, private=private, plan=plan, noise_key=jax.random.key(1), mesh=mesh
    )
    data = NamedSharding(mesh, P("data"))
    frames = common.to_global(np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8), data)
    padding = common.to_global(np.zeros(shape[0], bool), data)
    start = time.perf_counter()
    state, metrics = step(state, frames, padding)
    jax.block_until_ready(metrics)
    first = time.perf_counter() - start
    times = []
    for _ in range(_REPEATS.value):
        start = time.perf_counter()
        state, metrics = step(state, frames, padding)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    return {"seconds_per_step": round(seconds, 3), "frames_per_s": round(_BATCH.value / seconds, 2),
            "first_step_with_compile_s": round(first, 1)}  # fmt: skip


def main(argv):
    del argv
    out = {
        "machine": f"{platform.machine()}, {jax.device_count()} x {jax.devices()[0].device_kind}",
        "batch_size": _BATCH.value,
        "resolution": [_HEIGHT.value, _WIDTH.value],
        "dtype": _DTYPE.value,
        "jax": jax.__version__,
    }
    known = {"plain_autodiff": ("adam", "autodiff"), "plain_layerwise": ("adam", "layerwise"),
             "dp_layerwise": ("dpadam", "layerwise"), "dp_vmap": ("dpadam", "autodiff")}  # fmt: skip
    names = list(_VARIANTS.value) + (["dp_vmap"] if _VMAP.value and "dp_vmap" not in _VARIANTS.value else [])
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise app.UsageError(f"unknown --variants {unknown}; choose from {sorted(known)}")
    for name in names:
        out[name] = time_variant(*known[name])
        print(f"{name}: {out[name]}", flush=True)

    def ratio(a, b, digits=3):
        if a in out and b in out:
            out[f"{a}_over_{b}"] = round(out[a]["seconds_per_step"] / out[b]["seconds_per_step"], digits)

    ratio("dp_layerwise", "plain_layerwise")
    ratio("dp_layerwise", "plain_autodiff")
    ratio("dp_vmap", "dp_layerwise", 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    app.run(main)
