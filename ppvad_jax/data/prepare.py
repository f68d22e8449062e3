"""Builds the ucf_crime2local dataset and reports what happened."""

import contextlib
import json
import pathlib
import shutil
import time
import uuid

import tensorflow_datasets as tfds
from absl import logging

from ppvad_jax.data import ucf_crime2local

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


def prepare(*, manual_dir, data_dir, config, num_workers=0, overwrite=False):
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
    if builder.is_prepared() and not overwrite and (final_dir / SUMMARY_FILE).exists():
        summary = json.loads((final_dir / SUMMARY_FILE).read_text())
        if summary.get("source_splits") == source_splits:
            summary["reused"] = True
            return summary
        # A build from other split files (edited, or a regenerated world) would train and test on
        # the old videos without a word; it is rebuilt beside the old one and swapped in.
        logging.warning(
            "%s was built from other split files than %s holds now: rebuilding", final_dir, manual_dir
        )
    staging = None
    if builder.is_prepared():
        staging = pathlib.Path(data_dir) / f".staging-{uuid.uuid4().hex[:8]}"
        builder = builder_for(data_dir=staging, config=config, num_workers=num_workers)
    start = time.perf_counter()
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
    summary = builder.summary.as_dict()
    summary.update(
        dataset_dir=str(final_dir),
        config=builder.builder_config.name,
        seconds=round(time.perf_counter() - start, 2),
        manual_dir=str(manual_dir),
        source_splits=source_splits,
    )
    (final_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
    summary["reused"] = False
    return summary


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
