"""The secret seed of a private run: noise and batches that nobody can regenerate.

Why. DP-SGD's guarantee assumes the adversary does not know the noise. A noise key derived
from a published seed (``config.seed``, written to ``run_spec.json``) lets anyone with the
code replay every draw: from a public start (``init_from``) the first update then reveals
the clipped gradient sum exactly, and every later one too. The batches are part of the
mechanism as well: Poisson sampling amplifies privacy only while the sample is secret.

What. A private run draws 128 bits from the operating system (``secrets``) on its first
start and keeps them in ``CHECKPOINT_DIR/dp_secret.json`` (mode 0600, created exclusively),
next to the checkpoints they belong to: a resumed run reads them back and draws the same
batches and noise, so resume stays bit-identical. They are never written to ``run_spec.json``,
metrics, TensorBoard, exports or logs (``repr`` hides them). Whoever can read the checkpoint
directory can read the weights before the last noise draw anyway, so it is no weaker a place.

Streams. One run may need several independent samplers and noise sequences (the
classifier's two phases): each is keyed by a stream number, so no two steps of a run ever
share a sampler state or a noise draw.

Cost of the JAX side: JAX's default PRNG (threefry2x32) has a 64-bit key. The noise key is
two words of the secret folded with the other two, so the noise has 64 bits of secret state;
the host-side sampler (numpy ``SeedSequence``) takes all 128.

``insecure_fixed_seed`` (tests, reproducible research) derives the words from ``config.seed``
instead: every draw is then public, and trainers say so loudly in ``metrics.json``.
"""

import dataclasses
import json
import os
import pathlib
import secrets

import jax
import numpy as np

SECRET_FILE = "dp_secret.json"
_WORDS = 4  # 4 x 32 = 128 bits

# What a key is for: folded into the root so two purposes never share a key.
NOISE, DROPOUT = 1, 2


@dataclasses.dataclass(frozen=True, repr=False)
class RunSecret:
    """Seed words of one run. ``insecure`` when derived from a public seed."""

    words: tuple[int, ...]
    insecure: bool

    def __repr__(self):
        return "RunSecret(insecure fixed seed)" if self.insecure else "RunSecret(<secret>)"

    def sampler_entropy(self, stream: int) -> tuple[int, ...]:
        """Entropy for ``np.random.SeedSequence`` of the sampler of ``stream``."""
        return (*self.words, int(stream))

    def jax_key(self, purpose: int, stream: int = 0) -> jax.Array:
        """A JAX key for ``purpose`` (NOISE, DROPOUT) and ``stream``; fold in the step per step."""
        key = jax.random.wrap_key_data(np.asarray(self.words[:2], np.uint32))
        for word in (*self.words[2:], purpose, stream):
            key = jax.random.fold_in(key, word)
        return key


def fixed(seed: int) -> RunSecret:
    """Words from a public seed: what non-private runs and ``insecure_fixed_seed`` use."""
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return RunSecret((0, 0, (seed >> 32) & 0xFFFFFFFF, seed & 0xFFFFFFFF), insecure=True)


def _read(path):
    try:
        words = tuple(int(w) for w in json.loads(path.read_text())["words"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(
            f"{path} is not a readable run secret ({type(e).__name__}): the run's batches and noise "
            "cannot be resumed; move the workdir away to start a new run"
        ) from e
    if len(words) != _WORDS or not all(0 <= w < 2**32 for w in words):
        raise ValueError(f"{path} does not hold {_WORDS} 32-bit words: move the workdir away")
    return RunSecret(words, insecure=False)


def _create(path):
    words = tuple(secrets.randbits(32) for _ in range(_WORDS))
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Created 0600 and exclusively: never world-readable, never two secrets for one run.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"words": list(words), "what": "DP noise and sampling seed; never publish"}, f)
    return RunSecret(words, insecure=False)


def for_run(
    checkpoint_dir: str | os.PathLike,
    *,
    private: bool,
    seed: int,
    insecure_fixed_seed: bool = False,
    fresh: bool,
) -> RunSecret:
    """The run's seed words: secret for a private run, else from ``seed``.

    Args:
      checkpoint_dir: where the run keeps its checkpoints (and so its secret).
      private: whether the run is differentially private.
      seed: the config's public seed (non-private runs and ``insecure_fixed_seed``).
      insecure_fixed_seed: a private run with public randomness (tests, reproducible research).
      fresh: the run starts from step 0 (no checkpoint): a new secret replaces any left behind,
        so two runs never share noise (a sweep's points, or a rerun with other settings);
        otherwise the stored one is read back for a bit-identical resume.
    """
    if not private or insecure_fixed_seed:
        return fixed(seed)
    if jax.process_count() > 1:  # one secret for the whole job: process 0's, sent to the others
        return _shared(checkpoint_dir, fresh=fresh)
    return _local(checkpoint_dir, fresh=fresh)


def _shared(checkpoint_dir, *, fresh):
    """Multi-host: process 0 creates or reads the secret (its file on the shared workdir) and
    broadcasts it over the job's own collectives; no other host touches the file, so two hosts
    can never race to create two secrets for one run."""
    from jax.experimental import multihost_utils  # noqa: PLC0415

    words = np.zeros(_WORDS, np.uint32)
    if jax.process_index() == 0:
        words = np.asarray(_local(checkpoint_dir, fresh=fresh).words, np.uint32)
    words = np.asarray(multihost_utils.broadcast_one_to_all(words))
    return RunSecret(tuple(int(w) for w in words), insecure=False)


def _local(checkpoint_dir, *, fresh):
    path = pathlib.Path(checkpoint_dir) / SECRET_FILE
    if fresh:
        path.unlink(missing_ok=True)
        return _create(path)
    if not path.is_file():
        raise ValueError(
            f"{path} is missing: the checkpoints beside it belong to a private run whose noise and "
            "batches cannot be resumed without it; move the workdir away to start a new run"
        )
    return _read(path)
