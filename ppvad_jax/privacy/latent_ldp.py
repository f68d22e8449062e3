"""Optional local DP at the camera: the Gaussian mechanism on each frame's latent.

The DP training of the autoencoder protects the *training* frames; the latents
a camera sends at serving time are not covered by it. This module adds a
per-frame guarantee for what is sent: clip the latent z to L2 norm C, add
N(0, (sigma C)^2) noise to every coordinate, send that. Off by default
(``LatentLdpConfig(enabled=False)``).

Adjacency is local DP's: any frame against any other frame (replace-one, the
neighbour is a whole different frame). Two clipped latents differ by at most
the diameter of the set they are clipped into, the L2 sensitivity:

- signed latents in the ball of radius C: 2C;
- ``nonnegative=True`` (the default): latents are first projected on z >= 0,
  a no-op for this project's encoder, whose latent ends in a ReLU
  (``models/autoencoder.py``). Two vectors with z . z' >= 0 and norms <= C are
  at most sqrt(2) C apart, so the same noise buys a 1.41x smaller sensitivity.

So the release is the Gaussian mechanism with noise / sensitivity
``accounted_noise_multiplier = sigma / 2`` (signed) or ``sigma / sqrt(2)``.
Epsilon is computed by ``dp_accounting`` for one ``GaussianDpEvent`` with that
multiplier (for a Gaussian without sampling the privacy curve depends only on
sensitivity / noise, so add/remove with sensitivity 1 is the same curve):
PLD (pessimistic, discretization 1e-3; the headline, within 1e-3 of the
exact analytic Gaussian mechanism of Balle and Wang 2018, which the tests
check) and RDP (looser, also reported). ``frames=k`` composes k releases about
the same content (a person in view for k frames): the noise multiplier of k
composed Gaussians is sigma / sqrt(k).

Cost, stated plainly: the latent has d = H/8 x W/8 x 16 coordinates (19,200 at
240x320), and the noise's norm is about sigma C sqrt(d) against a signal of at
most C: 139 sigma times the signal at 240x320. Any single-digit per-frame
epsilon (sigma of order 1) buries the latent; expect reconstructions near the
decoder's response to noise. The launcher ``launch.privacy_report`` measures
it (SSIM, PSNR, faces) next to the epsilon.

Keys: use a fresh key per frame (e.g. ``fold_in(base_key, frame_index)``).
Reusing one noise draw for two frames lets their difference cancel it.
"""

import dataclasses
import functools
import math

import dp_accounting
import jax
import jax.numpy as jnp

from ppvad_jax.privacy import accounting

# One Gaussian, no sampling: 1e-3 moves epsilon by < 1e-6 relative against 1e-4 (measured) at 1/10 the cost.
PLD_DISCRETIZATION = 1e-3


@dataclasses.dataclass(frozen=True)
class LatentLdpConfig:
    """Per-frame Gaussian mechanism on the latent; hashable, so it is a static jit argument.

    ``l2_bound`` C is in latent units: pick it near the latents' typical norm
    (``launch.privacy_report`` prints their quantiles); a smaller C clips the
    signal, a larger one buys nothing, since the noise scales with C.
    """

    enabled: bool = False
    l2_bound: float = 1.0
    noise_multiplier: float = 1.0  # sigma: noise std / l2_bound
    nonnegative: bool = True  # project on z >= 0 first (sensitivity sqrt(2) C instead of 2C)
    delta: float = 1e-5

    def __post_init__(self):
        if self.l2_bound <= 0:
            raise ValueError(f"l2_bound must be > 0, got {self.l2_bound}")
        if self.noise_multiplier < 0:
            raise ValueError(f"noise_multiplier must be >= 0, got {self.noise_multiplier}")
        if not 0 < self.delta < 1:
            raise ValueError(f"delta must be in (0, 1), got {self.delta}")


# --- The mechanism --------------------------------------------------------------------------------


def clip_latent(latent: jax.Array, *, l2_bound: float, nonnegative: bool = True) -> jax.Array:
    """Each frame's latent (leading axis) projected on z >= 0 (if asked) and clipped to L2 norm <= C."""
    z = latent.astype(jnp.float32)
    if nonnegative:
        z = jnp.maximum(z, 0.0)
    axes = tuple(range(1, z.ndim))
    norms = jnp.sqrt(jnp.sum(jnp.square(z), axis=axes, keepdims=True))
    # A zero latent stays zero (its scale is 1); the max avoids 0/0.
    return z * jnp.minimum(1.0, l2_bound / jnp.maximum(norms, 1e-30))


@functools.partial(jax.jit, static_argnames=("config",))
def privatize_latent(latent: jax.Array, key: jax.Array, config: LatentLdpConfig) -> jax.Array:
    """The released latents: ``latent`` unchanged when disabled, else clip + Gaussian noise.

    Args:
      latent: [N, ...] one latent per frame (e.g. [N, h, w, 16]).
      key: a PRNG key used for these N frames only (module docstring).
      config: ``LatentLdpConfig`` (static).
    """
    if latent.ndim < 2:
        raise ValueError(f"expected latents [N, ...] with a leading frame axis, got shape {latent.shape}")
    if not config.enabled:
        return latent
    clipped = clip_latent(latent, l2_bound=config.l2_bound, nonnegative=config.nonnegative)
    noise = jax.random.normal(key, clipped.shape, jnp.float32) * (config.noise_multiplier * config.l2_bound)
    return (clipped + noise).astype(latent.dtype)


# --- Accounting -----------------------------------------------------------------------------------


def sensitivity(config: LatentLdpConfig) -> float:
    """L2 distance between any two clipped latents (module docstring)."""
    return config.l2_bound * (math.sqrt(2.0) if config.nonnegative else 2.0)


def accounted_noise_multiplier(config: LatentLdpConfig) -> float:
    """Noise std / sensitivity: what the Gaussian accountant is given."""
    return config.noise_multiplier * config.l2_bound / sensitivity(config)


def _event(accounted_sigma, frames):
    return dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(accounted_sigma), frames)


def epsilon(config: LatentLdpConfig, *, frames: int = 1) -> dict:
    """Epsilon at ``config.delta`` of releasing ``frames`` latents about the same content.

    Returns:
      A JSON-able dict; ``epsilon_pld`` is the headline. Infinite when sigma is 0.
    """
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    sigma = accounted_noise_multiplier(config)
    out = {
        "enabled": config.enabled,
        "noise_multiplier": config.noise_multiplier,
        "l2_bound": config.l2_bound,
        "nonnegative": config.nonnegative,
        "sensitivity": sensitivity(config),
        "accounted_noise_multiplier": sigma,
        "delta": config.delta,
        "frames_composed": frames,
        "unit_of_privacy": "frame (local DP: any frame vs any other frame)",
        "accountants": "dp_accounting: Gaussian mechanism, PLD (pessimistic, discretization "
        f"{PLD_DISCRETIZATION:g}) and RDP",
    }
    if sigma == 0:
        return {**out, "epsilon_pld": math.inf, "epsilon_rdp": math.inf, "rdp_order": None}
    pld = dp_accounting.pld.PLDAccountant(value_discretization_interval=PLD_DISCRETIZATION)
    pld.compose(_event(sigma, frames))
    rdp = dp_accounting.rdp.RdpAccountant(list(accounting.RDP_ORDERS))
    rdp.compose(_event(sigma, frames))
    eps_rdp, order = rdp.get_epsilon_and_optimal_order(config.delta)
    return {
        **out,
        "epsilon_pld": float(pld.get_epsilon(config.delta)),
        "epsilon_rdp": float(eps_rdp),
        "rdp_order": float(order),
    }


def calibrate_noise_multiplier(
    *,
    target_epsilon: float,
    delta: float = 1e-5,
    frames: int = 1,
    nonnegative: bool = True,
    tol: float = 1e-4,
) -> float:
    """Smallest sigma (noise std / C) whose PLD epsilon at ``delta`` is at most ``target_epsilon``.

    Independent of C: the noise scales with it.
    """
    if target_epsilon <= 0:
        raise ValueError(f"target_epsilon must be > 0, got {target_epsilon}")
    ratio = math.sqrt(2.0) if nonnegative else 2.0  # sensitivity / C

    def make_accountant():
        return dp_accounting.pld.PLDAccountant(value_discretization_interval=PLD_DISCRETIZATION)

    accounted = dp_accounting.calibrate_dp_mechanism(
        make_accountant,
        lambda s: _event(s, frames),
        target_epsilon,
        delta,
        dp_accounting.LowerEndpointAndGuess(0.0, 1.0),
        tol=tol,
    )
    return float(accounted) * ratio
