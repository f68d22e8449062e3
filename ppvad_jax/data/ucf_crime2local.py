"""TFDS builder for UCF-Crime + UCFCrime2Local, with no TensorFlow.

Examples are single sampled frames with a previous frame (for optical flow;
by default 1/10 s earlier, see ``video_examples.previous_frames``) and a
per-frame label (normal / soft / hard anomaly), written as array_record files
and read back with ``tfds`` data sources (random access, which Poisson
sampling needs). Only Tensor / ClassLabel / Scalar / Text features
are used: Image and Video features would need TensorFlow.

The synthetic world (``launch.make_synthetic``) is one valid ``manual_dir``.

Scaling past one machine: ``_generate_examples`` maps ``process_video`` over
videos, each video independent. Under TFDS's Beam path the same function is a
``beam.FlatMap`` over the list of ``VideoTask``s (``tfds build --beam_pipeline_options=...``),
one worker per video; nothing else changes. Here a process pool does the
mapping on one machine.
"""

import concurrent.futures
import dataclasses
import multiprocessing
import os
import pathlib
import tempfile

import numpy as np
import tensorflow_datasets as tfds
import tqdm

from ppvad_jax.data import errors, splits, ucf_layout, video_examples

SPLITS = ("train", "validation", "test")


@dataclasses.dataclass(eq=False)
class UcfCrime2LocalConfig(tfds.core.BuilderConfig):
    """What changes the examples: resolution, sampling rates, frame numbering, split seed."""

    height: int = 240
    width: int = 320
    fps_normal: float = 10.0
    fps_soft: float = 3.0
    fps_hard: float = 3.0
    prev_frame_fps: float = 10.0  # flow's previous frame: see video_examples.previous_frames
    frame_base: str = "auto"  # "auto", "0" or "1": see ppvad_jax.data.vatic
    split_seed: int = 0

    def fps_by_label(self):
        return (self.fps_normal, self.fps_soft, self.fps_hard)


PAPER = UcfCrime2LocalConfig(name="default", description="Paper: 240x320, 10/3/3 FPS.")
RUNLOCAL = UcfCrime2LocalConfig(
    name="runlocal", height=120, width=160, description="120x160 for 2-core CPUs."
)


def make_config(*, height, width, fps_normal, fps_soft, fps_hard, prev_frame_fps, frame_base, split_seed):
    """A predefined config when the values match one, else a custom one named by its values."""
    values = dict(
        height=height,
        width=width,
        fps_normal=float(fps_normal),
        fps_soft=float(fps_soft),
        fps_hard=float(fps_hard),
        prev_frame_fps=float(prev_frame_fps),
        frame_base=str(frame_base),
        split_seed=int(split_seed),
    )
    for config in (PAPER, RUNLOCAL):
        if all(getattr(config, k) == v for k, v in values.items()):
            return config
    name = (
        f"h{height}w{width}_fps{fps_normal:g}-{fps_soft:g}-{fps_hard:g}"
        f"_prev{prev_frame_fps:g}_base{frame_base}_seed{split_seed}"
    )
    return UcfCrime2LocalConfig(name=name.replace(".", "p"), **values)


@dataclasses.dataclass
class BuildSummary:
    """What a build did, per split; written next to the dataset as JSON."""

    videos: dict = dataclasses.field(default_factory=lambda: {s: 0 for s in SPLITS})
    frames: dict = dataclasses.field(
        default_factory=lambda: {s: dict.fromkeys(ucf_layout.LABEL_NAMES, 0) for s in SPLITS}
    )
    skipped: list = dataclasses.field(default_factory=list)  # {split, name, reason}
    warnings: list = dataclasses.field(default_factory=list)  # {split, name, warning}
    frame_base: dict = dataclasses.field(default_factory=dict)  # name -> "1 (rule)"

    def as_dict(self):
        return dataclasses.asdict(self)


class UcfCrime2Local(tfds.core.GeneratorBasedBuilder):
    """UCF-Crime videos with UCFCrime2Local frame labels, adaptively sampled."""

    name = "ucf_crime2local"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Frames + previous frame, 3-way labels, paper splits."}
    BUILDER_CONFIGS = [PAPER, RUNLOCAL]
    MANUAL_DOWNLOAD_INSTRUCTIONS = ucf_layout.DOWNLOAD_INSTRUCTIONS

    def __init__(self, *, num_workers=0, **kwargs):
        """``num_workers`` processes decode videos in parallel (0: in this process).

        The worker pool starts on first use and is kept for every split (a
        spawned worker costs about a second to start); ``close()`` stops it.
        """
        super().__init__(**kwargs)
        self._num_workers = num_workers
        self._pool = None
        self._spill_root = kwargs.get("data_dir")
        self.summary = BuildSummary()

    def _info(self):
        shape = (self.builder_config.height, self.builder_config.width, 3)
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__.split("\n\n")[0],
            features=tfds.features.FeaturesDict(
                {
                    "frame": tfds.features.Tensor(
                        shape=shape, dtype=np.uint8, encoding=tfds.features.Encoding.BYTES
                    ),
                    "prev_frame": tfds.features.Tensor(
                        shape=shape, dtype=np.uint8, encoding=tfds.features.Encoding.BYTES
                    ),
                    "label": tfds.features.ClassLabel(names=ucf_layout.LABEL_NAMES),
                    "video_name": tfds.features.Text(),
                    "video_class": tfds.features.ClassLabel(names=ucf_layout.CLASSES),
                    "frame_index": tfds.features.Scalar(dtype=np.int32),
                    "prev_frame_index": tfds.features.Scalar(dtype=np.int32),
                }
            ),
            homepage="https://arxiv.org/abs/1901.10364",
        )

    def _split_generators(self, dl_manager):
        manual_dir = pathlib.Path(dl_manager.manual_dir)
        train_names, test_names = read_splits(manual_dir)
        validation_names, test_names = splits.halve_stratified(
            test_names, seed=self.builder_config.split_seed
        )
        videos = ucf_layout.find_videos(manual_dir)
        names = {"train": train_names, "validation": validation_names, "test": test_names}
        # TFDS cannot write an empty split: a split with no videos is left out (and reported).
        return {
            split: self._generate_examples(split, self._tasks(split, names[split], videos, manual_dir))
            for split in SPLITS
            if names[split]
        }

    def _tasks(self, split, names, videos, manual_dir):
        config = self.builder_config
        frame_base = config.frame_base if config.frame_base == "auto" else int(config.frame_base)
        tasks = []
        for name in names:
            if name not in videos:
                self.summary.skipped.append(
                    {
                        "split": split,
                        "name": name,
                        "reason": f"no video file {name}_x264.* under {manual_dir}",
                    }
                )
                continue
            annotation = manual_dir / ucf_layout.ANNOTATIONS_DIR / f"{name}.txt"
            tasks.append(
                video_examples.VideoTask(
                    name=name,
                    video_path=str(videos[name]),
                    annotation_path=str(annotation) if annotation.exists() else None,
                    height=config.height,
                    width=config.width,
                    fps_by_label=config.fps_by_label(),
                    prev_frame_fps=config.prev_frame_fps,
                    frame_base=frame_base,
                    spill_dir="",  # set when the split is generated
                )
            )
        return tasks

    def _generate_examples(self, split, tasks):
        spill_root = self._spill_root or tempfile.gettempdir()
        os.makedirs(spill_root, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="spill-", dir=spill_root) as spill_dir:
            tasks = [dataclasses.replace(t, spill_dir=spill_dir) for t in tasks]
            progress = tqdm.tqdm(total=len(tasks), desc=f"{split}: videos", unit="video")
            if self._num_workers > 0 and self._pool is None:
                context = multiprocessing.get_context("spawn")
                self._pool = concurrent.futures.ProcessPoolExecutor(self._num_workers, mp_context=context)
            for result in map_videos(tasks, self._pool, in_flight=2 * self._num_workers):
                progress.update(1)
                yield from self._examples(split, result)
            progress.close()
        if not self.summary.videos[split]:
            reasons = [
                f"{s['name']}: {s['reason'].splitlines()[0]}"
                for s in self.summary.skipped
                if s["split"] == split
            ]
            raise errors.DataError(
                f"split {split!r} has no usable video. Skipped:\n  " + "\n  ".join(reasons)
            )

    def close(self):
        """Stops the worker processes, if any."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _examples(self, split, result):
        if result.error is not None:
            self.summary.skipped.append({"split": split, "name": result.name, "reason": result.error})
            tqdm.tqdm.write(f"skipped {result.name}: {result.error.splitlines()[0]}")
            return
        config = self.builder_config
        self.summary.warnings += [
            {"split": split, "name": result.name, "warning": w} for w in result.warnings
        ]
        self.summary.frame_base[result.name] = f"{result.frame_base} ({result.frame_base_rule})"
        frames = result.frames(config.height, config.width)
        position = dict(zip(result.decoded_indices.tolist(), range(len(result.decoded_indices)), strict=True))
        try:
            for index, prev, label in zip(
                result.frame_indices, result.prev_indices, result.labels, strict=True
            ):
                yield (
                    f"{result.name}/{index:07d}",
                    {
                        "frame": np.asarray(frames[position[index]]),
                        "prev_frame": np.asarray(frames[position[prev]]),
                        "label": int(label),
                        "video_name": result.name,
                        "video_class": result.video_class,
                        "frame_index": int(index),
                        "prev_frame_index": int(prev),
                    },
                )
                self.summary.frames[split][ucf_layout.LABEL_NAMES[label]] += 1
            self.summary.videos[split] += 1
        finally:
            del frames
            pathlib.Path(result.spill_path).unlink(missing_ok=True)


def read_splits(manual_dir):
    """``(train names, test names)`` from the UCFCrime2Local readme folder."""
    manual_dir = pathlib.Path(manual_dir)
    if not manual_dir.is_dir():
        raise errors.MissingDataError(
            f"manual_dir {manual_dir} does not exist.\n" + ucf_layout.DOWNLOAD_INSTRUCTIONS
        )
    return (
        ucf_layout.read_split_file(manual_dir / ucf_layout.TRAIN_SPLIT),
        ucf_layout.read_split_file(manual_dir / ucf_layout.TEST_SPLIT),
    )


def map_videos(tasks, pool=None, *, in_flight=4):
    """Yields ``process_video(task)`` for every task, in completion order.

    With a process pool, at most ``in_flight`` videos are submitted at once,
    so spill files on disk stay bounded too. Workers must be spawned, not
    forked: the parent may already hold JAX or OpenCV threads, which do not
    survive a fork. Without a pool, videos are processed here, one by one.
    """
    if pool is None:
        yield from map(video_examples.process_video, tasks)
        return
    pending = set()
    queue = iter(tasks)
    while True:
        for task in queue:
            pending.add(pool.submit(video_examples.process_video, task))
            if len(pending) >= in_flight:
                break
        if not pending:
            return
        done, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
        for future in done:
            yield future.result()
