"""K sweep points as one vmapped program against the same K points one by one, in one run.

For each K: the one-by-one baseline compiles the point's step once (every point of a sweep
shares it: sigma and the key are arguments) and runs K x ``steps`` steps; the vectorised path
compiles ``training.vectorized.stacked_step`` for K and runs ``steps`` steps of all K. Reported:
compile (first call) and steady seconds per step, wall per point for ``steps`` steps, and the
speed-up. DP-Adam, the trainer's layerwise DP step, every unit real, at the runlocal size.
"""

import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from ppvad_jax.models import autoencoder
from ppvad_jax.pipelines.benchmarks import timing
from ppvad_jax.training import autoencoder as trainer
from ppvad_jax.training import common, optimizers, vectorized


def _setup(config, batch, height, width):
    config.dp.expected_batch_size = batch
    config.dp.microbatch_size = batch
    model = autoencoder.Autoencoder(features=tuple(config.model_features))
    tx = optimizers.make(config.optimizer, config.learning_rate)
    plan = trainer.make_plan(config, 10 * batch)
    params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, height, width, 3)))["params"]
    return model, tx, plan, common.TrainState(jnp.int32(0), params, tx.init(params))


def run(config, ks, *, batch, height, width, steps):
    """``{"points": {K: {...}}, ...}`` for each K in ``ks``."""
    model, tx, plan, state = _setup(config, batch, height, width)
    frames = np.random.default_rng(0).integers(0, 256, (batch, height, width, 3), dtype=np.uint8)
    padding = np.zeros(batch, bool)
    single = jax.jit(trainer.make_step_fn(model, tx, config, private=True, plan=plan))
    carry = {"s": state}

    def one():
        carry["s"], m = single(carry["s"], frames, padding, jnp.float32(1.0), jax.random.key(1))
        jax.block_until_ready(m)

    one_step, one_compile = timing.first_and_median_seconds(one, steps)
    out = {"batch": batch, "height": height, "width": width, "steps": steps, "devices": jax.device_count(),
           "backend": jax.default_backend(), "machine": platform.processor() or platform.machine(),
           "one_by_one": {"compile_s": one_compile, "step_s": one_step}, "points": {}}  # fmt: skip
    for k in ks:
        step = vectorized.stacked_step(model, tx, config, private=True, plan=plan)
        box = {"s": vectorized.stack([state] * k)}
        args = (np.stack([frames] * k), np.stack([padding] * k), jnp.linspace(0.5, 2.0, k),
                jax.random.split(jax.random.key(2), k))  # fmt: skip

        def together(box=box, step=step, args=args):
            box["s"], m = step(box["s"], *args)
            jax.block_until_ready(m)

        start = time.perf_counter()
        vec_step, vec_compile = timing.first_and_median_seconds(together, steps)
        baseline_wall = one_compile + k * steps * one_step  # the same K points one by one
        vec_wall = vec_compile + steps * vec_step
        out["points"][k] = {
            "vectorized_compile_s": vec_compile, "vectorized_step_s": vec_step,
            "vectorized_wall_per_point_s": vec_wall / k, "one_by_one_wall_per_point_s": baseline_wall / k,
            "speedup": baseline_wall / vec_wall, "step_speedup": k * one_step / vec_step,
            "measured_s": time.perf_counter() - start,
        }  # fmt: skip
    return out
