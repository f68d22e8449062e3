"""LiRA's reference models: each trains on exactly its half of the candidates, with the target's
config, and the attack scores every candidate."""

import json

import numpy as np
import pytest

from configs import autoencoder as ae_config
from ppvad_jax.data import autoencoder_data
from ppvad_jax.pipelines import membership_lira
from ppvad_jax.training import autoencoder as trainer
from tests import autoencoder_support


def _units(names):
    return autoencoder_data.Units([np.array([i]) for i in range(len(names))], list(names))


def test_resplit_trains_on_the_chosen_pool_units_and_splits_the_rest():
    splits = {"train": _units("abcd"), "validation": _units("ef"), "test": _units("ghij")}
    out = autoencoder_data.resplit(splits, [5, 0, 9, 5])
    assert out["train"].names == ["a", "f", "j"]
    assert out["validation"].names == ["b"] and out["test"].names == ["c", "d", "e", "g", "h", "i"]
    with pytest.raises(ValueError, match=r"must lie in \[0, 10\)"):
        autoencoder_data.resplit(splits, [10])


@pytest.mark.slow
def test_references_train_on_their_half_and_every_candidate_is_scored(dataset_dir, tmp_path):
    config = ae_config.get_config("optimizer=adam,runlocal=True")
    autoencoder_support.make_tiny(config, dataset_dir, max_steps=2)
    trainer.train_and_evaluate(config, tmp_path / "target")
    result = membership_lira.run(config, target_workdir=tmp_path / "target", workdir=tmp_path / "lira",
                                 num_references=2)  # fmt: skip
    units, member = membership_lira.candidate_pool(config)
    assert result["candidates"] == len(units) and result["online"]["members"] == member.sum()
    halves = [np.load(tmp_path / "lira" / f"ref{k}" / "train_subset.npy") for k in range(2)]
    assert sorted(np.concatenate(halves).tolist()) == list(range(len(units)))  # each candidate in one of 2
    for k, half in enumerate(halves):
        saved = json.loads((tmp_path / "lira" / f"ref{k}" / "metrics.json").read_text())
        assert saved["train_units"] == len(half)
    assert json.loads((tmp_path / "lira" / "lira.json").read_text())["references"] == 2
    assert 0 <= result["online"]["auc"] <= 1 and "tpr_at_1pct_fpr" in result["offline"]
