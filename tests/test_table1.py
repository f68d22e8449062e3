"""Table 1's markdown (ours next to the paper's, with each row's epsilons) and its flag parsing."""

import ml_collections
import pytest

from ppvad_jax.pipelines import table1


def test_table_lines_put_ours_next_to_the_papers_with_each_rows_epsilons():
    base = ml_collections.ConfigDict({"autoencoder_workdir": ""})
    private = {"fl_auc": 0.8, "vl_f1": 0.5, "classifier_privacy": {"epsilon_pld": 2.0}, "detector": "classic",
               "backbone_random_init": True, "autoencoder_privacy": None}  # fmt: skip
    plain = {"fl_auc": None, "vl_f1": 0.25, "classifier_privacy": {"epsilon_pld": None}}
    lines = table1.table_lines({"2s_bag": private, "1s_bag": plain}, base)
    assert lines[2] == "| 2s_bag | 80.0 | 82.6 | 50.0 | 66.7 | 2.00 | no autoencoder |"
    assert lines[3] == "| 1s_bag | n/a | 78.6 | 25.0 | 74.1 | not private | no autoencoder |"
    assert lines[5] == "Autoencoder: none (clear frames); its privacy: null."
    assert lines[6] == "Backbone random init: True; detector: classic."
    assert set(table1.VARIANTS) == set(table1.PAPER)


def test_autoencoders_flag_is_checked_before_anything_is_trained():
    assert table1.parse_autoencoders(["no_dp=runs/a", "dp=runs/b"]) == {"no_dp": "runs/a", "dp": "runs/b"}
    with pytest.raises(ValueError, match="expects name=workdir, got 'bad'"):
        table1.parse_autoencoders(["bad"])
