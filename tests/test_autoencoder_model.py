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
