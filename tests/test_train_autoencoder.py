"""The autoencoder trainer end to end on a tiny prepared dataset: outputs, resume, epsilon."""

import itertools
import json

import dp_accounting
import numpy as np
import pytest

from configs import autoencoder as ae_config
from ppvad_jax.data import autoencoder_data
from ppvad_jax.models import autoencoder_io
from ppvad_jax.privacy import run_secret
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
    # The epsilon printed is dp_accounting's, composed by hand for the steps that ran, at the
    # rate E / N with N counted from the dataset's own train units (not the saved q).
    splits, _ = autoencoder_data.split_units(
        dataset_dir, source_split="train", videos_per_class=0, unit="frame", frames_per_video=1,
        fractions=(0.7, 0.15, 0.15), seed=0,
    )  # fmt: skip
    n = sum(len(r) for r in splits["train"].records)
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(4 / n, dp_accounting.GaussianDpEvent(1.0)), 6
    )
    pld = dp_accounting.pld.PLDAccountant(value_discretization_interval=1e-4)
    pld.compose(event)
    assert saved["epsilon_pld"] == pytest.approx(pld.get_epsilon(saved["delta"]), rel=1e-3)
    assert saved["accounted_steps"] == 6 and not saved["insecure_fixed_seed"]
    assert saved["delta"] < 1 / saved["train_units"]
    assert (tmp_path / "reconstructions.png").stat().st_size > 1000
    assert list((tmp_path / "tensorboard").iterdir())
    encode, spec = autoencoder_io.load_encoder(tmp_path / "export")
    assert spec["latent_shape"] == [6, 8, 4]
    assert encode(np.zeros((1, 48, 64, 3), np.float32)).shape == (1, 6, 8, 4)
    assert metrics["mse"] == saved["mse"]


def _os_bits(monkeypatch):
    """``secrets.randbits`` from a counter: each call of the returned reset() restarts it."""
    state = {}

    def reset():
        state["it"] = itertools.count(1000)

    reset()
    monkeypatch.setattr(run_secret.secrets, "randbits", lambda k: next(state["it"]))
    return reset


@pytest.mark.slow  # FAST=1 lane under 3 min (BUILD_NOTES, tests); CI runs it
def test_a_killed_run_resumes_to_the_same_result(dataset_dir, tmp_path, monkeypatch):
    """Guards defect 1 of the DP review: resume reads the run's stored secret back (a fresh draw
    would give other noise and batches, and the exports would differ)."""
    reset = _os_bits(monkeypatch)
    config = tiny_config(dataset_dir)
    straight = trainer.train_and_evaluate(config, tmp_path / "straight")
    reset()  # the killed run's first start draws the same secret as the straight one
    assert trainer.train_and_evaluate(config, tmp_path / "killed", interrupt_at_step=5) is None
    # Not resumed as if it were another run: a changed setting is named, a new start too.
    other = config.copy_and_resolve_references()
    other.learning_rate *= 2
    other.init_from = str(tmp_path / "straight" / "export")
    assert not trainer.can_resume(other, tmp_path / "killed") and trainer.can_resume(
        config, tmp_path / "killed"
    )
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
        config.dp.insecure_fixed_seed = True  # the same noise for both methods
        outs[method] = trainer.train_and_evaluate(config, tmp_path / method)
    assert outs["layerwise"]["mse"] == pytest.approx(outs["autodiff"]["mse"], rel=1e-4)


def test_wrong_resolution_is_a_clear_error(dataset_dir, tmp_path):
    config = tiny_config(dataset_dir)
    config.data.height, config.data.width = 240, 320
    with pytest.raises(ValueError, match=r"frames of shape \(48, 64, 3\).*wants \(240, 320, 3\)"):
        trainer.train_and_evaluate(config, tmp_path)


@pytest.mark.slow  # FAST=1 lane under 3 min (BUILD_NOTES, tests); CI runs it
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


def _scalar_tags(path):
    """Scalar tags of a TensorBoard event file, read as TFRecords (no TensorBoard installed)."""
    from tensorboardX.proto import event_pb2

    data, tags, pos = path.read_bytes(), set(), 0
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 8], "little")
        event = event_pb2.Event.FromString(data[pos + 12 : pos + 12 + length])
        tags |= {v.tag for v in event.summary.value}
        pos += 16 + length
    return tags


def _text_of(directory):
    """Every file under ``directory`` as bytes, joined (for searching a secret in it)."""
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


@pytest.mark.slow
def test_noise_and_batches_come_from_a_secret_that_is_never_published(dataset_dir, tmp_path):
    """Guards defect 1: with a public seed anyone could replay every noise draw. Two private runs
    of one config draw different noise; the secret sits only in the checkpoint directory (0600),
    and neither its words nor anything derived from them is in run_spec, metrics, TensorBoard or
    the export."""
    config = tiny_config(dataset_dir)
    config.schedule.max_steps = 2
    for name in ("a", "b"):
        trainer.train_and_evaluate(config, tmp_path / name)
    a, b = ((tmp_path / n / "export" / "decoder.msgpack").read_bytes() for n in "ab")
    assert a != b  # same config, same public seed: different noise
    path = tmp_path / "a" / "checkpoints" / run_secret.SECRET_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    words = json.loads(path.read_text())["words"]
    assert len(words) == 4 and len(set(words)) > 1
    published = b"".join(_text_of(tmp_path / "a" / d) for d in ("export", "tensorboard")) + b"".join(
        (tmp_path / "a" / f).read_bytes() for f in ("metrics.json", "run_spec.json")
    )
    for word in words:
        assert str(word).encode() not in published
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert metrics["randomness"].startswith("secret") and metrics["insecure_fixed_seed"] is False
    # The escape hatch: reproducible, and loudly marked.
    config.dp.insecure_fixed_seed = True
    runs = [trainer.train_and_evaluate(config, tmp_path / f"fixed{i}") for i in range(2)]
    c, d = ((tmp_path / f"fixed{i}" / "export" / "decoder.msgpack").read_bytes() for i in range(2))
    assert c == d and runs[0]["insecure_fixed_seed"] is True and "INSECURE" in runs[0]["randomness"]
    assert not (tmp_path / "fixed0" / "checkpoints" / run_secret.SECRET_FILE).exists()


@pytest.mark.slow  # FAST=1 lane under 3 min (BUILD_NOTES, tests); CI runs it
def test_private_runs_publish_no_unnoised_training_statistics(dataset_dir, tmp_path):
    """Guards defect 5: loss, realised batch size, clipped fraction and non-finite counts of the
    training batches are un-noised statistics of private data. A private run's TensorBoard holds
    only the noisy gradient norm (and validation); its metrics carry no count of training units
    beyond N. A non-private run still logs them (and says its TensorBoard is private)."""

    def tags(workdir):
        return {tag for f in (workdir / "tensorboard").iterdir() for tag in _scalar_tags(f)}

    config = tiny_config(dataset_dir)
    config.schedule.max_steps = 2
    private = trainer.train_and_evaluate(config, tmp_path / "dp")
    assert {t for t in tags(tmp_path / "dp") if t.startswith("train/")} == {"train/grad_norm"}
    assert private["nonfinite_train_units_logged"] is None
    assert "NOT covered" in private["tensorboard"]
    config = tiny_config(dataset_dir, optimizer="adam")
    config.schedule.max_steps = 2
    plain = trainer.train_and_evaluate(config, tmp_path / "adam")
    assert {"train/loss", "train/units", "train/nonfinite"} <= tags(tmp_path / "adam")
    assert plain["tensorboard"].startswith("PRIVATE")


def test_an_expected_batch_larger_than_the_data_is_refused_before_training(dataset_dir, tmp_path):
    """Guards defect 6: q = min(1, B/N) in the sampler but B/N in the report crashed after
    training. Now the plan refuses B > N before anything runs, naming both numbers."""
    config = tiny_config(dataset_dir)
    config.dp.expected_batch_size = 100_000
    with pytest.raises(ValueError, match=r"expected batch size 100000.0 must be in \(0, \d+\]"):
        trainer.train_and_evaluate(config, tmp_path)
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "metrics.json").exists()


@pytest.mark.slow  # FAST=1 lane under 3 min (BUILD_NOTES, tests); CI runs it
def test_a_delta_of_one_over_n_or_more_is_refused(dataset_dir, tmp_path):
    """Guards defect 10: delta >= 1/N allows publishing a random unit in the clear."""
    config = tiny_config(dataset_dir)
    config.dp.delta = 0.5
    with pytest.raises(ValueError, match=r"delta 0.5 >= 1/N"):
        trainer.train_and_evaluate(config, tmp_path)
    config.dp.allow_large_delta = True
    config.schedule.max_steps = 1
    assert trainer.train_and_evaluate(config, tmp_path)["delta"] == 0.5


def test_audit_canaries_are_training_units_and_the_audit_sits_beside_the_accountant(dataset_dir, tmp_path):
    config = tiny_config(dataset_dir)
    config.audit.canaries = 40
    saved = trainer.train_and_evaluate(config, tmp_path)
    a = saved["audit"]
    splits, _ = autoencoder_data.split_units(
        dataset_dir, source_split="train", videos_per_class=0, unit="frame", frames_per_video=1,
        fractions=(0.7, 0.15, 0.15), seed=0,
    )  # fmt: skip
    n = len(splits["train"]) + a["canaries_included"]
    assert saved["train_units"] == n and 5 <= a["canaries_included"] <= 35  # coins of 1/2 each
    # The accountant counted the canaries: dp_accounting at E / N with N including them.
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(4 / n, dp_accounting.GaussianDpEvent(1.0)), 6
    )
    pld = dp_accounting.pld.PLDAccountant(value_discretization_interval=1e-4)
    pld.compose(event)
    assert saved["epsilon_pld"] == pytest.approx(pld.get_epsilon(saved["delta"]), rel=1e-3)
    assert a["canaries"] == 40 and a["guesses"] == 8 and a["delta"] == saved["delta"]
    assert a["epsilon_upper_bound"] == saved["epsilon_pld"]
    assert 0 <= a["epsilon_lower_bound"] <= a["epsilon_upper_bound"]  # 6 noisy steps: no real signal
