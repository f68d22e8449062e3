"""Trains and evaluates the paper's Table 1 variants and its Figure 10 autoencoder comparison.

  python -m launch.reproduce_table1 --config=configs/classifier.py \
      --config.data.dataset_dir=/data/tfds/ucf_crime2local/default/1.0.0 \
      --config.autoencoder_workdir=runs/ae_dpadam --config.backbone.pretrained=weights/resnet50 \
      --autoencoders=no_dp=runs/ae_adam,dp_adam=runs/ae_dpadam,dp_adagrad=runs/ae_dpadagrad \
      --workdir=runs/table1

Writes ``W/table1.md`` and ``W/table1.json``: FL-AUC and VL-F1 of the seven
variants next to the paper's, with each row's epsilons; with ``--autoencoders``
also ``W/figure10_roc.png``, 2S-bag fed by each autoencoder. Every run lives in
its own folder and resumes; the reconstructions, flows and bags are computed
once per autoencoder and the phase-1 features once per stream count.
"""

import json
import pathlib

from absl import app, flags
from ml_collections import config_flags

from ppvad_jax.evaluation import anomaly_report, plots
from ppvad_jax.training import classifier

_WORKDIR = flags.DEFINE_string("workdir", None, "Output folder.", required=True)
_CONFIG = config_flags.DEFINE_config_file("config", "configs/classifier.py", "Base classifier config.")
_VARIANTS = flags.DEFINE_list(
    "variants",
    ["2s_bag", "2s_no_bag", "2s_bag_no_hm", "2s_bag_ha", "1s_bag", "1s_no_bag", "1s_bag_ha"],
    "Table 1 rows to run.",
)
_AUTOENCODERS = flags.DEFINE_list(
    "autoencoders", [], "name=autoencoder_workdir pairs for the Figure 10 ROC comparison (2S-bag)."
)

# The paper's Table 1 (percent): FL-AUC, VL-F1.
PAPER = {
    "2s_bag": (82.6, 66.7),
    "2s_no_bag": (77.6, 61.5),
    "2s_bag_no_hm": (80.2, 64.0),
    "2s_bag_ha": (83.7, 91.0),
    "1s_bag": (78.6, 74.1),
    "1s_no_bag": (75.3, 58.3),
    "1s_bag_ha": (81.5, 87.5),
}


def _run(base, workdir, variant, *, autoencoder=None, shared=None):
    config = base.copy_and_resolve_references()
    config.variant = variant
    if autoencoder is not None:
        config.autoencoder_workdir = autoencoder
    shared = pathlib.Path(shared or workdir.parent)
    config.inputs_dir = str(shared / "inputs")
    config.features_dir = str(shared / f"features_{variant[:2]}")
    classifier.train_and_evaluate(config, workdir)
    return anomaly_report.write_report(workdir)


def _pct(x):
    return "n/a" if x is None else f"{100 * x:.1f}"


def main(argv):
    del argv
    root = pathlib.Path(_WORKDIR.value)
    base = _CONFIG.value
    rows = {}
    for variant in _VARIANTS.value:
        rows[variant] = _run(base, root / "table1" / variant, variant)
    lines = [
        "| variant | FL-AUC % (ours) | FL-AUC % (paper) | VL-F1 % (ours) | VL-F1 % (paper) "
        "| classifier epsilon (PLD) | AE + classifier epsilon (PLD) |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant, r in rows.items():
        paper = PAPER.get(variant, (None, None))
        eps = r["classifier_privacy"]["epsilon_pld"]
        lines.append(
            f"| {variant} | {_pct(r['fl_auc'])} | {paper[0]} | {_pct(r['vl_f1'])} | {paper[1]} | "
            f"{'not private' if eps is None else f'{eps:.2f}'} | "
            f"{anomaly_report.combined_privacy_cell(r.get('combined_privacy'))} |"
        )
    first = next(iter(rows.values()), {})
    notes = [
        "",
        f"Autoencoder: {base.autoencoder_workdir or 'none (clear frames)'}; its privacy: "
        f"{json.dumps(first.get('autoencoder_privacy'))}.",
        f"Backbone random init: {first.get('backbone_random_init')}; detector: {first.get('detector')}.",
        "Paper numbers: Table 1 of Giorgi, Abbasi, Saracino (UCF-Crime + UCFCrime2Local, ImageNet ResNet-50,"
        " YOLOv4 COCO). Ours are only comparable when the same data and weights are used.",
    ]
    (root / "table1.md").write_text("\n".join(lines + notes) + "\n")
    (root / "table1.json").write_text(json.dumps({"ours": rows, "paper": PAPER}, indent=2, default=str))
    print("\n".join(lines + notes))

    if _AUTOENCODERS.value:
        curves = {}
        for item in _AUTOENCODERS.value:
            name, _, path = item.partition("=")
            if not path:
                raise app.UsageError(f"--autoencoders expects name=workdir, got {item!r}")
            out = root / "figure10" / name
            _run(base, out / "2s_bag", "2s_bag", autoencoder=path, shared=out)
            result = anomaly_report.score(_load(out / "2s_bag" / "predictions.npz"))
            curves[name] = (result["frame_labels"], [v[2] for v in result["videos"]])
        aucs = plots.plot_roc_curves(
            curves, root / "figure10_roc.png", title="2S-bag fed by each autoencoder"
        )
        print(json.dumps({"figure10_fl_auc": aucs}, indent=2))


def _load(path):
    import numpy as np

    with np.load(path) as f:
        return {k: f[k] for k in f.files}


if __name__ == "__main__":
    app.run(main)
