"""Per-example gradients of convolutional nets at the cost of one batched backward pass.

``jax.vmap(jax.grad(...))`` is the reference, but on XLA's CPU backend the
per-example kernel gradients it produces lower to grouped convolutions that are
pathologically slow: several times the plain batched gradient on the paper's
autoencoder (BUILD_NOTES.md, "Autoencoder step time").

This module computes the same numbers layer by layer. One batched forward and
one batched backward pass, differentiated only with respect to zero "probes"
added to each layer's output, give every layer's input ``x`` and output
gradient ``g`` for every example (examples never interact: no BatchNorm). A
layer's per-example kernel gradient is then one batched matrix product
(``models.tap_conv.kernel_grad``, im2col windows or shifted output gradients
against ``g``): the same multiply-adds as the batched weight gradient, with no
grouped convolution.

Supported layers: ``flax.linen.Conv`` (any stride, "SAME" or "VALID", no
dilation or groups), ``flax.linen.Dense`` (their rules are here) and
``PhaseConvTranspose`` (its rule sits next to the layer, in ``phase_conv_transpose``).
A model with parameters outside those layers is rejected with a clear error,
so a new layer can never be silently left unclipped; use the vmap method there.
"""

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from ppvad_jax.models import phase_conv_transpose
from ppvad_jax.models.tap_conv import kernel_grad

SUPPORTED = (nn.Conv, nn.Dense, phase_conv_transpose.PhaseConvTranspose)


def _conv_padding(size, kernel, stride, out, padding):
    if padding == "VALID":
        return 0, 0
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _conv_grads(module, x, g):
    """Per-example grads of an nn.Conv: kernel [B, kh, kw, Cin, Cout], bias [B, Cout]."""
    kh, kw = module.kernel_size
    strides = module.strides or (1, 1)
    strides = (strides, strides) if isinstance(strides, int) else tuple(strides)
    if strides[0] != strides[1] or module.feature_group_count != 1 or module.padding not in ("SAME", "VALID"):
        raise NotImplementedError(f"layerwise per-example grads: unsupported conv {module.path}")
    if (module.kernel_dilation or 1) not in (1, (1, 1)) or (module.input_dilation or 1) not in (1, (1, 1)):
        raise NotImplementedError(f"layerwise per-example grads: dilated conv {module.path}")
    s = strides[0]
    out_h, out_w = g.shape[1], g.shape[2]
    ph = _conv_padding(x.shape[1], kh, s, out_h, module.padding)
    pw = _conv_padding(x.shape[2], kw, s, out_w, module.padding)
    grads = {"kernel": kernel_grad(x, g, (kh, kw), (s, s), (ph, pw), per_example=True)}
    if module.use_bias:
        grads["bias"] = g.sum(axis=(1, 2))
    return grads


def _dense_grads(module, x, g):
    x = x.reshape(x.shape[0], -1, x.shape[-1])
    g = g.reshape(g.shape[0], -1, g.shape[-1])
    grads = {"kernel": jnp.einsum("bti,bto->bio", x, g)}
    if module.use_bias:
        grads["bias"] = g.sum(axis=1)
    return grads


def _layer_grads(module, x, g):
    if isinstance(module, phase_conv_transpose.PhaseConvTranspose):
        return phase_conv_transpose.per_example_grads(module, x, g)
    if isinstance(module, nn.Conv):
        return _conv_grads(module, x, g)
    return _dense_grads(module, x, g)


def _set_path(tree, path, value):
    node = tree
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


@dataclasses.dataclass(frozen=True)
class _Layer:
    """A supported layer met in the forward pass: the module (unbound) and its output's shape."""

    module: nn.Module
    out_shape: tuple[int, ...]


def _is_layer_call(context) -> bool:
    return context.method_name == "__call__" and isinstance(context.module, SUPPORTED)


def _supported_layers(losses_fn, params, batch) -> dict[tuple[str, ...], _Layer]:
    """Every supported layer ``losses_fn`` applies, by module path, from one abstract trace."""
    layers = {}

    def record_shapes(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if _is_layer_call(context):
            layers[context.module.path] = _Layer(context.module.clone(parent=None), out.shape)
        return out

    with nn.intercept_methods(record_shapes):
        # A fresh function each time: eval_shape caches traces by function, and a cache hit
        # would skip the interceptor.
        jax.eval_shape(lambda p, b: losses_fn(p, b), params, batch)
    return layers


def _check_covered(layers, params) -> None:
    """Raises NotImplementedError when a parameter belongs to no supported layer."""
    covered = {path + (name,) for path in layers for name in ("kernel", "bias")}
    leaves = {tuple(k.key for k in path) for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]}
    if leaves - covered:
        raise NotImplementedError(
            f"layerwise per-example grads: unsupported parameters {sorted(leaves - covered)}"
        )


def _inputs_and_output_grads(losses_fn, params, batch, layers):
    """One batched forward and backward pass with a zero probe added to each layer's output:
    each layer's input, the gradient of the summed loss at its output, and the losses [B]."""

    def losses_with_probes(probes):
        inputs = {}

        def probe(next_fun, args, kwargs, context):
            out = next_fun(*args, **kwargs)
            if _is_layer_call(context):
                inputs[context.module.path] = args[0]
                out = out + probes[context.module.path].astype(out.dtype)
            return out

        with nn.intercept_methods(probe):
            losses = losses_fn(params, batch)
        return losses.sum(), (losses, inputs)

    probes = {path: jnp.zeros(layer.out_shape, jnp.float32) for path, layer in layers.items()}
    out_grads, (losses, inputs) = jax.grad(losses_with_probes, has_aux=True)(probes)
    return inputs, out_grads, losses


def per_example_grads(
    losses_fn: Callable[[Mapping[str, Any], Any], jax.Array],
    params: Mapping[str, Any],
    batch: Any,
    *,
    rows_per_example: int = 1,
) -> tuple[dict[str, Any], jax.Array]:
    """Per-example gradients and losses.

    Args:
      losses_fn: ``losses_fn(params, batch) -> [B]`` losses, the i-th depending only
        on example i. The model must be applied with ``module.apply`` inside it.
      params: the model's ``params`` collection.
      batch: whatever ``losses_fn`` takes.
      rows_per_example: when each example runs through the model as several rows
        (a clip of F frames folded into the batch axis), F: the rows' gradients
        are summed per example.

    Returns:
      ``(grads, losses)``: grads like params with a leading [B] axis, losses [B].

    Raises:
      NotImplementedError: a parameterised layer is not supported.
    """
    layers = _supported_layers(losses_fn, params, batch)
    _check_covered(layers, params)
    inputs, out_grads, losses = _inputs_and_output_grads(losses_fn, params, batch, layers)
    grads = {}
    for path, layer in layers.items():
        x = inputs[path].astype(jnp.float32)
        for name, value in _layer_grads(layer.module, x, out_grads[path]).items():
            if rows_per_example > 1:
                value = value.reshape(-1, rows_per_example, *value.shape[1:]).sum(axis=1)
            _set_path(grads, path + (name,), value)
    # Same structure (and key order) as params.
    grads = jax.tree.unflatten(jax.tree.structure(params), [
        _get(grads, tuple(k.key for k in p)) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]
    ])  # fmt: skip
    return grads, losses


def _get(tree, path):
    for key in path:
        tree = tree[key]
    return tree


def layerwise_grads_fn(
    losses_fn: Callable[[Mapping[str, Any], Any], jax.Array], rows_per_example: int = 1
) -> Callable[[Mapping[str, Any], Any], tuple[dict[str, Any], jax.Array]]:
    """A ``grads_fn(params, batch) -> (per-example grads, losses)`` for ``privacy.clipping``
    from a batched ``losses_fn(params, batch) -> [B]``, layer by layer."""

    def grads_fn(params, examples):
        return per_example_grads(losses_fn, params, examples, rows_per_example=rows_per_example)

    return grads_fn
