"""The paper's anomaly classifier (section 3.4.2, Figure 2): two ResNet-50 streams + bag of objects.

Spatial stream: the reconstructed frame -> ResNet-50 -> global average pool (2048).
Motion stream: the optical flow between consecutive reconstructions, encoded as
an image (``data.flow.encode_flow``) -> its own ResNet-50 -> pool (2048).
``backbone="mobilenet_v2"`` puts a MobileNetV2 in each stream instead (1280 each,
``models.backbones``); the head's input width follows the backbone's.
Joint fusion: both pooled vectors concatenated with the bag of objects, then
FC 4096 + ReLU + dropout 0.5, FC 4096 + ReLU + dropout 0.5, one logit; the
anomaly confidence is its sigmoid.

Variants (Table 1): two streams or only the spatial one ("1S"), with or without
the bag. Choices the paper leaves open (BUILD_NOTES.md): the bag enters as
``log1p(counts)``, so that a crowded frame's counts (tens) sit on the scale of
the pooled features instead of dominating the first FC layer; the head width is
configurable (4096 in the paper, narrower in ``runlocal`` configs).

The model is split so training can freeze the backbones cheaply: ``features``
(the backbones; expensive, cacheable while frozen) and ``classify`` (the head).
Parameters: ``{"spatial", "motion", "head"}``; ``batch_stats`` holds the frozen
BatchNorm statistics of each stream (never updated: no cross-example mixing
under per-example DP gradients).
"""

import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ppvad_jax.models import backbones, resnet_preprocess

VARIANTS = ("2s_bag", "2s_no_bag", "1s_bag", "1s_no_bag")


def parse_variant(name: str) -> tuple[int, bool]:
    """'2s_bag' -> (streams=2, use_bag=True). Training modifiers (_no_hm, _ha) are stripped."""
    base = name.removesuffix("_ha").removesuffix("_no_hm")
    if base not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}: expected one of {VARIANTS}, optionally + _no_hm or _ha")
    return int(base[0]), base.endswith("_bag") and not base.endswith("_no_bag")


def resize_inputs(images: np.ndarray | Sequence[np.ndarray], size: int) -> np.ndarray:
    """uint8 [N, H, W, 3] -> [N, size, size, 3] with ``cv2.INTER_AREA``: how reconstructions and
    flow images reach the classifier, in training (``classifier_inputs``) and on the server alike."""
    return np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in images])


class AnomalyHead(nn.Module):
    """FC width + ReLU + dropout, twice, then one logit.

    ``standardize``: first apply a fixed per-feature affine ``(x - mean) * scale``
    held in the ``standardization`` collection (never trained, never in a DP
    gradient), set by the trainer from the training features. Randomly
    initialised backbones give features that barely vary between frames (std
    0.05 around a mean of 1 on the synthetic world); without this the head's
    ReLUs die in the first steps and every frame gets the same score.
    """

    width: int = 4096
    dropout: float = 0.5
    standardize: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        if self.standardize:
            mean = self.variable("standardization", "mean", jnp.zeros, (x.shape[-1],)).value
            scale = self.variable("standardization", "scale", jnp.ones, (x.shape[-1],)).value
            x = (x - mean) * scale
        for i in range(2):
            x = nn.relu(nn.Dense(self.width, name=f"fc{i}")(x))
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(1, name="logit")(x)[..., 0]


class TwoStreamClassifier(nn.Module):
    """Frames and flow images [N, H, W, 3] uint8 (any size; resized to ``size``) + bag -> logit [N]."""

    streams: int = 2
    use_bag: bool = True
    head_width: int = 4096
    dropout: float = 0.5
    backbone: str = "resnet50"  # backbones.NAMES
    norm: str = "frozen_bn"
    preprocessing: str = "caffe_bgr"
    size: int = resnet_preprocess.SIZE
    standardize: bool = False
    dtype: object = None

    def setup(self) -> None:
        if self.streams not in (1, 2):
            raise ValueError(f"streams must be 1 or 2, got {self.streams}")
        self.spatial = backbones.feature_module(self.backbone, norm=self.norm, dtype=self.dtype)
        if self.streams == 2:
            self.motion = backbones.feature_module(self.backbone, norm=self.norm, dtype=self.dtype)
        self.head = AnomalyHead(self.head_width, self.dropout, self.standardize)

    def _stream(self, backbone, images):
        x = resnet_preprocess.preprocess(images, mode=self.preprocessing, size=self.size)
        return backbone(x)["features"]

    def features(self, frames: ArrayLike, flows: ArrayLike | None = None) -> jax.Array:
        """Pooled backbone features [N, backbones.feature_dim(backbone) * streams]."""
        out = [self._stream(self.spatial, frames)]
        if self.streams == 2:
            if flows is None:
                raise ValueError("a two-stream classifier needs flow images")
            out.append(self._stream(self.motion, flows))
        return jnp.concatenate(out, axis=-1)

    def classify(
        self, features: jax.Array, bag: ArrayLike | None = None, *, train: bool = False
    ) -> jax.Array:
        """Head on pooled features (+ the bag): the logit [N]."""
        if self.use_bag:
            if bag is None:
                raise ValueError("a *_bag classifier needs the bag of objects")
            features = jnp.concatenate([features, jnp.log1p(jnp.asarray(bag, features.dtype))], axis=-1)
        return self.head(features, train=train)

    def __call__(
        self,
        frames: ArrayLike,
        flows: ArrayLike | None = None,
        bag: ArrayLike | None = None,
        *,
        train: bool = False,
    ) -> jax.Array:
        return self.classify(self.features(frames, flows), bag, train=train)


# --- Export for the server ---------------------------------------------------------------------

EXPORT_FILE = "classifier.msgpack"
SPEC_FILE = "spec.json"


def export(out_dir: str | os.PathLike, variables: Mapping[str, Any], spec: Mapping[str, Any]) -> pathlib.Path:
    """Writes the trained classifier (params and frozen statistics) and its spec under ``out_dir``.

    ``spec`` holds the module's fields (``streams``, ``use_bag``, ``head_width``, ``backbone``,
    ``norm``, ``preprocessing``, ``size``), ``bag_classes`` and how the bag was made (``detector``).
    An export without ``backbone`` is read as ResNet-50's (every export before the choice existed).
    """
    import json
    import pathlib

    import flax.serialization
    import jax

    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / (EXPORT_FILE + ".partial")
    tmp.write_bytes(flax.serialization.to_bytes(jax.device_get(variables)))
    tmp.replace(out_dir / EXPORT_FILE)
    (out_dir / SPEC_FILE).write_text(json.dumps(spec, indent=2, default=str))
    return out_dir


def load_export(export_dir: str | os.PathLike) -> tuple[TwoStreamClassifier, dict[str, Any], dict[str, Any]]:
    """``(model, variables, spec)`` from a directory written by ``export``."""
    import json
    import pathlib

    import flax.serialization
    import jax
    import numpy as np

    export_dir = pathlib.Path(export_dir)
    if not (export_dir / SPEC_FILE).is_file() or not (export_dir / EXPORT_FILE).is_file():
        raise FileNotFoundError(
            f"{export_dir} holds no exported classifier: train one (python -m launch.train_classifier), "
            "whose WORKDIR/export this is"
        )
    spec = json.loads((export_dir / SPEC_FILE).read_text())
    fields = ("streams", "use_bag", "head_width", "norm", "preprocessing", "size", "standardize")
    model = TwoStreamClassifier(
        **{k: spec.get(k, False) for k in fields}, backbone=spec.get("backbone", "resnet50")
    )
    one = np.zeros((1, spec["size"], spec["size"], 3), np.uint8)
    bag = np.zeros((1, len(spec["bag_classes"])), np.float32)
    template = jax.eval_shape(lambda: model.init(jax.random.key(0), one, one, bag))
    variables = flax.serialization.from_bytes(template, (export_dir / EXPORT_FILE).read_bytes())
    return model, jax.device_put(variables), spec
