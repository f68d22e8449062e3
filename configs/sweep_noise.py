r"""Noise-multiplier sweep of the DP autoencoder: epsilon next to image quality, faces, re-id and MIA.

  python -m launch.sweep --config=configs/sweep_noise.py \
      --config.autoencoder.data.dataset_dir=/data/tfds/ucf_crime2local/default/1.0.0 --workdir=runs/sweep

On a 2-core CPU (120x160, a few steps per point; pick a small grid):

  python -m launch.sweep --config=configs/sweep_noise.py:runlocal=True \
      --config.autoencoder.data.dataset_dir=runs/demo/data/ucf_crime2local/runlocal/1.0.0 \
      --config.optimizers=dpsgd,dpadam --config.noise_multipliers=0.5,1.0 --workdir=runs/sweep \
      --config.autoencoder.init_from=runs/demo/autoencoder_public [--parallel=2]

``init_from``: a public-pretraining export (``launch.pretrain_autoencoder``; the demo
writes one). From random weights a few CPU steps per point reconstruct a grey frame,
so the privacy columns would measure the grey, not the noise (BUILD_NOTES.md).

The grid is ``optimizers`` x ``noise_multipliers``; ``adam`` (not private) runs
once, without noise. Every other field of a point's autoencoder is
``config.autoencoder`` (the same fields as ``configs/autoencoder.py``, e.g.
``--config.autoencoder.schedule.max_steps=50``); the sweep sets only
``optimizer`` and ``dp.noise_multiplier`` per point. Latent local DP is off
unless ``--config.latent_ldp.noise_multipliers=0.5,2.0`` lists levels: each
level adds a row per point (the same trained autoencoder, its latents clipped
and noised at the camera). ``--config.classifier.enabled=True`` also trains and
scores the anomaly classifier on every point's reconstructions (costly: the
classifier's own config is ``config.classifier.config``, ``configs/classifier.py``).

``arg``: ``runlocal`` only.
"""

import ml_collections

from configs import autoencoder as autoencoder_config
from configs import classifier as classifier_config
from configs import config_args


def get_config(arg=None):
    runlocal = config_args.is_true(
        config_args.parse(arg, {"runlocal"}, "runlocal=True").get("runlocal", "False")
    )
    local = f"runlocal={runlocal}"

    config = ml_collections.ConfigDict()
    config.optimizers = autoencoder_config.OPTIMIZERS  # adam | dpsgd | dpadam | dpadagrad
    config.noise_multipliers = (0.1, 0.25, 0.5, 0.75, 1.0)
    # The base autoencoder of every point (dataset_dir, resolution, schedule, clipping norm...).
    config.autoencoder = autoencoder_config.get_config(f"optimizer=dpadam,{local}")

    config.latent_ldp = ml_collections.ConfigDict()
    config.latent_ldp.noise_multipliers = ()  # () = off; each level adds one row per point
    config.latent_ldp.l2_bound = 0.0  # 0: the median latent L2 norm of public images (never private frames)
    config.latent_ldp.delta = 1e-5
    config.latent_ldp.nonnegative = True

    config.privacy = ml_collections.ConfigDict()
    # Faces: LFW crops and the astronaut's face pasted on test frames, detected before and after
    # the autoencoder. Haar only by default: the LBP cascade costs ~10x more (evaluation/faces.py).
    config.privacy.face_frames = 16
    config.privacy.face_fraction = 0.5  # face side / the frame's short side
    config.privacy.face_upscale = 2.0
    # The first is the headline: CenterFace, the strong CNN detector (the cascades miss blurred
    # faces it finds); Haar beside it as the weak, paper-era reference.
    config.privacy.face_backends = ("centerface", "haar")
    config.privacy.reid_feature = "hog"  # hog | pixels | pca (evaluation/reidentification.py)
    config.privacy.mia_frames = 64  # training (member) and held-out frames each, at most
    config.privacy.grid_frames = 4  # test frames per row of the reconstruction grid
    config.privacy.batch_size = 8
    config.privacy.seed = 0

    # The mechanism axis: frame privacy against strong attackers (launch.frame_privacy: CenterFace
    # and adaptive dlib on 24 real people) for each camera mechanism at every point, and, with the
    # classifier enabled, one classifier per mechanism (redaction in its inputs). () = off.
    config.frame_privacy = ml_collections.ConfigDict()
    config.frame_privacy.mechanisms = ("ae", "redact_fill@0.8+ae")
    config.frame_privacy.views = 5
    config.frame_privacy.gallery_views = 2
    config.frame_privacy.people = 0  # 0: all 24; N: the first N (a quick look, or the tests)

    # Sweeps across machines: "I/N" runs only this share of the points (a stable hash of each
    # point's name, so adding points never moves the others) into a shared --workdir, e.g. one
    # task of a Slurm or Kubernetes job array each; `launch.sweep --report_only` then gathers
    # results and plots from whatever has finished. "" runs every point.
    config.shard = ""

    config.classifier = ml_collections.ConfigDict()
    config.classifier.enabled = False
    # The classifier each point trains on its reconstructions; its autoencoder_workdir is the
    # point's, its dataset_dir the autoencoder's when left empty.
    config.classifier.config = classifier_config.get_config(f"variant=2s_bag,optimizer=adam,{local}")

    if runlocal:
        config.autoencoder.schedule.max_steps = 20
        config.privacy.face_frames = 8
        config.privacy.mia_frames = 32
    return config
