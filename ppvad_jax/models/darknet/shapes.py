"""Per-layer output shapes of a parsed cfg, with the consistency checks darknet makes at load.

Used by the weights reader (a convolution's input channels fix its kernel size in the file)
and by the network (to fail before tracing, naming the cfg line, rather than deep in XLA).
Spatial sizes follow darknet's integer formulas:
- convolutional: (in + 2 * padding - size) // stride + 1
- maxpool: (in + padding - size) // stride + 1
- upsample: in * stride
"""

from __future__ import annotations

import dataclasses

from ppvad_jax.models.darknet import cfg


@dataclasses.dataclass(frozen=True)
class Shape:
    height: int
    width: int
    channels: int


def _error(config: cfg.DarknetConfig, layer, message: str) -> cfg.CfgError:
    kind = type(layer).__name__.lower()
    return cfg.CfgError(f"{config.source}:{layer.line}: layer {layer.index} ({kind}): {message}")


def infer_shapes(
    config: cfg.DarknetConfig, *, height: int | None = None, width: int | None = None
) -> list[Shape]:
    """Output shape of every layer for an input of ``height`` x ``width`` (default: the cfg's).

    Raises:
      cfg.CfgError: inputs of a route with different spatial sizes, a shortcut of mismatched
        shapes, a yolo layer whose input channels are not len(mask) * (5 + classes), channels
        not divisible by groups, or a layer whose output would be empty.
    """
    current = Shape(height or config.net.height, width or config.net.width, config.net.channels)
    shapes: list[Shape] = []
    for layer in config.layers:
        if isinstance(layer, cfg.Convolutional):
            if current.channels % layer.groups:
                raise _error(config, layer, f"{current.channels} input channels not divisible by groups")
            h = (current.height + 2 * layer.padding - layer.size) // layer.stride + 1
            w = (current.width + 2 * layer.padding - layer.size) // layer.stride + 1
            current = Shape(h, w, layer.filters)
        elif isinstance(layer, cfg.MaxPool):
            h = (current.height + layer.padding - layer.size) // layer.stride + 1
            w = (current.width + layer.padding - layer.size) // layer.stride + 1
            current = Shape(h, w, current.channels)
        elif isinstance(layer, cfg.Upsample):
            current = Shape(current.height * layer.stride, current.width * layer.stride, current.channels)
        elif isinstance(layer, cfg.Route):
            inputs = [shapes[i] for i in layer.layers]
            if any((s.height, s.width) != (inputs[0].height, inputs[0].width) for s in inputs):
                sizes = ", ".join(
                    f"layer {i}: {s.height}x{s.width}" for i, s in zip(layer.layers, inputs, strict=True)
                )
                raise _error(config, layer, f"inputs differ in spatial size ({sizes})")
            if any(s.channels % layer.groups for s in inputs):
                raise _error(config, layer, f"input channels not divisible by groups={layer.groups}")
            channels = sum(s.channels // layer.groups for s in inputs)
            current = Shape(inputs[0].height, inputs[0].width, channels)
        elif isinstance(layer, cfg.Shortcut):
            if shapes[layer.source] != current:
                raise _error(
                    config, layer, f"adds layer {layer.source} of shape {shapes[layer.source]} to {current}"
                )
        elif isinstance(layer, cfg.Yolo):
            expected = len(layer.mask) * (5 + layer.classes)
            if current.channels != expected:
                raise _error(
                    config,
                    layer,
                    f"input has {current.channels} channels, len(mask) * (5 + classes) = {expected}",
                )
        if current.height < 1 or current.width < 1:
            raise _error(config, layer, f"output would be empty ({current.height}x{current.width})")
        shapes.append(current)
    return shapes


def input_channels(config: cfg.DarknetConfig) -> list[int]:
    """Input channels of every layer (what a convolution's kernel is sized by)."""
    shapes = infer_shapes(config)
    return [config.net.channels] + [s.channels for s in shapes[:-1]]
