"""K sweep points in one compiled step: the autoencoder's step vmapped over a leading model axis.

Points that share the architecture, the resolution, the optimizer and the expected batch size
(hence the plan's clipping norm and padded batch shape) differ only in what the step already
takes as inputs: the noise multiplier, the noise key and the batch. So ``stacked_step`` runs
``autoencoder.make_step_fn`` under ``jax.vmap`` with every one of those on axis 0:
state ``[K, ...]``, batch ``[K, B_pad, ...]`` (each point's own Poisson batch, padded to the
shared ``B_pad``), padding mask ``[K, B_pad]``, sigma ``[K]``, keys ``[K]``. Each model's
clipping and noise are exactly its own run's (vmap does not mix the model axis), so model k
equals point k trained alone to float tolerance (tests/test_vectorized.py).

One program instead of K: the compile is paid once (on this CPU about as long as one point's),
and the K small steps become one larger one, which keeps more cores busy per dispatch. The
model axis stays on one device here; on several devices ``place`` shards it (models on
different devices) when K divides evenly, else replicates.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from ppvad_jax.training import autoencoder as ae_trainer


def stack(trees):
    """A list of K pytrees of equal structure -> one pytree with a leading axis of K."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def unstack(tree, k):
    """Model ``k`` of a stacked pytree."""
    return jax.tree.map(lambda leaf: leaf[k], tree)


def stacked_step(model, tx, config, *, private, plan):
    """The jitted ``step(states, batches, is_padding, sigmas, keys) -> (states, metrics)`` over a
    leading model axis; the stacked states are donated."""
    step_fn = ae_trainer.make_step_fn(model, tx, config, private=private, plan=plan)
    return jax.jit(jax.vmap(step_fn), donate_argnums=(0,))


def place(tree, mesh=None):
    """Puts a stacked pytree on the devices: its model axis sharded over ``mesh``'s devices when
    they divide it evenly, else replicated; a single device (or no mesh) keeps it whole."""
    if mesh is None or mesh.devices.size == 1:
        return tree
    leaves = jax.tree.leaves(tree)
    k = leaves[0].shape[0]
    spec = P(mesh.axis_names[0]) if k % mesh.devices.size == 0 else P()
    return jax.device_put(tree, NamedSharding(mesh, spec))


def pad_batches(batches, masks):
    """Each point's batch ``[B_k, ...]`` and padding mask ``[B_k]`` padded to the largest B_k
    (padding rows are marked padded, so they count in no sum) and stacked: ``[K, B_pad, ...]``."""
    width = max(len(b) for b in batches)
    out_b, out_m = [], []
    for b, m in zip(batches, masks, strict=True):
        extra = width - len(b)
        out_b.append(np.concatenate([b, np.repeat(b[-1:], extra, axis=0)]) if extra else b)
        out_m.append(np.concatenate([m, np.ones(extra, bool)]) if extra else m)
    return np.stack(out_b), np.stack(out_m)
