"""The TFDS builder on a tiny synthetic tree: what goes in is what comes out."""

import json
import shutil

import cv2
import numpy as np
import pytest

from configs import ucf_crime2local as data_config
from ppvad_jax.data import prepare, ucf_layout, video_io


def expected_labels(root, name, num_frames):
    """Per-frame labels read straight from the annotation text, independently of vatic.py."""
    if ucf_layout.video_class(name) == "Normal":
        return np.zeros(num_frames, int)
    lines = (root / ucf_layout.ANNOTATIONS_DIR / f"{name}.txt").read_text().splitlines()
    fields = [line.split() for line in lines if line.strip()]
    frames = [int(f[5]) for f in fields]
    base = 0 if min(frames) == 0 else (1 if max(frames) == num_frames else 0)
    labels = np.ones(num_frames, int)
    for f in fields:
        if f[6] == "0":
            labels[int(f[5]) - base] = 2
    return labels


def expected_indices(labels, strides=(3, 10, 10)):
    kept = []
    for t, label in enumerate(labels):
        start = t
        while start > 0 and labels[start - 1] == label:
            start -= 1
        if (t - start) % strides[label] == 0:
            kept.append(t)
    return kept


@pytest.fixture(scope="module")
def built(tiny_world, tmp_path_factory):
    root, manifest = tiny_world
    config = data_config.get_config("runlocal")
    data_dir = tmp_path_factory.mktemp("tfds")
    summary = prepare.prepare(manual_dir=root, data_dir=data_dir, config=config, num_workers=2)
    return root, manifest, config, data_dir, summary


def test_round_trip(built):
    root, manifest, config, _, summary = built
    assert summary["skipped"] == [] and summary["warnings"] == []
    by_split = {}
    for split in ("train", "validation", "test"):
        source = prepare.load_split(summary["dataset_dir"], split)
        by_split[split] = {}
        for i in range(len(source)):
            ex = source[i]
            by_split[split].setdefault(ex["video_name"].decode(), []).append(ex)
    train = ucf_layout.read_split_file(root / ucf_layout.TRAIN_SPLIT)
    test = ucf_layout.read_split_file(root / ucf_layout.TEST_SPLIT)
    assert sorted(by_split["train"]) == sorted(train)
    assert sorted(by_split["validation"]) + sorted(by_split["test"]) != []
    assert sorted(list(by_split["validation"]) + list(by_split["test"])) == sorted(test)
    videos = ucf_layout.find_videos(root)
    for split, per_video in by_split.items():
        frames_total = {name: 0 for name in ucf_layout.LABEL_NAMES}
        for name, examples in per_video.items():
            examples.sort(key=lambda e: e["frame_index"])
            n = video_io.video_properties(videos[name])["frame_count"]
            labels = expected_labels(root, name, n)
            indices = expected_indices(labels)
            assert [int(e["frame_index"]) for e in examples] == indices, name
            assert [int(e["label"]) for e in examples] == [int(labels[i]) for i in indices]
            # The flow's previous frame is 1/10 s (3 frames) earlier, whatever the label.
            assert [int(e["prev_frame_index"]) for e in examples] == [max(i - 3, 0) for i in indices]
            for e in examples:
                frames_total[ucf_layout.LABEL_NAMES[int(e["label"])]] += 1
                assert ucf_layout.CLASSES[int(e["video_class"])] == ucf_layout.video_class(name)
            # Pixels: the stored frame is the decoded frame, area-resized.
            k = len(examples) // 2
            prev = max(indices[k] - 3, 0)
            decoded = dict(video_io.read_frames(videos[name], sorted({prev, indices[k]})))
            size = (config.width, config.height)
            want = cv2.resize(decoded[indices[k]], size, interpolation=cv2.INTER_AREA)
            want_prev = cv2.resize(decoded[prev], size, interpolation=cv2.INTER_AREA)
            np.testing.assert_array_equal(examples[k]["frame"], want)
            np.testing.assert_array_equal(examples[k]["prev_frame"], want_prev)
            assert examples[k]["frame"].shape == (config.height, config.width, 3)
        assert summary["frames"][split] == frames_total
        assert summary["videos"][split] == len(per_video)


def test_second_prepare_reuses_the_dataset(built):
    root, _, config, data_dir, summary = built
    again = prepare.prepare(manual_dir=root, data_dir=data_dir, config=config)
    assert again["reused"] is True
    assert again["frames"] == summary["frames"]
    saved = json.loads((prepare.pathlib.Path(summary["dataset_dir"]) / prepare.SUMMARY_FILE).read_text())
    assert saved["videos"] == summary["videos"]


def test_a_dataset_built_from_other_split_files_is_rebuilt(built, tmp_path):
    """Split files edited (or a world regenerated) after the build: reusing the build would
    train and test on the old videos, so prepare rebuilds it."""
    root, _, config, data_dir, summary = built
    world_copy, data_copy = tmp_path / "world", tmp_path / "data"
    shutil.copytree(root, world_copy)
    shutil.copytree(data_dir, data_copy)
    assert prepare.prepare(manual_dir=world_copy, data_dir=data_copy, config=config)["reused"] is True
    train_file, test_file = world_copy / ucf_layout.TRAIN_SPLIT, world_copy / ucf_layout.TEST_SPLIT
    moved = ucf_layout.read_split_file(test_file)[0]
    train_file.write_text(train_file.read_text() + f"{moved}\n")
    test_file.write_text("".join(f"{n}\n" for n in ucf_layout.read_split_file(test_file)[1:]))
    again = prepare.prepare(manual_dir=world_copy, data_dir=data_copy, config=config)
    assert again["reused"] is False
    assert again["source_splits"]["train"] == sorted(ucf_layout.read_split_file(train_file))
    test = prepare.load_split(again["dataset_dir"], "test")
    names = {bytes(test[i]["video_name"]).decode() for i in range(len(test))}
    assert names and moved not in names
    assert sum(again["videos"].values()) == sum(summary["videos"].values())


def test_custom_rates_get_their_own_config(tiny_world, tmp_path):
    root, _ = tiny_world
    config = data_config.get_config("runlocal")
    config.fps_normal, config.fps_soft, config.fps_hard = 30.0, 15.0, 15.0
    config.prev_frame_fps = 0.0  # the paper's literal "previous sampled frame"
    summary = prepare.prepare(manual_dir=root, data_dir=tmp_path, config=config)
    assert "fps30-15-15_prev0" in summary["config"]
    source = prepare.load_split(summary["dataset_dir"], "train")
    examples = sorted(
        (source[i] for i in range(len(source))), key=lambda e: (e["video_name"], e["frame_index"])
    )
    for a, b in zip(examples, examples[1:], strict=False):
        if a["video_name"] == b["video_name"]:
            assert b["prev_frame_index"] == a["frame_index"]
            np.testing.assert_array_equal(b["prev_frame"], a["frame"])
    normal = [e for e in examples if e["video_class"] == 0]
    assert len(normal) == 60 * len({e["video_name"] for e in normal})  # every frame kept at 30 FPS
