"""Stage 5b: frame privacy against detection utility for the camera's mechanisms, a small frontier.

Two mechanisms, each measured on both axes: the DP autoencoder alone, and the camera's default,
face redaction (``config.camera_redaction``) before it. Utility is the FL-AUC and VL-F1 of a
classifier trained and tested on what that mechanism sends (the main classifier is the
default's; a second one is trained without redaction); privacy is the adaptive dlib
attacker's top-1 and CenterFace's detection rate on 24 real people (``launch.frame_privacy``).
Motion energy (utility) and chance (privacy) are the reference lines. The training epsilon
is the same for both points: it covers the autoencoder's training frames, not these.
"""

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ppvad_jax.pipelines import frame_privacy
from ppvad_jax.pipelines.demo import classifier, outputs


def mechanisms(config):
    """(frame-privacy mechanism name, classifier redaction) of each point: default first."""
    default = f"redact_{config.camera_redaction}+ae" if config.camera_redaction else "ae"
    points = [(default, config.camera_redaction)]
    if config.camera_redaction:
        points.append(("ae", ""))
    return points


def run(config, workdir, dataset_dir, ae_dir, main_cls):
    """The frontier's points (module docstring) and its plot, under ``workdir/frame_privacy``."""
    points = mechanisms(config)
    classifiers = {points[0][0]: main_cls}
    for name, redaction in points[1:]:
        classifiers[name] = classifier.train_classifier(
            config, workdir, dataset_dir, ae_dir, redaction=redaction, name="classifier_2s_bag_no_redaction"
        )
    out = workdir / "frame_privacy"
    print(f"[5b] frame privacy of {[n for n, _ in points]} against 24 real people -> {out}")
    privacy = frame_privacy.run(
        ae_workdir=ae_dir, mechanisms=[n for n, _ in points], views=config.frame_privacy_views, output_dir=out
    )
    rows = {r["mechanism"]: r for r in privacy["rows"]}
    table = [_point(name, classifiers[name], rows[name]) for name, _ in points]
    motion = (main_cls.baseline or {}).get("fl_auc")
    plot = out / "frontier.png"
    _plot(table, motion, privacy["rows"][0]["chance_top1"], plot)
    return outputs.Frontier(out, table, motion, privacy["rows"][0]["chance_top1"], plot)


def _point(name, cls, row):
    return {
        "mechanism": name,
        "fl_auc": cls.report["fl_auc"],
        "vl_f1": cls.report["vl_f1"],
        "fl_auc_minus_motion": cls.comparison,
        "centerface_detection_rate": row["detection_rate"],
        "adaptive_top1": row["adaptive"]["top1"],
        "adaptive_top1_ci95": row["adaptive"]["top1_ci95"],
        "naive_top1": row["naive"]["top1"],
    }


def _plot(table, motion_auc, chance, path):
    fig = Figure(figsize=(5.5, 4))
    ax = fig.add_subplot()
    for p in (p for p in table if p["fl_auc"] is not None):  # FL-AUC undefined: no point to place
        top1, (low, high) = p["adaptive_top1"], p["adaptive_top1_ci95"]
        err = [[top1 - low], [high - top1]]
        ax.errorbar(p["fl_auc"], top1, yerr=err, fmt="o", capsize=3, label=p["mechanism"])
    ax.axhline(chance, color="grey", ls=":", label="chance (re-identification)")
    if motion_auc is not None:
        ax.axvline(motion_auc, color="grey", ls="--", label="motion energy (FL-AUC)")
    ax.set_xlabel("FL-AUC (detection utility, higher is better)")
    ax.set_ylabel("adaptive dlib top-1 (lower is more private)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    FigureCanvasAgg(fig).print_png(str(path))
