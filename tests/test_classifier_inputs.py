"""``classifier_inputs._reconstruct_pairs``: each frame through the camera path once, same output."""

import numpy as np
import pytest

from ppvad_jax.training import classifier_inputs


class CountingPath:
    """A per-frame camera path (invert and shift the colours) that counts the frames it sees."""

    def __init__(self):
        self.frames = 0

    def __call__(self, frames):
        self.frames += len(frames)
        return (255 - frames[..., ::-1]).astype(np.uint8)


def _records(video, indices, rng, frames=None):
    frames = frames if frames is not None else {}
    for i in [indices[0] - 1, *indices]:
        frames.setdefault((video, i), rng.integers(0, 256, (4, 5, 3), dtype=np.uint8))
    return [
        {"video_name": video.encode(), "frame_index": i, "prev_frame_index": i - 1,
         "frame": frames[(video, i)], "prev_frame": frames[(video, i - 1)]}
        for i in indices
    ]  # fmt: skip


def test_consecutive_samples_are_reconstructed_once_and_equal_the_frame_by_frame_result():
    rng = np.random.default_rng(0)
    records = _records("a", list(range(1, 11)), rng) + _records("b", [5, 6, 7], rng)
    path, carry, got = CountingPath(), {}, []
    for chunk in (records[:4], records[4:9], records[9:]):  # the carry crosses chunk boundaries
        rec, rec_prev, carry = classifier_inputs._reconstruct_pairs(path, chunk, carry)
        got.append((rec, rec_prev))
    reference = CountingPath()
    want_rec = reference(np.stack([r["frame"] for r in records]))
    want_prev = reference(np.stack([r["prev_frame"] for r in records]))
    np.testing.assert_array_equal(np.concatenate([g[0] for g in got]), want_rec)
    np.testing.assert_array_equal(np.concatenate([g[1] for g in got]), want_prev)
    # 13 samples and the 2 first previous frames: 15 frames, not 26.
    assert path.frames == 15 and reference.frames == 26


def test_a_frame_with_the_same_key_but_other_pixels_is_not_reused():
    rng = np.random.default_rng(1)
    records = _records("a", [1, 2], rng)
    records[1] = dict(records[1], prev_frame=rng.integers(0, 256, (4, 5, 3), dtype=np.uint8))  # a re-encode
    path = CountingPath()
    _, rec_prev, _ = classifier_inputs._reconstruct_pairs(path, records, {})
    np.testing.assert_array_equal(rec_prev[1], CountingPath()(records[1]["prev_frame"][None])[0])
    assert path.frames == 4


class MeanBag:
    """A stand-in detector: one 'count' per frame, its mean pixel (per-frame, order-free)."""

    def bag(self, frames):
        return np.asarray(frames, np.float32).mean(axis=(1, 2, 3))[:, None]


@pytest.mark.slow  # builds the tiny dataset for this module: FAST=1 stays under 3 min
def test_a_split_is_built_in_time_order_but_stored_in_the_datasets_order(dataset_dir, tmp_path):
    from ppvad_jax.data import prepare  # noqa: PLC0415
    from ppvad_jax.models import two_stream  # noqa: PLC0415

    path = CountingPath()
    got = classifier_inputs.build_split(
        dataset_dir, "train", tmp_path, reconstructor=path, detector=MeanBag(), size=32, chunk=16
    )
    source = prepare.load_split(dataset_dir, "train")
    n = len(source)
    records = [source[i] for i in range(n)]
    assert got["labels"].tolist() == [int(r["label"]) for r in records]
    assert got["frame_index"].tolist() == [int(r["frame_index"]) for r in records]
    assert [got["videos"][v] for v in got["video_index"]] == [
        classifier_inputs._text(r["video_name"]) for r in records
    ]
    want = two_stream.resize_inputs(CountingPath()(np.stack([r["frame"] for r in records])), 32)
    np.testing.assert_array_equal(got["frames"], want)
    np.testing.assert_allclose(
        got["bags"][:, 0], MeanBag().bag(CountingPath()(np.stack([r["frame"] for r in records])))[:, 0]
    )
    assert path.frames < 2 * n  # previous frames that are also samples went through once
