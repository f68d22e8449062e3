"""Identity-adversarial fine-tuning: public data only, the source's epsilon carried as
post-processing (never re-stated for new quality numbers), and the pieces it trains on."""

import json

import cv2
import jax
import numpy as np
import pytest

from ppvad_jax.evaluation import privacy_report, reidentification
from ppvad_jax.models import autoencoder_io
from ppvad_jax.training import identity_adversarial as ia


def test_a_face_batch_pastes_each_lfw_face_at_its_corner():
    faces = reidentification.lfw_faces()
    frames, labels, corners = ia.face_batch(np.random.default_rng(0), faces, 6, 48, 64)
    side = round(48 * ia.FACE_FRACTION)
    for frame, label, (y, x) in zip(frames, labels, corners, strict=True):
        want = np.round(cv2.resize(faces[label], (side, side), interpolation=cv2.INTER_LINEAR) * 255)
        for c in range(3):
            np.testing.assert_array_equal(frame[y : y + side, x : x + side, c], want.astype(np.uint8))


def test_tinted_faces_keep_the_face_and_take_a_skin_like_colour():
    faces = reidentification.lfw_faces()
    frames, labels, corners = ia.face_batch(np.random.default_rng(0), faces, 4, 48, 64, tint=True)
    side = round(48 * ia.FACE_FRACTION)
    for frame, (y, x) in zip(frames, corners, strict=True):
        patch = frame[y : y + side, x : x + side].reshape(-1, 3).astype(float)
        r, g, b = patch.mean(axis=0)
        assert r > g > b  # warm, as skin
        assert np.corrcoef(patch[:, 0], patch[:, 2])[0, 1] > 0.95  # one grey face under a colour


def test_the_box_mask_covers_exactly_the_pasted_face():
    corners = np.array([[3, 5], [0, 40]])
    mask = np.asarray(ia._box_mask((48, 64), corners, 16))
    assert mask.shape == (2, 48, 64) and mask.sum() == 2 * 16 * 16
    assert mask[0, 3:19, 5:21].all() and mask[1, 0:16, 40:56].all()


@pytest.mark.slow
def test_finetuning_reads_only_public_data_and_carries_the_sources_epsilon(tmp_path):
    source = tmp_path / "dp_ae"
    params = autoencoder_io.random_params(height=48, width=64, features=(16, 8, 4))
    autoencoder_io.export(source / "export", params, height=48, width=64, features=(16, 8, 4))
    dp_metrics = {"optimizer": "dpadam", "private": True, "epsilon_pld": 0.31, "delta": 1e-5, "mse": 0.01}
    (source / "metrics.json").write_text(json.dumps(dp_metrics))
    out = tmp_path / "adv"
    metrics = ia.finetune(source, out, steps=4, restart_every=2, batch_size=2)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == metrics and saved["epsilon_pld"] == 0.31 and saved["delta"] == 1e-5
    assert "mse" not in saved  # the source's quality was another model's
    assert set(saved) <= {*privacy_report.TRAINING_PRIVACY_KEYS, "privacy_of", "identity_adversarial"}
    record = saved["identity_adversarial"]
    assert record["training_data"].startswith("public only") and record["steps"] == 4
    new, spec = autoencoder_io.load_params(out / "export")
    assert spec["identity_adversarial"]["source"] == str(source)
    pairs = zip(jax.tree.leaves(new), jax.tree.leaves(params), strict=True)
    assert max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in pairs) > 0  # it trained
    with pytest.raises(ValueError, match="steps and restart_every"):
        ia.finetune(source, out, steps=0)
