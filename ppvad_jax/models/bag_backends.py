"""The bag-of-objects backends by name, for the trainer and the server alike.

``classic``: OpenCV's shipped detectors (``classic_detector``), no weights.
``yolo``: a converted YOLOv4 (``darknet.bag_detector``) in ``model_dir``.
Both have ``classes`` and ``bag(frames) -> [N, len(classes)]``. Imports are
lazy: the classic backend never loads the darknet code and vice versa.
"""


def make(backend, *, model_dir=None, conf_threshold=0.25):
    if backend == "classic":
        from ppvad_jax.models import classic_detector

        return classic_detector.ClassicDetector()
    if backend == "yolo":
        from ppvad_jax.models.darknet import bag_detector

        return bag_detector.YoloBagDetector(model_dir, conf_threshold=conf_threshold)
    raise ValueError(f"detector.backend must be 'classic' or 'yolo', got {backend!r}")
