"""The privatizer: per-example clipping, then Gaussian noise once, for any loss.

DP-SGD, DP-Adam and DP-Adagrad are this function followed by ``optax.sgd``,
``optax.adam`` or ``optax.adagrad`` on its output (``training.optimizers``).
"""

from ppvad_jax.privacy import clipping, noise


def dp_gradient(
    loss_fn,
    params,
    batch,
    is_padding,
    rng_noise,
    *,
    noise_multiplier,
    l2_clip_norm,
    expected_batch_size,
    microbatch_size=None,
    losses_fn=None,
    rows_per_example=1,
):
    """A differentially private gradient estimate.

    Args:
      loss_fn: ``loss_fn(params, unit) -> scalar`` for one unit of privacy
        (a frame, or a clip of frames of one video).
      batch: pytree with a leading axis over units (a padded Poisson batch).
      is_padding: bool [B].
      rng_noise: the step's noise key; identical on every device.
      expected_batch_size: q * N, the divisor (see ``noise.privatize``).
      losses_fn: optional batched ``losses_fn(params, batch) -> [B]``, the same
        losses as ``loss_fn`` unit by unit; when given, per-example gradients are
        computed layer by layer (``per_example``), much faster for conv nets.
      rows_per_example: model rows per unit for ``losses_fn`` (frames per clip).

    Returns:
      ``(grads, clip_result)``: the noisy mean gradient (float32 pytree) and
      the ``clipping.ClipResult`` of the clipped sum.
    """
    if losses_fn is None:
        clipped = clipping.clipped_grad_sum(
            loss_fn, params, batch, is_padding, l2_clip_norm=l2_clip_norm, microbatch_size=microbatch_size
        )
    else:
        clipped = clipping.clipped_grad_sum_layerwise(
            losses_fn, params, batch, is_padding, l2_clip_norm=l2_clip_norm,
            microbatch_size=microbatch_size, rows_per_example=rows_per_example,
        )  # fmt: skip
    grads = noise.privatize(
        clipped.grad_sum,
        rng_noise,
        noise_multiplier=noise_multiplier,
        l2_clip_norm=l2_clip_norm,
        expected_batch_size=expected_batch_size,
    )
    return grads, clipped
