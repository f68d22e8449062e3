"""Frame privacy against strong attackers: the identities are real faces, the metrics can fail,
and each camera mechanism is measured on the same sightings."""

import json

import numpy as np
import pytest

from ppvad_jax.evaluation import face_attacks, faces
from ppvad_jax.pipelines import frame_privacy
from ppvad_jax.privacy import latent_ldp
from tests import serving_support as support

dlib = pytest.importorskip("dlib", reason="the dlib attacker: pip install -r requirements.txt")


@pytest.fixture(scope="module")
def persons():
    return face_attacks.people()


@pytest.fixture(scope="module")
def attackers(persons):
    # Eight people (the two portraits and one of each of six group photos, the varied ones).
    picked = [persons[0], persons[1]] + [p for p in persons[2:] if p.name.endswith("/0")]
    return face_attacks.Attackers.build(size=(120, 160), views=3, gallery_views=1, seed=1, persons=picked)


def test_the_identities_are_faces_dlibs_own_detector_also_finds(persons):
    assert len(persons) == 24 and len({p.name for p in persons}) == 24
    hog = dlib.get_frontal_face_detector()  # an independent detector (HOG), not CenterFace
    found = 0
    for p in persons:
        rects = hog(p.head, 1)
        boxes = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects]).reshape(-1, 4)
        found += bool(len(boxes)) and faces.iou(p.face[None], boxes).max() >= 0.3
    assert found >= 20, f"dlib's HOG confirms {found} of 24 faces"


def test_on_clear_frames_everyone_is_found_and_named(attackers):
    r = attackers.evaluate(lambda f: f)
    assert r["detection_rate"] == 1.0 and r["detected_clear"] >= 22  # of 24 sightings
    assert r["naive"]["top1"] == 1.0 and r["adaptive"]["top1"] == 1.0 and r["linking"]["top1"] == 1.0
    assert r["naive"]["roc_auc"] > 0.99


def test_a_path_that_sends_nothing_leaves_chance(attackers):
    r = attackers.evaluate(lambda f: np.full_like(f, 128))
    assert r["detected_server"] == 0 and r["detection_rate"] == 0.0
    # identical descriptors: every rank is a tie, so top-1 is chance and the AUC one half
    assert r["naive"]["top1"] == pytest.approx(1 / 8) and r["naive"]["roc_auc"] == pytest.approx(0.5)
    assert r["linking"]["top1"] == pytest.approx(1 / 15)  # 1 of the 15 other probes: the same person


def test_redaction_hides_faces_from_centerface_and_naive_dlib(attackers):
    path, _, _ = frame_privacy.camera_path(frame_privacy.parse("redact_fill@0.8"), None, l2_bound=1.0, seed=0)
    r = attackers.evaluate(path)
    assert r["detection_rate"] == 0.0
    assert r["naive"]["top1"] <= 0.25  # chance 1/8; clear frames give 1.0


def test_ranking_auc_matches_a_pair_count():
    rng = np.random.default_rng(0)
    d = rng.random((30, 6))
    probe = rng.integers(0, 6, 30)
    got = face_attacks.ranking(d, probe, np.arange(6))
    same = probe[:, None] == np.arange(6)[None]
    pos, neg = d[same], d[~same]
    wins = (pos[:, None] < neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean()
    assert got["roc_auc"] == pytest.approx(wins)
    assert got["top1"] == pytest.approx(np.mean(np.argmin(d, axis=1) == probe))
    low, high = got["top1_ci95"]
    assert low <= got["top1"] <= high


@pytest.mark.parametrize(
    ("name", "match"),
    [("ae+blurx", "unknown step"), ("redact_smudge+ae", "redaction 'smudge'"), ("ldp1.0", "needs the"),
     ("clear+ae", "clear is a mechanism")],
)  # fmt: skip
def test_bad_mechanisms_are_named(name, match):
    with pytest.raises(ValueError, match=match):
        frame_privacy.parse(name)


def test_mechanisms_parse():
    m = frame_privacy.parse("redact_pixelate@0.5+ldp0.3+ae")
    assert (m.redact, m.margin, m.ldp, m.ae, m.blur) == ("pixelate", 0.5, 0.3, True, None)


@pytest.mark.slow
def test_the_report_runs_every_mechanism_on_an_export(tmp_path, persons):
    export = support.make_tiny_export(tmp_path / "ae" / "export")
    del export
    report = frame_privacy.run(
        ae_workdir=tmp_path / "ae", mechanisms=["clear", "ae", "ldp1.0+ae"], views=3, gallery_views=1,
        persons=persons[:6], output_dir=tmp_path / "out",
    )  # fmt: skip
    rows = {r["mechanism"]: r for r in report["rows"]}
    assert rows["clear"]["naive"]["top1"] == 1.0 and rows["clear"]["latent_ldp_epsilon"] is None
    bound = report["latent_ldp_l2_bound"]
    ldp = latent_ldp.LatentLdpConfig(enabled=True, noise_multiplier=1.0, l2_bound=bound)
    assert rows["ldp1.0+ae"]["latent_ldp_epsilon"] == pytest.approx(latent_ldp.epsilon(ldp)["epsilon_pld"])
    assert report["autoencoder_training_privacy"] is None  # no metrics.json: no epsilon is printed
    assert (tmp_path / "out" / "frame_privacy.md").read_text().count("\n| ") == 3


def test_the_demo_frontier_measures_the_cameras_default_and_the_autoencoder_alone():
    import ml_collections  # noqa: PLC0415

    from ppvad_jax.pipelines.demo import frontier  # noqa: PLC0415

    points = frontier.mechanisms(ml_collections.ConfigDict({"camera_redaction": "fill@0.8"}))
    assert points == [("redact_fill@0.8+ae", "fill@0.8"), ("ae", "")]
    assert frame_privacy.parse(points[0][0]) == frame_privacy.Mechanism(
        "redact_fill@0.8+ae", redact="fill", margin=0.8, ae=True
    )
    assert frontier.mechanisms(ml_collections.ConfigDict({"camera_redaction": ""})) == [("ae", "")]


@pytest.mark.slow
def test_redaction_recall_counts_the_real_faces_a_redaction_covers():
    from ppvad_jax.models import face_redaction  # noqa: PLC0415

    def nothing(frame):
        return frame, 0

    def everything(frame):
        return np.zeros_like(frame) + (frame == 0).astype(np.uint8), 1  # every pixel changed

    none = face_attacks.redaction_recall(nothing, sizes=((120, 160),))["120x160"]
    assert none["faces"] == 22 and none["covered"] == 0 and none["pixels_redacted"] == 0
    whole = face_attacks.redaction_recall(everything, sizes=((120, 160),))["120x160"]
    assert whole["recall"] == 1.0 and whole["pixels_redacted"] == 1.0
    camera = face_attacks.redaction_recall(face_redaction.FaceRedactor().redact, sizes=((120, 160),))
    got = camera["120x160"]
    assert got["recall"] >= 0.95 and got["pixels_redacted"] < 0.6  # faces of 12-20 px, measured 22/22


def test_the_demo_moves_a_classifier_of_another_camera_path_aside(tmp_path):
    import ml_collections  # noqa: PLC0415

    from ppvad_jax.pipelines.demo import classifier as demo_classifier  # noqa: PLC0415
    from ppvad_jax.training import run_spec  # noqa: PLC0415

    export = support.make_tiny_export(tmp_path / "ae" / "export")
    cls = ml_collections.ConfigDict(
        {"autoencoder_workdir": str(tmp_path / "ae"), "camera_redaction": "fill@0.8"}
    )
    cls_dir = tmp_path / "classifier_2s_bag"
    assert not demo_classifier.stale(cls_dir, cls)  # nothing there yet
    cls_dir.mkdir()

    def record(redaction, fingerprint):
        inputs = {"camera_redaction": redaction, "autoencoder_fingerprint": fingerprint}
        (cls_dir / "inputs_spec.json").write_text(json.dumps({"inputs": inputs}))

    record("fill@0.8", run_spec.export_fingerprint(export))
    assert not demo_classifier.stale(cls_dir, cls)
    record(None, run_spec.export_fingerprint(export))
    assert demo_classifier.stale(cls_dir, cls)  # trained without redaction
    record("fill@0.8", "another autoencoder")
    assert demo_classifier.stale(cls_dir, cls)  # the autoencoder was retrained
