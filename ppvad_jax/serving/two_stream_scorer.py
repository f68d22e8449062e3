"""The paper's scorer on the server: the trained two-stream classifier as a ``FrameScorer``.

Loads ``WORKDIR/export`` written by ``launch.train_classifier`` and reproduces
exactly what the classifier saw in training (``training.classifier_inputs``):
the reconstruction and the encoded flow image resized to the classifier's
input with ``cv2.INTER_AREA``, the bag of objects from the same detector
backend on the reconstruction, then the jitted forward pass. Batches are padded
to powers of two so a server compiles a handful of shapes, not one per tick.

Cost per frame depends on the backbone and the bag: the paper's two ResNet-50 streams are
far from 10 FPS per camera on a CPU (GPUs are for that); runlocal's MobileNetV2 with the
CenterNet bag is measured in BUILD_NOTES.md ("Serving the MobileNetV2 two-stream scorer").
``warmup`` compiles every batch size at start-up.

Configure with ``--config.scorer.name=two_stream --config.scorer.export_dir=W/export``.
"""

import jax
import numpy as np

from ppvad_jax.models import bag_backends, two_stream
from ppvad_jax.serving import scorer


class TwoStreamScorer:
    name = "two_stream"

    def __init__(self, export_dir):
        fix = (
            "point --config.scorer.export_dir at WORKDIR/export of launch.train_classifier, or serve "
            "without a classifier with --config.scorer.name=motion_energy"
        )
        if not export_dir:
            raise FileNotFoundError(f"scorer two_stream has no export_dir: {fix}")
        try:
            self.model, self.variables, self.spec = two_stream.load_export(export_dir)
        except FileNotFoundError as e:
            raise FileNotFoundError(f"scorer two_stream: {e}; {fix}") from e
        d = self.spec["detector"]
        self.detector = (
            bag_backends.make(
                d["backend"],
                model_dir=d["model_dir"],
                conf_threshold=d["conf_threshold"],
                input_size=d.get("input_size"),  # exports from before it existed: the model's own
            )
            if self.spec["use_bag"]
            else None
        )
        self._logits = jax.jit(lambda v, f, o, b: self.model.apply(v, f, o, b))

    def warmup(self, frame_shape, buckets):
        """Runs every batch size the engine can send, so compilations happen at start-up.

        Without it the first tick of each new size compiled the head (1.5-4 s on 2 cores)
        while cameras waited: the load test's p99 latency was 2.9 s.
        """
        for n in buckets:
            zeros = np.zeros((n, *frame_shape), np.uint8)
            flows = np.zeros((n, *frame_shape[:2], 2), np.float32)
            self(scorer.FrameBatch(zeros, flows, zeros, ("warmup",) * n))

    def _resize(self, images):
        return two_stream.resize_inputs(images, self.spec["size"])

    def __call__(self, batch):
        n = len(batch.reconstructions)
        if n == 0:
            return np.zeros(0, np.float32)
        frames = self._resize(np.asarray(batch.reconstructions, np.uint8))
        flows = self._resize(np.asarray(batch.flow_images, np.uint8))
        bags = (
            self.detector.bag(np.asarray(batch.reconstructions, np.uint8))
            if self.detector is not None
            else np.zeros((n, len(self.spec["bag_classes"])), np.float32)
        )
        size = 1 << (n - 1).bit_length()  # pad to a power of two: few compiled shapes
        pad = ((0, size - n),) + ((0, 0),) * 3
        logits = self._logits(
            self.variables,
            np.pad(frames, pad),
            np.pad(flows, pad),
            np.pad(bags, ((0, size - n), (0, 0))),
        )
        return np.asarray(jax.nn.sigmoid(logits), np.float32)[:n]


scorer.register_scorer("two_stream", lambda cfg: TwoStreamScorer(cfg.export_dir))
