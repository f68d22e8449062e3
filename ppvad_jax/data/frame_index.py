"""A small per-split index of a prepared dataset: video, frame number and label per record.

TFDS shuffles records when it writes them, so which record holds which frame is
only known after the build. Reading it once and caching it as JSON next to the
dataset lets every later job select frames or whole videos without reading
the frames themselves.
"""

import json
import pathlib

import numpy as np

from ppvad_jax.data import prepare

INDEX_FILE = "frame_index.json"


def build(dataset_dir, splits=("train", "validation", "test")):
    """Scans the splits once and writes ``frame_index.json``; returns the index."""
    index = {}
    for split in splits:
        try:
            source = prepare.load_split(dataset_dir, split)
        except (KeyError, ValueError):  # a split left out because it had no video
            continue
        names, frames, labels = [], [], []
        for i in range(len(source)):
            example = source[i]
            names.append(example["video_name"].decode())
            frames.append(int(example["frame_index"]))
            labels.append(int(example["label"]))
        index[split] = {"video_name": names, "frame_index": frames, "label": labels}
    path = pathlib.Path(dataset_dir) / INDEX_FILE
    tmp = path.with_suffix(".partial")
    tmp.write_text(json.dumps(index))
    tmp.replace(path)
    return index


def load(dataset_dir):
    """The index, built on first use. Arrays are numpy: ``video_name`` (str), ``frame_index``, ``label``."""
    path = pathlib.Path(dataset_dir) / INDEX_FILE
    index = json.loads(path.read_text()) if path.exists() else build(dataset_dir)
    return {
        split: {key: np.asarray(values) for key, values in columns.items()}
        for split, columns in index.items()
    }
