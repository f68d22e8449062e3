"""Pieces both trainers share: the train state, the mesh, checkpoints, the masked loss, the report.

One home each, so the autoencoder and the classifier trainers cannot drift apart in how they
shard a batch, save a step or state what their privacy is.
"""

import pathlib

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp

from ppvad_jax.privacy import plan as dp_plan


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: dict
    opt_state: optax.OptState


# --- Mesh and shardings -----------------------------------------------------------------------


def make_mesh():
    """A 1-D ``data`` mesh over every device (all hosts under jax.distributed).

    Auto axis type: XLA propagates shardings through the per-example code, which
    carries no sharding annotations of its own (explicit sharding-in-types would
    ask every reshape inside the model for one).
    """
    return jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))


def to_global(array, sharding):
    """A host numpy array (identical on every host) -> a global jax.Array with ``sharding``."""
    return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


def to_host(array):
    """A global jax.Array -> the whole numpy array on this host. One host: a copy; several: an
    all-gather across processes first (a batch sharded over hosts is not addressable here)."""
    if jax.process_count() > 1 and not array.is_fully_addressable:
        from jax.experimental import multihost_utils  # noqa: PLC0415

        return np.asarray(multihost_utils.process_allgather(array, tiled=True))
    return np.asarray(array)


# --- Losses -----------------------------------------------------------------------------------


def masked_mean(losses, keep):
    """Mean of ``losses`` where ``keep``; 0 when nothing is kept. ``where`` first: a NaN loss
    in a dropped row times 0 would still be NaN."""
    return jnp.sum(jnp.where(keep, losses, 0.0)) / jnp.maximum(keep.sum(), 1)


# --- Checkpoints ------------------------------------------------------------------------------


def checkpoint_manager(directory):
    """Orbax manager keeping the last two steps under ``directory`` (created)."""
    options = ocp.CheckpointManagerOptions(max_to_keep=2, create=True)
    return ocp.CheckpointManager(pathlib.Path(directory).absolute(), options=options)


def save(manager, step, state, meta, *, force=False):
    """Saves a pytree ``state`` and a JSON ``meta`` as ``step`` (``force``: even off the
    manager's save interval, e.g. the last step of a phase)."""
    args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
    manager.save(int(step), args=args, force=force)


def restore(manager, abstract_state, step=None):
    """``(state, meta)`` of ``step`` (default: the latest) into ``abstract_state``'s structure."""
    restored = manager.restore(
        manager.latest_step() if step is None else step,
        args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()),
    )
    return restored.state, restored.meta


# --- What a run's privacy is ------------------------------------------------------------------


def privacy_report(plan, *, steps_run, planned, insecure_seed):
    """``plan.report`` for a private run (``plan`` a ``DpPlan``), or "not private" (``plan`` None)."""
    if plan is None:
        return dp_plan.not_private()
    return plan.report(steps_run=steps_run, planned_steps=planned, insecure_seed=insecure_seed)


def initialize_distributed(coordinator_address=None, num_processes=None, process_id=None):
    """``jax.distributed.initialize`` for a multi-host run. CPU arrays get gloo collectives (XLA's
    CPU backend has no cross-process collectives otherwise; GPUs and TPUs ignore the setting).
    Unset arguments are detected from the cluster's environment (Slurm, Open MPI, TPU pods)."""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id
    )


class _NoWriter:
    """What hosts other than process 0 log to: nothing (one event file per run, not per host)."""

    def add_scalar(self, *args, **kwargs):
        pass

    def close(self):
        pass


def summary_writer(logdir):
    """A TensorBoard writer on process 0; on the other hosts of a multi-host run, a no-op."""
    import tensorboardX  # noqa: PLC0415

    return tensorboardX.SummaryWriter(str(logdir)) if jax.process_index() == 0 else _NoWriter()
