"""Per-example gradient clipping, for any loss.

``clipped_grad_sum`` computes, for every example of a batch, the gradient of
``loss_fn(params, example)``, scales it to L2 norm at most C (its global norm
over every parameter), zeroes padding and non-finite examples, and returns the
sum in float32. That sum is what the Gaussian mechanism privatises: adding or
removing one example changes it by at most C in L2 norm.

Two ways to get per-example gradients: ``vmap(grad)`` (any loss; the
reference) and ``per_example`` layer by layer (conv nets; about as fast as the
plain batched gradient). Memory is bounded by the microbatch: examples go
through in microbatches of ``microbatch_size`` under a ``lax.scan``, so at most that many
per-example gradients (and activations) exist at once. The result does not
depend on the microbatch size beyond float summation order.

Microbatch i holds examples i, i + n, i + 2n, ... (n microbatches): when the
batch is sharded over devices in contiguous blocks, every microbatch then
spans all devices and each scan step keeps every device busy.
"""

import dataclasses

import jax
import jax.numpy as jnp
import optax

from ppvad_jax.privacy import per_example

_TINY = 1e-12


@dataclasses.dataclass(frozen=True)
class ClipResult:
    """A registered pytree: the clipped gradient sum and what happened on the way."""

    grad_sum: object  # pytree like params, float32
    loss_sum: jax.Array  # sum of finite, non-padding losses
    num_examples: jax.Array  # non-padding examples
    num_clipped: jax.Array  # examples whose norm exceeded C
    num_nonfinite: jax.Array  # examples dropped for a NaN/inf loss or gradient
    max_norm: jax.Array  # largest unclipped finite norm (diagnostics only; not private)


jax.tree_util.register_dataclass(
    ClipResult,
    data_fields=["grad_sum", "loss_sum", "num_examples", "num_clipped", "num_nonfinite", "max_norm"],
    meta_fields=[],
)


def clip_one(grads, *, l2_clip_norm, keep=True):
    """Scales one example's gradients to global norm <= C; zeros if not ``keep`` or not finite.

    Returns ``(clipped grads in float32, norm, finite)``.
    """
    norm = optax.tree.norm(grads)
    finite = jnp.isfinite(norm)
    keep = jnp.logical_and(keep, finite)
    scale = jnp.where(keep, jnp.minimum(1.0, l2_clip_norm / jnp.maximum(norm, _TINY)), 0.0)
    # where(), not a product: 0 * NaN is NaN.
    clipped = jax.tree.map(lambda g: jnp.where(keep, g.astype(jnp.float32) * scale, 0.0), grads)
    return clipped, norm, finite


def _to_microbatches(batch, microbatch_size):
    """[B, ...] -> [n, m, ...] with microbatch i = examples i, i+n, i+2n, ..."""

    def split(x):
        b = x.shape[0]
        if b % microbatch_size:
            raise ValueError(f"batch size {b} is not a multiple of microbatch_size {microbatch_size}")
        n = b // microbatch_size
        return jnp.swapaxes(x.reshape(microbatch_size, n, *x.shape[1:]), 0, 1)

    return jax.tree.map(split, batch)


def _clip_and_sum(grads, losses, pads, l2_clip_norm):
    """Clips a microbatch of per-example grads ([m, ...] leaves) and sums them (float32)."""

    def one(g, loss, pad):
        keep = jnp.logical_and(jnp.logical_not(pad), jnp.isfinite(loss))
        clipped, norm, finite = clip_one(g, l2_clip_norm=l2_clip_norm, keep=keep)
        used = jnp.logical_and(keep, finite)
        real = jnp.logical_not(pad)
        stats = (
            jnp.where(used, loss, 0.0).astype(jnp.float32),
            real.astype(jnp.int32),
            jnp.logical_and(used, norm > l2_clip_norm).astype(jnp.int32),
            jnp.logical_and(real, jnp.logical_not(used)).astype(jnp.int32),
            jnp.where(used, norm, 0.0).astype(jnp.float32),
        )
        return clipped, stats

    clipped, (loss, count, num_clipped, nonfinite, norms) = jax.vmap(one)(grads, losses, pads)
    summed = jax.tree.map(lambda g: g.sum(axis=0), clipped)
    return summed, (loss.sum(), count.sum(), num_clipped.sum(), nonfinite.sum(), norms.max())


def _scan_microbatches(grads_fn, params, batch, is_padding, *, l2_clip_norm, microbatch_size):
    """Runs ``grads_fn(microbatch) -> (per-example grads, losses)`` over microbatches.

    Returns the ClipResult of the summed clipped gradients.
    """
    batch_size = is_padding.shape[0]
    microbatch_size = batch_size if microbatch_size is None else microbatch_size

    def body(carry, micro):
        examples, pads = micro
        grads, losses = grads_fn(examples)
        summed, stats = _clip_and_sum(grads, losses, pads, l2_clip_norm)
        grad_sum, loss_sum, n, c, nf, mx = carry
        grad_sum = jax.tree.map(jnp.add, grad_sum, summed)
        return (grad_sum, loss_sum + stats[0], n + stats[1], c + stats[2], nf + stats[3],
                jnp.maximum(mx, stats[4])), None  # fmt: skip

    zeros = jax.tree.map(lambda p: jnp.zeros(p.shape, jnp.float32), params)
    init = (zeros, jnp.float32(0), jnp.int32(0), jnp.int32(0), jnp.int32(0), jnp.float32(0))
    micro = _to_microbatches((batch, is_padding), microbatch_size)
    (grad_sum, loss_sum, n, c, nf, mx), _ = jax.lax.scan(body, init, micro)
    return ClipResult(grad_sum, loss_sum, n, c, nf, mx)


def clipped_grad_sum(loss_fn, params, batch, is_padding, *, l2_clip_norm, microbatch_size=None):
    """Sum over examples of per-example clipped gradients, per-example grads by ``vmap(grad)``.

    Args:
      loss_fn: ``loss_fn(params, example) -> scalar`` for ONE example (no batch axis).
      params: pytree of parameters.
      batch: pytree of arrays with a leading batch axis B.
      is_padding: bool [B]; padding examples contribute exactly nothing.
      l2_clip_norm: C.
      microbatch_size: examples per vmap; B must be a multiple. None: all of B at once.

    Returns:
      ClipResult.
    """

    def grads_fn(examples):
        losses, grads = jax.vmap(jax.value_and_grad(loss_fn), in_axes=(None, 0))(params, examples)
        return grads, losses

    return _scan_microbatches(
        grads_fn, params, batch, is_padding, l2_clip_norm=l2_clip_norm, microbatch_size=microbatch_size
    )


def clipped_grad_sum_layerwise(
    losses_fn, params, batch, is_padding, *, l2_clip_norm, microbatch_size=None, rows_per_example=1
):
    """The same sum, with per-example grads computed layer by layer (``per_example``).

    Args:
      losses_fn: ``losses_fn(params, batch) -> [B]`` per-example losses of a batch.
      rows_per_example: see ``per_example.per_example_grads``.
    """

    def grads_fn(examples):
        return per_example.per_example_grads(losses_fn, params, examples, rows_per_example=rows_per_example)

    return _scan_microbatches(
        grads_fn, params, batch, is_padding, l2_clip_norm=l2_clip_norm, microbatch_size=microbatch_size
    )
