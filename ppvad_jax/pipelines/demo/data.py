"""Stages 1-3: the synthetic world, its dataset, and pictures plus the motion-energy baseline."""

import json

from ppvad_jax.data import dataset_report, prepare, ucf_layout
from ppvad_jax.data.synthetic import world
from ppvad_jax.evaluation import roc
from ppvad_jax.pipelines.demo import outputs


def make_world(config, workdir):
    """The world of ``config`` under ``WORKDIR/world``, reused when its parameters are unchanged."""
    params = world.WorldParams(
        num_videos=config.num_videos,
        seconds=config.seconds,
        seed=config.seed,
        cameras=config.cameras,
        test_fraction=config.test_fraction,
    )
    root = workdir / "world"
    manifest_path = root / "synthetic_manifest.json"
    if manifest_path.exists() and json.loads(manifest_path.read_text())["params"] == params.__dict__:
        print(f"[1/6] synthetic world: reusing {root}")
        # Today's split for the same videos (the dataset stage rebuilds if the split changed).
        return outputs.World(root, world.write_split(root, json.loads(manifest_path.read_text())))
    print(f"[1/6] synthetic world: {params.num_videos} videos of {params.seconds:g} s -> {root}")
    return outputs.World(root, world.generate_world(root, params, num_workers=config.num_workers))


def prepare_dataset(config, workdir, root, *, size=None):
    """``config.base.data`` built from the world by the real-data builder (at ``size``)."""
    data = outputs.fresh(config.base.data)
    if size is not None:
        data.height, data.width = size
    return prepare.prepare(
        manual_dir=root, data_dir=workdir / "data", config=data, num_workers=config.num_workers
    )


def build_dataset(config, workdir, root):
    print("[2/6] dataset: building ucf_crime2local/runlocal with the real-data builder")
    summary = prepare_dataset(config, workdir, root)
    print(prepare.format_summary(summary))
    return summary


def pictures_and_baseline(workdir, dataset_dir):
    print("[3/6] contact sheets, flow preview, motion-energy baseline")
    sheets = dataset_report.write_contact_sheets(dataset_dir, workdir / "contact_sheets")
    preview = dataset_report.write_flow_preview(dataset_dir, workdir / "flow_preview.png")
    # Baseline: score a test frame by its total motion. Hard anomalies vs normal frames.
    examples = [e for v in dataset_report.examples_by_video(dataset_dir, "test").values() for e in v]
    examples = [e for e in examples if int(e["label"]) != ucf_layout.SOFT]
    labels = [int(e["label"]) == ucf_layout.HARD for e in examples]
    try:
        auc = roc.roc_auc(labels, dataset_report.motion_energy(examples))
    except ValueError as e:  # a world too small to have both classes in test
        auc = None
        print(f"motion baseline not computed: {e}")
    return outputs.Pictures(sheets, preview, auc)
