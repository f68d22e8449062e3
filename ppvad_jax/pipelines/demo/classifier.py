"""Stage 5: the 2S-bag classifier on reconstructions, against motion energy on the same test frames."""

import json
import pathlib

import numpy as np

from ppvad_jax.evaluation import anomaly_report, auc_comparison, motion_energy
from ppvad_jax.pipelines.demo import outputs
from ppvad_jax.training import classifier, classifier_inputs, run_spec


def classifier_config(config, dataset_dir, ae_dir):
    """``config.base.classifier`` (2S-bag, runlocal) on the demo autoencoder, with the demo's settings."""
    cls = outputs.fresh(config.base.classifier)
    cls.data.dataset_dir = str(dataset_dir)
    cls.autoencoder_workdir = str(ae_dir) if ae_dir else ""
    cls.camera_redaction = config.camera_redaction  # the camera's face redaction, as deployed
    cls.phase2.enabled = config.phase2_steps > 0
    cls.phase2.max_steps_per_epoch = config.phase2_steps
    if config.resnet_weights:  # the paper's backbone: ImageNet ResNet-50, frozen BatchNorm, no rescaling
        cls.backbone.name = "resnet50"
        cls.backbone.pretrained = config.resnet_weights
        cls.backbone.norm = "frozen_bn"
        cls.standardize_features = False
    return cls


def motion_baseline(cls_dir, inputs_dir=None):
    """Motion energy on the classifier's own test frames, scored the way the classifier is.

    Returns:
      ``(baseline or None, paired-bootstrap comparison dict or None)``. ``baseline`` holds
      FL-AUC, the within-anomalous AUC and VL-F1 of motion energy calibrated on validation
      (``evaluation.motion_energy``); None when the test or validation frames lack a class.
    """
    inputs = pathlib.Path(inputs_dir) if inputs_dir else cls_dir / "inputs"
    test = classifier_inputs.load_split(inputs, "test")
    try:
        predictions = motion_energy.calibrated_predictions(
            classifier_inputs.load_split(inputs, "validation"), test
        )
    except ValueError as e:  # a split without hard frames: no calibration, no AUC
        print(f"      motion baseline not computed: {e}")
        return None, None
    scored = anomaly_report.score(predictions)
    if scored["fl_auc"] is None:
        return None, None
    baseline = {"fl_auc": scored["fl_auc"], "within_anomalous_auc": scored["within_anomalous_auc"],
                "vl_f1": scored["vl"]["f1"], "vl_precision": scored["vl"]["precision"],
                "vl_recall": scored["vl"]["recall"]}  # fmt: skip
    # Whether the win is clear, not only its sign: a paired bootstrap over the test videos.
    hard = test["labels"] == classifier.HARD
    with np.load(cls_dir / "predictions.npz") as p:
        comparison = auc_comparison.paired_video_bootstrap(
            hard, p["confidence"], predictions["confidence"], p["video_index"], replicates=2000
        ).as_dict()
    return baseline, comparison


def stale(cls_dir, cls):
    """Whether ``cls_dir`` holds a classifier trained on another camera path than ``cls`` asks:
    another face redaction, or another autoencoder (retrained in place). Such a run is moved
    aside, not resumed into this one (its checkpoints would be refused)."""
    spec = cls_dir / "inputs_spec.json"
    if not spec.is_file():
        return False
    inputs = json.loads(spec.read_text()).get("inputs", {})
    export = pathlib.Path(cls.autoencoder_workdir) / "export" if cls.autoencoder_workdir else None
    return (inputs.get("camera_redaction") or "") != (cls.camera_redaction or "") or inputs.get(
        "autoencoder_fingerprint"
    ) != (run_spec.export_fingerprint(export) if export else None)


def train_classifier(config, workdir, dataset_dir, ae_dir, *, redaction=None, name="classifier_2s_bag"):
    """2S-bag on reconstructions through the demo autoencoder; FL-AUC next to motion energy.

    ``redaction``: the camera's face redaction for this classifier; None: ``config.camera_redaction``.
    """
    cls = classifier_config(config, dataset_dir, ae_dir)
    if redaction is not None:
        cls.camera_redaction = redaction
    weights = f"ImageNet weights from {cls.backbone.pretrained}" if cls.backbone.pretrained else "random init"
    cls_dir = workdir / name
    if stale(cls_dir, cls):
        outputs.move_aside(cls_dir)
    print(
        f"[5/6] classifier: 2S-bag (runlocal, {cls.backbone.name} backbones, {weights}, "
        f"{cls.detector.backend} bag, camera redaction {cls.camera_redaction or 'none'}) -> {cls_dir}"
    )
    metrics = classifier.train_and_evaluate(cls, cls_dir)
    report = anomaly_report.write_report(cls_dir)
    baseline, comparison = motion_baseline(cls_dir)
    return outputs.Classifier(cls_dir, metrics, report, baseline, comparison)
