"""The main job on the embedded default (run it through ``bash launch/demo.sh``).

  python -m launch.demo --workdir=runs/demo [--num_videos=45] [--seconds=4] [--cameras=4] [--seed=0]

Stages, each skipped when its output is already there (so a rerun resumes):
1. a synthetic UCF-Crime + UCFCrime2Local world filmed by a site of fixed cameras
   (``WORKDIR/world``);
2. the TFDS dataset built from it exactly as from real data (``WORKDIR/data``);
3. contact sheets of what the models will see, an optical-flow preview, and a
   motion-energy baseline (``WORKDIR/contact_sheets``, ``WORKDIR/flow_preview.png``);
4. a DP-Adam autoencoder with its epsilon, PSNR/SSIM and reconstructions, started
   from Adam on public images (``WORKDIR/autoencoder_public``, no privacy cost)
   (``WORKDIR/autoencoder_dpadam``; resumes if interrupted);
5. a 2S-bag anomaly classifier on what the server sees through that autoencoder
   (classic OpenCV detector, random-init ResNet-50s: no weights can be downloaded
   here, and the report says so), its FL-AUC / VL-F1 next to a motion-energy
   baseline on the same test frames (``WORKDIR/classifier_2s_bag``);
6. a small noise sweep (Adam without DP, and DP-Adam at a few noise multipliers, at
   72x96 to fit the demo's time) with epsilon next to SSIM/PSNR, face detection,
   re-identification and membership inference (``WORKDIR/sweep``; finished points
   are skipped on a rerun).
It ends with ``WORKDIR/report.md`` and ``WORKDIR/summary.json``.
"""

import json
import pathlib
import sys
import time

import jax
import numpy as np
from absl import app, flags

from configs import autoencoder as ae_config
from configs import classifier as cls_config
from configs import sweep_noise as sweep_config
from configs import ucf_crime2local as data_config
from ppvad_jax.data import dataset_report, errors, prepare, ucf_layout
from ppvad_jax.data.synthetic import world
from ppvad_jax.evaluation import anomaly_report, auc_comparison, privacy_report, roc
from ppvad_jax.pipelines.sweep import run, store
from ppvad_jax.training import autoencoder as ae_trainer
from ppvad_jax.training import classifier, classifier_inputs, public_pretrain

_WORKDIR = flags.DEFINE_string("workdir", "runs/demo", "Where everything is written.")
_NUM_VIDEOS = flags.DEFINE_integer("num_videos", 45, "Synthetic videos (about 40% normal).")
_SECONDS = flags.DEFINE_float("seconds", 4.0, "Length of each synthetic video.")
_CAMERAS = flags.DEFINE_integer(
    "cameras", 4, "Fixed cameras of the synthetic site (0: a new scene for every video)."
)
_TEST_FRACTION = flags.DEFINE_float(
    "test_fraction", 0.4, "Videos in UCFCrime2Local's test list (halved into validation and test)."
)
_SEED = flags.DEFINE_integer("seed", 0, "World seed.")
_NUM_WORKERS = flags.DEFINE_integer("num_workers", 2, "Processes for rendering and decoding.")
_AE_STEPS = flags.DEFINE_integer("ae_steps", 60, "DP-Adam autoencoder steps (0 skips the stage).")
_AE_PRETRAIN_STEPS = flags.DEFINE_integer(
    "ae_pretrain_steps",
    600,
    "Adam steps on public images (scikit-image's samples) before the DP run, at no privacy cost; "
    "0 starts the DP run from random weights.",
)
_NOISE = flags.DEFINE_float("noise_multiplier", 1.0, "DP noise multiplier of the demo autoencoder.")
_CLASSIFIER = flags.DEFINE_bool("classifier", True, "Train and evaluate the 2S-bag classifier (stage 5).")
_SWEEP_NOISE = flags.DEFINE_list(
    "sweep_noise_multipliers", ["0.5", "1.0"], "Noise levels of the sweep stage (empty skips it)."
)
# Adam (not private, one point) against DP-Adam at each noise level: the price of privacy at
# equal steps. DP-SGD at the runlocal learning rate barely leaves its initialisation in a
# demo's few steps (measured: the same SSIM at every sigma), so it is not the default here.
_SWEEP_OPTIMIZERS = flags.DEFINE_list(
    "sweep_optimizers", ["adam", "dpadam"], "Optimizers of the sweep stage."
)
_SWEEP_STEPS = flags.DEFINE_integer("sweep_steps", 30, "Autoencoder steps per sweep point.")
_RESNET_WEIGHTS = flags.DEFINE_string(
    "resnet_weights",
    "",
    "Directory of converted ImageNet ResNet-50 weights (python -m launch.convert_weights "
    "--from=torchvision ...) for the classifier's backbones; empty: random initialisation, said loudly.",
)
_PHASE2_STEPS = flags.DEFINE_integer(
    "phase2_steps", 0, "Classifier phase-2 (whole network) steps; 0 skips it (ResNet-50 backprop on a CPU)."
)


def _move_aside(path):
    """Renames a stage's output of an older demo to ``NAME.old-TIME`` (nothing saved is deleted)."""
    if path.exists():
        target = path.with_name(f"{path.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        path.rename(target)
        print(f"      {path} was made by an older demo with other settings: moved to {target}")


def make_world(workdir):
    params = world.WorldParams(
        num_videos=_NUM_VIDEOS.value,
        seconds=_SECONDS.value,
        seed=_SEED.value,
        cameras=_CAMERAS.value,
        test_fraction=_TEST_FRACTION.value,
    )
    root = workdir / "world"
    manifest_path = root / "synthetic_manifest.json"
    if manifest_path.exists() and json.loads(manifest_path.read_text())["params"] == params.__dict__:
        print(f"[1/6] synthetic world: reusing {root}")
        # Today's split for the same videos (the dataset stage rebuilds if the split changed).
        return root, world.write_split(root, json.loads(manifest_path.read_text()))
    print(f"[1/6] synthetic world: {params.num_videos} videos of {params.seconds:g} s -> {root}")
    return root, world.generate_world(root, params, num_workers=_NUM_WORKERS.value)


def build_dataset(workdir, root):
    print("[2/6] dataset: building ucf_crime2local/runlocal with the real-data builder")
    config = data_config.get_config("runlocal")
    summary = prepare.prepare(
        manual_dir=root, data_dir=workdir / "data", config=config, num_workers=_NUM_WORKERS.value
    )
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
    return sheets, preview, auc


def public_start(workdir, config):
    """The public-pretraining export a DP run starts from ('' when the flag turns it off)."""
    if not _AE_PRETRAIN_STEPS.value:
        return ""
    out = workdir / "autoencoder_public"
    steps = _AE_PRETRAIN_STEPS.value
    print(f"      public pretraining: {steps} Adam steps on scikit-image's sample images -> {out}")
    public_pretrain.pretrain(
        out,
        height=config.data.height,
        width=config.data.width,
        features=tuple(config.model_features),
        steps=steps,
    )
    return str(out)


def train_autoencoder(workdir, dataset_dir):
    """A DP-Adam autoencoder on the world's training frames (runlocal: 120x160, CPU-sized)."""
    config = ae_config.get_config("optimizer=dpadam,runlocal=True")
    config.data.dataset_dir = str(dataset_dir)
    config.init_from = public_start(workdir, config)
    config.dp.noise_multiplier = _NOISE.value
    config.schedule.max_steps = _AE_STEPS.value
    ae_dir = workdir / "autoencoder_dpadam"
    metrics_path = ae_dir / "metrics.json"
    if not ae_trainer.resumes(config, ae_dir):
        # An autoencoder of an older demo (another start, widths or dataset): kept, not resumed
        # into the new one; the classifier built on it goes with it.
        _move_aside(ae_dir)
        _move_aside(workdir / "classifier_2s_bag")
    elif metrics_path.exists() and json.loads(metrics_path.read_text())["steps"] >= _AE_STEPS.value:
        print(f"[4/6] autoencoder: reusing {ae_dir}")
        return ae_dir, json.loads(metrics_path.read_text())
    print(f"[4/6] autoencoder: DP-Adam, {_AE_STEPS.value} steps at 120x160 -> {ae_dir}")
    metrics = ae_trainer.train_and_evaluate(config, ae_dir)
    return ae_dir, json.loads(metrics_path.read_text()) if metrics else None


def train_classifier(workdir, dataset_dir, ae_dir):
    """2S-bag on reconstructions through the demo autoencoder; FL-AUC next to motion energy."""
    config = cls_config.get_config("variant=2s_bag,runlocal=True")
    config.data.dataset_dir = str(dataset_dir)
    config.autoencoder_workdir = str(ae_dir) if ae_dir else ""
    config.phase2.enabled = _PHASE2_STEPS.value > 0
    config.phase2.max_steps_per_epoch = _PHASE2_STEPS.value
    if _RESNET_WEIGHTS.value:  # the paper's setting: ImageNet features, frozen BatchNorm, no rescaling
        config.backbone.pretrained = _RESNET_WEIGHTS.value
        config.backbone.norm = "frozen_bn"
        config.standardize_features = False
    backbones = (
        f"ImageNet backbones from {_RESNET_WEIGHTS.value}"
        if _RESNET_WEIGHTS.value
        else "random-init backbones"
    )
    cls_dir = workdir / "classifier_2s_bag"
    print(f"[5/6] classifier: 2S-bag (runlocal, {backbones}, classic detector) -> {cls_dir}")
    metrics = classifier.train_and_evaluate(config, cls_dir)
    report = anomaly_report.write_report(cls_dir)
    # The baseline sees the same test frames: total motion in the flow between reconstructions.
    test = classifier_inputs.load_split(cls_dir / "inputs", "test")
    hard = test["labels"] == classifier.HARD
    energy = test["flows"][..., 2].reshape(len(hard), -1).mean(axis=1)
    baseline = roc.roc_auc(hard, energy) if hard.any() and not hard.all() else None
    comparison = None
    if baseline is not None:
        # Whether the win is clear, not only its sign: a paired bootstrap over the test videos.
        with np.load(cls_dir / "predictions.npz") as p:
            comparison = auc_comparison.paired_video_bootstrap(
                hard, p["confidence"], energy, p["video_index"], replicates=2000
            ).as_dict()
    return cls_dir, metrics, report, baseline, comparison


SWEEP_SIZE = (72, 96)  # 4:3, multiples of 8, 36% of runlocal's pixels: fits the demo's 15 minutes


def noise_sweep(workdir, root):
    """The sweep stage's optimizers across its noise levels: epsilon next to image quality and attacks."""
    data = data_config.get_config("runlocal")
    data.height, data.width = SWEEP_SIZE
    summary = prepare.prepare(
        manual_dir=root, data_dir=workdir / "data", config=data, num_workers=_NUM_WORKERS.value
    )
    config = sweep_config.get_config("runlocal=True")
    config.optimizers = tuple(_SWEEP_OPTIMIZERS.value)
    config.noise_multipliers = tuple(float(s) for s in _SWEEP_NOISE.value)
    ae = config.autoencoder
    ae.data.dataset_dir = summary["dataset_dir"]
    ae.data.height, ae.data.width = SWEEP_SIZE
    ae.schedule.max_steps = _SWEEP_STEPS.value
    ae.schedule.checkpoint_every_steps = _SWEEP_STEPS.value
    ae.init_from = public_start(workdir, ae)  # the same public start at every point (fully convolutional)
    sweep_dir = workdir / "sweep"
    print(
        f"[6/6] noise sweep: {', '.join(config.optimizers)} x sigma {', '.join(_SWEEP_NOISE.value)}, "
        f"{_SWEEP_STEPS.value} steps each at {SWEEP_SIZE[0]}x{SWEEP_SIZE[1]} -> {sweep_dir}"
    )
    try:
        result = run.run_sweep(config, sweep_dir, parallel=1)
    except store.StalePointError:  # points of an older demo (other widths or start): keep them, redo
        _move_aside(sweep_dir)
        result = run.run_sweep(config, sweep_dir, parallel=1)
    return sweep_dir, result


def _eps(value):
    return value if isinstance(value, str) else f"{value:.3g}"


def _comparison_line(c):
    if c is None:
        return ""
    verdict = (
        "the classifier is clearly ahead" if c["a_clearly_better"]
        else "motion energy is clearly ahead" if c["high"] < 0
        else "**not a clear difference either way**"
    )  # fmt: skip
    return (
        f"FL-AUC difference, classifier minus motion energy: {c['difference']:+.3f}, "
        f"{c['confidence']:.0%} interval [{c['low']:+.3f}, {c['high']:+.3f}] from a paired bootstrap over "
        f"the {c['videos']} test videos ({c['replicates']} draws; the classifier is ahead in "
        f"{c['fraction_a_above']:.0%} of them): {verdict}."
    )


def write_report(
    workdir, manifest, summary, sheets, preview, motion_auc, seconds, ae=None, cls=None, swept=None
):
    report = workdir / "report.md"
    lines = [
        "# ppvad-jax demo report",
        "",
        f"Synthetic world: {len(manifest['videos'])} videos, seed {manifest['params']['seed']}, "
        f"{manifest['params']['seconds']:g} s each at 30 FPS, in UCFCrime2Local's layout (`world/`).",
        "",
        "## Dataset (`data/`, built by the real-data TFDS builder)",
        "",
        "```",
        prepare.format_summary(summary),
        "```",
        "",
        "## Baseline",
        "",
        "Frame-level AUC of total motion (mean |frame - previous frame|), hard anomalies vs normal "
        f"frames of the test split: **{motion_auc:.3f}**."
        if motion_auc is not None
        else "Motion baseline: not computed (test split lacks a class).",
        "A classifier has to beat this number to show it learned more than 'something moves'.",
        "",
        "## Pictures",
        "",
        f"![optical flow]({preview.relative_to(workdir)})",
        "",
    ]
    if ae is not None:
        ae_dir, m = ae
        lines += [
            "## DP autoencoder (camera encoder + server decoder)",
            "",
            f"DP-Adam, noise multiplier {m['noise_multiplier']}, clipping norm {m['l2_clip_norm']}, "
            f"{m['steps']} steps of expected batch {m['expected_batch_size']:g} "
            f"(Poisson sampling, q = {m['sampling_rate']:.4f}), unit of privacy: one {m['unit_of_privacy']}.",
            "",
            (
                f"It started from `{pathlib.Path(m['init_from']).name}`: Adam on {m['init_training_data']}. "
                "Those images are not the cameras' footage, so the start costs no privacy; the epsilon "
                "below covers the DP steps on the world's training frames. Without it, the DP steps "
                'alone left a flat grey reconstruction (BUILD_NOTES.md, "Demo autoencoder").'
                if m.get("init_from")
                else "It started from random weights."
            ),
            "",
            "| epsilon (PLD) | epsilon (RDP) | delta | test MSE | PSNR (dB) | SSIM |",
            "|---|---|---|---|---|---|",
            f"| {_eps(m['epsilon_pld'])} | {_eps(m['epsilon_rdp'])} | {m['delta']:g} | {m['mse']:.4f} "
            f"| {m['psnr']:.2f} | {m['ssim']:.3f} |",
            "",
            f"Accountants: {m['accountants']}.",
            "",
            f"![reconstructions]({(ae_dir / 'reconstructions.png').relative_to(workdir)})",
            "",
        ]
    if cls is not None:
        cls_dir, m, r, baseline, comparison = cls
        auc = "undefined (test split lacks a class)" if r["fl_auc"] is None else f"{r['fl_auc']:.3f}"
        base = "undefined" if baseline is None else f"{baseline:.3f}"
        lines += [
            "## Anomaly classifier (2S-bag)",
            "",
            f"Trained on {m['train_frames']} frames as the server sees them (through the autoencoder "
            f"above), classic OpenCV bag of objects, {m['steps']} steps, optimizer {m['optimizer']} "
            f"({_privacy_text(m)}).",
            "",
            anomaly_report.combined_privacy_text(r.get("combined_privacy")),
            "",
            (
                "**The ResNet-50 backbones are randomly initialised** (`backbone_random_init: True`): "
                "ImageNet weights cannot be downloaded here. Convert torchvision's with `python -m "
                "launch.convert_weights` and pass `--resnet_weights=DIR` for the paper's setting."
                if m["backbone_random_init"]
                else f"ResNet-50 backbones: ImageNet weights from `{_RESNET_WEIGHTS.value}`."
            ),
            "",
            f"| | FL-AUC | VL-F1 |\n|---|---|---|\n| 2S-bag | {auc} | {r['vl_f1']:.3f} |\n"
            f"| motion energy, same test frames | {base} | |",
            "",
            f"Test split: {r['test_videos']} videos, {r['test_frames']} frames. With so few videos both "
            "numbers are noisy; see BUILD_NOTES.md.",
            "",
            _comparison_line(comparison),
            "",
            f"![ROC]({(cls_dir / 'roc.png').relative_to(workdir)})" if r["fl_auc"] is not None else "",
            "",
        ]
    if swept is not None:
        sweep_dir, result = swept
        table = (sweep_dir / "results.md").read_text().split("## Timing")[0]
        table = table.replace("# Noise sweep results", "").strip()
        timing = result["timing"]
        lines += [
            "## Noise sweep: privacy against utility",
            "",
            f"Autoencoders at {SWEEP_SIZE[0]}x{SWEEP_SIZE[1]}, {_SWEEP_STEPS.value} steps each, "
            f"{timing['sweep_wall_seconds']:.0f} s in all (`sweep/`; rerun "
            "`python -m launch.sweep` on it for more points). Every epsilon was computed before "
            "training (`sweep/epsilon_plan.md`) and is the trainer's own for the planned steps.",
            "",
            table,
            "",
            f"![utility vs epsilon]({(sweep_dir / 'utility_vs_epsilon.png').relative_to(workdir)})",
            "",
            f"![privacy vs epsilon]({(sweep_dir / 'privacy_vs_epsilon.png').relative_to(workdir)})",
            "",
            f"![sweep reconstructions]({(sweep_dir / 'reconstructions.png').relative_to(workdir)})",
            "",
        ]
    lines += ["## Contact sheets", ""]
    lines += [f"- [{p.stem}]({p.relative_to(workdir)})" for p in sheets]
    lines += ["", f"Total time: {seconds:.0f} s."]
    report.write_text("\n".join(lines) + "\n")
    return report


def _privacy_text(m):
    if not m.get("private"):
        return "not private: its epsilon is not defined"
    return (
        f"epsilon {_eps(m['epsilon_pld'])} (PLD) at delta {m['delta']:g}, one {m['unit_of_privacy']} "
        f"= {m['records_per_unit']} records"
    )


def main(argv):
    del argv
    prepare.quiet_tfds()
    start = time.perf_counter()
    workdir = pathlib.Path(_WORKDIR.value)
    workdir.mkdir(parents=True, exist_ok=True)
    # Compiled programs persist across stages, sweep points and reruns (the sweep's points of one
    # optimizer share one program: sigma is an argument of the DP step).
    jax.config.update("jax_compilation_cache_dir", str(workdir / "xla_cache"))
    try:
        root, manifest = make_world(workdir)
        summary = build_dataset(workdir, root)
        sheets, preview, motion_auc = pictures_and_baseline(workdir, summary["dataset_dir"])
        ae = train_autoencoder(workdir, summary["dataset_dir"]) if _AE_STEPS.value else None
        cls = (
            train_classifier(workdir, summary["dataset_dir"], ae[0] if ae else None)
            if _CLASSIFIER.value
            else None
        )
        swept = noise_sweep(workdir, root) if _SWEEP_NOISE.value and _SWEEP_OPTIMIZERS.value else None
    except errors.DataError as e:
        sys.exit(f"error: {e}")
    seconds = time.perf_counter() - start
    report = write_report(workdir, manifest, summary, sheets, preview, motion_auc, seconds, ae, cls, swept)
    (workdir / "summary.json").write_text(
        json.dumps(
            privacy_report.json_safe(
                {
                    "dataset": summary,
                    "motion_energy_auc": motion_auc,
                    "autoencoder": ae[1] if ae else None,
                    "classifier": {
                        "eval": cls[2],
                        "motion_energy_same_frames_auc": cls[3],
                        "classifier_minus_motion_energy": cls[4],
                    }
                    if cls
                    else None,
                    "sweep": swept[1]["rows"] if swept else None,
                    "seconds": seconds,
                }
            ),
            indent=2,
        )
    )
    print(f"\nreport: {report}")


if __name__ == "__main__":
    app.run(main)
