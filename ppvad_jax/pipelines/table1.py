"""The paper's Table 1 variants and its Figure 10 autoencoder comparison, trained and evaluated.

``write_table(base, root, variants)`` trains each Table 1 row's classifier and
writes ``root/table1.md`` and ``root/table1.json``: FL-AUC and VL-F1 next to the
paper's, with each row's epsilons, and each ablation's difference (bag, mining,
streams, -ha) with its paired video bootstrap interval and whether its sign is the paper's.
``figure10(base, root, autoencoders)`` trains
2S-bag fed by each named autoencoder and draws ``root/figure10_roc.png``. Every
run lives in its own folder and resumes; the reconstructions, flows and bags are
computed once per autoencoder and the phase-1 features once per stream count
(shared ``inputs`` and ``features_1s`` / ``features_2s`` folders).
"""

import json
import pathlib

import numpy as np

from ppvad_jax.evaluation import anomaly_report, auc_comparison, plots
from ppvad_jax.training import classifier

VARIANTS = ("2s_bag", "2s_no_bag", "2s_bag_no_hm", "2s_bag_ha", "1s_bag", "1s_no_bag", "1s_bag_ha")

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

# What each ablation of Table 1 claims, as (claim, variant a, variant b): the paper's sign of
# FL-AUC(a) - FL-AUC(b) comes from PAPER, ours from the two runs' predictions on the same frames.
ABLATIONS = (
    ("bag of objects (2S)", "2s_bag", "2s_no_bag"),
    ("bag of objects (1S)", "1s_bag", "1s_no_bag"),
    ("hard-sample mining", "2s_bag", "2s_bag_no_hm"),
    ("two streams over one", "2s_bag", "1s_bag"),
    ("hard annotations only, -ha (2S)", "2s_bag_ha", "2s_bag"),
    ("hard annotations only, -ha (1S)", "1s_bag_ha", "1s_bag"),
)


def run_variant(base, workdir, variant, *, autoencoder=None, shared=None):
    """Trains (or resumes) one variant in ``workdir``; returns its ``anomaly_report`` eval."""
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


def table_lines(rows, base):
    """Table 1 in markdown, ours next to the paper's, then notes on what ours were trained with."""
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
    return lines + notes


def _same_frames(pa, pb, a, b):
    for key in ("video_index", "frame_index", "labels"):
        if not np.array_equal(pa[key], pb[key]):
            raise ValueError(f"variants {a} and {b} were scored on different test frames ({key} differs)")


def ablation(predictions, claim, a, b, *, replicates=2000):
    """One ablation: our FL-AUC(a) - FL-AUC(b), its paired video interval, and the paper's sign.

    ``predictions``: {variant: predictions.npz contents}. ``sign_matches``: our difference has
    the paper's sign; ``clear``: the interval also excludes 0 on that side.
    """
    pa, pb = predictions[a], predictions[b]
    _same_frames(pa, pb, a, b)
    hard = pa["labels"] == classifier.HARD
    d = auc_comparison.paired_video_bootstrap(
        hard, pa["confidence"], pb["confidence"], pa["video_index"], replicates=replicates
    )
    paper = round(PAPER[a][0] - PAPER[b][0], 1)
    matches = bool(np.sign(d.difference) == np.sign(paper))
    clear = d.low > 0 if paper > 0 else d.high < 0
    return {"claim": claim, "a": a, "b": b, "paper_difference_pct": paper,
            **d.as_dict(), "sign_matches": matches, "clear": bool(matches and clear)}  # fmt: skip


def ablations(predictions):
    """Every ABLATIONS row whose two variants are in ``predictions``."""
    return [ablation(predictions, *row) for row in ABLATIONS if set(row[1:]) <= set(predictions)]


def ablation_lines(rows):
    lines = [
        "",
        "| ablation | a - b | paper FL-AUC % | ours FL-AUC % [95% paired video interval] "
        "| sign as paper | clear |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        ours = f"{100 * r['difference']:+.1f} [{100 * r['low']:+.1f}, {100 * r['high']:+.1f}]"
        lines.append(
            f"| {r['claim']} | {r['a']} - {r['b']} | {r['paper_difference_pct']:+.1f} | {ours} | "
            f"{'yes' if r['sign_matches'] else 'no'} | {'yes' if r['clear'] else 'no'} |"
        )
    return lines


def write_table(base, root, variants):
    """Runs the variants under ``root/table1``; writes table1.md and table1.json; returns the markdown."""
    root = pathlib.Path(root)
    rows = {variant: run_variant(base, root / "table1" / variant, variant) for variant in variants}
    compared = ablations({v: _load(root / "table1" / v / "predictions.npz") for v in variants})
    text = "\n".join(table_lines(rows, base) + ablation_lines(compared))
    (root / "table1.md").write_text(text + "\n")
    out = {"ours": rows, "paper": PAPER, "ablations": compared}
    (root / "table1.json").write_text(json.dumps(out, indent=2, default=str))
    return text


def parse_autoencoders(items):
    """``["name=workdir", ...]`` (``--autoencoders``) -> ``{name: workdir}``; ValueError if malformed."""
    out = {}
    for item in items:
        name, _, path = item.partition("=")
        if not path:
            raise ValueError(f"--autoencoders expects name=workdir, got {item!r}")
        out[name] = path
    return out


def _load(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def figure10(base, root, autoencoders):
    """2S-bag fed by each ``{name: autoencoder_workdir}``; draws figure10_roc.png; returns FL-AUC by name."""
    root = pathlib.Path(root)
    curves = {}
    for name, path in autoencoders.items():
        out = root / "figure10" / name
        run_variant(base, out / "2s_bag", "2s_bag", autoencoder=path, shared=out)
        result = anomaly_report.score(_load(out / "2s_bag" / "predictions.npz"))
        curves[name] = (result["frame_labels"], [v[2] for v in result["videos"]])
    return plots.plot_roc_curves(curves, root / "figure10_roc.png", title="2S-bag fed by each autoencoder")
