import numpy as np
import pytest

from ppvad_jax.data import flow


def textured(seed=0, size=(120, 160)):
    rng = np.random.default_rng(seed)
    import cv2

    coarse = rng.uniform(0, 255, (size[0] // 8, size[1] // 8, 3)).astype(np.float32)
    return cv2.resize(coarse, (size[1], size[0]), interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_recovers_a_known_shift(method):
    image = textured()
    dx, dy = 3, -2
    shifted = np.roll(image, (dy, dx), axis=(0, 1))  # content moves by (+3, -2)
    f = flow.optical_flow(image, shifted, method=method)
    interior = f[20:-20, 20:-20].reshape(-1, 2)
    np.testing.assert_allclose(np.median(interior, axis=0), [dx, dy], atol=0.25)


def test_encoding():
    zero = flow.encode_flow(np.zeros((4, 5, 2)))
    assert (zero[..., 0] == 128).all() and (zero[..., 1] == 128).all() and (zero[..., 2] == 0).all()
    big = flow.encode_flow(np.full((2, 2, 2), [100.0, -100.0]), bound=16)
    assert (big[..., 0] == 255).all() and (big[..., 1] == 0).all() and (big[..., 2] == 255).all()
    half = flow.encode_flow(np.full((1, 1, 2), [8.0, 0.0]), bound=16)
    assert half[0, 0].tolist() == [192, 128, 128]
    with pytest.raises(ValueError, match="non-finite"):
        flow.encode_flow(np.full((2, 2, 2), np.nan))


def test_batched_over_processes_equals_one_by_one():
    frames = np.stack([textured(i, (48, 64)) for i in range(6)])
    prevs = np.roll(frames, 1, axis=0)
    one_by_one = np.stack([flow.flow_image(p, c) for p, c in zip(prevs, frames, strict=True)])
    batched = flow.flow_images(prevs, frames, num_workers=2, chunk=2)
    np.testing.assert_array_equal(batched, one_by_one)


def test_bad_inputs():
    a = textured()
    with pytest.raises(ValueError, match="differ in shape"):
        flow.optical_flow(a, a[:-1])
    with pytest.raises(ValueError, match="RGB uint8"):
        flow.optical_flow(a.astype(np.float32), a.astype(np.float32))
    with pytest.raises(ValueError, match="unknown flow method"):
        flow.optical_flow(a, a, method="magic")
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\]"):
        flow.flow_images(a, a)
