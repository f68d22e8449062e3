"""What the server would see, computed once per split and cached: the classifier's inputs.

For every record of a split of the prepared dataset (a sampled frame and the
frame 1/10 s before it), this runs the camera-to-server path the classifier
will meet in deployment:

  frame, previous frame -> face redaction at the camera if configured
  (``models.face_redaction``) -> autoencoder (encoder + decoder; or none for the
  clear-frame baseline) -> reconstructions -> optical flow between them
  (``data.flow``) -> flow image; bag of objects on the reconstruction
  (classic OpenCV detectors or a converted YOLOv4).

Reconstructions and flow images are stored resized to the backbone's input
(224x224 uint8: 150 KB per frame and stream), the bag as float32 counts, with
the label (0 normal, 1 soft, 2 hard anomaly), video name and frame index. The
autoencoder, flow and detector are frozen during classifier training, so this
is paid once per (split, autoencoder, detector), not once per epoch: the flow
and the detector cost far more per frame than a training step on the cached
arrays (BUILD_NOTES.md, "Measurements", has their figures).

Files: ``DIR/{split}/{name}.npy`` written to a temporary directory and renamed
when complete, with ``spec.json`` recording what produced them; a cache whose
spec differs from the request is rebuilt, never silently reused.
"""

import json
import pathlib
import shutil

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from ppvad_jax.data import flow, prepare
from ppvad_jax.models import autoencoder, autoencoder_io, two_stream

FIELDS = ("frames", "flows", "bags", "labels", "frame_index", "video_index")


class Reconstructor:
    """uint8 frames -> uint8 reconstructions through an exported autoencoder (or unchanged),
    after ``redactor`` (the camera's face redaction, a batch callable) when given."""

    def __init__(self, export_dir=None, batch_size=16, redactor=None):
        self.export_dir = export_dir
        self.batch_size = batch_size
        self.redactor = redactor
        if export_dir is None:
            self._fn = None
            return
        encode, spec = autoencoder_io.load_encoder(export_dir)
        decode, _ = autoencoder_io.load_decoder(export_dir)
        self.spec = spec

        @jax.jit
        def reconstruct(frames_uint8):
            recon = decode(encode(autoencoder.to_unit_range(frames_uint8)))
            return jnp.clip(jnp.round(recon * 255.0), 0, 255).astype(jnp.uint8)

        self._fn = reconstruct

    def __call__(self, frames):
        if self.redactor is not None:
            frames = self.redactor(np.asarray(frames))
        if self._fn is None:
            return np.asarray(frames)
        want = tuple(self.spec["frame_shape"])
        if tuple(frames.shape[1:]) != want:
            raise ValueError(
                f"autoencoder {self.export_dir} takes frames {want}, "
                f"the dataset has {tuple(frames.shape[1:])}"
            )
        out = []
        for start in range(0, len(frames), self.batch_size):
            chunk = frames[start : start + self.batch_size]
            padded = np.pad(chunk, ((0, self.batch_size - len(chunk)),) + ((0, 0),) * 3, mode="edge")
            out.append(np.asarray(self._fn(padded))[: len(chunk)])
        return np.concatenate(out)


def build_split(
    dataset_dir, split, out_dir, *, reconstructor, detector, size=224, flow_method="dis", chunk=64, spec=None
):
    """Computes and stores one split's classifier inputs under ``out_dir/split``; returns them loaded."""
    out = pathlib.Path(out_dir) / split
    spec = dict(spec or {}, split=split, size=size, flow_method=flow_method)
    if (out / "spec.json").is_file() and json.loads((out / "spec.json").read_text()) == spec:
        return load_split(out_dir, split)
    source = prepare.load_split(dataset_dir, split)
    n = len(source)
    if n == 0:
        raise ValueError(f"split {split!r} of {dataset_dir} is empty")
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    arrays = {
        "frames": np.lib.format.open_memmap(tmp / "frames.npy", "w+", np.uint8, (n, size, size, 3)),
        "flows": np.lib.format.open_memmap(tmp / "flows.npy", "w+", np.uint8, (n, size, size, 3)),
    }
    # In time order within each video (the stored order is shuffled), so that a sample's
    # previous frame is usually the sample just before it and goes through the camera once.
    order = sorted(range(n), key=lambda i: _time_key(source[i]))
    bags, labels, frame_index, videos = [None] * n, np.zeros(n, np.int32), np.zeros(n, np.int32), [None] * n
    carry = {}
    for start in tqdm(range(0, n, chunk), desc=f"classifier inputs [{split}]", unit="chunk"):
        idx = np.asarray(order[start : start + chunk])
        records = [source[int(i)] for i in idx]
        rec, rec_prev, carry = _reconstruct_pairs(reconstructor, records, carry)
        flows = flow.flow_images(rec_prev, rec, method=flow_method)
        arrays["frames"][idx] = two_stream.resize_inputs(rec, size)
        arrays["flows"][idx] = two_stream.resize_inputs(flows, size)
        for i, bag, r in zip(idx, detector.bag(rec), records, strict=True):
            bags[i], labels[i], frame_index[i], videos[i] = (
                bag,
                int(r["label"]),
                int(r["frame_index"]),
                _text(r["video_name"]),
            )
    for a in arrays.values():
        a.flush()
    names = sorted(set(videos))
    np.save(tmp / "bags.npy", np.stack(bags).astype(np.float32))
    np.save(tmp / "labels.npy", labels)
    np.save(tmp / "frame_index.npy", frame_index)
    np.save(tmp / "video_index.npy", np.asarray([names.index(v) for v in videos], np.int32))
    (tmp / "videos.json").write_text(json.dumps(names))
    (tmp / "spec.json").write_text(json.dumps(spec, indent=2))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return load_split(out_dir, split)


def _time_key(record):
    return _text(record["video_name"]), int(record["frame_index"])


def _reconstruct_pairs(reconstructor, records, carry):
    """``(reconstructions, previous frames' reconstructions, carry)`` of one chunk of records.

    A frame that is both a sample and the next sample's previous frame (every frame at the
    demo's 10 FPS sampling) is redacted and reconstructed once, not twice: frames are keyed by
    (video, frame index) and reused only when their pixels are identical, so the output is what
    reconstructing each frame on its own gives. ``carry`` holds the chunk's samples for the next
    chunk's first previous frames. Saves up to half the camera path's cost (CenterFace
    redaction is most of it: about 24 ms a frame on 2 cores)."""
    items = [((_text(r["video_name"]), int(r["frame_index"])), r["frame"]) for r in records]
    items += [((_text(r["video_name"]), int(r["prev_frame_index"])), r["prev_frame"]) for r in records]
    todo, first, slots = [], {}, []  # frames to reconstruct; key -> its slot in todo; per item
    for key, frame in items:
        if key in carry and np.array_equal(carry[key][0], frame):
            slots.append(carry[key][1])
        elif key in first and np.array_equal(todo[first[key]], frame):
            slots.append(first[key])
        else:
            first[key] = len(todo)
            slots.append(len(todo))
            todo.append(frame)
    done = reconstructor(np.stack(todo)) if todo else None
    out = [done[x] if isinstance(x, int) else x for x in slots]
    n = len(records)
    carry = {key: (frame, out[i]) for i, (key, frame) in enumerate(items[:n])}
    return np.stack(out[:n]), np.stack(out[n:]), carry


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def load_split(out_dir, split):
    """``{field: array}`` (frames and flows memory-mapped) plus ``videos`` (names) and ``spec``."""
    d = pathlib.Path(out_dir) / split
    data = {f: np.load(d / f"{f}.npy", mmap_mode="r" if f in ("frames", "flows") else None) for f in FIELDS}
    data["videos"] = json.loads((d / "videos.json").read_text())
    data["spec"] = json.loads((d / "spec.json").read_text())
    return data
