r"""Data config: UCF-Crime + UCFCrime2Local, sampled and labelled as in the paper.

Paper resolution (240x320), normal frames at 10 FPS, anomalous at 3 FPS:

  python -m launch.prepare_data --manual_dir=/data/ucf_crime --data_dir=/data/tfds \
      --config=configs/ucf_crime2local.py

A CPU-sized version (120x160):

  python -m launch.prepare_data --manual_dir=runs/demo/world --data_dir=runs/demo/data \
      --config=configs/ucf_crime2local.py:runlocal

Single values change with ``--config.fps_normal=5`` etc.
"""

import ml_collections


def get_config(arg=None):
    config = ml_collections.ConfigDict()
    config.height = 240
    config.width = 320
    config.fps_normal = 10.0  # frames per second kept from normal segments
    config.fps_soft = 3.0  # ... from soft-anomaly segments
    config.fps_hard = 3.0  # ... from hard-anomaly segments
    # Optical flow's previous frame: 1/prev_frame_fps s earlier (a 10 FPS camera), whatever
    # the label. 0 = the previously *sampled* frame, the paper's literal reading, which leaks
    # the label (the gap is 10 frames in anomalies, 3 elsewhere); see BUILD_NOTES.md.
    config.prev_frame_fps = 10.0
    config.frame_base = "auto"  # Vatic frame numbering: "auto", "0" or "1"
    config.split_seed = 0  # seed of the stratified validation/test halving
    config.num_workers = 2  # decoding processes
    if arg == "runlocal":
        config.height, config.width = 120, 160
    elif arg not in (None, ""):
        raise ValueError(f"unknown config arg {arg!r}; use 'runlocal' or nothing")
    return config
