"""What each demo stage returns; a stage's fresh copy of its base config; an older output kept aside."""

import dataclasses
import pathlib
import time

import ml_collections


@dataclasses.dataclass(frozen=True)
class World:
    root: pathlib.Path  # the UCFCrime2Local-layout tree
    manifest: dict  # synthetic_manifest.json, with today's split


@dataclasses.dataclass(frozen=True)
class Pictures:
    sheets: list  # contact sheet paths
    preview: pathlib.Path  # the optical-flow preview
    motion_auc: float | None  # motion-energy baseline; None when the test split lacks a class


@dataclasses.dataclass(frozen=True)
class Autoencoder:
    workdir: pathlib.Path
    metrics: dict | None  # its metrics.json


@dataclasses.dataclass(frozen=True)
class Classifier:
    workdir: pathlib.Path
    metrics: dict  # the trainer's metrics
    report: dict  # anomaly_report.write_report: FL-AUC, VL-F1, privacy
    baseline: dict | None  # motion energy on the same test frames: FL-AUC, within-anomalous AUC, VL-F1
    comparison: dict | None  # paired bootstrap, classifier minus motion energy


@dataclasses.dataclass(frozen=True)
class Frontier:
    workdir: pathlib.Path  # frame_privacy.json/.md and frontier.png
    points: list  # per mechanism: FL-AUC, VL-F1, CenterFace rate, adaptive top-1 (``frontier._point``)
    motion_fl_auc: float | None  # the utility reference
    chance_top1: float  # the privacy reference
    plot: pathlib.Path


@dataclasses.dataclass(frozen=True)
class Sweep:
    workdir: pathlib.Path
    result: dict  # run_sweep's {"rows", "plan", "timing"}


# What a retrained autoencoder makes stale: the classifiers on its reconstructions, its frame privacy.
BUILT_ON_THE_AUTOENCODER = ("classifier_2s_bag", "classifier_2s_bag_no_redaction", "frame_privacy")


def move_aside(path):
    """Renames a stage's output of an older demo to ``NAME.old-TIME`` (nothing saved is deleted)."""
    if path.exists():
        target = path.with_name(f"{path.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        path.rename(target)
        print(f"      {path} was made by an older demo with other settings: moved to {target}")


def fresh(base):
    """An unlocked copy of one of ``config.base``'s configs, for a stage to set its fields on."""
    return ml_collections.ConfigDict(base.to_dict())
