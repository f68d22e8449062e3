"""Pipelines: jobs that run several trainers and evaluations and write their joint reports.

This layer sits above ``training``, ``serving`` and ``evaluation`` (which never
import it) and below ``launch``, whose entry points only parse flags and call
one function here:
- ``sweep``: the noise-multiplier sweep, one autoencoder per point, each point
  trained, measured and recorded in its own directory (``launch.sweep``);
- ``demo``: the main job's stages on a synthetic world, each taking the demo
  config (``launch.demo``, ``configs/demo.py``);
- ``privacy_report``: one video through an exported autoencoder, measured
  (``launch.privacy_report``; its pieces are ``evaluation.privacy_report``);
- ``table1``: the paper's Table 1 variants and its Figure 10 comparison
  (``launch.reproduce_table1``);
- ``benchmarks``: the timing jobs behind ``launch.benchmark_backbone``,
  ``benchmark_detector``, ``benchmark_dp`` and ``benchmark_sas``.
- ``loopback``: the serving jobs behind ``launch.load_test`` and
  ``launch.fault_test`` (a server process and simulated cameras on one host).
"""
