"""K sweep points in one vmapped step equal each point trained alone (``training.vectorized``)."""

import jax
import numpy as np
import pytest

from configs import autoencoder as autoencoder_config
from ppvad_jax.models import autoencoder as autoencoder_model
from ppvad_jax.training import autoencoder as ae_trainer
from ppvad_jax.training import optimizers, vectorized

STEPS, B, H, W = 3, 8, 48, 64


def _setup(optimizer):
    config = autoencoder_config.get_config(f"optimizer={optimizer},runlocal=True")
    config.data.height, config.data.width = H, W
    config.model_features = (16, 8, 4)
    config.dp.expected_batch_size, config.dp.microbatch_size = 4, 2
    model = autoencoder_model.Autoencoder(features=tuple(config.model_features))
    tx = optimizers.make(config.optimizer, config.learning_rate)
    private = optimizers.is_private(optimizer)
    plan = ae_trainer.make_plan(config, num_units=64) if private else None
    state, _ = ae_trainer.create_train_state(config, model, tx, private=private)
    return config, model, tx, plan, state


def _inputs(k, seed):
    """Each point's own batches (random frames) and padding (1-3 padded rows per batch)."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (STEPS, k, B, H, W, 3), dtype=np.uint8)
    padding = np.zeros((STEPS, k, B), bool)
    for t in range(STEPS):
        for m in range(k):
            padding[t, m, B - 1 - rng.integers(0, 3) :] = True
    return frames, padding


def _alone_and_together(optimizer, k, *, poison=None):
    config, model, tx, plan, state = _setup(optimizer)
    sigmas = np.linspace(0.5, 2.0, k).astype(np.float32)
    keys = [jax.random.key(100 + m) for m in range(k)]
    frames, padding = _inputs(k, seed=k)
    starts = [state] * k
    if poison is not None:  # one point diverged: its weights are NaN from the start
        starts[poison] = jax.tree.map(lambda x: x * np.nan if x.dtype.kind == "f" else x, state)
    step = jax.jit(ae_trainer.make_step_fn(model, tx, config, private=plan is not None, plan=plan))
    alone = []
    for m in range(k):
        s = starts[m]
        for t in range(STEPS):
            s, _ = step(s, frames[t, m], padding[t, m], sigmas[m], keys[m])
        alone.append(s)
    together = vectorized.stacked_step(model, tx, config, private=plan is not None, plan=plan)
    states = vectorized.stack(starts)
    stacked_keys = jax.numpy.stack(keys)
    for t in range(STEPS):
        states, metrics = together(states, frames[t], padding[t], sigmas, stacked_keys)
    return alone, states, metrics


def _assert_equal(alone, states, skip=()):
    for m, single in enumerate(alone):
        if m in skip:
            continue
        got = vectorized.unstack(states, m)
        assert int(got.step) == int(single.step) == STEPS
        for a, b in zip(jax.tree.leaves(got.params), jax.tree.leaves(single.params), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("k", [1, pytest.param(3, marks=pytest.mark.slow)])  # FAST=1 stays under 3 min
def test_each_dp_model_of_a_vectorised_step_equals_its_point_alone(k):
    alone, states, metrics = _alone_and_together("dpadam", k)
    _assert_equal(alone, states)
    assert metrics["grad_norm"].shape == (k,)
    if k > 1:  # the points really differ (own sigma, key, batches): not one model copied K times
        a, b = (np.asarray(jax.tree.leaves(vectorized.unstack(states, m).params)[0]) for m in (0, 1))
        assert not np.allclose(a, b)


@pytest.mark.slow
def test_eight_models_and_a_diverged_one_leaves_the_others_untouched():
    alone, states, metrics = _alone_and_together("dpadam", 8, poison=5)
    _assert_equal(alone, states, skip={5})
    leaves = jax.tree.leaves(vectorized.unstack(states, 5).params)
    assert all(np.isnan(np.asarray(x)).all() for x in leaves)
    assert np.isfinite(np.delete(np.asarray(metrics["grad_norm"]), 5)).all()


def test_padding_to_a_common_batch_marks_the_new_rows_padded():
    batches = [np.ones((4, 2, 2, 3), np.uint8), 2 * np.ones((8, 2, 2, 3), np.uint8)]
    masks = [np.array([0, 0, 0, 1], bool), np.zeros(8, bool)]
    frames, padding = vectorized.pad_batches(batches, masks)
    assert frames.shape == (2, 8, 2, 2, 3) and padding.shape == (2, 8)
    assert padding[0].tolist() == [False, False, False, True, True, True, True, True]
    assert not padding[1].any() and (frames[1] == 2).all()
