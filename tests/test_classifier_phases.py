"""The classifier's stopping rule as a pure function (training/classifier_phases.py)."""

from ppvad_jax.training import classifier_phases as phases


def _epochs(record, values, metric):
    improved = []
    for value in values:
        record, better = phases.epoch_rule(
            record, {metric: value}, metric=metric, steps=3, train_loss=None, seconds=0.0
        )
        improved.append(better)
    return record, improved


def test_epoch_rule_keeps_the_best_epoch_and_counts_stale_ones_without_changing_its_input():
    fresh = phases.fresh_record("val_loss")
    record, improved = _epochs(fresh, [0.9, 0.7, 0.7, 0.8], "val_loss")
    assert improved == [True, True, False, False]  # a tie is no improvement
    assert record["best_val"] == 0.7 and record["best_epoch"] == 1 and record["stale"] == 2
    assert record["epoch"] == 4 and record["steps"] == 12 and len(record["history"]) == 4
    assert fresh == phases.fresh_record("val_loss")  # pure: the input is never changed


def test_epoch_rule_on_auc_wants_higher_and_a_carried_best_must_be_beaten():
    # Phase 2 starts from phase 1's best value: an epoch that does not beat it is stale.
    carried = dict(phases.fresh_record("val_auc"), best_val=0.8)
    record, improved = _epochs(carried, [0.7, 0.85], "val_auc")
    assert improved == [False, True] and record["best_val"] == 0.85 and record["best_epoch"] == 1
