"""Stage 6: a small noise sweep, epsilon next to image quality and the privacy attacks."""

from ppvad_jax.pipelines.demo import autoencoder, data, outputs
from ppvad_jax.pipelines.sweep import grid, run, store

SWEEP_SIZE = (72, 96)  # 4:3, multiples of 8, 36% of runlocal's pixels: fits the demo's 15 minutes


def noise_levels(config):
    """The sweep's noise multipliers as given (``--config.sweep_noise_multipliers=`` gives none)."""
    return grid.names(config.sweep_noise_multipliers)


def sweep_config(config, workdir, dataset_dir):
    """``config.base.sweep`` at ``SWEEP_SIZE`` with the demo's optimizers, noise levels and steps."""
    sweep = outputs.fresh(config.base.sweep)
    sweep.optimizers = tuple(grid.names(config.sweep_optimizers))
    sweep.noise_multipliers = tuple(float(s) for s in noise_levels(config))
    ae = sweep.autoencoder
    ae.data.dataset_dir = dataset_dir
    ae.data.height, ae.data.width = SWEEP_SIZE
    ae.schedule.max_steps = config.sweep_steps
    ae.schedule.checkpoint_every_steps = config.sweep_steps
    # The same public start at every point (fully convolutional: the demo's export fits this size).
    ae.init_from = autoencoder.public_start(config, workdir, ae)
    return sweep


def noise_sweep(config, workdir, root):
    """The sweep stage's optimizers across its noise levels, one point at a time in this process."""
    summary = data.prepare_dataset(config, workdir, root, size=SWEEP_SIZE)
    sweep = sweep_config(config, workdir, summary["dataset_dir"])
    sweep_dir = workdir / "sweep"
    print(
        f"[6/6] noise sweep: {', '.join(sweep.optimizers)} x sigma {', '.join(noise_levels(config))}, "
        f"{config.sweep_steps} steps each at {SWEEP_SIZE[0]}x{SWEEP_SIZE[1]} -> {sweep_dir}"
    )
    try:
        result = run.run_sweep(sweep, sweep_dir, parallel=1)
    except store.StalePointError:  # points of an older demo (other widths or start): keep them, redo
        outputs.move_aside(sweep_dir)
        result = run.run_sweep(sweep, sweep_dir, parallel=1)
    return outputs.Sweep(sweep_dir, result)
