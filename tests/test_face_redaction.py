"""Identity removal at the camera: after redaction the strong detector finds no face, and the
camera encodes the redacted frame, never the face."""

import cv2
import numpy as np
import pytest

from ppvad_jax.data import face_photos
from ppvad_jax.models import centerface, face_redaction
from ppvad_jax.serving import camera_encoder
from ppvad_jax.training import classifier_inputs
from tests import serving_support as support


def attacker_count(frame):
    """The attacker's CenterFace at its own threshold (0.5) on the frame upscaled twice."""
    big = cv2.resize(frame, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)
    return len(centerface.CenterFace().detect(big).scores)


@pytest.mark.parametrize("method", face_redaction.METHODS)
@pytest.mark.parametrize("size", [(240, 320), (120, 160)], ids=["240x320", "120x160"])
def test_after_redaction_the_strong_detector_finds_no_face(method, size):
    redactor = face_redaction.FaceRedactor(method, margin=0.25)  # a tight box: the scene check below
    for frame in face_photos.photos(size):
        before = frame.copy()
        assert attacker_count(frame) == 1
        redacted, found = redactor.redact(frame)
        assert found == 1 and attacker_count(redacted) == 0
        np.testing.assert_array_equal(frame, before)  # the input is not modified
        # Only the face's box changed: the scene the classifier needs is intact.
        (x1, y1, x2, y2) = redactor.boxes(frame)[0]
        outside = np.ones(frame.shape[:2], bool)
        outside[y1:y2, x1:x2] = False
        np.testing.assert_array_equal(redacted[outside], frame[outside])
        assert (x2 - x1) * (y2 - y1) < 0.5 * frame.shape[0] * frame.shape[1]


def test_a_frame_without_faces_is_left_alone():
    frame = np.random.default_rng(0).integers(0, 256, (120, 160, 3), np.uint8)
    redacted, found = face_redaction.FaceRedactor().redact(frame)
    assert found == 0 and np.array_equal(redacted, frame)


def test_bad_settings_and_frames_are_refused():
    with pytest.raises(ValueError, match="method must be one of"):
        face_redaction.FaceRedactor("smudge")
    with pytest.raises(ValueError, match="RGB uint8 frame"):
        face_redaction.FaceRedactor().redact(np.zeros((120, 160), np.uint8))


def test_redaction_by_spec_and_in_the_classifiers_inputs():
    assert face_redaction.from_spec("") is None
    r = face_redaction.from_spec("pixelate@0.5")
    assert (r.method, r.margin) == ("pixelate", 0.5)
    assert face_redaction.from_spec("fill").margin == face_redaction.FaceRedactor().margin
    with pytest.raises(ValueError, match="face redaction 'smudge@1'"):
        face_redaction.from_spec("smudge@1")
    # The classifier trains on what deployment sends: the inputs' path redacts before encoding.
    reconstructor = classifier_inputs.Reconstructor(None, redactor=face_redaction.from_spec("fill@0.8"))
    photos = np.stack(face_photos.photos((120, 160)))
    out = reconstructor(photos)
    assert [attacker_count(f) for f in photos] == [1, 1, 1]
    assert [attacker_count(f) for f in out] == [0, 0, 0]
    empty = np.random.default_rng(0).integers(0, 256, (2, 120, 160, 3), np.uint8)
    np.testing.assert_array_equal(reconstructor(empty), empty)


def test_the_camera_encodes_the_redacted_frame(tmp_path):
    export = support.make_tiny_export(tmp_path / "ae")
    redactor = face_redaction.FaceRedactor("fill")
    plain = camera_encoder.CameraEncoder(export)
    private = camera_encoder.CameraEncoder(export, redactor=redactor)
    frame = face_photos.photos(plain.size)[0]
    redacted, _ = redactor.redact(frame)
    latent = private.latent(frame, frame_index=0)
    np.testing.assert_array_equal(latent, plain.latent(redacted, frame_index=0))
    assert not np.array_equal(latent, plain.latent(frame, frame_index=0))
    assert private.faces_redacted == 1
