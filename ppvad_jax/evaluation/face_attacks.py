"""Strong attackers on what the server sees: CenterFace finds faces, dlib names and links people.

The question is frame privacy (who is in the frames a camera sends), not DP-SGD's membership of
training frames. A *camera path* is any function ``uint8 frames [N, H, W, 3] -> what the server
sees, uint8 [N, H, W, 3]`` (the autoencoder's reconstruction, with redaction or latent local DP
before it, or a blur). Each is measured on the same sightings of real people:

- **Identities:** every face CenterFace finds (score >= 0.6) on the real photos of
  ``data.face_photos``: the astronaut, Grace Hopper and the 22 faces of face-api's six group
  photos, 24 people (chance 1/24). The camera man is left out (he is a pretraining image).
- **Sightings:** each person ``views`` times: the head (face and hair: a feathered ellipse
  around the face box) scaled so that the face is 30-45% of the frame height, mirrored or not,
  brightness x0.7-1.2, blended at a random place into a random crop of a public image (a new
  one each time). Backgrounds are drawn independently of identity, so a match is not a shared
  scene; the control below checks what else links.
  Faces are large (about 40 px at 120x160): a best case for the attacker, as a doorway camera.
- **Where the face is:** the attacker is given the true box (an oracle location), so the
  re-identification numbers do not depend on the detector: an upper bound on what dlib does.

Metrics (attacker thresholds: CenterFace 0.5, frames upscaled to at least 240 rows):

- ``detection_rate``: sightings where CenterFace finds a face overlapping the true box (IoU >=
  0.3) on the server's view, over the same on the clear frames (the issue's "faces found on the
  reconstructions / on the originals"). ``detected_server`` / ``detected_clear`` are the counts.
- ``naive``: gallery = each person's clear view 0 (a photo the attacker holds), probes = the
  server's views from ``gallery_views`` on (the adaptive attacker's probes too); ``top1``,
  ``top5`` and the verification ``roc_auc`` (sklearn, every probe x person pair, score = minus
  the dlib distance).
- ``adaptive``: the attacker knows the camera path, passes its gallery photos through it
  (views 0..``gallery_views``-1) and re-trains its matcher there: nearest centroid in dlib
  space, and LDA (sklearn, SVD solver) fitted on the processed gallery; the better of the two
  on the probes is the headline (choosing on the probes favours the attacker: a conservative
  choice for a privacy claim), and both are reported.
- Every top-1 has a Clopper-Pearson 95% interval (``top1_ci95``); ties count as a random pick.
- ``linking``: server views only, no gallery: each probe's nearest other probe is the same
  person (``top1``) and the verification AUC over probe pairs: what a curious server can do
  across frames and cameras.
- ``background_control``: the same linking after the face box is filled with grey before the
  camera path: what the rest of dlib's aligned chip (hair, neck, the photo's backdrop around
  the head) gives. Measured well above chance (hair and clothes link people too), so the face's
  own share of ``linking`` is what exceeds the control.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import NamedTuple

import cv2
import numpy as np
from scipy import stats
from sklearn import discriminant_analysis, metrics

from ppvad_jax.data import face_photos, public_images
from ppvad_jax.evaluation import face_descriptor, faces, reidentification
from ppvad_jax.models import centerface

HEAD_MARGIN = 0.6  # of the face box's side, on each side: hair and chin, as a camera sees a head
MIN_SCORE = 0.6  # CenterFace's score for a face of the photos to count as a person
ATTACK_ROWS = 240  # the attacker upscales smaller frames to this height before detecting/describing


class Person(NamedTuple):
    name: str
    head: np.ndarray  # uint8 RGB crop around the face
    face: np.ndarray  # float [4] x1, y1, x2, y2 of the face inside ``head``


class Sightings(NamedTuple):
    frames: np.ndarray  # uint8 [N, H, W, 3]
    person: np.ndarray  # int [N]
    view: np.ndarray  # int [N]
    boxes: np.ndarray  # float [N, 4] the face's true box in the frame


def people(detector=None, *, limit=None) -> list[Person]:
    """The identities of the module docstring, from the photos at full resolution.

    ``limit``: the first ``limit`` people only, and only the photos they need (tests; cheap).
    """
    detector = detector or centerface.CenterFace(threshold=MIN_SCORE)
    portraits = [(n, lambda n=n: face_photos.photo(n)) for n in ("astronaut", "hopper")]
    groups = [(n, lambda n=n: face_photos.group_photo(n)) for n in face_photos.GROUP_NAMES]
    out = []
    for name, load in portraits + groups:
        if limit is not None and len(out) >= limit:
            break
        image = load()
        found = detector.detect(image)
        boxes = found.boxes[found.scores >= MIN_SCORE]
        if name in ("astronaut", "hopper"):  # a portrait: its one person is the largest face
            boxes = boxes[np.argsort(-(boxes[:, 2] - boxes[:, 0]))[:1]]
        out += [_person(f"{name}/{k}", image, box) for k, box in enumerate(boxes)]
    return out[:limit]


def _person(name, image, box):
    side = float(max(box[2] - box[0], box[3] - box[1]))
    h, w = image.shape[:2]
    x1, y1 = int(max(0, box[0] - HEAD_MARGIN * side)), int(max(0, box[1] - HEAD_MARGIN * side))
    x2, y2 = int(min(w, box[2] + HEAD_MARGIN * side)), int(min(h, box[3] + HEAD_MARGIN * side))
    return Person(name, image[y1:y2, x1:x2].copy(), np.asarray(box, np.float64) - [x1, y1, x1, y1])


def sightings(persons, *, size, views, seed) -> Sightings:
    """Each person ``views`` times on fresh backgrounds (module docstring), frames of ``size``."""
    rng = np.random.default_rng(seed)
    height, width = size
    frames, person, view, boxes = [], [], [], []
    for i, p in enumerate(persons):
        for v in range(views):
            frame, box = _paste(p, public_images.random_crops(rng, 1, height, width)[0], rng)
            frames.append(frame)
            person.append(i)
            view.append(v)
            boxes.append(box)
    return Sightings(np.stack(frames), np.array(person), np.array(view), np.array(boxes))


def _paste(p, background, rng):
    height, width = background.shape[:2]
    scale = rng.uniform(0.30, 0.45) * height / (p.face[3] - p.face[1])
    head = cv2.resize(p.head, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    face = p.face * scale
    if rng.random() < 0.5:
        head = head[:, ::-1]
        face = np.array([head.shape[1] - face[2], face[1], head.shape[1] - face[0], face[3]])
    head = (head.astype(np.float32) * rng.uniform(0.7, 1.2))[:height, :width]
    alpha = _head_mask(head.shape[:2], face)
    y = rng.integers(0, height - head.shape[0] + 1)
    x = rng.integers(0, width - head.shape[1] + 1)
    frame = background.copy()
    region = frame[y : y + head.shape[0], x : x + head.shape[1]].astype(np.float32)
    blended = alpha * head + (1 - alpha) * region
    frame[y : y + head.shape[0], x : x + head.shape[1]] = np.clip(blended, 0, 255).round().astype(np.uint8)
    return frame, np.clip(face + [x, y, x, y], 0, [width, height, width, height])


def _head_mask(shape, face):
    """[h, w, 1] weights: a feathered ellipse over face and hair, so that the photo's own backdrop
    around the head is replaced by the new background (else it would link sightings)."""
    fw, fh = face[2] - face[0], face[3] - face[1]
    centre = (int((face[0] + face[2]) / 2), int((face[1] + face[3]) / 2 - 0.1 * fh))
    mask = np.zeros(shape, np.float32)
    cv2.ellipse(mask, centre, (int(0.75 * fw), int(0.8 * fh)), 0, 0, 360, 1.0, -1)
    return cv2.GaussianBlur(mask, (0, 0), max(1.0, 0.08 * fw))[..., None]


def _upscale(frame):
    s = max(1.0, ATTACK_ROWS / frame.shape[0])
    return (frame if s == 1 else cv2.resize(frame, None, fx=s, fy=s, interpolation=cv2.INTER_LINEAR)), s


def detected(detector, frames, boxes) -> np.ndarray:
    """bool [N]: CenterFace finds a face with IoU >= 0.3 to the true box."""
    hits = []
    for frame, box in zip(frames, boxes, strict=True):
        big, s = _upscale(frame)
        found = detector.detect(big).boxes / s
        hits.append(bool(len(found)) and faces.iou(box[None], found).max() >= 0.3)
    return np.array(hits)


def describe(descriptor, frames, boxes) -> np.ndarray:
    """dlib descriptors [N, 128] at the true boxes (the oracle location)."""
    out = []
    for frame, box in zip(frames, boxes, strict=True):
        big, s = _upscale(frame)
        out.append(descriptor.describe(big, box[None] * s)[0])
    return np.stack(out)


def fill_faces(frames, boxes) -> np.ndarray:
    """The frames with each true face box filled with grey 128 (the background control: not the
    face's mean colour, which would carry skin tone)."""
    out = frames.copy()
    for frame, box in zip(out, np.round(boxes).astype(int), strict=True):
        frame[box[1] : box[3], box[0] : box[2]] = 128
    return out


def ranking(distances, probe_person, columns_person) -> dict:
    """top1/top5 and verification ROC AUC of probes [P] against person columns [C] of ``distances``."""
    order = {p: j for j, p in enumerate(columns_person)}
    true = np.array([order[p] for p in probe_person])
    top = {f"top{k}": v for k, v in reidentification.topk_accuracy(distances, true, (1, 5)).items()}
    top["top1_ci95"] = _ci(_first_rank(distances, true))
    same = np.asarray(probe_person)[:, None] == np.asarray(columns_person)[None, :]
    return {**top, "roc_auc": float(metrics.roc_auc_score(same.ravel(), -distances.ravel()))}


def _first_rank(distances, true):
    """[P] probability that the true column ranks first, ties broken at random."""
    true_d = distances[np.arange(len(true)), true][:, None]
    nearer, tied = (distances < true_d).sum(axis=1), (distances == true_d).sum(axis=1)
    return np.where(nearer == 0, 1.0 / tied, 0.0)


def _ci(hits):
    """Clopper-Pearson 95% interval of a rate from [n] hit probabilities (their sum, rounded, as
    the count): with 50-100 probes the spread is wide and belongs next to the rate."""
    ci = stats.binomtest(int(round(float(np.sum(hits)))), len(hits)).proportion_ci(0.95, method="exact")
    return [float(ci.low), float(ci.high)]


def linking(descriptors, person) -> dict:
    """Each probe's nearest other probe is the same person; verification AUC over pairs i < j."""
    d = face_descriptor.distances(descriptors, descriptors)
    np.fill_diagonal(d, np.inf)
    nearest = d == d.min(axis=1, keepdims=True)  # ties: the expected rate of a random pick
    hits = (nearest & (person[None, :] == person[:, None])).sum(axis=1) / nearest.sum(axis=1)
    i, j = np.triu_indices(len(person), k=1)
    auc = float(metrics.roc_auc_score(person[i] == person[j], -d[i, j]))
    return {"top1": float(np.mean(hits)), "top1_ci95": _ci(hits), "roc_auc": auc}


def _centroids(descriptors, person):
    ids = np.unique(person)
    return ids, np.stack([descriptors[person == p].mean(axis=0) for p in ids])


def adaptive(gallery, gallery_person, probes, probe_person) -> dict:
    """Matchers re-trained on the gallery as the camera path renders it (module docstring).

    LDA needs two or more gallery views per person; with one it is left out (``lda`` None).
    """
    ids, centres = _centroids(gallery, gallery_person)
    centroid = ranking(face_descriptor.distances(probes, centres), probe_person, ids)
    if len(gallery) <= len(ids):
        return {**centroid, "centroid": centroid, "lda": None}
    lda = discriminant_analysis.LinearDiscriminantAnalysis(solver="svd").fit(gallery, gallery_person)
    ids, centres = _centroids(lda.transform(gallery), gallery_person)
    learnt = ranking(face_descriptor.distances(lda.transform(probes), centres), probe_person, ids)
    best = max((centroid, learnt), key=lambda r: (r["top1"], r["roc_auc"]))
    return {**best, "centroid": centroid, "lda": learnt}


@dataclasses.dataclass
class Attackers:
    """The attackers' models and the clear references, built once for several camera paths."""

    sightings: Sightings
    gallery_views: int
    detector: centerface.CenterFace
    descriptor: face_descriptor.FaceDescriptor
    clear_detected: np.ndarray
    clear_descriptors: np.ndarray

    @classmethod
    def build(cls, *, size, views=5, gallery_views=2, seed=0, persons=None):
        if not 1 <= gallery_views < views:
            raise ValueError(f"need 1 <= gallery_views < views, got {gallery_views}, {views}")
        detector = centerface.CenterFace()  # the attacker's threshold, 0.5
        descriptor = face_descriptor.FaceDescriptor()
        seen = sightings(persons if persons is not None else people(), size=size, views=views, seed=seed)
        return cls(
            seen, gallery_views, detector, descriptor,
            detected(detector, seen.frames, seen.boxes), describe(descriptor, seen.frames, seen.boxes),
        )  # fmt: skip

    @property
    def num_people(self):
        return int(self.sightings.person.max()) + 1

    def evaluate(self, path: Callable[[np.ndarray], np.ndarray]) -> dict:
        """Every metric of the module docstring for one camera path."""
        s = self.sightings
        server = _checked(path(s.frames), s.frames.shape)
        hits = detected(self.detector, server, s.boxes)
        seen = describe(self.descriptor, server, s.boxes)
        filled = _checked(path(fill_faces(s.frames, s.boxes)), s.frames.shape)
        control = describe(self.descriptor, filled, s.boxes)
        g, p, first = s.view < self.gallery_views, s.view >= self.gallery_views, s.view == 0
        naive = face_descriptor.distances(seen[p], self.clear_descriptors[first])
        clear_hits = int(self.clear_detected.sum())
        return {
            "people": self.num_people,
            "chance_top1": 1.0 / self.num_people,
            "sightings": len(s.person),
            "detected_clear": clear_hits,
            "detected_server": int(hits.sum()),
            "detection_rate": int((hits & self.clear_detected).sum()) / max(clear_hits, 1),
            "naive": ranking(naive, s.person[p], s.person[first]),
            "adaptive": adaptive(seen[g], s.person[g], seen[p], s.person[p]),
            "linking": linking(seen[p], s.person[p]),
            "background_control": linking(control[p], s.person[p]),
        }


def _checked(frames, shape):
    frames = np.asarray(frames)
    if frames.shape != shape or frames.dtype != np.uint8:
        raise ValueError(f"a camera path must return uint8 frames {shape}, got {frames.shape} {frames.dtype}")
    return frames


@functools.cache
def _group_faces():
    """[(photo, its CenterFace boxes at score >= MIN_SCORE)] at full resolution (17 s; cached)."""
    detector = centerface.CenterFace(threshold=MIN_SCORE)
    out = []
    for _, photo in face_photos.group_photos():
        found = detector.detect(photo)
        out.append((photo, found.boxes[found.scores >= MIN_SCORE]))
    return out


def redaction_recall(redact, sizes=((240, 320), (120, 160))) -> dict:
    """How many real faces a camera's redaction covers, on the six group photos at camera size.

    The reference is CenterFace (score >= ``MIN_SCORE``) on each photo at full resolution (1920
    px wide: faces of 150-240 px), the camera sees the photo resized to ``size`` (faces of 20-40
    px at 240x320). A face counts as covered when the redacted pixels hold at least 90% of its
    box; a face not covered is sent as it is (a miss leaks). ``pixels_redacted``: the mean
    share of each frame's pixels the redaction changed (what the scene loses). ``redact``:
    uint8 frame -> (redacted frame, count), e.g. ``models.face_redaction.FaceRedactor.redact``.
    """
    out = {}
    for height, width in sizes:
        covered = total = 0
        changed_share = []
        for photo, boxes in _group_faces():
            frame = cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA)
            changed = (redact(frame)[0] != frame).any(axis=-1)
            changed_share.append(float(changed.mean()))
            scale = np.array([width / photo.shape[1], height / photo.shape[0]] * 2)
            for box in np.round(boxes * scale).astype(int):
                x1, y1, x2, y2 = np.clip(box, 0, [width, height, width, height])
                inside = changed[y1:y2, x1:x2]
                covered += int(bool(inside.size) and inside.mean() >= 0.9)
                total += 1
        out[f"{height}x{width}"] = {
            "faces": total, "covered": covered, "recall": covered / max(total, 1),
            "pixels_redacted": float(np.mean(changed_share)),
        }  # fmt: skip
    return out
