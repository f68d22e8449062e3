"""The multi-seed detection benchmark's summary against numpy, on rows with gaps."""

import numpy as np
import pytest

from ppvad_jax.pipelines.benchmarks import detection_seeds


def _rows():
    rng = np.random.default_rng(0)
    rows = []
    for world in (0, 1):
        for head in (0, 1, 2):
            auc = float(rng.uniform(0.4, 0.9))
            rows.append({
                "world_seed": world, "head_seed": head, "fl_auc": auc, "within_anomalous_auc": auc - 0.05,
                "vl_f1": float(rng.uniform()), "motion_fl_auc": 0.6, "motion_within_anomalous_auc": 0.5,
                "motion_vl_f1": 0.2, "fl_auc_margin": auc - 0.6, "clear_win": auc > 0.7,
            })  # fmt: skip
    rows[4]["vl_f1"] = None  # a run whose metric is undefined is left out, not counted as 0
    return rows


def test_summary_is_numpys_mean_and_sample_std_per_world_and_overall():
    rows = _rows()
    summary = detection_seeds.summarize(rows)
    auc = np.array([r["fl_auc"] for r in rows])
    assert summary["all"]["fl_auc"]["mean"] == pytest.approx(auc.mean())
    assert summary["all"]["fl_auc"]["std"] == pytest.approx(auc.std(ddof=1))
    world1 = auc[3:]
    assert summary["per_world"][1]["fl_auc"]["mean"] == pytest.approx(world1.mean())
    f1 = np.array([r["vl_f1"] for r in rows if r["vl_f1"] is not None])
    assert summary["all"]["vl_f1"]["n"] == 5 and summary["all"]["vl_f1"]["mean"] == pytest.approx(f1.mean())
    assert summary["clear_wins"] == int((auc > 0.7).sum()) and summary["runs"] == 6
    assert summary["all"]["fl_auc_margin"]["mean"] == pytest.approx(auc.mean() - 0.6)


def test_redaction_cost_is_the_auc_difference_sklearn_gives(tmp_path):
    from sklearn.metrics import roc_auc_score  # noqa: PLC0415

    rng = np.random.default_rng(1)
    video = np.repeat(np.arange(12), 20)
    hard = rng.random(video.size) < 0.3
    clear = hard * 0.5 + rng.random(video.size)
    redacted = hard * 0.2 + rng.random(video.size)
    for name, conf in (("clear", clear), ("redacted", redacted)):
        (tmp_path / name).mkdir()
        np.savez(tmp_path / name / "predictions.npz", confidence=conf, video_index=video)
    cost = detection_seeds.redaction_cost(tmp_path / "clear", tmp_path / "redacted", hard)
    assert cost["difference"] == pytest.approx(roc_auc_score(hard, redacted) - roc_auc_score(hard, clear))
    assert cost["low"] <= cost["difference"] <= cost["high"]
    np.savez(tmp_path / "redacted" / "predictions.npz", confidence=redacted, video_index=video[::-1])
    with pytest.raises(ValueError, match="scored different test frames"):
        detection_seeds.redaction_cost(tmp_path / "clear", tmp_path / "redacted", hard)
