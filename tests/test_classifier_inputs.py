"""``classifier_inputs._reconstruct_pairs``: each frame through the camera path once, same output."""

import numpy as np

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
