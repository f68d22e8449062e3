"""Pictures of a prepared dataset: contact sheets per video and a flow preview."""

import collections
import pathlib

import numpy as np

from ppvad_jax.data import contact_sheet, flow, prepare, ucf_layout


def examples_by_video(dataset_dir, split):
    """``{video name: [example, ...]}`` sorted by frame index (loads the split into memory)."""
    source = prepare.load_split(dataset_dir, split)
    videos = collections.defaultdict(list)
    for i in range(len(source)):
        example = source[i]
        videos[example["video_name"].decode()].append(example)
    for examples in videos.values():
        examples.sort(key=lambda e: int(e["frame_index"]))
    return dict(videos)


def write_contact_sheets(dataset_dir, out_dir, *, splits=("train", "validation", "test"), per_video=24):
    """One PNG per video, from the stored examples (so it shows exactly what training sees)."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for split in splits:
        for name, examples in sorted(examples_by_video(dataset_dir, split).items()):
            pick = contact_sheet.pick_evenly(len(examples), per_video)
            chosen = [examples[i] for i in pick]
            sheet = contact_sheet.contact_sheet(
                np.stack([e["frame"] for e in chosen]),
                [int(e["label"]) for e in chosen],
                [int(e["frame_index"]) for e in chosen],
                title=f"{name} ({split}, {len(examples)} sampled frames)",
            )
            path = out_dir / f"{split}_{name}.png"
            contact_sheet.save_png(path, sheet)
            written.append(path)
    return written


def write_flow_preview(dataset_dir, path, *, split="train", method="dis", count=6):
    """Frames of the first anomalous video above their encoded optical flow."""
    videos = examples_by_video(dataset_dir, split)
    name = next((n for n in sorted(videos) if ucf_layout.video_class(n) != "Normal"), sorted(videos)[0])
    examples = videos[name]
    pick = contact_sheet.pick_evenly(len(examples), count)
    frames = np.stack([examples[i]["frame"] for i in pick])
    prevs = np.stack([examples[i]["prev_frame"] for i in pick])
    flows = flow.flow_images(prevs, frames, method=method)
    labels = [int(examples[i]["label"]) for i in pick]
    indices = [int(examples[i]["frame_index"]) for i in pick]
    sheet = contact_sheet.contact_sheet(
        np.concatenate([frames, flows]),
        labels + labels,
        indices + indices,
        title=f"{name}: frames (top) and {method} flow from the previous frame (bottom)",
        columns=len(pick),
    )
    contact_sheet.save_png(path, sheet)
    return path


def motion_energy(examples):
    """Mean absolute difference to the previous sampled frame, per example."""
    return np.array(
        [np.abs(e["frame"].astype(np.float32) - e["prev_frame"].astype(np.float32)).mean() for e in examples]
    )
