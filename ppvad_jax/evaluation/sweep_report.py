"""Reports of a noise sweep (``pipelines.sweep``): the epsilon plan, results.csv / .md, plots, grid.

Rows are dicts with the ``COLUMNS`` keys (missing ones are blank); an
unbounded epsilon is the string "inf" (JSON has no infinity). Plots are
``matplotlib.figure.Figure`` through the Agg canvas (no pyplot state, headless),
as in ``evaluation.plots``. The x axis of every "vs epsilon" plot is the PLD
epsilon of training (log scale); points without a finite epsilon (adam, or
sigma 0) are drawn as dashed horizontal lines. Latent-LDP rows are left out of
those plots (their per-frame epsilon is another guarantee) but are in the
tables and the reconstruction grid.
"""

from __future__ import annotations

import csv
import math
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ppvad_jax.data import contact_sheet

COLUMNS = (
    "point",
    "mechanism",
    "optimizer",
    "noise_multiplier",
    "latent_ldp_noise",
    "status",
    "private",
    "unit_of_privacy",
    "accountant",
    "epsilon_rdp",
    "epsilon_pld",
    "delta",
    "planned_steps",
    "steps",
    "latent_ldp_epsilon",
    "latent_ldp_delta",
    "latent_ldp_l2_bound",
    "ssim",
    "psnr",
    "mse",
    "face_detection_rate",
    "faces_original",
    "faces_reconstructed",
    "reid_top1",
    "reid_chance_top1",
    "mia_auc",
    "mia_tpr_at_1pct_fpr",
    "strong_face_detection_rate",
    "adaptive_reid_top1",
    "adaptive_reid_top1_ci95",
    "naive_reid_top1",
    "linking_top1",
    "real_faces_chance_top1",
    "fl_auc",
    "vl_f1",
    "classifier_epsilon_pld",
    "combined_epsilon_pld",
    "combined_privacy_note",
    "error",
)
# results.md: (header, key, format)
MD_COLUMNS = (
    ("point", "point", "s"),
    ("camera mechanism", "mechanism", "s"),
    ("LDP sigma", "latent_ldp_noise", "g"),
    ("status", "status", "s"),
    ("eps PLD", "epsilon_pld", ".4g"),
    ("eps RDP", "epsilon_rdp", ".4g"),
    ("delta", "delta", ".0e"),
    ("accountant / unit", "accountant", "s"),
    ("steps", "steps", "d"),
    ("LDP eps/frame", "latent_ldp_epsilon", ".4g"),
    ("SSIM", "ssim", ".3f"),
    ("PSNR", "psnr", ".2f"),
    ("MSE", "mse", ".4f"),
    ("face det. rate", "face_detection_rate", ".2f"),
    ("re-id top-1", "reid_top1", ".3f"),
    ("MIA AUC", "mia_auc", ".3f"),
    ("CenterFace rate, real faces", "strong_face_detection_rate", ".2f"),
    ("adaptive dlib top-1", "adaptive_reid_top1", ".2f"),
    ("FL-AUC", "fl_auc", ".3f"),
    ("VL-F1", "vl_f1", ".3f"),
    ("cls. eps PLD", "classifier_epsilon_pld", ".4g"),
    ("AE+cls. eps PLD", "combined_epsilon_pld", ".4g"),
)
ACCOUNTANT = (
    "dp_accounting PLD (headline, pessimistic) and RDP (orders 1.01-1024); Poisson-subsampled "
    "Gaussian composed over the planned steps; add/remove adjacency of one unit of privacy"
)


def number(value: Any) -> float | None:
    """A float from a row value ("inf" strings included), or None."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def accountant_label(row: Mapping[str, Any]) -> str:
    """The short 'which accountant, which unit' cell of a row."""
    if not row.get("private"):
        label = "not private (no DP training)"
    else:
        label = f"PLD+RDP, add/remove, per {row.get('unit_of_privacy') or 'frame'}"
    if row.get("latent_ldp_noise") is not None:
        label += "; latent LDP: Gaussian PLD, per frame (local)"
    return label


def _cell(value, fmt):
    if value is None or value == "":
        return "-"
    if fmt == "s" or isinstance(value, str):
        return str(value).replace("|", "/")
    if fmt == "d":
        return str(int(value))
    return format(float(value), fmt)


# --- The plan ---------------------------------------------------------------------------------


def plan_table(plan: Mapping[str, Any]) -> str:
    """The epsilon table printed before any training (markdown, readable in a terminal)."""
    lines = [
        "# Epsilon planned for each point (computed before training)",
        "",
        f"Accountant: {ACCOUNTANT}. Planned steps; a point stopped early by patience is still accounted "
        "for them (its stopping rule looked at noisy iterates). Each point has its own secret seed: "
        "its epsilon holds for that point alone.",
        "",
        "| point | optimizer | sigma | q | steps | delta | eps RDP | eps PLD | unit |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in plan["points"]:
        private = p.get("private")
        lines.append(
            "| "
            + " | ".join(
                [
                    p["point"],
                    p["optimizer"],
                    _cell(p.get("noise_multiplier"), "g"),
                    _cell(p.get("sampling_rate"), ".4g"),
                    _cell(p.get("planned_steps"), "d"),
                    _cell(p.get("delta") if private else None, ".0e"),
                    _cell(p.get("epsilon_rdp"), ".4g") if private else "not private",
                    _cell(p.get("epsilon_pld"), ".4g") if private else "not private",
                    p.get("unit_of_privacy") or "frame",
                ]
            )
            + " |"
        )
    for name, error in plan.get("errors", {}).items():
        lines.append(f"| {name} | cannot be planned: {error} | | | | | | | |")
    if plan.get("latent_ldp"):
        lines += [
            "",
            "Latent local DP at the camera, per released frame (any frame vs any other):",
            "",
            "| LDP sigma | delta | eps PLD | eps RDP |",
            "|---|---|---|---|",
        ]
        for level in plan["latent_ldp"]:
            lines.append(
                f"| {level['noise_multiplier']:g} | {level['delta']:.0e} | "
                f"{_cell(level['epsilon_pld'], '.4g')} | {_cell(level['epsilon_rdp'], '.4g')} |"
            )
    return "\n".join(lines) + "\n"


# --- Tables -----------------------------------------------------------------------------------


_RESULTS_INTRO = [
    "# Noise sweep results",
    "",
    f"Training epsilon: {ACCOUNTANT}; the trainer's metrics.json, accounted for the planned steps.",
    "Each point trained with its own secret noise and batch seed: each point's epsilon holds "
    "for that point alone; releasing several points' models composes their epsilons. "
    "AE+cls.: the autoencoder and the classifier trained on the same frames, composed "
    "(dp_accounting); '-' where either is not private.",
    "Face detection rate: faces found on reconstructions / on originals (LFW + astronaut faces "
    "pasted on test frames). Re-id top-1: nearest neighbour naming of 101 identities "
    "(chance 1/101). MIA AUC: loss-threshold attack, training vs held-out frames (0.5: nothing "
    "learnt).",
    "",
]


def write_results(
    rows: Sequence[Mapping[str, Any]],
    workdir: str | os.PathLike,
    *,
    plan: Mapping[str, Any],
    timing: Mapping[str, Any] | None = None,
) -> None:
    """``results.csv`` (every column) and ``results.md`` (the table, notes, failures, timing)."""
    workdir = pathlib.Path(workdir)
    _write_csv(rows, workdir / "results.csv")
    lines = [*_RESULTS_INTRO, *_table_lines(rows), *_note_lines(rows)]
    if timing:
        lines += _timing_lines(timing)
    lines += [
        "",
        "Plots: `utility_vs_epsilon.png`, `privacy_vs_epsilon.png`, `reconstructions.png`, and "
        "`frontier.png` when camera mechanisms were measured. Epsilon plan: `epsilon_plan.md`. The "
        "camera mechanism columns are frame privacy (CenterFace and the adaptive dlib attacker on "
        "real faces, `launch.frame_privacy`): empirical, not covered by any epsilon here.",
    ]
    (workdir / "results.md").write_text("\n".join(lines) + "\n")


def _write_csv(rows, path):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_value(row.get(k)) for k in COLUMNS})


def _table_lines(rows):
    """The markdown table of ``MD_COLUMNS``, one line per row."""
    lines = ["| " + " | ".join(h for h, _, _ in MD_COLUMNS) + " |", "|" + "---|" * len(MD_COLUMNS)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(k), fmt) for _, k, fmt in MD_COLUMNS) + " |")
    return lines


def _note_lines(rows):
    """The notes under the table: the re-id ceiling, undefined FL-AUCs, failures, early stops."""
    lines = []
    clear = next(
        (r["reid_top1_clear_crops"] for r in rows if r.get("reid_top1_clear_crops") is not None), None
    )
    if clear is not None:
        lines += ["", f"Re-id top-1 on the clear crops (no autoencoder, the attack's ceiling): {clear:.3f}."]
    undefined = [r for r in rows if r.get("fl_auc_undefined")]
    if undefined:
        lines += ["", "FL-AUC not defined: "]
        lines[-1] += "; ".join(f"{r['point']} ({r['fl_auc_undefined']})" for r in undefined)
    failed = [r for r in rows if r.get("status") == "failed"]
    if failed:
        lines += ["", "## Failed points", ""]
        lines += [f"- `{r['point']}`: {r.get('error')}" for r in failed]
    early = {
        r["point"]: r for r in rows if r.get("steps") is not None and r["steps"] != r.get("planned_steps")
    }
    early = list(early.values())
    if early:
        lines += [
            "",
            "Stopped before the planned steps (still accounted for the planned steps: the stopping "
            "rule looked at noisy iterates): ",
        ]
        lines[-1] += ", ".join(f"{r['point']} ({r['steps']} of {r['planned_steps']})" for r in early)
    return lines


def _timing_lines(timing):
    return [
        "",
        "## Timing",
        "",
        f"- mode: {timing['mode']}; {timing['points_run']} point(s) run, "
        f"{len(timing['points_skipped_finished'])} skipped as finished",
        f"- sweep wall time {timing['sweep_wall_seconds']:.1f} s "
        f"(planning {timing['plan_seconds']:.1f} s, points {timing['points_wall_seconds']:.1f} s, "
        f"plots {timing['report_seconds']:.1f} s)",
        f"- one by one (sum of the points' own times): {timing['one_by_one_seconds']:.1f} s",
    ]


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return "inf" if math.isinf(value) else format(value, ".6g")
    if isinstance(value, (list, tuple)):
        return " ".join(str(_csv_value(v)) for v in value)
    return value


# --- Plots ------------------------------------------------------------------------------------


def _save(fig, path):
    FigureCanvasAgg(fig)
    fig.savefig(path, format="png")


def _primary(rows):
    """One row per (point, LDP level): the first camera mechanism's (the "vs epsilon" plots)."""
    seen, out = set(), []
    for row in rows:
        key = (row.get("point"), row.get("latent_ldp_noise"))
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out


def _series(rows, key):
    """{optimizer: ([eps], [value])} over finite-epsilon rows, and [(label, value)] for the others."""
    curves, lines = {}, []
    for row in _primary(rows):
        value = number(row.get(key))
        if row.get("status") != "done" or row.get("latent_ldp_noise") is not None or value is None:
            continue
        eps = number(row.get("epsilon_pld"))
        if eps is not None and math.isfinite(eps):
            xs, ys = curves.setdefault(row["optimizer"], ([], []))
            xs.append(eps)
            ys.append(value)
        else:
            lines.append((row["point"] + (" (eps inf)" if eps is not None else " (no DP)"), value))
    return {
        k: (np.array(x)[np.argsort(x)], np.array(y)[np.argsort(x)]) for k, (x, y) in curves.items()
    }, lines


def _panel(ax, rows, key, label, *, chance=None):
    curves, lines = _series(rows, key)
    for optimizer, (xs, ys) in curves.items():
        ax.plot(xs, ys, marker="o", lw=1.5, label=optimizer)
    for i, (name, value) in enumerate(lines):
        ax.axhline(value, ls="--", lw=1.0, color=f"C{len(curves) + i}", label=name)
    if chance is not None:
        ax.axhline(chance, ls=":", lw=0.8, color="0.4", label=f"chance {chance:.3g}")
    if curves:
        ax.set_xscale("log")
    ax.set(xlabel="training epsilon (PLD)", ylabel=label, title=f"{label} vs epsilon")
    ax.grid(alpha=0.3)
    if curves or lines:
        ax.legend(fontsize="small")
    return bool(curves or lines)


def write_plots(rows: Sequence[Mapping[str, Any]], workdir: str | os.PathLike) -> None:
    """utility_vs_epsilon.png, privacy_vs_epsilon.png and reconstructions.png under ``workdir``."""
    workdir = pathlib.Path(workdir)
    has_auc = any(number(r.get("fl_auc")) is not None for r in rows)
    panels = [("ssim", "SSIM")] + ([("fl_auc", "FL-AUC")] if has_auc else [])
    fig = Figure(figsize=(6.0 * len(panels), 4.5), dpi=100)
    for i, (key, label) in enumerate(panels):
        _panel(fig.add_subplot(1, len(panels), i + 1), rows, key, label)
    fig.tight_layout()
    _save(fig, workdir / "utility_vs_epsilon.png")

    chance = next((number(r.get("reid_chance_top1")) for r in rows if r.get("reid_chance_top1")), None)
    fig = Figure(figsize=(18.0, 4.5), dpi=100)
    _panel(fig.add_subplot(1, 3, 1), rows, "face_detection_rate", "face detection rate")
    _panel(fig.add_subplot(1, 3, 2), rows, "reid_top1", "re-identification top-1", chance=chance)
    _panel(fig.add_subplot(1, 3, 3), rows, "mia_auc", "membership inference AUC", chance=0.5)
    fig.tight_layout()
    _save(fig, workdir / "privacy_vs_epsilon.png")
    contact_sheet.save_png(workdir / "reconstructions.png", reconstruction_grid(rows, workdir))
    write_frontier(rows, workdir / "frontier.png")


def frontier_points(rows, utility):
    """{mechanism: [(utility, adaptive top-1, CenterFace rate, point)]} over done rows without LDP."""
    out = {}
    for r in rows:
        u, top1 = number(r.get(utility)), number(r.get("adaptive_reid_top1"))
        if r.get("status") != "done" or r.get("latent_ldp_noise") is not None or None in (u, top1):
            continue
        rate = number(r.get("strong_face_detection_rate"))
        out.setdefault(r["mechanism"], []).append((u, top1, rate, r["point"]))
    return {m: sorted(v) for m, v in out.items()}


def write_frontier(rows, path):
    """frontier.png: adaptive re-id top-1 and CenterFace's rate against utility, a curve per
    mechanism (FL-AUC when the sweep trained classifiers, else SSIM); nothing without the axis."""
    utility = "fl_auc" if any(number(r.get("fl_auc")) is not None for r in rows) else "ssim"
    curves = frontier_points(rows, utility)
    if not curves:
        return
    chance = next(
        (number(r.get("real_faces_chance_top1")) for r in rows if r.get("real_faces_chance_top1")), None
    )
    fig = Figure(figsize=(12.0, 4.5), dpi=100)
    for i, (col, label) in enumerate(((1, "adaptive dlib re-id top-1"), (2, "CenterFace detection rate"))):
        ax = fig.add_subplot(1, 2, i + 1)
        for mechanism, pts in curves.items():
            ax.plot([p[0] for p in pts], [p[col] for p in pts], marker="o", label=mechanism)
            for p in pts:
                ax.annotate(p[3], (p[0], p[col]), fontsize=6)
        if col == 1 and chance is not None:
            ax.axhline(chance, ls=":", color="0.4", label=f"chance {chance:.3f}")
        ax.axhline(1.0, ls="--", lw=0.8, color="0.6", label="clear frames")
        ax.set(xlabel=f"{'FL-AUC' if utility == 'fl_auc' else 'SSIM'} (utility)", ylabel=label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    _save(fig, path)


def reconstruction_grid(
    rows: Sequence[Mapping[str, Any]],
    workdir: str | os.PathLike,
    *,
    thumb_width: int = 160,
    label_width: int = 230,
) -> np.ndarray:
    """Originals, then one row per finished row of the sweep: the same test frames reconstructed."""
    strips, originals = [], None
    for row in rows:
        if row.get("status") != "done":
            continue
        path = pathlib.Path(workdir) / "points" / row["point"] / "recon_samples.npz"
        if not path.is_file():
            continue
        level = row.get("latent_ldp_noise")
        key = "recon" if level is None else f"recon_ldp{float(level):g}"
        with np.load(path) as samples:
            if key not in samples:
                continue
            if originals is None:
                originals = samples["originals"]
            eps = number(row.get("epsilon_pld"))
            text = [row["point"] + ("" if level is None else f" + LDP {float(level):g}")]
            text.append("not private" if eps is None else f"eps {eps:.3g}")
            text.append(f"SSIM {number(row.get('ssim')) or 0:.2f}")
            strips.append((text, samples[key]))
    if originals is None:
        blank = np.full((40, label_width + thumb_width, 3), 255, np.uint8)
        cv2.putText(blank, "no finished point", (4, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 0, 1, cv2.LINE_AA)
        return blank
    strips.insert(0, (["original test frames"], originals))
    out = [_strip(text, frames, thumb_width=thumb_width, label_width=label_width) for text, frames in strips]
    return np.concatenate(out)


def _strip(text, frames, *, thumb_width, label_width, gap=4):
    frames = np.asarray(frames)
    h, w = frames.shape[1:3]
    thumb_h = int(round(h * thumb_width / w))
    row = np.full((thumb_h + gap, label_width + len(frames) * (thumb_width + gap), 3), 255, np.uint8)
    for i, line in enumerate(text):
        cv2.putText(row, line, (4, 16 + 16 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    for i, frame in enumerate(frames):
        x = label_width + i * (thumb_width + gap)
        row[:thumb_h, x : x + thumb_width] = cv2.resize(
            frame, (thumb_width, thumb_h), interpolation=cv2.INTER_AREA
        )
    return row
