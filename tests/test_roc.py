import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from ppvad_jax.evaluation import roc


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(2, 300), st.booleans())
def test_matches_sklearn(seed, n, coarse):
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 0.3
    labels[0], labels[1] = True, False
    scores = rng.normal(size=n) + labels
    if coarse:  # many ties
        scores = np.round(scores)
    assert roc.roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_errors():
    with pytest.raises(ValueError, match="both classes"):
        roc.roc_auc([1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="finite"):
        roc.roc_auc([1, 0], [np.nan, 0.2])
