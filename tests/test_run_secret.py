"""The run secret (privacy/run_secret.py): fresh per run, private on disk, one stream per use."""

import stat

import jax
import numpy as np
import pytest

from ppvad_jax.privacy import run_secret


def _noise(secret, purpose=run_secret.NOISE, stream=0):
    return np.asarray(jax.random.normal(jax.random.fold_in(secret.jax_key(purpose, stream), 0), (8,)))


def test_two_runs_draw_unrelated_noise_and_a_resume_the_same(tmp_path):
    """Guards a fixed defect: every run (every sweep point, whatever its seed) used the
    noise of the public config.seed, so two points at different sigma shared one draw."""
    a = run_secret.for_run(tmp_path / "a", private=True, seed=0, fresh=True)
    b = run_secret.for_run(tmp_path / "b", private=True, seed=0, fresh=True)
    assert a.words != b.words and not a.insecure
    assert np.abs(_noise(a) - _noise(b)).max() > 0.1  # same seed 0, independent noise
    resumed = run_secret.for_run(tmp_path / "a", private=True, seed=0, fresh=False)
    np.testing.assert_array_equal(_noise(resumed), _noise(a))
    assert "words" not in repr(a) and str(a.words[0]) not in repr(a)
    mode = stat.S_IMODE((tmp_path / "a" / run_secret.SECRET_FILE).stat().st_mode)
    assert mode == 0o600  # never readable by others


def test_streams_and_purposes_never_share_a_key(tmp_path):
    """Guards items 2 and 12: phase 2 redrew phase 1's batches; dropout came from the noise key."""
    secret = run_secret.for_run(tmp_path, private=True, seed=0, fresh=True)
    draws = [_noise(secret, p, s) for p in (run_secret.NOISE, run_secret.DROPOUT) for s in (1, 2)]
    for i in range(len(draws)):
        for j in range(i):
            assert np.abs(draws[i] - draws[j]).max() > 0.1
    batches = [np.random.default_rng([*secret.sampler_entropy(s), 0]).random(4) for s in (1, 2)]
    assert not np.array_equal(*batches)


def test_a_fresh_start_replaces_a_stale_secret_and_a_resume_needs_one(tmp_path):
    first = run_secret.for_run(tmp_path, private=True, seed=0, fresh=True)
    second = run_secret.for_run(tmp_path, private=True, seed=0, fresh=True)
    assert first.words != second.words
    (tmp_path / run_secret.SECRET_FILE).unlink()
    with pytest.raises(ValueError, match="dp_secret.json is missing"):
        run_secret.for_run(tmp_path, private=True, seed=0, fresh=False)
    (tmp_path / run_secret.SECRET_FILE).write_text('{"words": [1, 2]}')
    with pytest.raises(ValueError, match="does not hold 4 32-bit words"):
        run_secret.for_run(tmp_path, private=True, seed=0, fresh=False)


def test_insecure_and_non_private_runs_use_the_public_seed(tmp_path):
    insecure = run_secret.for_run(tmp_path, private=True, seed=7, insecure_fixed_seed=True, fresh=True)
    plain = run_secret.for_run(tmp_path, private=False, seed=7, fresh=True)
    assert insecure.insecure and insecure.words == plain.words == run_secret.fixed(7).words
    assert not (tmp_path / run_secret.SECRET_FILE).exists()
