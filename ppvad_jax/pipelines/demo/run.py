"""The demo from a config: every stage in order, then the report (see the package docstring)."""

import dataclasses
import pathlib
import time

import jax

from ppvad_jax.data import prepare
from ppvad_jax.pipelines.demo import autoencoder, classifier, data, frontier, outputs, report, sweep
from ppvad_jax.pipelines.demo import live as live_site
from ppvad_jax.pipelines.sweep import grid


@dataclasses.dataclass(frozen=True)
class Stages:
    """What the stages returned; a skipped stage is None."""

    world: outputs.World
    summary: dict  # the dataset's prepare summary
    pictures: outputs.Pictures
    autoencoder: outputs.Autoencoder | None
    classifier: outputs.Classifier | None
    frontier: outputs.Frontier | None
    sweep: outputs.Sweep | None
    live: live_site.Live | None = None


def run_stages(config, workdir):
    world = data.make_world(config, workdir)
    summary = data.build_dataset(config, workdir, world.root)
    dataset_dir = summary["dataset_dir"]
    pictures = data.pictures_and_baseline(workdir, dataset_dir)
    ae = autoencoder.train_autoencoder(config, workdir, dataset_dir) if config.ae_steps else None
    cls = front = None
    if config.classifier:
        cls = classifier.train_classifier(config, workdir, dataset_dir, ae.workdir if ae else None)
    if config.frontier and cls is not None and ae is not None:
        front = frontier.run(config, workdir, dataset_dir, ae.workdir, cls)
    swept = None
    if sweep.noise_levels(config) and grid.names(config.sweep_optimizers):
        swept = sweep.noise_sweep(config, workdir, world.root)
    site = None
    if config.live_cameras and cls is not None and ae is not None:
        site = live_site.run(config, workdir, world, ae.workdir, cls.workdir)
    return Stages(world, summary, pictures, ae, cls, front, swept, site)


def run(config):
    """Runs the demo of ``configs/demo.py`` in ``config.workdir``; returns the report's path.

    Raises ``data.errors.DataError`` when the world's videos or annotations cannot be read.
    """
    prepare.quiet_tfds()
    start = time.perf_counter()
    workdir = pathlib.Path(config.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    # Compiled programs persist across stages, sweep points and reruns (the sweep's points of one
    # optimizer share one program: sigma is an argument of the DP step).
    jax.config.update("jax_compilation_cache_dir", str(workdir / "xla_cache"))
    stages = run_stages(config, workdir)
    seconds = time.perf_counter() - start
    path = report.write_report(config, workdir, stages, seconds)
    report.write_summary(workdir, stages, seconds)
    if stages.live is not None:
        site, port = stages.live, config.console_port
        print(f"\noperator console on the live site's store ({site.frames} frames, {site.alerts} alert(s)):")
        print(
            f"  {site.console_command(port)}\n  then https://localhost:{port}/ (accounts: {site.credentials})"
        )
        if config.serve_console:
            print(f"report: {path}")
            live_site.serve_console(
                config, site, stages.world, stages.autoencoder.workdir, stages.classifier.workdir
            )
    return path
