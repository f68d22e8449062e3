"""Run in its own process with 8 fake CPU devices (the device count is fixed at JAX start-up):

  XLA_FLAGS=--xla_force_host_platform_device_count=8 python tests/multidevice_dp_check.py

Prints one JSON object that tests/test_dp_multidevice.py checks.
"""

import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

from configs import autoencoder as ae_config  # noqa: E402
from configs import classifier as classifier_config  # noqa: E402
from ppvad_jax.models import autoencoder  # noqa: E402
from ppvad_jax.privacy import noise  # noqa: E402
from ppvad_jax.training import autoencoder as trainer  # noqa: E402
from ppvad_jax.training import classifier, common, optimizers  # noqa: E402

NOISE = 0.7


def one_update(num_devices, microbatch_size, grad_method="layerwise"):
    config = ae_config.get_config("optimizer=dpsgd")
    config.dp.microbatch_size = microbatch_size
    config.dp.noise_multiplier = NOISE
    config.dp.l2_clip_norm = 0.01
    config.grad_method = grad_method
    mesh = Mesh(np.array(jax.devices()[:num_devices]), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    model = autoencoder.Autoencoder(features=(8, 4, 2))
    tx = optimizers.make("dpsgd", 1.0)  # lr 1: the update is the privatised gradient itself
    params = model.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)))["params"]
    before = jax.device_get(params)  # the step donates its input state
    state = common.TrainState(jnp.int32(3), params, tx.init(params))
    config.dp.expected_batch_size = 12
    plan = trainer.make_plan(config, 1000)
    step = trainer.make_train_step(
        model, tx, config, private=True, plan=plan, noise_key=jax.random.key(42), mesh=mesh
    )
    frames = np.random.default_rng(0).integers(0, 256, (16, 16, 16, 3), dtype=np.uint8)
    is_padding = np.arange(16) >= 13
    data = NamedSharding(mesh, P("data"))
    state = jax.device_put(state, NamedSharding(mesh, P()))
    new_state, metrics = step(state, common.to_global(frames, data), common.to_global(is_padding, data))
    update = jax.tree.map(
        lambda a, b: np.asarray(b) - np.asarray(a), before, jax.device_get(new_state.params)
    )
    return update, jax.device_get(metrics)


def max_rel_diff(a, b):
    return max(
        float(np.abs(x - y).max() / (np.abs(y).max() + 1e-12))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def main():
    global NOISE
    assert jax.device_count() == 8, jax.device_count()
    out = {"devices": jax.device_count()}
    # Without noise, so that the clipped sums themselves are compared.
    NOISE = 0.0
    reference, ref_metrics = one_update(1, 16)
    out["units"] = int(ref_metrics["units"])
    for devices, micro in ((8, 16), (8, 8), (1, 4)):
        update, _ = one_update(devices, micro)
        out[f"rel_diff_d{devices}_m{micro}"] = max_rel_diff(update, reference)
    update, _ = one_update(1, 4, grad_method="autodiff")
    out["rel_diff_d1_m4_autodiff"] = max_rel_diff(update, reference)
    # vmap(grad) per-example gradients on a sharded batch (wrong for lax convolutions, see
    # tests/repro_vmap_sharded_conv.py; the autoencoder's tap_conv avoids the bug).
    update, _ = one_update(8, 8, grad_method="autodiff")
    out["rel_diff_d8_m8_autodiff"] = max_rel_diff(update, reference)
    # The classifier's private phase 2 (vmap(grad) through lax convolutions) is refused here.
    config = classifier_config.get_config("variant=2s_bag,optimizer=dpadam,runlocal=True")
    try:
        classifier.train_and_evaluate(config, "/nonexistent")
        out["classifier_dp_phase2_on_8_devices"] = "accepted"
    except ValueError as e:
        out["classifier_dp_phase2_on_8_devices"] = str(e)
    # With noise: the same keys give the same update on 1 and 8 devices.
    NOISE = 0.7
    noisy_reference, _ = one_update(1, 16)
    noisy_eight, _ = one_update(8, 8)
    out["rel_diff_noisy_d8_m8"] = max_rel_diff(noisy_eight, noisy_reference)
    out["noise_changes_the_update"] = max_rel_diff(noisy_reference, reference) > 1e-2

    # Noise drawn under an 8-device mesh: one draw of std sigma * C / B, identical to 1 device's.
    zeros = {"w": jnp.zeros((200_000,))}
    for devices in (1, 8):
        mesh = Mesh(np.array(jax.devices()[:devices]), ("data",))
        fn = jax.jit(
            lambda g: noise.privatize(
                g, jax.random.key(7), noise_multiplier=0.8, l2_clip_norm=2.0, expected_batch_size=10.0
            ),
            in_shardings=NamedSharding(mesh, P()),
            out_shardings=NamedSharding(mesh, P()),
        )
        noisy = np.asarray(fn(zeros)["w"])
        out[f"noise_std_d{devices}"] = float(noisy.std())
        out.setdefault("noise", []).append(noisy[:5].tolist())
    out["noise_expected_std"] = 0.8 * 2.0 / 10.0
    print(json.dumps(out))


if __name__ == "__main__":
    main()
