"""Frames for the autoencoder (paper, section 4.1.2), with the unit of privacy explicit.

The paper trains the autoencoder on frames of one video per class, split at
random 70/15/15 into train, validation and test. Here:

- ``videos_per_class`` picks that many videos per class from a split of the
  prepared dataset (seeded); 0 takes every video.
- ``unit="frame"``: a unit is one frame and the 70/15/15 split is over frames
  (the paper's protocol; frames of one video land in several splits). DP then
  protects each frame, not each video.
- ``unit="video"``: a unit is one video, represented by ``frames_per_video``
  evenly spaced frames, and the split is over videos. DP then protects a whole
  video, and so everyone who appears only in it.
"""

import dataclasses

import numpy as np

from ppvad_jax.data import frame_index, prepare, ucf_layout


@dataclasses.dataclass
class Units:
    """Units of one split. ``records[i]``: record numbers (in the source split) of unit i."""

    records: list  # list of int64 arrays; length 1 for frame units
    names: list  # video name of each unit

    def __len__(self):
        return len(self.records)


class FrameSource:
    """Random access to frames of one split of a prepared dataset."""

    def __init__(self, dataset_dir, split):
        self.source = prepare.load_split(dataset_dir, split)
        first = self.source[0]["frame"]
        self.frame_shape = tuple(first.shape)

    def fetch(self, records):
        """uint8 frames for an array of record numbers (any shape), shape ``records.shape + frame``."""
        records = np.asarray(records)
        flat = [self.source[int(r)]["frame"] for r in records.ravel()]
        return np.stack(flat).reshape(*records.shape, *self.frame_shape)


def select_videos(names, *, videos_per_class, seed):
    """Sorted video names: ``videos_per_class`` per class (seeded), or all when 0."""
    unique = sorted(set(names))
    if not videos_per_class:
        return unique
    rng = np.random.default_rng(seed)
    chosen = []
    for cls in ucf_layout.CLASSES:
        members = [n for n in unique if ucf_layout.video_class(n) == cls]
        if members:
            chosen += [members[i] for i in rng.permutation(len(members))[:videos_per_class]]
    return sorted(chosen)


def split_units(
    dataset_dir,
    *,
    source_split="train",
    videos_per_class=1,
    unit="frame",
    frames_per_video=8,
    fractions=(0.7, 0.15, 0.15),
    seed=0,
):
    """``{"train", "validation", "test"}`` -> Units, and the chosen video names."""
    if unit not in ("frame", "video"):
        raise ValueError(f"unit must be 'frame' or 'video', got {unit!r}")
    if abs(sum(fractions) - 1) > 1e-6 or len(fractions) != 3:
        raise ValueError(f"fractions must be three numbers summing to 1, got {fractions}")
    columns = frame_index.load(dataset_dir)[source_split]
    names = columns["video_name"]
    videos = select_videos(names.tolist(), videos_per_class=videos_per_class, seed=seed)
    rng = np.random.default_rng(seed + 1)
    if unit == "frame":
        records = np.flatnonzero(np.isin(names, videos))
        records = records[rng.permutation(len(records))]
        units = [np.array([r]) for r in records]
        unit_names = [str(names[r]) for r in records]
    else:
        order = [videos[i] for i in rng.permutation(len(videos))]
        units, unit_names = [], []
        for video in order:
            recs = np.flatnonzero(names == video)
            recs = recs[np.argsort(columns["frame_index"][recs])]
            pick = np.linspace(0, len(recs) - 1, frames_per_video).round().astype(int)
            units.append(recs[pick])
            unit_names.append(video)
    n = len(units)
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    bounds = {"train": (0, n_train), "validation": (n_train, n_train + n_val), "test": (n_train + n_val, n)}
    out = {k: Units(units[a:b], unit_names[a:b]) for k, (a, b) in bounds.items()}
    for split, chosen in out.items():
        if not len(chosen):
            raise ValueError(
                f"the autoencoder's {split} split is empty: {n} {unit}s from {len(videos)} videos "
                f"are too few for fractions {fractions}; use more videos (videos_per_class=0 takes all)"
            )
    return out, videos


def pool(splits):
    """Every unit of ``splits`` as one ``Units``: train, then validation, then test."""
    parts = [splits[k] for k in ("train", "validation", "test")]
    return Units([r for u in parts for r in u.records], [n for u in parts for n in u.names])


def resplit(splits, chosen):
    """Train on ``chosen`` (indices into the pool: train, then validation, then test units of
    ``splits``); the rest, in order, is a fifth validation and four fifths test.

    A reference model of a membership attack trains on a random half of every candidate frame,
    members of the target and not; its own validation and test come from the other half.
    """
    everything = pool(splits)
    pool_records, pool_names = everything.records, everything.names
    chosen = np.unique(np.asarray(chosen, np.int64))
    if chosen.size == 0 or chosen.min() < 0 or chosen.max() >= len(pool_records):
        raise ValueError(
            f"train subset indices must lie in [0, {len(pool_records)}), got {chosen.size} of them"
        )
    rest = np.setdiff1d(np.arange(len(pool_records)), chosen)
    n_val = max(1, len(rest) // 5)
    parts = {"train": chosen, "validation": rest[:n_val], "test": rest[n_val:]}
    return {k: Units([pool_records[i] for i in v], [pool_names[i] for i in v]) for k, v in parts.items()}
