"""Privacy metrics: faces, re-identification, membership inference, and the privacy report end to end."""

import json
import math
import pathlib
import subprocess
import sys

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage import data
from sklearn import metrics as sk_metrics

from ppvad_jax.data import errors, video_io
from ppvad_jax.evaluation import faces, membership, privacy_report, reidentification
from ppvad_jax.models import autoencoder, autoencoder_io
from ppvad_jax.pipelines import privacy_report as report_pipeline
from ppvad_jax.privacy import latent_ldp

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _astronaut(width, height):
    """The astronaut's top two thirds (512x341), resized without changing the aspect ratio much."""
    return cv2.resize(data.astronaut()[:341], (width, height), interpolation=cv2.INTER_AREA)


def _true_face(width):
    # Eileen Collins' face in the 512-wide image, by eye: x 180-270, y 60-160.
    s = width / 512
    return np.array([[180 * s, 60 * s, 270 * s, 160 * s]])


# --- Faces ----------------------------------------------------------------------------------------


def test_faces_found_on_astronaut_and_lost_when_heavily_blurred():
    image = _astronaut(320, 213)
    blurred = cv2.GaussianBlur(image, (0, 0), 10)
    counts = faces.count_faces(np.stack([image, image]), np.stack([image, blurred]))
    for name in ("haar", "lbp"):
        c = counts[name]
        assert c.original_counts.tolist() == [1, 1], name
        assert faces.iou(c.original_boxes[0], _true_face(320)).max() > 0.5, name
        # Identity "reconstruction": every face survives; heavy blur: none does.
        assert c.reconstructed_counts[0] == 1 and c.matched_counts[0] == 1, name
        assert c.reconstructed_counts[1] < c.original_counts[1] and c.matched_counts[1] == 0, name
        summary = c.summary()
        assert summary["detection_rate"] == summary["matched_detection_rate"] == 0.5, name
        assert summary["frames_with_faces_reconstructed"] == 1


def test_detection_rate_undefined_without_original_faces():
    grey = np.full((1, 213, 320, 3), 128, np.uint8)
    summary = faces.count_faces(grey, _astronaut(320, 213)[None], backends=("haar",))["haar"].summary()
    assert summary["faces_original"] == 0 and summary["faces_reconstructed"] == 1
    assert summary["detection_rate"] is None and summary["matched_detection_rate"] is None


def test_backend_hook_upscale_and_matching():
    calls = []

    def factory(config):
        def detect(rgb):
            calls.append(rgb.shape)
            return np.array([[10.0, 20.0, 30.0, 40.0], [0.0, 0.0, 4.0, 4.0]])

        return detect

    faces.register_backend("fixed_for_test", factory)
    try:
        with pytest.raises(ValueError, match="already registered"):
            faces.register_backend("fixed_for_test", factory)
        assert "fixed_for_test" in faces.available_backends()
        frames = np.zeros((2, 24, 32, 3), np.float32)
        config = faces.FaceDetectorConfig(upscale=2.0)
        c = faces.count_faces(frames, frames, backends=("fixed_for_test",), config=config)["fixed_for_test"]
        assert calls[0] == (48, 64, 3)  # the backend sees the upscaled uint8 frame
        np.testing.assert_allclose(c.original_boxes[0][0], [5, 10, 15, 20])  # boxes come back in input pixels
        assert c.summary()["faces_original"] == 4 and c.summary()["faces_matched"] == 4
    finally:
        faces._BACKENDS.pop("fixed_for_test")
    with pytest.raises(ValueError, match="unknown face backend"):
        faces.make_detector("no_such_backend")
    with pytest.raises(ValueError, match="same shape|of one shape"):
        faces.count_faces(np.zeros((1, 8, 8, 3)), np.zeros((2, 8, 8, 3)))


def test_matching_is_one_to_one():
    original = np.array([[0, 0, 10, 10], [20, 0, 30, 10]])
    # Two reconstructed boxes on the first face and none on the second: one match, not two.
    reconstructed = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]])
    assert faces.count_matches(original, reconstructed, min_iou=0.3) == 1
    assert faces.count_matches(original, np.zeros((0, 4)), min_iou=0.3) == 0
    np.testing.assert_allclose(faces.iou([[0, 0, 10, 10]], [[5, 0, 15, 10]]), [[50 / 150]])


# --- Re-identification ----------------------------------------------------------------------------


def test_lfw_subset_first_hundred_are_faces():
    """What the module docstring says about lfw_subset, checked with the Haar cascade."""
    detect = faces.make_detector("haar")
    crops = data.lfw_subset()

    def has_face(crop):
        big = cv2.resize((crop * 255).astype(np.uint8), (50, 50))
        big = cv2.copyMakeBorder(big, 20, 20, 20, 20, cv2.BORDER_CONSTANT, value=128)
        return len(detect(np.repeat(big[..., None], 3, axis=-1))) > 0

    assert sum(has_face(c) for c in crops[:100]) >= 90
    assert sum(has_face(c) for c in crops[100:]) <= 2


@pytest.fixture(scope="module")
def identities():
    return reidentification.identity_set()


def test_reid_identity_reconstruction_is_fully_identified(identities):
    assert identities.num_identities == 101 and identities.names[-1] == "astronaut"
    assert identities.gallery.shape == (303, 25, 25)
    for feature in ("hog", "pca"):
        result = reidentification.attack(identities, identities.probes, feature=feature)
        assert result["top1"] == 1.0 and result["top5"] == 1.0, feature
        assert result["chance_top1"] == pytest.approx(1 / 101)


def test_reid_noise_is_near_chance_and_constant_is_exactly_chance(identities):
    rng = np.random.default_rng(0)
    noise = rng.uniform(0, 1, identities.probes.shape).astype(np.float32)
    flat = np.full(identities.probes.shape, 0.5, np.float32)
    for feature in reidentification.FEATURES:
        result = reidentification.attack(identities, noise, feature=feature)
        # Chance is 0.0099 / 0.0495; 101 probes: these bounds are > 6 binomial standard deviations away.
        assert result["top1"] <= 0.08 and result["top5"] <= 0.2, (feature, result)
    for feature in ("hog", "pixels"):
        # A constant crop has all-zero features: every identity ties, and ties count at random.
        result = reidentification.attack(identities, flat, feature=feature)
        assert result["top1"] == pytest.approx(1 / 101) and result["top5"] == pytest.approx(5 / 101)


def test_topk_ties_count_in_expectation():
    distances = np.array([[0.0, 0.0, 0.0, 1.0], [0.5, 0.1, 0.5, 0.5]])
    # Probe 0: tied with 2 others at the top -> P(top1) = 1/3. Probe 1: 1 nearer, 2 tied -> P(top1) = 0,
    # P(top2) = 1/3, P(top5) = 1.
    acc = reidentification.topk_accuracy(distances, np.array([0, 0]), (1, 2, 5))
    assert acc[1] == pytest.approx((1 / 3 + 0) / 2)
    assert acc[2] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert acc[5] == 1.0


def test_crops_through_identity_returns_the_crops(identities):
    out = reidentification.crops_through(lambda f: f, identities.probes[:10], (64, 96, 3))
    np.testing.assert_allclose(out, identities.probes[:10], atol=1e-6)
    with pytest.raises(ValueError, match="cannot hold"):
        reidentification.crops_through(lambda f: f, identities.probes[:2], (16, 16, 3))


# --- Membership inference -------------------------------------------------------------------------


def _reference_tpr_at(fpr, tpr, target):
    """Highest TPR on sklearn's piecewise-linear curve at FPR == target."""
    best = 0.0
    for f0, t0, f1, t1 in zip(fpr[:-1], tpr[:-1], fpr[1:], tpr[1:], strict=True):
        if f0 <= target <= f1:
            best = max(best, t1 if f1 == f0 else t0 + (t1 - t0) * (target - f0) / (f1 - f0))
    return best


def test_roc_curve_and_tpr_at_fpr_match_sklearn():
    rng = np.random.default_rng(0)
    for trial in range(60):
        n = int(rng.integers(3, 300))
        labels = rng.integers(0, 2, n)
        labels[:2] = [0, 1]
        scores = rng.integers(0, 6, n).astype(float) if trial % 2 else rng.normal(size=n)  # ties, or none
        fpr, tpr, _ = membership.roc_curve(labels, scores)
        sk_fpr, sk_tpr, _ = sk_metrics.roc_curve(labels, scores, drop_intermediate=False)
        np.testing.assert_allclose(fpr, sk_fpr)
        np.testing.assert_allclose(tpr, sk_tpr)
        for target in (0.0, 0.001, 0.01, 0.1, 0.5, 1.0, float(rng.uniform())):
            assert membership.tpr_at_fpr(labels, scores, target) == pytest.approx(
                _reference_tpr_at(sk_fpr, sk_tpr, target), abs=1e-12
            )
    metrics = membership.attack_metrics(scores[labels == 1], scores[labels == 0])
    ordered = np.r_[scores[labels == 1], scores[labels == 0]]
    truth = np.r_[np.ones((labels == 1).sum()), np.zeros((labels == 0).sum())]
    assert metrics["auc"] == pytest.approx(sk_metrics.roc_auc_score(truth, ordered))


def test_loss_threshold_separation_and_no_separation():
    rng = np.random.default_rng(1)
    # Members' losses 1.5 standard deviations lower: AUC = Phi(1.5 / sqrt(2)) = 0.856.
    members, nonmembers = rng.normal(0, 1, 4000), rng.normal(1.5, 1, 4000)
    result = membership.attack_metrics(
        membership.loss_threshold_scores(members), membership.loss_threshold_scores(nonmembers)
    )
    expected = 0.5 * (1 + math.erf(1.5 / math.sqrt(2) / math.sqrt(2)))
    assert result["auc"] == pytest.approx(expected, abs=0.02)
    # Identical distributions: nothing to find; TPR at 1% FPR is about 1%.
    same = membership.attack_metrics(rng.normal(0, 1, 4000), rng.normal(0, 1, 4000))
    assert abs(same["auc"] - 0.5) < 0.03 and same["tpr_at_1pct_fpr"] < 0.03
    assert same["min_measurable_fpr"] == 1 / 4000


def test_calibration_removes_per_example_difficulty():
    rng = np.random.default_rng(2)
    n = 2000
    difficulty = rng.lognormal(0, 1, 2 * n)  # some frames are far harder than others, for any model
    member = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    target = difficulty - 0.05 * member + rng.normal(0, 0.01, 2 * n)
    reference = difficulty + rng.normal(0, 0.01, 2 * n)
    plain = membership.attack_metrics(
        membership.loss_threshold_scores(target[member]), membership.loss_threshold_scores(target[~member])
    )
    calibrated = membership.attack_metrics(
        membership.calibrated_scores(target[member], reference[member]),
        membership.calibrated_scores(target[~member], reference[~member]),
    )
    assert plain["auc"] < 0.6 and calibrated["auc"] > 0.95
    assert calibrated["tpr_at_1pct_fpr"] > 0.5 > plain["tpr_at_1pct_fpr"]


def _pca_autoencoder(frames, num_components):
    """A linear autoencoder (PCA): with as many components as training frames it memorises them."""
    flat = frames.reshape(len(frames), -1).astype(np.float64)
    mean = flat.mean(axis=0)
    _, _, vt = np.linalg.svd(flat - mean, full_matrices=False)
    basis = vt[:num_components]

    def reconstruct(batch):
        x = np.asarray(batch, np.float64).reshape(len(batch), -1) - mean
        return ((x @ basis.T) @ basis + mean).reshape(batch.shape)

    return reconstruct


def test_membership_inference_on_an_overfit_model():
    image = data.astronaut().astype(np.float32) / 255.0
    rng = np.random.default_rng(3)
    ys, xs = rng.integers(0, 512 - 16, (2, 90))
    patches = np.stack([image[y : y + 16, x : x + 16] for y, x in zip(ys, xs, strict=True)])
    members, nonmembers, population = patches[:30], patches[30:60], patches[60:]
    target = _pca_autoencoder(members, 30)  # memorises its 30 training frames
    reference = _pca_autoencoder(population, 30)
    result = membership.membership_inference(target, members, nonmembers, reference_fn=reference)
    assert result["loss_threshold"]["auc"] > 0.95
    assert result["calibrated"]["auc"] > 0.8  # the reference adds its own per-frame noise
    assert result["loss_threshold"]["members"] == 30
    # Frames as uint8 give the same losses as the same frames in [0, 1].
    as_uint8 = np.round(members * 255).astype(np.uint8)
    np.testing.assert_allclose(
        membership.frame_losses(target, as_uint8, batch_size=7),
        membership.frame_losses(target, as_uint8.astype(np.float32) / 255.0),
        rtol=1e-6,
        atol=1e-12,
    )
    assert membership.membership_inference(target, members, nonmembers)["calibrated"] is None


# --- The privacy report ---------------------------------------------------------------------------

HEIGHT, WIDTH = 128, 192
FEATURES = (8, 8, 4)


@pytest.fixture(scope="module")
def report_inputs(tmp_path_factory):
    """A random narrow autoencoder export, its metrics.json, a 6-frame astronaut video, a corrupt one."""
    root = tmp_path_factory.mktemp("privacy_report")
    workdir = root / "ae"
    model = autoencoder.Autoencoder(features=FEATURES)
    params = model.init(jax.random.key(0), jnp.zeros((1, HEIGHT, WIDTH, 3)))["params"]
    autoencoder_io.export(workdir / "export", params, height=HEIGHT, width=WIDTH, features=FEATURES)
    (workdir / "metrics.json").write_text(
        json.dumps({"optimizer": "dpadam", "private": True, "epsilon_pld": 3.25, "delta": 1e-5, "mse": 0.1})
    )
    image = _astronaut(2 * WIDTH, 2 * HEIGHT)  # the report resizes to the autoencoder's input
    video = root / "astronaut.avi"
    video_io.write_video(video, [np.roll(image, 2 * i, axis=1) for i in range(6)], fps=10)
    corrupt = root / "corrupt.avi"
    corrupt.write_bytes(video.read_bytes()[:600])
    return workdir, video, corrupt


def test_privacy_report_end_to_end(report_inputs, tmp_path):
    workdir, video, _ = report_inputs
    report = report_pipeline.run(
        ae_workdir=workdir,
        video=video,
        max_frames=4,
        output_dir=tmp_path,
        face_config=faces.FaceDetectorConfig(upscale=2.0),
        reid_features=("hog",),
    )
    assert report["frames"] == 4 and report["frame_shape"] == [HEIGHT, WIDTH, 3]
    for key in ("faces_original", "faces_reconstructed", "face_detection_rate", "ssim", "psnr", "mse"):
        assert key in report, key
    assert report["faces_original"] == 4  # the astronaut, on every frame
    assert report["faces_reconstructed"] == 0 and report["face_detection_rate"] == 0.0  # a random decoder
    # Quality against a reference computed here from the exported halves.
    encode_fn, _ = autoencoder_io.load_encoder(workdir / "export")
    decode_fn, _ = autoencoder_io.load_decoder(workdir / "export")
    frames = np.stack([f for _, f in video_io.read_frames(video, range(4), size=(HEIGHT, WIDTH))])
    recon = np.asarray(decode_fn(encode_fn(frames.astype(np.float32) / 255.0)), np.float64)
    mse = np.mean((recon - frames / 255.0) ** 2)
    assert report["mse"] == pytest.approx(mse, rel=1e-4)
    assert report["psnr"] == pytest.approx(
        -10 * np.log10(np.mean((recon - frames / 255.0) ** 2, axis=(1, 2, 3))).mean(), rel=1e-4
    )
    # The training epsilon is copied from metrics.json, nothing else invented.
    assert report["autoencoder_training_privacy"]["epsilon_pld"] == 3.25
    assert "mse" not in report["autoencoder_training_privacy"]
    assert report["latent_ldp"] == {"enabled": False}
    reid = report["reidentification"]["hog"]
    assert reid["num_identities"] == 101 and 0 <= reid["top1"] <= 1
    written = json.loads((tmp_path / "privacy_report.json").read_text())
    assert written["faces_original"] == 4
    png = cv2.imread(str(tmp_path / "faces_side_by_side.png"))
    assert png is not None and png.shape[1] > 2 * WIDTH


def test_privacy_report_with_latent_ldp_and_without_metrics(report_inputs, tmp_path):
    workdir, video, _ = report_inputs
    bare = tmp_path / "bare"
    (bare / "export").mkdir(parents=True)
    for name in ("encoder.msgpack", "decoder.msgpack", "spec.json"):
        (bare / "export" / name).write_bytes((workdir / "export" / name).read_bytes())
    ldp = latent_ldp.LatentLdpConfig(enabled=True, l2_bound=1.0, noise_multiplier=2.0)
    report = report_pipeline.run(
        ae_workdir=bare, video=video, max_frames=2, ldp_config=ldp, face_backends=("haar",), reid_features=()
    )
    assert report["autoencoder_training_privacy"] is None
    assert "reidentification" not in report
    assert report["latent_ldp"]["epsilon_pld"] == pytest.approx(latent_ldp.epsilon(ldp)["epsilon_pld"])
    assert 0 <= report["latent_ldp"]["clipped_fraction"] <= 1
    assert (bare / "privacy_report" / "faces_side_by_side.png").is_file()


def test_privacy_report_errors_name_what_is_wrong(report_inputs, tmp_path):
    workdir, video, corrupt = report_inputs
    with pytest.raises(FileNotFoundError, match="does not exist"):
        privacy_report.export_spec(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no exported autoencoder"):
        report_pipeline.run(ae_workdir=tmp_path, video=video)
    with pytest.raises(errors.VideoReadError, match="corrupt.avi"):
        privacy_report.read_video(corrupt, size=(HEIGHT, WIDTH))
    with pytest.raises(errors.VideoReadError, match="missing.avi"):
        privacy_report.read_video(tmp_path / "missing.avi", size=(HEIGHT, WIDTH))
    with pytest.raises(ValueError, match="max_frames"):
        privacy_report.read_video(video, size=(HEIGHT, WIDTH), max_frames=0)
    # The launcher turns the error into a one-line message naming the file, and a non-zero exit.
    result = subprocess.run(
        [sys.executable, "-m", "launch.privacy_report", f"--ae_workdir={workdir}", f"--video={corrupt}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "corrupt.avi" in result.stderr
