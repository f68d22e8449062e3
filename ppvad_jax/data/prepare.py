"""Builds the ucf_crime2local dataset and reports what happened."""

import contextlib
import dataclasses
import hashlib
import json
import os
import pathlib
import shutil
import time
import uuid

import tensorflow_datasets as tfds
from absl import logging

from ppvad_jax.data import splits, ucf_crime2local, ucf_layout

SUMMARY_FILE = "prepare_summary.json"


def builder_for(*, data_dir, config, num_workers=0):
    """The TFDS builder for a data config (an ml_collections ConfigDict or dict)."""
    builder_config = ucf_crime2local.make_config(
        height=config["height"],
        width=config["width"],
        fps_normal=config["fps_normal"],
        fps_soft=config["fps_soft"],
        fps_hard=config["fps_hard"],
        prev_frame_fps=config["prev_frame_fps"],
        frame_base=config["frame_base"],
        split_seed=config["split_seed"],
    )
    return ucf_crime2local.UcfCrime2Local(
        config=builder_config,
        data_dir=str(data_dir),
        file_format="array_record",
        num_workers=num_workers,
    )


@dataclasses.dataclass(frozen=True)
class _Source:
    """What a build is made from: the source tree, its split files' videos, its fingerprint."""

    manual_dir: str | os.PathLike
    splits: dict[str, list[str]]
    fingerprint: str


def prepare(*, manual_dir, data_dir, config, num_workers: int = 0, overwrite: bool = False) -> dict:
    """Builds the dataset unless it is already built, and returns the summary.

    Nothing already written is lost: TFDS writes each build into a temporary
    folder and renames it once complete, and ``overwrite`` builds the new
    dataset beside the old one (under ``data_dir/.staging-*``), swapping them
    only when the new build has succeeded.

    Returns:
      dict: ``dataset_dir``, ``config``, per-split ``videos`` and ``frames`` per
      label, ``skipped`` (split, name, reason), ``warnings``, ``frame_base`` per
      video, ``seconds``, and ``reused`` (True when nothing was rebuilt).
    """
    train, test = ucf_crime2local.read_splits(manual_dir)  # fail fast, before TFDS makes folders
    source_splits = {"train": sorted(train), "test": sorted(test)}
    builder = builder_for(data_dir=data_dir, config=config, num_workers=num_workers)
    final_dir = pathlib.Path(builder.data_dir)
    source = _Source(manual_dir, source_splits, source_fingerprint(manual_dir))
    if builder.is_prepared() and not overwrite:
        reused = _reused_summary(final_dir, source)
        if reused is not None:
            return reused
    staging = None
    if builder.is_prepared():
        staging = pathlib.Path(data_dir) / f".staging-{uuid.uuid4().hex[:8]}"
        builder = builder_for(data_dir=staging, config=config, num_workers=num_workers)
    start = time.perf_counter()
    _build(builder, manual_dir=manual_dir, final_dir=final_dir, staging=staging)
    return _write_summary(builder, final_dir, source, start=start, split_seed=config["split_seed"])


def _reused_summary(final_dir: pathlib.Path, source: _Source) -> dict | None:
    """The summary of the build already in ``final_dir``, or None when it must be rebuilt."""
    if not (final_dir / SUMMARY_FILE).exists():
        return None
    summary = json.loads((final_dir / SUMMARY_FILE).read_text())
    if summary.get("source_splits") != source.splits:
        # A build from other split files (edited, or a regenerated world) would train and test on
        # the old videos without a word; it is rebuilt beside the old one and swapped in.
        logging.warning(
            "%s was built from other split files than %s holds now: rebuilding", final_dir, source.manual_dir
        )
        return None
    summary["reused"] = True
    # Same split files, other bytes (a skipped video repaired, annotations fixed): reusing
    # is right for a big build the user did not ask to redo, wrong if they repaired it.
    built_from = summary.get("source_fingerprint")
    summary["source_changed"] = built_from is not None and built_from != source.fingerprint
    if summary["source_changed"]:
        logging.warning("%s changed since %s was built: --overwrite rebuilds", source.manual_dir, final_dir)
    return summary


def _build(builder, *, manual_dir, final_dir: pathlib.Path, staging: pathlib.Path | None) -> None:
    """Runs the TFDS build; a build under ``staging`` replaces ``final_dir`` only once complete."""
    try:
        with contextlib.closing(builder):
            builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir))
            )
        if staging is not None:  # swap the new build in, then drop the old one
            old = final_dir.with_name(final_dir.name + ".old")
            final_dir.rename(old)
            pathlib.Path(builder.data_dir).rename(final_dir)
            shutil.rmtree(old)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def _write_summary(builder, final_dir: pathlib.Path, source: _Source, *, start: float, split_seed) -> dict:
    """The new build's summary, with split-class warnings, written beside it (``reused`` False)."""
    summary = builder.summary.as_dict()
    summary.update(
        dataset_dir=str(final_dir),
        config=builder.builder_config.name,
        seconds=round(time.perf_counter() - start, 2),
        manual_dir=str(source.manual_dir),
        source_splits=source.splits,
        source_fingerprint=source.fingerprint,
    )
    summary["warnings"] += split_class_warnings(summary, manual_dir=source.manual_dir, split_seed=split_seed)
    (final_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
    summary["reused"] = False
    return summary


def source_fingerprint(manual_dir):
    """sha256 over (path, size, mtime) of every file under ``manual_dir``: a changed, added or
    removed video or annotation changes it. Cost: one stat per file, no reads (about 2,000
    files for UCF-Crime + UCFCrime2Local, milliseconds)."""
    root = pathlib.Path(manual_dir)
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = pathlib.Path(dirpath) / name
            st = path.stat()
            digest.update(f"{path.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _split_names(manual_dir, split_seed):
    """Video names per split, as the builder splits them (same functions, same seed)."""
    train, test = ucf_crime2local.read_splits(manual_dir)
    validation, test = splits.halve_stratified(test, seed=split_seed)
    return {"train": train, "validation": validation, "test": test}


def split_class_warnings(summary, *, manual_dir, split_seed):
    """Warnings for a split that lost a class to skipped videos (a video class its split file
    lists, or every normal or every anomalous frame): training or FL-AUC on it silently
    measures something else. Each says which videos were skipped and how to fix it."""
    skipped = {}
    for s in summary["skipped"]:
        skipped.setdefault(s["split"], []).append(s["name"])
    out = []
    for split, names in _split_names(manual_dir, split_seed).items():
        gone = skipped.get(split, [])
        if not names or not gone:
            continue
        kept_classes = {ucf_layout.video_class(n) for n in names if n not in gone}
        lost = sorted({ucf_layout.video_class(n) for n in gone} - kept_classes)
        frames = summary["frames"].get(split, {})
        if not frames.get("normal"):
            lost.append("normal frames")
        if not frames.get("soft_anomaly") and not frames.get("hard_anomaly"):
            lost.append("anomalous frames")
        if lost:
            out.append({
                "split": split, "name": "(split)",
                "warning": f"has no {', '.join(lost)} left: skipped {', '.join(sorted(gone))}. Repair "
                "or replace those videos and rebuild with --overwrite, or list another video of that "
                "class in the split file",
            })  # fmt: skip
    return out


def quiet_tfds():
    """Hides TFDS's own progress bars and INFO logs; our progress bar and summary remain."""
    tfds.disable_progress_bar()
    logging.set_verbosity(logging.WARNING)


def load_split(dataset_dir, split):
    """A random-access data source over one split of a prepared dataset."""
    return tfds.builder_from_directory(str(dataset_dir)).as_data_source(split=split)


def format_summary(summary):
    """A short human-readable table of a build summary."""
    lines = [f"dataset: {summary['dataset_dir']}" + ("  (already built)" if summary.get("reused") else "")]
    if summary.get("source_changed"):
        lines.append(
            f"note: {summary.get('manual_dir', 'the source tree')} has changed since this build "
            "(videos or annotations): rerun with --overwrite to rebuild from it"
        )
    lines.append(f"{'split':<11}{'videos':>7}" + "".join(f"{k:>14}" for k in summary["frames"]["train"]))
    for split, count in summary["videos"].items():
        frames = summary["frames"][split]
        lines.append(f"{split:<11}{count:>7}" + "".join(f"{v:>14}" for v in frames.values()))
    if summary["skipped"]:
        lines.append(f"skipped {len(summary['skipped'])} video(s):")
        lines += [f"  [{s['split']}] {s['name']}: {s['reason'].splitlines()[0]}" for s in summary["skipped"]]
    if summary["warnings"]:
        lines.append(f"{len(summary['warnings'])} warning(s):")
        lines += [f"  [{w['split']}] {w['name']}: {w['warning']}" for w in summary["warnings"]]
    return "\n".join(lines)
