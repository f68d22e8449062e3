"""Public pretraining of the autoencoder, and DP runs that start from it."""

import json

import jax
import numpy as np
import pytest

from configs import autoencoder as ae_config
from ppvad_jax.data import public_images
from ppvad_jax.models import autoencoder, autoencoder_io
from ppvad_jax.privacy import accounting
from ppvad_jax.training import autoencoder as trainer
from ppvad_jax.training import public_pretrain
from tests import autoencoder_support

TINY = (16, 8, 4)


def test_public_images_leave_out_the_privacy_attack_targets():
    names = [n for n, _, _ in public_images.IMAGES]
    assert "astronaut" not in names and "lfw_subset" not in names
    images = public_images.load()
    assert len(images) == len(names)
    assert all(im.dtype == np.uint8 and im.ndim == 3 and im.shape[2] == 3 for im in images)


def test_random_crops_are_seeded_and_varied():
    a = public_images.random_crops(np.random.default_rng(3), 6, 48, 64)
    b = public_images.random_crops(np.random.default_rng(3), 6, 48, 64)
    c = public_images.random_crops(np.random.default_rng(4), 6, 48, 64)
    assert a.shape == (6, 48, 64, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert len({x.tobytes() for x in a}) == 6 and a.std() > 10


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    out = tmp_path_factory.mktemp("pre") / "public"
    spec = public_pretrain.pretrain(out, height=48, width=64, features=TINY, steps=150, learning_rate=3e-3)
    return out, spec


def _mse(params, frames):
    x = autoencoder.to_unit_range(frames)
    return float(
        np.mean((np.asarray(autoencoder.Autoencoder(features=TINY).apply({"params": params}, x)) - x) ** 2)
    )


def test_pretraining_learns_and_says_it_saw_public_data_only(pretrained):
    out, spec = pretrained
    assert spec["training_data"] == public_images.DESCRIPTION and spec["private"] is False
    assert spec["pretrain_steps"] == 150 and np.isfinite(spec["pretrain_final_loss"])
    public_pretrain.check_public(spec, out)  # does not raise
    params, _ = autoencoder_io.load_params(out)
    init = jax.jit(autoencoder.Autoencoder(features=TINY).init)(jax.random.key(0), np.zeros((1, 48, 64, 3)))
    held_out = public_images.random_crops(np.random.default_rng(99), 16, 48, 64)
    assert _mse(params, held_out) < 0.7 * _mse(init["params"], held_out)


def test_pretraining_is_reused_for_the_same_settings_and_redone_otherwise(pretrained, tmp_path):
    out, spec = pretrained
    before = (out / "encoder.msgpack").stat().st_mtime_ns
    again = public_pretrain.pretrain(out, height=48, width=64, features=TINY, steps=150, learning_rate=3e-3)
    assert again == spec and (out / "encoder.msgpack").stat().st_mtime_ns == before
    other = tmp_path / "other"
    public_pretrain.pretrain(other, height=48, width=64, features=TINY, steps=2, learning_rate=3e-3)
    assert json.loads((other / "spec.json").read_text())["pretrain_steps"] == 2
    assert not (other.parent / "other.partial").exists()


def _dp_config(dataset_dir, init_from, *, learning_rate=1e-3):
    config = ae_config.get_config("optimizer=dpadam,runlocal=True")
    autoencoder_support.make_tiny(config, dataset_dir, max_steps=3)
    config.init_from = str(init_from)
    config.learning_rate = learning_rate
    return config


@pytest.mark.slow  # FAST=1 lane under 3 min (BUILD_NOTES, tests); CI runs it
def test_a_dp_run_starts_from_the_public_weights_at_the_same_epsilon(dataset_dir, pretrained, tmp_path):
    out, _ = pretrained
    # Learning rate 0: Adam moves nothing, so the exported model is exactly where the run started.
    config = _dp_config(dataset_dir, out, learning_rate=0.0)
    metrics = trainer.train_and_evaluate(config, tmp_path)
    start, _ = autoencoder_io.load_params(out)
    end, _ = autoencoder_io.load_params(tmp_path / "export")
    jax.tree.map(np.testing.assert_array_equal, start, end)
    assert metrics["init_from"] == str(out) and metrics["init_training_data"] == public_images.DESCRIPTION
    # The public start costs nothing: epsilon is the accountant's for the DP steps alone.
    # q from the config and the count of training frames, not from the run's own metrics.
    num_units = len(trainer.split_units(config)[0]["train"])
    q = config.dp.expected_batch_size / num_units
    want = accounting.report(accounting.DpParams(1.0, q, 3, accounting.default_delta(num_units)))
    assert metrics["epsilon_pld"] == pytest.approx(want["epsilon_pld"])


def test_a_dp_run_refuses_weights_that_do_not_say_they_are_public(dataset_dir, pretrained, tmp_path):
    out, _ = pretrained
    params, _ = autoencoder_io.load_params(out)
    unknown = autoencoder_io.export(tmp_path / "unknown", params, height=48, width=64, features=TINY)
    with pytest.raises(ValueError, match="public data only"):
        trainer.train_and_evaluate(_dp_config(dataset_dir, unknown), tmp_path / "run")
    private = autoencoder_io.export(
        tmp_path / "private", params, height=48, width=64, features=TINY,
        extra={"training_data": "ucf_crime2local train split", "private": False},
    )  # fmt: skip
    with pytest.raises(ValueError, match="public data only"):
        trainer.train_and_evaluate(_dp_config(dataset_dir, private), tmp_path / "run2")


def test_a_width_mismatch_is_named(dataset_dir, tmp_path):
    out = tmp_path / "wide"
    public_pretrain.pretrain(out, height=48, width=64, features=(8, 8, 4), steps=1)
    with pytest.raises(ValueError, match=r"encoder widths \(8, 8, 4\)"):
        trainer.train_and_evaluate(_dp_config(dataset_dir, out), tmp_path / "run")
