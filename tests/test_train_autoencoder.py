"""The autoencoder trainer end to end on a tiny prepared dataset: outputs, resume, epsilon."""

import json

import numpy as np
import pytest

from configs import autoencoder as ae_config
from ppvad_jax.models import autoencoder_io
from ppvad_jax.privacy import accounting
from ppvad_jax.training import autoencoder as trainer
from ppvad_jax.training import classifier
from tests import autoencoder_support


def tiny_config(dataset_dir, optimizer="dpadam"):
    config = ae_config.get_config(f"optimizer={optimizer},runlocal=True")
    autoencoder_support.make_tiny(config, dataset_dir, max_steps=6)
    config.schedule.checkpoint_every_steps = 2
    return config


def test_dp_run_writes_everything_and_reports_epsilon(dataset_dir, tmp_path):
    metrics = trainer.train_and_evaluate(tiny_config(dataset_dir), tmp_path)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    for key in (
        "mse",
        "psnr",
        "ssim",
        "epsilon_rdp",
        "epsilon_pld",
        "delta",
        "steps",
        "noise_multiplier",
        "optimizer",
    ):
        assert key in saved, key
    assert saved["steps"] == 6 and saved["optimizer"] == "dpadam" and saved["unit_of_privacy"] == "frame"
    # What the classifier repeats of its autoencoder's privacy is all there (no null fields).
    assert all(saved.get(k) is not None for k in classifier._AE_PRIVACY_KEYS)
    assert 0 < saved["ssim"] <= 1 and saved["mse"] > 0
    # The epsilon printed is the one the accountant computes for what ran.
    want = accounting.report(
        accounting.DpParams(1.0, saved["sampling_rate"], 6, saved["delta"]), unit="frame"
    )
    assert saved["epsilon_rdp"] == pytest.approx(want["epsilon_rdp"])
    assert saved["epsilon_pld"] == pytest.approx(want["epsilon_pld"])
    assert saved["delta"] < 1 / saved["train_units"]
    assert (tmp_path / "reconstructions.png").stat().st_size > 1000
    assert list((tmp_path / "tensorboard").iterdir())
    encode, spec = autoencoder_io.load_encoder(tmp_path / "export")
    assert spec["latent_shape"] == [6, 8, 4]
    assert encode(np.zeros((1, 48, 64, 3), np.float32)).shape == (1, 6, 8, 4)
    assert metrics["mse"] == saved["mse"]


def test_a_killed_run_resumes_to_the_same_result(dataset_dir, tmp_path):
    config = tiny_config(dataset_dir)
    straight = trainer.train_and_evaluate(config, tmp_path / "straight")
    assert trainer.train_and_evaluate(config, tmp_path / "killed", interrupt_at_step=5) is None
    # Not resumed as if it were another run: a changed setting is named, a new start too.
    other = config.copy_and_resolve_references()
    other.learning_rate *= 2
    other.init_from = str(tmp_path / "straight" / "export")
    assert not trainer.resumes(other, tmp_path / "killed") and trainer.resumes(config, tmp_path / "killed")
    with pytest.raises(ValueError, match="init_fingerprint, init_from, learning_rate differ"):
        trainer.train_and_evaluate(other, tmp_path / "killed")
    # When to stop is not part of the run: a longer schedule resumes.
    config.schedule.max_epochs += 1
    resumed = trainer.train_and_evaluate(config, tmp_path / "killed")  # from the step-4 checkpoint
    assert resumed["steps"] == straight["steps"] == 6
    assert resumed["steps_this_run"] == 2
    for half in ("encoder", "decoder"):
        a = (tmp_path / "straight" / "export" / f"{half}.msgpack").read_bytes()
        b = (tmp_path / "killed" / "export" / f"{half}.msgpack").read_bytes()
        assert a == b, half  # same batches, same noise, same updates: bit-identical
    assert resumed["epsilon_pld"] == straight["epsilon_pld"]


def test_no_noise_reports_infinite_epsilon_and_adam_is_not_private(dataset_dir, tmp_path):
    config = tiny_config(dataset_dir)
    config.dp.noise_multiplier = 0.0
    config.schedule.max_steps = 2
    trainer.train_and_evaluate(config, tmp_path / "sigma0")
    saved = json.loads((tmp_path / "sigma0" / "metrics.json").read_text())
    assert saved["epsilon_rdp"] == "inf" and saved["epsilon_pld"] == "inf"
    config = tiny_config(dataset_dir, optimizer="adam")
    config.schedule.max_steps = 2
    adam = trainer.train_and_evaluate(config, tmp_path / "adam")
    assert adam["private"] is False and adam["epsilon_pld"] is None


@pytest.mark.parametrize("optimizer,field", [("dpadam", "grad_method"), ("adam", "plain_grad_method")])
def test_layerwise_and_autodiff_steps_agree(dataset_dir, tmp_path, optimizer, field):
    outs = {}
    for method in ("layerwise", "autodiff"):
        config = tiny_config(dataset_dir, optimizer)
        config[field] = method
        config.schedule.max_steps = 2
        outs[method] = trainer.train_and_evaluate(config, tmp_path / method)
    assert outs["layerwise"]["mse"] == pytest.approx(outs["autodiff"]["mse"], rel=1e-4)


def test_wrong_resolution_is_a_clear_error(dataset_dir, tmp_path):
    config = tiny_config(dataset_dir)
    config.data.height, config.data.width = 240, 320
    with pytest.raises(ValueError, match=r"frames of shape \(48, 64, 3\).*wants \(240, 320, 3\)"):
        trainer.train_and_evaluate(config, tmp_path)


def test_video_as_the_unit_of_privacy(dataset_dir, tmp_path):
    config = tiny_config(dataset_dir)
    config.dp.unit = "video"
    config.dp.frames_per_video = 3
    config.dp.expected_batch_size = 2
    config.data.videos_per_class = 0
    config.data.fractions = (0.5, 0.25, 0.25)
    config.schedule.max_steps = 2
    metrics = trainer.train_and_evaluate(config, tmp_path)
    assert metrics["unit_of_privacy"] == "video"
    # Units are whole videos of the source split, so q and delta are per video.
    assert metrics["train_units"] <= len(metrics["videos"])
    assert metrics["sampling_rate"] == pytest.approx(2 / metrics["train_units"])
    assert metrics["delta"] < 1 / metrics["train_units"]


def test_tf_privacy_groups_are_accounted_with_half_the_noise(dataset_dir, tmp_path):
    config = tiny_config(dataset_dir)
    config.dp.tf_privacy_group_size = 2
    config.schedule.max_steps = 2
    metrics = trainer.train_and_evaluate(config, tmp_path)
    assert metrics["accounted_noise_multiplier"] == pytest.approx(0.5)
    want = accounting.epsilon_pld(accounting.DpParams(0.5, metrics["sampling_rate"], 2, metrics["delta"]))
    assert metrics["epsilon_pld"] == pytest.approx(want)
