"""The weight-free bag of objects: finds a real face where it is, counts nothing in an empty frame."""

import cv2
import numpy as np
import pytest
from skimage import data

from ppvad_jax.models.classic_detector import CLASSES, ClassicDetector, ClassicDetectorConfig

# Eileen Collins' face in skimage's astronaut (512x512), by eye: x 180-270, y 60-160.
FACE = (180, 60, 270, 160)


@pytest.fixture(scope="module")
def detector():
    return ClassicDetector()


def _overlap(box, ref):
    iw = max(0, min(box[2], ref[2]) - max(box[0], ref[0]))
    ih = max(0, min(box[3], ref[3]) - max(box[1], ref[1]))
    return iw * ih / ((ref[2] - ref[0]) * (ref[3] - ref[1]))


def test_face_found_where_it_is_and_boxes_scale_back(detector):
    image = data.astronaut()
    faces = [d for d in detector.detect(image) if d.label == "face"]
    assert len(faces) == 1 and _overlap(faces[0].box, FACE) > 0.6
    # At 240x320 with 2x upscaling, the box comes back in the small frame's pixels.
    small = cv2.resize(image, (320, 240))
    up = ClassicDetector(ClassicDetectorConfig(upscale=2.0))
    faces = [d for d in up.detect(small) if d.label == "face"]
    scaled = (FACE[0] * 320 / 512, FACE[1] * 240 / 512, FACE[2] * 320 / 512, FACE[3] * 240 / 512)
    assert len(faces) == 1 and _overlap(faces[0].box, scaled) > 0.5


def test_bag_counts_per_class(detector):
    image = cv2.resize(data.astronaut(), (320, 240))
    bag = detector.bag(np.stack([image, np.zeros_like(image)]))
    assert bag.shape == (2, len(CLASSES)) and bag.dtype == np.float32
    face = CLASSES.index("face")
    assert bag[0, face] == 1
    np.testing.assert_array_equal(bag[1], 0)
    # Float frames in [0, 1] are the same picture.
    np.testing.assert_array_equal(detector.bag(image[None].astype(np.float32) / 255.0)[0], bag[0])
    # The counts are the detections, class by class.
    labels = [d.label for d in detector.detect(image)]
    np.testing.assert_array_equal(bag[0], [labels.count(c) for c in CLASSES])


def test_bad_frames_are_named(detector):
    with pytest.raises(ValueError, match="RGB frame"):
        detector.detect(np.zeros((240, 320), np.uint8))
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        detector.detect(np.full((240, 320, 3), 200.0, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        detector.detect(np.full((240, 320, 3), np.nan, np.float32))
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\]"):
        detector.bag(np.zeros((240, 320, 3), np.uint8))
