"""The synthetic world: layout, determinism, annotations, and 'learnable but not trivial'."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ppvad_jax.data import ucf_layout, vatic, video_io
from ppvad_jax.data.synthetic import world
from tests.conftest import TINY


def test_layout_matches_ucfcrime2local(tiny_world):
    root, manifest = tiny_world
    train = ucf_layout.read_split_file(root / ucf_layout.TRAIN_SPLIT)
    test = ucf_layout.read_split_file(root / ucf_layout.TEST_SPLIT)
    names = [v["name"] for v in manifest["videos"]]
    assert sorted(train + test) == sorted(names)
    assert {ucf_layout.video_class(n) == "Normal" for n in test} == {True, False}  # both kinds in test
    found = ucf_layout.find_videos(root)
    assert sorted(found) == sorted(names)
    for video in manifest["videos"]:
        path = found[video["name"]]
        assert path.parent.name == video["class"] and path.name.endswith("_x264.avi")
        props = video_io.video_properties(path)
        assert (props["width"], props["height"], props["fps"]) == (320, 240, 30.0)
        assert props["frame_count"] == int(TINY.seconds * 30)
        annotation = root / ucf_layout.ANNOTATIONS_DIR / f"{video['name']}.txt"
        assert annotation.exists() == (video["class"] != "Normal")


def test_annotations_mark_the_anomaly_as_hard_with_either_frame_base(tiny_world):
    root, manifest = tiny_world
    anomalous = [v for v in manifest["videos"] if v["class"] != "Normal"]
    assert anomalous
    for video in anomalous:
        rows = vatic.parse_file(root / ucf_layout.ANNOTATIONS_DIR / f"{video['name']}.txt")
        assert all(r.label == "Person" and len(r.attributes) == 1 for r in rows)
        n = video["frames"]
        labelled = vatic.anomalous_video_labels(rows, num_frames=n)
        assert labelled.frame_base == video["frame_base"]  # the auto rule finds what was written
        hard = np.flatnonzero(labelled.labels == ucf_layout.HARD)
        assert 0 < hard.size < n  # a hard anomaly with soft frames around it
        assert hard[0] > 0 and (labelled.labels == ucf_layout.SOFT).any()


@pytest.mark.slow  # FAST=1 lane under 3 min (BUILD_NOTES, tests); CI runs it
def test_same_seed_same_world_other_seed_other_world(tmp_path, tiny_world):
    root, manifest = tiny_world
    params = world.WorldParams(**{**TINY.__dict__, "num_videos": 3})
    a = world.generate_world(tmp_path / "a", params)
    b = world.generate_world(tmp_path / "b", params, num_workers=2)  # parallel: same world
    world.generate_world(tmp_path / "c", world.WorldParams(**{**params.__dict__, "seed": 99}))
    assert a["videos"] == b["videos"]
    name = a["videos"][2]["name"]  # an anomalous one
    ann = ucf_layout.ANNOTATIONS_DIR / f"{name}.txt"
    assert (tmp_path / "a" / ann).read_text() == (tmp_path / "b" / ann).read_text()
    assert (tmp_path / "a" / ann).read_text() != (tmp_path / "c" / ann).read_text()
    path = a["videos"][0]["path"]
    frames_a = np.stack([f for _, f in video_io.read_frames(tmp_path / "a" / path)])
    frames_b = np.stack([f for _, f in video_io.read_frames(tmp_path / "b" / path)])
    frames_c = np.stack([f for _, f in video_io.read_frames(tmp_path / "c" / path)])
    np.testing.assert_array_equal(frames_a, frames_b)  # FFV1 is lossless: bit-exact
    assert np.abs(frames_a.astype(int) - frames_c).mean() > 5


@pytest.mark.slow
def test_total_motion_alone_does_not_separate_anomalies(tmp_path):
    """A frame classifier that only sees total motion must not reach AUC 1.0."""
    params = world.WorldParams(num_videos=14, seed=0, seconds=3.0, crowd=2)
    manifest = world.generate_world(tmp_path, params)
    scores, targets = [], []
    for video in manifest["videos"]:
        frames = np.stack([f for _, f in video_io.read_frames(tmp_path / video["path"])]).astype(np.float32)
        motion = np.r_[0.0, np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))]
        labels = np.zeros(len(frames), int)
        if video["class"] != "Normal":
            rows = vatic.parse_file(tmp_path / ucf_layout.ANNOTATIONS_DIR / f"{video['name']}.txt")
            labels = vatic.anomalous_video_labels(rows, num_frames=len(frames)).labels
        keep = labels != ucf_layout.SOFT  # hard anomalies vs normal frames
        scores.append(motion[keep][1:])
        targets.append((labels[keep] == ucf_layout.HARD)[1:])
    auc = roc_auc_score(np.concatenate(targets), np.concatenate(scores))
    assert auc < 0.95, auc


def test_the_split_reaches_every_anomaly_class_and_keeps_both_halves_mixed():
    for n in (8, 21, 48, 60):
        params = world.WorldParams(num_videos=n)
        plan = dict(world.plan_videos(params))
        train, test = world.split_plan(list(plan.items()), params)
        assert sorted(train + test) == sorted(plan) and not set(train) & set(test)
        for half in (train, test):
            assert {"Normal"} < {plan[v] for v in half}  # normal and anomalous videos in each half
        anomalous = [v for v in plan if plan[v] != "Normal"]
        in_test = [v for v in test if plan[v] != "Normal"]
        assert abs(len(in_test) - len(anomalous) * params.test_fraction) <= 1
        if n >= 48:  # at least two videos of every class: each class is both trained and tested
            for cls in ucf_layout.ANOMALY_CLASSES:
                assert cls in {plan[v] for v in test} and cls in {plan[v] for v in train}, (n, cls)


def test_a_site_of_fixed_cameras_shares_each_cameras_scene(tmp_path):
    params = world.WorldParams(num_videos=8, seconds=0.5, crowd=0, cameras=2)
    manifest = world.generate_world(tmp_path, params)
    first = [
        next(iter(video_io.read_frames(tmp_path / v["path"])))[1].astype(float) for v in manifest["videos"]
    ]
    camera = [v["camera"] for v in manifest["videos"]]
    wall = slice(0, 40)  # above the people and cars: the camera's scene, plus per-video sensor noise and gain

    def gap(i, j):
        return np.median(np.abs(first[i][wall] - first[j][wall]))

    same = [gap(i, j) for i in range(8) for j in range(i) if camera[i] == camera[j]]
    other = [gap(i, j) for i in range(8) for j in range(i) if camera[i] != camera[j]]
    assert same and other and max(same) < 8
    assert min(other) > 3 * max(max(same), 1)


@pytest.mark.parametrize(
    "num_videos,cameras,test_fraction", [(45, 4, 0.4), (24, 2, 0.4), (27, 4, 0.5), (60, 3, 0.4)]
)
def test_every_camera_films_normal_and_anomalous_videos_of_train_and_test(num_videos, cameras, test_fraction):
    """Guards the scene trap: with video i on camera i % K, coverage was left to the split's
    indices: the demo's (45, 4, 0.4) was covered, (24, 2, 0.4) and (27, 4, 0.5) were not."""
    params = world.WorldParams(num_videos=num_videos, cameras=cameras, test_fraction=test_fraction)
    plan = world.plan_videos(params)
    train, test = world.split_plan(plan, params)
    manifest = {
        "videos": [
            {"name": n, "class": c, "camera": k}
            for (n, c), k in zip(plan, _cameras(plan, params), strict=True)
        ],
        "train": train,
        "test": test,
    }
    for split, kinds in world.scene_coverage(manifest).items():
        for kind, seen in kinds.items():
            assert seen == list(range(cameras)), (split, kind, seen)


def _cameras(plan, params):
    cameras = world.camera_plan(plan, params)
    assert set(cameras) == {n for n, _ in plan}
    return [cameras[n] for n, _ in plan]
