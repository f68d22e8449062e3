r"""The analysis server: decoder, flow, scorer, SAS, alerts, over mutual TLS gRPC.

  python -m launch.make_certs --out_dir=certs --cameras=cam1,cam2
  python -m launch.serve --config=configs/serve.py --port=50051 --certs_dir=certs --db=alerts.sqlite \
      --config.ae_export=runs/ae/export

On a 2-core CPU (batches of at most 8, the demo's 120x160 autoencoder):

  python -m launch.serve --config=configs/serve.py:runlocal=True --port=50051 --certs_dir=certs \
      --db=runs/alerts.sqlite

``arg`` picks structure: ``runlocal``. Single values go through overrides, e.g.
``--config.scorer.midpoint=2.0`` or ``--config.engine.max_batch=64``.
"""

import ml_collections

from configs import config_args


def get_config(arg=None):
    args = config_args.parse(arg, {"runlocal"}, "runlocal=True")
    runlocal = config_args.is_true(args.get("runlocal", "False"))

    config = ml_collections.ConfigDict()
    config.ae_export = "runs/demo/autoencoder_dpadam/export"  # decoder.msgpack + spec.json
    config.cameras = ""  # comma-separated known camera ids; empty: certs_dir/cameras.txt
    # runlocal (one machine, development): loopback only. Otherwise every interface, for cameras
    # on the network; --host or --config.host narrows it.
    config.host = "127.0.0.1" if runlocal else "[::]"
    config.max_streams = 64  # concurrent camera streams; more are refused (RESOURCE_EXHAUSTED)
    config.warmup = True  # compile every decoder bucket before listening
    config.shutdown_grace_s = 10.0
    config.log_every_s = 30.0  # stats line on stdout; 0 = never
    # cameras.txt and crl.pem are re-read when they change (polled this often; 0 = only on SIGHUP).
    config.reload_every_s = 2.0

    config.engine = ml_collections.ConfigDict()
    config.engine.max_batch = 8 if runlocal else 32  # frames per tick; buckets are powers of two up to it
    config.engine.tick_s = 0.01  # wait for more frames after a tick's first
    config.engine.max_queue = 64 if runlocal else 256
    # At least a camera's resend window (launch.camera --max_unacked, 16), so the burst of frames
    # resent after a reconnect is not dropped as overload.
    config.engine.max_pending_per_camera = 16
    config.engine.max_queue_delay_s = 1.0  # older frames are dropped, not scored late
    config.engine.max_flow_gap = 3  # frames; a larger gap in a camera's stream gets zero flow
    config.engine.flow_method = "dis"
    config.engine.flow_bound = 16.0  # pixels, as in data/flow.py
    config.engine.flow_threads = 2 if runlocal else 8
    # A frame whose tick failed is retryable this many times (the camera resends it; its later
    # frames wait "resend_hold_s" for it at most), then its error is final.
    config.engine.max_frame_attempts = 3
    config.engine.resend_hold_s = 30.0

    config.limits = ml_collections.ConfigDict()
    config.limits.max_message_bytes = 1 << 18  # 256 KiB; a float32 latent at 240x320 is 77 KB
    config.limits.max_abs_value = 1e4
    # Capture timestamps accepted: from a day old (frames resent after an outage) to 5 min ahead.
    config.limits.max_timestamp_age_s = 86400.0
    config.limits.max_timestamp_ahead_s = 300.0
    # Answers queued per stream (512 B each) before it stops being read; a camera that reads none
    # for stall_timeout_s is disconnected with RESOURCE_EXHAUSTED.
    config.limits.max_replies_per_stream = 64
    config.limits.stall_timeout_s = 10.0

    # The paper's SAS (section 3.4.5 and 5.1.2).
    config.sas = ml_collections.ConfigDict()
    config.sas.tau = 0.5
    config.sas.nu = 2.0
    config.sas.lower = -7.0
    config.sas.upper = 7.0
    config.sas.alert_threshold = 0.5

    # The paper's scorer by default: the two-stream classifier exported by launch.train_classifier
    # on this autoencoder's reconstructions; full: two ResNet-50s + YOLO bag, runlocal: the demo's
    # (MobileNetV2 ImageNet + CenterNet bag), which sustains 2 cameras x 10 FPS on 2 cores (p50
    # 77 ms, p99 101 ms; about 28 frames/s saturated: BUILD_NOTES.md, "Serving the MobileNetV2
    # two-stream scorer"). The fallback, for a server without a trained classifier, is the
    # motion-energy scorer (ppvad_jax/serving/scorer.py, confidence = sigmoid(slope * (mean
    # |flow| px - midpoint))), not the paper's model: --config.scorer.name=motion_energy.
    config.scorer = ml_collections.ConfigDict()
    config.scorer.name = "two_stream"
    config.scorer.export_dir = "runs/demo/classifier_2s_bag/export" if runlocal else "runs/cls_2s_bag/export"
    config.scorer.midpoint = 1.0
    config.scorer.slope = 4.0

    # sqlite: the --db file. postgres: one store shared by several servers (one per GPU behind a
    # load balancer; THREAT_MODEL.md), e.g. --config.store.kind=postgres
    # --config.store.dsn=postgresql://ppvad@db.internal:5432/alerts (password from PGPASSWORD).
    config.store = ml_collections.ConfigDict()
    config.store.kind = "sqlite"
    config.store.dsn = ""
    config.store.synchronous = "FULL"  # FULL: survives power loss (one fsync per tick); NORMAL: crashes only
    config.store.keep_results_s = 3600.0  # per-frame results kept for replay and audit
    return config
