"""Stage 4: the DP-Adam autoencoder, started from Adam on public images (no privacy cost)."""

import json

from ppvad_jax.pipelines.demo import outputs
from ppvad_jax.training import autoencoder as ae_trainer
from ppvad_jax.training import public_pretrain


def public_start(config, workdir, ae):
    """The public-pretraining export a DP run of ``ae`` starts from ('' when ``ae_pretrain_steps`` is 0)."""
    if not config.ae_pretrain_steps:
        return ""
    out = workdir / "autoencoder_public"
    steps = config.ae_pretrain_steps
    print(f"      public pretraining: {steps} Adam steps on scikit-image's sample images -> {out}")
    public_pretrain.pretrain(
        out,
        height=ae.data.height,
        width=ae.data.width,
        features=tuple(ae.model_features),
        steps=steps,
    )
    return str(out)


def autoencoder_config(config, workdir, dataset_dir):
    """``config.base.autoencoder`` (runlocal: 120x160, CPU-sized) with the demo's settings."""
    ae = outputs.fresh(config.base.autoencoder)
    ae.data.dataset_dir = str(dataset_dir)
    ae.init_from = public_start(config, workdir, ae)
    ae.dp.noise_multiplier = config.noise_multiplier
    ae.schedule.max_steps = config.ae_steps
    return ae


def train_autoencoder(config, workdir, dataset_dir):
    """A DP-Adam autoencoder on the world's training frames; reused when it already ran its steps."""
    ae = autoencoder_config(config, workdir, dataset_dir)
    ae_dir = workdir / "autoencoder_dpadam"
    metrics_path = ae_dir / "metrics.json"
    if not ae_trainer.can_resume(ae, ae_dir):
        # An autoencoder of an older demo (another start, widths or dataset): kept, not resumed
        # into the new one; the classifier built on it goes with it.
        outputs.move_aside(ae_dir)
        for name in outputs.BUILT_ON_THE_AUTOENCODER:
            outputs.move_aside(workdir / name)
    elif metrics_path.exists() and json.loads(metrics_path.read_text())["steps"] >= config.ae_steps:
        print(f"[4/6] autoencoder: reusing {ae_dir}")
        return outputs.Autoencoder(ae_dir, json.loads(metrics_path.read_text()))
    print(f"[4/6] autoencoder: DP-Adam, {config.ae_steps} steps at 120x160 -> {ae_dir}")
    metrics = ae_trainer.train_and_evaluate(ae, ae_dir)
    return outputs.Autoencoder(ae_dir, json.loads(metrics_path.read_text()) if metrics else None)
