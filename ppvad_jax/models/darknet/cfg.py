"""Darknet ``.cfg`` parser: sections in order, typed options, errors that name ``file:line``.

A cfg is an INI-like list of sections. The first is ``[net]`` (input size and training
options); every later section is one layer, numbered from 0 in file order, the numbering
that ``route`` and ``shortcut`` indices and the ``.weights`` file follow.

Parsing rules (darknet's ``read_cfg``, AlexeyAB fork, which YOLOv4 comes from):
- blank lines and lines starting with ``#`` or ``;`` are comments; text after ``#`` on an
  option line is a comment too (darknet's number readers stop there);
- ``key = value``, spaces around both ignored; list values are comma separated;
- defaults are darknet's, not OpenCV's where they differ (a ``[convolutional]`` without
  ``activation`` is ``logistic`` in darknet, ``linear`` in OpenCV; a ``[maxpool]`` without
  ``stride`` has stride 1 in darknet, 2 in OpenCV). The shipped cfgs set both explicitly.

Stricter than darknet on purpose: a line without ``=``, an option before the first section,
a repeated option, an unknown layer type, or an option that changes inference and is not
implemented here (``dilation=2``, ``new_coords=1``...) is an error naming the file and line,
instead of a warning followed by a network that computes something else.
Options that only matter for training (``jitter``, ``ignore_thresh``, ``iou_loss``...) are
accepted and ignored.

The typed layers are frozen dataclasses of ints, floats and tuples, so a parsed config is
hashable and can be a Flax module attribute or a static ``jax.jit`` argument.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
from typing import Any

ACTIVATIONS = ("linear", "leaky", "logistic", "mish", "swish")


class CfgError(ValueError):
    """A malformed or unsupported darknet cfg; the message starts with ``file:line:``."""


# --- raw sections ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Section:
    """One ``[kind]`` section: its options as (key, value, line) in file order."""

    kind: str
    line: int
    source: str
    options: tuple[tuple[str, str, int], ...]

    def where(self, key: str | None = None) -> str:
        """``file:line`` of the option ``key`` (or of the section header)."""
        line = self.line
        for k, _, option_line in self.options:
            if k == key:
                line = option_line
        return f"{self.source}:{line}"

    def raw(self, key: str) -> str | None:
        for k, value, _ in self.options:
            if k == key:
                return value
        return None

    def _get(self, key, default, convert, what):
        value = self.raw(key)
        if value is None:
            if default is _REQUIRED:
                raise CfgError(f"{self.where()}: [{self.kind}] needs option '{key}'")
            return default
        try:
            return convert(value)
        except ValueError:
            raise CfgError(f"{self.where(key)}: [{self.kind}] {key}={value!r}: expected {what}") from None

    # The getters return the converted value, or ``default`` when the option is absent
    # (``_REQUIRED``: absent is an error).
    def get_int(self, key: str, default: Any = None) -> int | Any:
        return self._get(key, default, int, "an integer")

    def get_float(self, key: str, default: Any = None) -> float | Any:
        return self._get(key, default, float, "a number")

    def get_str(self, key: str, default: Any = None) -> str | Any:
        return self._get(key, default, str, "a string")

    def get_ints(self, key: str, default: Any = None) -> tuple[int, ...] | Any:
        return self._get(key, default, lambda v: tuple(int(x) for x in _split_list(v)), "integers a,b,...")

    def get_floats(self, key: str, default: Any = None) -> tuple[float, ...] | Any:
        return self._get(key, default, lambda v: tuple(float(x) for x in _split_list(v)), "numbers a,b,...")


_REQUIRED = object()


def _split_list(value: str) -> list[str]:
    items = [item.strip() for item in value.split(",")]
    if items and items[-1] == "":  # darknet tolerates a trailing comma ("anchors = 1,2,")
        items.pop()
    if not items or any(item == "" for item in items):
        raise ValueError(value)
    return items


_SECTION_RE = re.compile(r"^\[([A-Za-z_][A-Za-z0-9_]*)\]$")


def parse_sections(text: str, source: str = "<cfg>") -> list[Section]:
    """Splits cfg text into sections; raises ``CfgError`` naming ``source:line``."""
    sections: list[tuple[str, int, list[tuple[str, str, int]]]] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if stripped.startswith("["):
            match = _SECTION_RE.match(stripped.split("#", 1)[0].strip())
            if not match:
                raise CfgError(f"{source}:{line_number}: malformed section header {stripped!r}")
            sections.append((match.group(1), line_number, []))
            continue
        content = stripped.split("#", 1)[0].strip()
        if "=" not in content:
            raise CfgError(f"{source}:{line_number}: expected 'key=value', got {stripped!r}")
        key, value = (part.strip() for part in content.split("=", 1))
        if not key or not value:
            raise CfgError(f"{source}:{line_number}: empty key or value in {stripped!r}")
        if not sections:
            raise CfgError(f"{source}:{line_number}: option {key!r} before the first [section]")
        kind, header_line, options = sections[-1]
        if any(k == key for k, _, _ in options):
            raise CfgError(
                f"{source}:{line_number}: option {key!r} repeated in [{kind}] of line {header_line}"
            )
        options.append((key, value, line_number))
    return [Section(kind, line, source, tuple(options)) for kind, line, options in sections]


# --- typed layers ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class NetOptions:
    """The ``[net]`` section: input size and the rest of its options as raw strings."""

    height: int
    width: int
    channels: int
    line: int
    options: tuple[tuple[str, str], ...]


@dataclasses.dataclass(frozen=True)
class Convolutional:
    index: int
    line: int
    filters: int
    size: int
    stride: int
    padding: int  # per side; darknet: ``pad=1`` means size // 2, else ``padding`` (default 0)
    groups: int
    batch_normalize: bool
    activation: str


@dataclasses.dataclass(frozen=True)
class Route:
    """Concatenates (over channels) group ``group_id`` of ``groups`` of each input layer."""

    index: int
    line: int
    layers: tuple[int, ...]  # absolute indices, resolved from negative ones
    groups: int
    group_id: int


@dataclasses.dataclass(frozen=True)
class Shortcut:
    index: int
    line: int
    source: int  # absolute index of the layer added to the previous one
    activation: str


@dataclasses.dataclass(frozen=True)
class MaxPool:
    """Darknet max pooling: out = (in + padding - size) // stride + 1, ``padding // 2`` before."""

    index: int
    line: int
    size: int
    stride: int
    padding: int  # total over both sides; darknet's default is size - 1


@dataclasses.dataclass(frozen=True)
class Upsample:
    index: int
    line: int
    stride: int
    scale: float


@dataclasses.dataclass(frozen=True)
class Yolo:
    index: int
    line: int
    classes: int
    anchors: tuple[tuple[float, float], ...]  # the masked anchors only, (w, h) in input pixels
    mask: tuple[int, ...]
    scale_x_y: float


Layer = Convolutional | Route | Shortcut | MaxPool | Upsample | Yolo


@dataclasses.dataclass(frozen=True)
class DarknetConfig:
    """A parsed cfg: ``[net]`` options and the layers in file order."""

    source: str
    net: NetOptions
    layers: tuple[Layer, ...]

    @property
    def yolo_layers(self) -> tuple[Yolo, ...]:
        return tuple(layer for layer in self.layers if isinstance(layer, Yolo))


# Options that change what the network computes and are not implemented: present with any value
# other than the listed default, they are an error rather than silently ignored.
_UNSUPPORTED = {
    "convolutional": {
        "dilation": "1",
        "antialiasing": "0",
        "flipped": "0",
        "binary": "0",
        "xnor": "0",
        "cbn": "0",
        "coordconv": "0",
        "sway": "0",
        "rotate": "0",
        "stretch": "0",
        "stretch_sway": "0",
        "share_index": None,
        "stride_x": None,
        "stride_y": None,
        "deform": "0",
    },
    "maxpool": {"maxpool_depth": "0", "antialiasing": "0", "stride_x": None, "stride_y": None},
    "shortcut": {"weights_type": "none"},
    "yolo": {"new_coords": "0"},
    "route": {},
    "upsample": {},
}
_ALIASES = {"conv": "convolutional", "max": "maxpool", "network": "net"}


def _check_unsupported(section: Section, kind: str, stride: int | None = None) -> None:
    for key, default in _UNSUPPORTED[kind].items():
        value = section.raw(key)
        if value is None:
            continue
        if key in ("stride_x", "stride_y") and stride is not None and value == str(stride):
            continue
        if key == "dilation" and section.get_int("size", 1) == 1:
            continue  # darknet ignores dilation for 1x1 kernels
        if value != default:
            raise CfgError(f"{section.where(key)}: [{section.kind}] {key}={value} is not supported")


def _activation(section: Section, default: str) -> str:
    activation = section.get_str("activation", default)
    if activation not in ACTIVATIONS:
        raise CfgError(
            f"{section.where('activation')}: [{section.kind}] activation={activation!r} is not supported "
            f"(supported: {', '.join(ACTIVATIONS)})"
        )
    return activation


def _positive(section: Section, key: str, value, minimum=1):
    if value < minimum:
        raise CfgError(f"{section.where(key)}: [{section.kind}] {key}={value} must be >= {minimum}")
    return value


def _layer_index(section: Section, key: str, value: int, index: int) -> int:
    absolute = value + index if value < 0 else value
    if not 0 <= absolute < index:
        raise CfgError(
            f"{section.where(key)}: [{section.kind}] {key} refers to layer {value} (absolute {absolute}), "
            f"but layer {index} can only use layers 0..{index - 1}"
        )
    return absolute


def _net_options(section: Section) -> NetOptions:
    height = _positive(section, "height", section.get_int("height", _REQUIRED))
    width = _positive(section, "width", section.get_int("width", _REQUIRED))
    channels = _positive(section, "channels", section.get_int("channels", 3))
    return NetOptions(height, width, channels, section.line, tuple((k, v) for k, v, _ in section.options))


def _convolutional(section: Section, index: int) -> Convolutional:
    size = _positive(section, "size", section.get_int("size", 1))
    stride = _positive(section, "stride", section.get_int("stride", 1))
    _check_unsupported(section, "convolutional", stride)
    padding = size // 2 if section.get_int("pad", 0) else section.get_int("padding", 0)
    return Convolutional(
        filters=_positive(section, "filters", section.get_int("filters", _REQUIRED)),
        size=size,
        stride=stride,
        padding=_positive(section, "padding", padding, minimum=0),
        groups=_positive(section, "groups", section.get_int("groups", 1)),
        batch_normalize=bool(section.get_int("batch_normalize", 0)),
        activation=_activation(section, "logistic"),
        index=index,
        line=section.line,
    )


def _route(section: Section, index: int) -> Route:
    _check_unsupported(section, "route")
    layers = tuple(_layer_index(section, "layers", i, index) for i in section.get_ints("layers", _REQUIRED))
    groups = _positive(section, "groups", section.get_int("groups", 1))
    group_id = section.get_int("group_id", 0)
    if not 0 <= group_id < groups:
        raise CfgError(f"{section.where('group_id')}: [route] group_id={group_id} not in [0, {groups})")
    return Route(layers=layers, groups=groups, group_id=group_id, index=index, line=section.line)


def _shortcut(section: Section, index: int) -> Shortcut:
    _check_unsupported(section, "shortcut")
    sources = section.get_ints("from", _REQUIRED)
    if len(sources) != 1:
        raise CfgError(f"{section.where('from')}: [shortcut] from= with several layers is not supported")
    return Shortcut(
        source=_layer_index(section, "from", sources[0], index),
        activation=_activation(section, "linear"),
        index=index,
        line=section.line,
    )


def _maxpool(section: Section, index: int) -> MaxPool:
    stride = _positive(section, "stride", section.get_int("stride", 1))
    _check_unsupported(section, "maxpool", stride)
    size = _positive(section, "size", section.get_int("size", stride))
    padding = _positive(section, "padding", section.get_int("padding", size - 1), minimum=0)
    return MaxPool(size=size, stride=stride, padding=padding, index=index, line=section.line)


def _upsample(section: Section, index: int) -> Upsample:
    _check_unsupported(section, "upsample")
    stride = _positive(section, "stride", section.get_int("stride", 2))  # negative: darknet downsample
    return Upsample(stride=stride, scale=section.get_float("scale", 1.0), index=index, line=section.line)


def _yolo(section: Section, index: int) -> Yolo:
    _check_unsupported(section, "yolo")
    classes = _positive(section, "classes", section.get_int("classes", 20))
    total = _positive(section, "num", section.get_int("num", 1))
    mask = section.get_ints("mask", tuple(range(total)))
    anchors = section.get_floats("anchors", _REQUIRED)
    if len(anchors) < 2 * total:
        raise CfgError(f"{section.where('anchors')}: [yolo] num={total} needs {2 * total} anchor values")
    if any(not 0 <= m < total for m in mask):
        raise CfgError(f"{section.where('mask')}: [yolo] mask {mask} must index anchors 0..{total - 1}")
    return Yolo(
        classes=classes,
        anchors=tuple((anchors[2 * m], anchors[2 * m + 1]) for m in mask),
        mask=mask,
        scale_x_y=section.get_float("scale_x_y", 1.0),
        index=index,
        line=section.line,
    )


# One typed-layer reader per supported section kind (the keys of ``_UNSUPPORTED``). Each reads
# its options in a fixed order: of several bad options, the first read is the one reported.
_LAYER_READERS = {
    "convolutional": _convolutional,
    "route": _route,
    "shortcut": _shortcut,
    "maxpool": _maxpool,
    "upsample": _upsample,
    "yolo": _yolo,
}


def _typed_layer(section: Section, kind: str, index: int) -> Layer:
    reader = _LAYER_READERS.get(kind)
    if reader is None:
        raise AssertionError(kind)
    return reader(section, index)


def parse_cfg(text: str, source: str = "<cfg>") -> DarknetConfig:
    """Parses cfg text. ``source`` names the file in error messages."""
    sections = parse_sections(text, source)
    if not sections or _ALIASES.get(sections[0].kind, sections[0].kind) != "net":
        line = sections[0].line if sections else 1
        raise CfgError(f"{source}:{line}: the first section must be [net]")
    layers = []
    for index, section in enumerate(sections[1:]):
        kind = _ALIASES.get(section.kind, section.kind)
        if kind not in _UNSUPPORTED:
            raise CfgError(
                f"{source}:{section.line}: unknown or unsupported layer type [{section.kind}] "
                f"(layer {index}); supported: {', '.join(f'[{k}]' for k in _UNSUPPORTED)}"
            )
        layers.append(_typed_layer(section, kind, index))
    if not layers:
        raise CfgError(f"{source}: no layers after [net]")
    return DarknetConfig(source=source, net=_net_options(sections[0]), layers=tuple(layers))


def load_cfg(path: str | os.PathLike) -> DarknetConfig:
    """Reads and parses a cfg file."""
    path = pathlib.Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise CfgError(f"{path}: cannot read cfg: {e}") from None
    return parse_cfg(text, str(path))


def with_input_size(text: str, *, height: int, width: int) -> str:
    """Cfg text with ``[net]`` height and width replaced (for OpenCV, which reads them from the cfg)."""
    out, in_net, seen = [], False, set()
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            if in_net:
                out.extend(
                    f"{key}={value}"
                    for key, value in (("height", height), ("width", width))
                    if key not in seen
                )
            in_net = stripped in ("[net]", "[network]")
        elif in_net and "=" in stripped and not stripped.startswith(("#", ";")):
            key = stripped.split("=", 1)[0].strip()
            if key in ("height", "width"):
                seen.add(key)
                line = f"{key}={height if key == 'height' else width}"
        out.append(line)
    return "\n".join(out) + "\n"
