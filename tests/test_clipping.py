"""Per-example clipping: bounds, independence of microbatching, padding, NaNs, both methods."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ppvad_jax.models import autoencoder, per_example
from ppvad_jax.privacy import clipping


class TinyNet(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(4, (3, 3), strides=(2, 2), padding="SAME")(x))
        x = nn.relu(nn.Conv(3, (3, 3), padding="VALID")(x))
        return nn.Dense(2)(x.reshape(x.shape[0], -1))


@pytest.fixture(scope="module")
def tiny():
    model = TinyNet()
    x = jax.random.normal(jax.random.key(0), (12, 8, 8, 3))
    y = jax.random.normal(jax.random.key(1), (12, 2))
    params = model.init(jax.random.key(2), x[:1])["params"]

    def loss_fn(p, ex):
        xi, yi = ex
        return jnp.sum(jnp.square(model.apply({"params": p}, xi[None])[0] - yi))

    def losses_fn(p, batch):
        xb, yb = batch
        return jnp.sum(jnp.square(model.apply({"params": p}, xb) - yb), axis=1)

    return params, (x, y), loss_fn, losses_fn


def reference_sum(loss_fn, params, batch, keep, clip):
    """Python loop over examples, jax.grad per example: an independent reference."""
    total = jax.tree.map(jnp.zeros_like, params)
    grad_fn = jax.jit(jax.grad(loss_fn))
    for i in np.flatnonzero(keep):
        g = grad_fn(params, jax.tree.map(lambda a, i=i: a[i], batch))
        norm = optax.tree.norm(g)
        g = jax.tree.map(lambda t, norm=norm: t * jnp.minimum(1.0, clip / norm), g)
        total = jax.tree.map(jnp.add, total, g)
    return total


def assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def _layerwise_sum(losses_fn, params, batch, is_padding, **kwargs):
    """Clipping (privacy/) over the models' layerwise per-example gradients (models/)."""
    return clipping.clipped_sum(
        per_example.layerwise_grads_fn(losses_fn), params, batch, is_padding, **kwargs
    )


@pytest.mark.parametrize("microbatch_size", [1, 4, 12])
def test_matches_reference_for_any_microbatch(tiny, microbatch_size):
    params, batch, loss_fn, losses_fn = tiny
    pad = jnp.zeros(12, bool)
    want = reference_sum(loss_fn, params, batch, np.ones(12, bool), 0.1)
    got = clipping.clipped_grad_sum(
        loss_fn, params, batch, pad, l2_clip_norm=0.1, microbatch_size=microbatch_size
    )
    assert_trees_close(got.grad_sum, want)
    layerwise = _layerwise_sum(
        losses_fn, params, batch, pad, l2_clip_norm=0.1, microbatch_size=microbatch_size
    )
    assert_trees_close(layerwise.grad_sum, want)
    assert int(got.num_examples) == 12 and int(got.num_clipped) == int(layerwise.num_clipped)


def test_every_contribution_is_bounded(tiny):
    params, batch, loss_fn, _ = tiny
    clip_one_example = jax.jit(
        lambda p, ex: clipping.clipped_grad_sum(loss_fn, p, ex, jnp.zeros(1, bool), l2_clip_norm=0.05)
    )
    for i in range(12):
        one = jax.tree.map(lambda a, i=i: a[i : i + 1], batch)
        result = clip_one_example(params, one)
        assert float(optax.tree.norm(result.grad_sum)) <= 0.05 * (1 + 1e-5)
    # A huge example is scaled down to exactly C.
    result = clip_one_example(params, (batch[0][:1] * 1e3, batch[1][:1] * 1e3))
    assert float(optax.tree.norm(result.grad_sum)) == pytest.approx(0.05, rel=1e-5)
    assert int(result.num_clipped) == 1


def test_padding_contributes_exactly_nothing(tiny):
    params, (x, y), loss_fn, losses_fn = tiny
    pad = jnp.arange(12) >= 7
    garbage_x = x.at[7:].set(1e6)  # whatever sits in padding rows must not matter
    for fn, fn_loss in (
        (clipping.clipped_grad_sum, loss_fn),
        (_layerwise_sum, losses_fn),
    ):
        a = fn(fn_loss, params, (x, y), pad, l2_clip_norm=0.1, microbatch_size=4)
        b = fn(fn_loss, params, (garbage_x, y), pad, l2_clip_norm=0.1, microbatch_size=4)
        assert_trees_close(a.grad_sum, b.grad_sum, rtol=0, atol=0)
        assert int(a.num_examples) == 7
    want = reference_sum(loss_fn, params, (x, y), ~np.asarray(pad), 0.1)
    assert_trees_close(a.grad_sum, want)


def test_a_nan_example_is_zeroed_and_counted(tiny):
    params, (x, y), loss_fn, losses_fn = tiny
    bad = x.at[3].set(jnp.nan)
    keep = np.ones(12, bool)
    keep[3] = False
    want = reference_sum(loss_fn, params, (x, y), keep, 0.1)
    for fn, fn_loss in (
        (clipping.clipped_grad_sum, loss_fn),
        (_layerwise_sum, losses_fn),
    ):
        result = fn(fn_loss, params, (bad, y), jnp.zeros(12, bool), l2_clip_norm=0.1, microbatch_size=4)
        assert int(result.num_nonfinite) == 1
        assert all(bool(jnp.isfinite(leaf).all()) for leaf in jax.tree.leaves(result.grad_sum))
        assert_trees_close(result.grad_sum, want)


def test_layerwise_per_example_grads_equal_vmap_on_the_autoencoder():
    model = autoencoder.Autoencoder(features=(12, 8, 4))  # the paper's layers, narrower
    frames = jax.random.uniform(jax.random.key(0), (3, 16, 24, 3))
    params = model.init(jax.random.key(1), frames[:1])["params"]

    def losses(p, xs):
        return jnp.mean(jnp.square(model.apply({"params": p}, xs) - xs), axis=(1, 2, 3))

    got, got_losses = jax.jit(lambda p, f: per_example.per_example_grads(losses, p, f))(params, frames)
    want = jax.jit(jax.vmap(jax.grad(lambda p, xi: losses(p, xi[None])[0]), (None, 0)))(params, frames)
    assert jax.tree.structure(got) == jax.tree.structure(want)
    assert_trees_close(got, want, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(got_losses, losses(params, frames), rtol=1e-6)


def test_layerwise_clips_rows_grouped_into_clips():
    """A unit of several frames (a video clip): grads of its rows are summed before clipping."""
    model = autoencoder.Autoencoder(features=(12, 8, 4))
    clips = jax.random.uniform(jax.random.key(0), (2, 3, 8, 8, 3))  # 2 clips of 3 frames
    params = model.init(jax.random.key(1), clips[0])["params"]

    def clip_losses(p, units):
        rows = units.reshape(-1, 8, 8, 3)
        per_row = jnp.mean(jnp.square(model.apply({"params": p}, rows) - rows), axis=(1, 2, 3))
        return per_row.reshape(units.shape[0], -1).mean(axis=1)

    got, _ = jax.jit(lambda p, c: per_example.per_example_grads(clip_losses, p, c, rows_per_example=3))(
        params, clips
    )
    want = jax.jit(jax.vmap(jax.grad(lambda p, u: clip_losses(p, u[None])[0]), (None, 0)))(params, clips)
    assert_trees_close(got, want, rtol=1e-4, atol=1e-9)


def test_unsupported_layers_are_refused():
    class WithNorm(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.LayerNorm()(nn.Dense(3)(x))

    model = WithNorm()
    x = jnp.ones((2, 4))
    params = model.init(jax.random.key(0), x)["params"]
    with pytest.raises(NotImplementedError, match="LayerNorm"):
        per_example.per_example_grads(lambda p, b: model.apply({"params": p}, b).sum(axis=1), params, x)
