import json
import pathlib
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ppvad_jax.models import autoencoder, autoencoder_io
from ppvad_jax.models.phase_conv_transpose import PhaseConvTranspose


@pytest.mark.parametrize("shape", [(2, 5, 7, 3), (1, 6, 8, 2), (1, 1, 1, 4)])
@pytest.mark.parametrize("kernel,stride", [(3, 2), (4, 2), (5, 2), (2, 2), (3, 3)])
def test_phase_conv_transpose_equals_conv_transpose(shape, kernel, stride):
    x = jax.random.normal(jax.random.key(0), shape)
    reference = nn.ConvTranspose(5, (kernel, kernel), strides=(stride, stride), padding="SAME")
    params = reference.init(jax.random.key(1), x)
    ours = PhaseConvTranspose(5, kernel_size=(kernel, kernel), stride=stride)
    np.testing.assert_allclose(ours.apply(params, x), reference.apply(params, x), rtol=1e-5, atol=1e-6)

    # Gradients too, for the parameters and the input: same function, same parameters.
    def grads(model):
        return jax.grad(lambda p, x: jnp.sum(jnp.sin(model.apply(p, x))), argnums=(0, 1))(params, x)

    for a, b in zip(jax.tree.leaves(grads(ours)), jax.tree.leaves(grads(reference)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_paper_shapes_and_parameter_tree():
    model = autoencoder.Autoencoder()
    frames = jnp.zeros((1, 240, 320, 3))
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), frames))["params"]
    latent = jax.eval_shape(
        lambda: model.apply(model.init(jax.random.key(0), frames), frames, method=model.encode)
    )
    assert latent.shape == (1, 30, 40, 16)
    assert [shapes["encoder"][f"conv{i}"]["kernel"].shape[-1] for i in range(3)] == [240, 64, 16]
    assert [shapes["decoder"][f"deconv{i}"]["kernel"].shape[-1] for i in range(3)] == [16, 64, 240]
    assert shapes["decoder"]["out"]["kernel"].shape == (3, 3, 240, 3)


def test_wrong_shapes_are_named():
    model = autoencoder.Autoencoder()
    with pytest.raises(ValueError, match=r"multiples of 8.*\(1, 100, 100, 3\)"):
        model.init(jax.random.key(0), jnp.zeros((1, 100, 100, 3)))
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\]"):
        model.init(jax.random.key(0), jnp.zeros((1, 16, 16, 1)))


def test_exported_halves_reproduce_the_whole(tmp_path):
    model = autoencoder.Autoencoder(features=(12, 8, 4))
    frames = jax.random.uniform(jax.random.key(0), (2, 16, 24, 3))
    params = model.init(jax.random.key(1), frames)["params"]
    autoencoder_io.export(tmp_path, params, height=16, width=24, features=(12, 8, 4))
    encode, spec = autoencoder_io.load_encoder(tmp_path)
    decode, _ = autoencoder_io.load_decoder(tmp_path)
    assert spec["latent_shape"] == [2, 3, 4]
    latent = encode(frames)
    np.testing.assert_allclose(decode(latent), model.apply({"params": params}, frames), rtol=1e-6, atol=1e-6)
    with pytest.raises(FileNotFoundError, match="train an autoencoder"):
        autoencoder_io.load_encoder(tmp_path / "nothing")


def test_an_untrained_export_has_the_paper_shapes_and_says_it_is_untrained(tmp_path):
    """launch.export_random_autoencoder (serving throughput tests): paper-size halves that load
    like a trained export, a spec marked untrained, and sizes the encoder cannot take refused."""
    root = pathlib.Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "launch.export_random_autoencoder", f"--out_dir={tmp_path / 'ae'}"]
    run = subprocess.run(
        [*cmd, "--height=48", "--width=64"], capture_output=True, text=True, cwd=root, timeout=120
    )
    assert run.returncode == 0, run.stderr
    spec = json.loads((tmp_path / "ae" / "spec.json").read_text())
    assert "untrained" in spec and spec["latent_shape"] == [6, 8, autoencoder.ENCODER_FEATURES[-1]]
    decode, _ = autoencoder_io.load_decoder(tmp_path / "ae")
    assert decode(jnp.zeros((1, 6, 8, 16))).shape == (1, 48, 64, 3)
    params = autoencoder_io.random_params(height=48, width=64)
    kernels = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(params) if path[-1].key == "kernel"]
    for k in kernels:  # LeCun normal: std 1/sqrt(fan_in)
        assert abs(float(np.std(k)) * np.sqrt(np.prod(k.shape[:-1])) - 1) < 0.2
    bad = subprocess.run([*cmd, "--height=50"], capture_output=True, text=True, cwd=root, timeout=120)
    assert bad.returncode != 0 and "--height=50 must be a positive multiple of 8" in bad.stderr
