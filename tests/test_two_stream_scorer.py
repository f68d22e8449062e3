"""The server's two-stream scorer gives what the classifier gave in training (no train/serve skew)."""

import cv2
import jax
import ml_collections
import numpy as np
import pytest
import skimage.data

from configs import serve as serve_config
from ppvad_jax.models import classic_detector, two_stream
from ppvad_jax.serving import scorer as scorer_registry
from ppvad_jax.serving import two_stream_scorer  # noqa: F401  (registers "two_stream")

SIZE = 32  # the smallest side ResNet-50 takes: keeps the test's two backbones cheap


def two_stream_config(path):
    return ml_collections.ConfigDict({"name": "two_stream", "export_dir": str(path)})


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    model = two_stream.TwoStreamClassifier(streams=2, use_bag=True, head_width=8, norm="group", size=SIZE)
    classes = classic_detector.ClassicDetector().classes
    one = np.zeros((1, SIZE, SIZE, 3), np.uint8)
    variables = jax.jit(model.init)(jax.random.key(0), one, one, np.zeros((1, len(classes)), np.float32))
    spec = {
        "variant": "2s_bag",
        "streams": 2,
        "use_bag": True,
        "head_width": 8,
        "norm": "group",
        "preprocessing": model.preprocessing,
        "size": SIZE,
        "standardize": False,
        "bag_classes": list(classes),
        "detector": {"backend": "classic", "model_dir": "", "conf_threshold": 0.25},
    }
    return two_stream.export(tmp_path_factory.mktemp("cls") / "export", variables, spec), model, variables


def frames_with_a_face():
    """Four 120x160 reconstructions-to-be: the astronaut (a face the classic detector finds) and noise."""
    # The astronaut's head and shoulders fill the frame: the Haar face cascade finds it at 120x160.
    face = cv2.resize(skimage.data.astronaut()[:256, 96:352], (160, 120), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (3, 120, 160, 3), np.uint8)
    flows = rng.integers(0, 256, (4, 120, 160, 3), np.uint8)
    return np.concatenate([face[None], noise]), flows


def test_scores_equal_the_training_path(export_dir):
    path, model, variables = export_dir
    scorer = scorer_registry.make_scorer(two_stream_config(path))
    recon, flow_images = frames_with_a_face()

    def score(n):
        flows = np.zeros((n, 120, 160, 2), np.float32)
        return scorer(scorer_registry.FrameBatch(recon[:n], flows, flow_images[:n], ("cam",) * n))

    # What training fed the classifier for the same frames (training/classifier_inputs.py: the same
    # resize, the classic bag), through the variables as trained (not as exported and reloaded).
    bags = classic_detector.ClassicDetector().bag(recon)
    assert bags.sum() > 0  # the bag path is exercised, not all zeros
    logits = jax.jit(model.apply)(
        variables, two_stream.resize_inputs(recon, SIZE), two_stream.resize_inputs(flow_images, SIZE), bags
    )
    want = np.asarray(jax.nn.sigmoid(logits))
    np.testing.assert_allclose(score(4), want, rtol=1e-5, atol=1e-6)
    # Three frames are padded to four (one compiled shape): the padding changes nothing.
    np.testing.assert_allclose(score(3), want[:3], rtol=1e-5, atol=1e-6)
    assert ((0 <= want) & (want <= 1)).all() and len(set(want.round(6))) > 1


def test_a_missing_export_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no exported classifier.*scorer.name=motion_energy"):
        scorer_registry.make_scorer(two_stream_config(tmp_path))


def test_the_paper_scorer_is_the_default_and_runlocal_serves_the_demos_classifier():
    full, local = serve_config.get_config(), serve_config.get_config("runlocal=True")
    assert (full.scorer.name, full.scorer.export_dir) == ("two_stream", "runs/cls_2s_bag/export")
    assert (local.scorer.name, local.scorer.export_dir) == (
        "two_stream",
        "runs/demo/classifier_2s_bag/export",
    )
    with pytest.raises(FileNotFoundError, match="export_dir"):
        scorer_registry.make_scorer(ml_collections.ConfigDict({**full.scorer, "export_dir": ""}))


def test_warmup_compiles_every_bucket_so_serving_compiles_nothing(export_dir):
    path, _, _ = export_dir
    scorer = scorer_registry.make_scorer(two_stream_config(path))
    scorer_registry.warmup(scorer, (120, 160, 3), (1, 2))
    compiled = scorer._logits._cache_size()
    assert compiled == 2  # one program per bucket
    recon, flow_images = frames_with_a_face()
    for n in (1, 2):
        flows = np.zeros((n, 120, 160, 2), np.float32)
        scorer(scorer_registry.FrameBatch(recon[:n], flows, flow_images[:n], ("cam",) * n))
    assert scorer._logits._cache_size() == compiled  # a camera never waits for XLA


def test_warmup_is_optional_for_a_scorer():
    motion = scorer_registry.MotionEnergyScorer()
    scorer_registry.warmup(motion, (120, 160, 3), (1, 2))  # no hook: nothing to do, no error
