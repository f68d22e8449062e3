r"""The paper's autoencoder, trained with DP-SGD / DP-Adam / DP-Adagrad or plain Adam.

  python -m launch.train_autoencoder --config=configs/autoencoder.py:optimizer=dpadam \
      --config.data.dataset_dir=/data/tfds/ucf_crime2local/default/1.0.0 --workdir=runs/ae_dpadam

On a 2-core CPU (120x160, small batches, a few epochs):

  python -m launch.train_autoencoder \
      --config=configs/autoencoder.py:optimizer=dpadam,runlocal=True \
      --config.data.dataset_dir=runs/demo/data/ucf_crime2local/runlocal/1.0.0 --workdir=runs/ae

``arg`` picks structure: ``optimizer`` (adam | dpsgd | dpadam | dpadagrad) and
``runlocal``. Single values go through overrides, e.g.
``--config.dp.noise_multiplier=0.5``.
"""

import ml_collections

from configs import config_args

OPTIMIZERS = ("adam", "dpsgd", "dpadam", "dpadagrad")


def get_config(arg=None):
    args = config_args.parse(arg, {"optimizer", "runlocal"}, "optimizer=..., runlocal=True")
    optimizer = args.get("optimizer", "dpadam")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    runlocal = config_args.is_true(args.get("runlocal", "False"))

    config = ml_collections.ConfigDict()
    config.seed = 0
    config.optimizer = optimizer
    config.learning_rate = 1e-5  # the paper's
    config.dtype = "float32"  # compute dtype: float32 | bfloat16
    config.model_features = (240, 64, 16)  # the paper's encoder; the decoder mirrors it
    # How DP per-example gradients are computed: "layerwise" (one batched backward pass for
    # the layer-output gradients, then one matrix product per layer for the weights; ~9x faster
    # than vmap on CPU, and the only one correct on a sharded batch) or "autodiff"
    # (jax.vmap(jax.grad): the reference).
    config.grad_method = "layerwise"
    # The non-private step: "autodiff" (jax.grad; with tap_conv's kernel gradients the faster
    # one: 1.23 s vs 1.37 s at 120x160, batch 8) or "layerwise" (the DP contraction, summed).
    config.plain_grad_method = "autodiff"
    # An export to start from instead of random weights. Under DP it must say it saw public data
    # only (ppvad_jax.training.public_pretrain writes such exports), or the trainer refuses it.
    config.init_from = ""

    config.data = ml_collections.ConfigDict()
    config.data.dataset_dir = ""  # a prepared ucf_crime2local dataset (launch.prepare_data)
    config.data.source_split = "train"
    config.data.videos_per_class = 1  # the paper: one video per class; 0 = every video
    config.data.fractions = (0.7, 0.15, 0.15)
    config.data.height = 240
    config.data.width = 320

    # Audit (training.audit_canaries, privacy.audit): m canary frames, each in the training set
    # with probability 1/2, scored after training: an empirical lower bound on epsilon beside the
    # accountant's upper bound. 0: no audit (the canaries change the training set).
    config.audit = ml_collections.ConfigDict()
    config.audit.canaries = 0
    config.audit.guess_fraction = 0.1  # guesses "in" and "out" each on this fraction of canaries
    config.audit.confidence = 0.95
    config.audit.delta = 1e-5  # for a non-private run only; a DP run is audited at its own delta
    config.dp = ml_collections.ConfigDict()
    config.dp.noise_multiplier = 1.0
    # Per-example gradient norms of this autoencoder's MSE loss are about 1e-3 to 1e-2 (measured
    # at initialisation and during training): C = 1 would clip nothing and bury the signal
    # under noise 100x larger than it. Noise std is noise_multiplier * C.
    config.dp.l2_clip_norm = 0.01
    config.dp.expected_batch_size = 16  # q = expected_batch_size / number of units
    config.dp.microbatch_size = 8  # per-example gradients held at once (memory bound)
    config.dp.unit = "frame"  # unit of privacy: "frame" or "video"
    config.dp.frames_per_video = 8  # frames standing for one video when unit="video"
    config.dp.delta = 0.0  # 0: 10^-k just below 1/N; a delta >= 1/N is refused unless allowed
    config.dp.allow_large_delta = False
    # Noise and batches from a secret drawn from the OS, kept in WORKDIR/checkpoints. True: from
    # config.seed instead, so anyone with the seed can replay the noise (tests, reproducible
    # research only; metrics.json says so).
    config.dp.insecure_fixed_seed = False
    config.dp.batch_bucket = 0  # Poisson batches are padded to multiples of this; 0: half the expected batch

    config.schedule = ml_collections.ConfigDict()
    config.schedule.max_epochs = 50
    config.schedule.max_steps = 0  # 0: no limit beyond max_epochs
    config.schedule.patience_epochs = 5  # stop when validation loss has not improved for this many
    config.schedule.block_frames = 50  # evaluate SSIM/PSNR every block of this many frames
    config.schedule.quality_patience_blocks = 6  # stop when neither improved for this many blocks; 0: off
    config.schedule.quality_frames = 16  # validation frames used for the per-block SSIM/PSNR
    config.schedule.eval_batch_size = 16
    config.schedule.checkpoint_every_steps = 50
    config.schedule.log_every_steps = 10

    if runlocal:
        config.data.height, config.data.width = 120, 160
        # Narrower than the paper's (240, 64, 16), same 15x20x16 latent: about a quarter of the
        # per-example cost on a CPU (0.3 s against 1.1 s per plain step of 8), so a demo's few
        # minutes buy some learning (BUILD_NOTES.md, "Demo autoencoder").
        config.model_features = (64, 32, 16)
        config.data.videos_per_class = 0
        config.dp.expected_batch_size = 8
        config.dp.microbatch_size = 4
        config.dp.batch_bucket = 8  # two shapes (8, 16): fewer CPU compiles, some padding
        config.learning_rate = 1e-3  # 1e-5 learns nothing in a few CPU minutes
        config.schedule.max_epochs = 3
        config.schedule.patience_epochs = 2
        config.schedule.quality_patience_blocks = 0
        config.schedule.quality_frames = 8
        config.schedule.eval_batch_size = 8
        config.schedule.checkpoint_every_steps = 20
    return config
