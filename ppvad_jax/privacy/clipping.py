"""Per-example gradient clipping, for any loss.

``clipped_grad_sum`` computes, for every example of a batch, the gradient of
``loss_fn(params, example)``, scales it to L2 norm at most C (its global norm
over every parameter), zeroes padding and non-finite examples, and returns the
sum in float32. That sum is what the Gaussian mechanism privatises: adding or
removing one example changes it by at most C in L2 norm.

``clipped_sum`` takes any ``grads_fn(params, examples) -> (per-example grads,
losses)``: ``vmap_grads_fn`` (any loss; the reference), or a faster one a model
provides (``models.per_example.layerwise_grads_fn`` for conv nets, about as fast as the
plain batched gradient). Nothing here knows any model. The ClipResult's counts
(loss sum, clipped and non-finite examples) are statistics of private data:
trainers never publish them from a private run. The result does not depend on
the microbatch size beyond float summation order.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
import optax.microbatching

_TINY = 1e-12
PyTree = Any
# (params, examples) -> (per-example gradients with a leading axis, per-example losses)
GradsFn = Callable[[PyTree, PyTree], tuple[PyTree, jax.Array]]


@dataclasses.dataclass(frozen=True)
class ClipResult:
    """A registered pytree: the clipped gradient sum and what happened on the way."""

    grad_sum: object  # pytree like params, float32
    loss_sum: jax.Array  # sum of finite, non-padding losses
    num_examples: jax.Array  # non-padding examples
    num_clipped: jax.Array  # examples whose norm exceeded C
    num_nonfinite: jax.Array  # examples dropped for a NaN/inf loss or gradient


jax.tree_util.register_dataclass(
    ClipResult,
    data_fields=["grad_sum", "loss_sum", "num_examples", "num_clipped", "num_nonfinite"],
    meta_fields=[],
)


def clip_one(
    grads: PyTree, *, l2_clip_norm: float, keep: bool | jax.Array = True
) -> tuple[PyTree, jax.Array, jax.Array]:
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


def _clip_and_sum(grads, losses, pads, l2_clip_norm):
    """The ClipResult of one microbatch of per-example grads ([m, ...] leaves), summed in float32."""

    def one(g, loss, pad):
        keep = jnp.logical_and(jnp.logical_not(pad), jnp.isfinite(loss))
        clipped, norm, finite = clip_one(g, l2_clip_norm=l2_clip_norm, keep=keep)
        used = jnp.logical_and(keep, finite)
        real = jnp.logical_not(pad)
        return ClipResult(
            grad_sum=clipped,
            loss_sum=jnp.where(used, loss, 0.0).astype(jnp.float32),
            num_examples=real.astype(jnp.int32),
            num_clipped=jnp.logical_and(used, norm > l2_clip_norm).astype(jnp.int32),
            num_nonfinite=jnp.logical_and(real, jnp.logical_not(used)).astype(jnp.int32),
        )

    return jax.tree.map(lambda a: a.sum(axis=0), jax.vmap(one)(grads, losses, pads))


def clipped_sum(
    grads_fn: GradsFn, params: PyTree, batch: PyTree, is_padding: jax.Array, *, l2_clip_norm: float,
    microbatch_size: int | None = None,
) -> ClipResult:  # fmt: skip
    """Sum over examples of per-example gradients clipped to global norm C, for any loss.

    Args:
      grads_fn: ``grads_fn(params, examples) -> (per-example grads [m, ...] leaves, losses [m])``
        (``vmap_grads_fn``, or ``models.per_example.layerwise_grads_fn``).
      params: pytree of parameters.
      batch: pytree of arrays with a leading batch axis B.
      is_padding: bool [B]; padding examples contribute exactly nothing.
      l2_clip_norm: C.
      microbatch_size: examples per ``grads_fn`` call (B must be a multiple); None: all of B.

    Returns:
      ClipResult. Adding or removing one example moves ``grad_sum`` by at most C.

    Microbatches run one after another under ``optax.microbatching`` (a ``fori_loop``), so
    at most ``microbatch_size`` per-example gradients exist at once. Microbatch i holds
    examples i, i + n, i + 2n, ... (n microbatches): a batch sharded over devices in
    contiguous blocks keeps every device busy in every microbatch. A microbatch that is all
    padding is skipped (``lax.cond``: a Poisson batch padded to its bucket is often a
    quarter padding, measured on the demo's runs).
    """
    if microbatch_size is not None and is_padding.shape[0] % microbatch_size:
        raise ValueError(
            f"batch size {is_padding.shape[0]} is not a multiple of microbatch_size {microbatch_size}"
        )
    zeros = jax.tree.map(lambda p: jnp.zeros(p.shape, jnp.float32), params)

    def one_microbatch(examples, pads):
        def compute(_):
            grads, losses = grads_fn(params, examples)
            return _clip_and_sum(grads, losses, pads, l2_clip_norm)

        def skip(_):
            int0 = jnp.int32(0)
            return ClipResult(zeros, jnp.float32(0), int0, int0, int0)

        return jax.lax.cond(jnp.all(pads), skip, compute, None)

    summed = optax.microbatching.microbatch(one_microbatch, argnums=(0, 1), microbatch_size=microbatch_size)
    return summed(batch, is_padding)


def vmap_grads_fn(loss_fn: Callable[[PyTree, PyTree], jax.Array]) -> GradsFn:
    """``grads_fn`` from a one-example ``loss_fn(params, example) -> scalar``, by ``vmap(grad)``."""

    def grads_fn(params, examples):
        losses, grads = jax.vmap(jax.value_and_grad(loss_fn), in_axes=(None, 0))(params, examples)
        return grads, losses

    return grads_fn


def clipped_grad_sum(
    loss_fn: Callable[[PyTree, PyTree], jax.Array], params: PyTree, batch: PyTree, is_padding: jax.Array, *,
    l2_clip_norm: float, microbatch_size: int | None = None,
) -> ClipResult:  # fmt: skip
    """``clipped_sum`` with per-example grads by ``vmap(grad)`` of a one-example ``loss_fn``."""
    return clipped_sum(
        vmap_grads_fn(loss_fn), params, batch, is_padding, l2_clip_norm=l2_clip_norm,
        microbatch_size=microbatch_size,
    )  # fmt: skip
