"""Noise-multiplier sweeps: one trained and measured autoencoder per (optimizer, noise multiplier).

``run.run_sweep(config, workdir)`` (``launch.sweep``, ``configs/sweep_noise.py``):

1. **Epsilon first** (``plan``). Every point's epsilon is computed before any
   training, with the trainer's own accountant call
   (``autoencoder.privacy_report``) on the planned steps, sampling rate and
   delta, and printed as a table: a user sees what the sweep will claim before
   paying for it. The trainer accounts the same planned steps even when its
   patience rules stop a point early (the stopping choice looks at noisy
   iterates: ``privacy.plan``), so the two epsilons are equal. Each point draws
   its own secret noise and batch seed (``privacy.run_secret``): each point's
   epsilon holds for that point alone, and releasing several points' models
   composes their epsilons.
2. **One workdir per point** (``store``), ``W/points/<name>``: the autoencoder
   trainer's outputs (it resumes from its checkpoints), ``privacy.json``,
   optionally a classifier workdir, then ``result.json`` and last a ``DONE``
   marker. A point with ``DONE`` is skipped, so an interrupted sweep resumes; a
   stage whose outputs exist (export, privacy.json) is not redone. A point whose
   stored autoencoder config differs from the current one is refused before
   anything runs (its checkpoints would silently mix two configs).
3. **Failures are recorded, not fatal** (``execute``): a failing point writes
   ``error.json`` (stage, error, traceback) and the others go on; the next run
   retries it.
4. **Reports**: ``W/results.csv``, ``W/results.md``, plots, ``W/timing.json``
   (``evaluation.sweep_report``).

Privacy is measured per point by ``evaluation.autoencoder_privacy`` on the
point's exported halves: faces on reconstructions, re-identification top-1,
membership-inference AUC (and, per latent-LDP level, the same again). The
mechanism axis (``config.frame_privacy.mechanisms``, e.g. the autoencoder alone and
face redaction before it) adds the strong attackers of ``pipelines.frame_privacy``
per camera mechanism, one row each, with one classifier per mechanism when the
classifier is on; ``frontier.png`` plots adaptive re-identification and
CenterFace's rate against utility (FL-AUC, or SSIM without classifiers), one curve
per mechanism.

Parallelism (``workers``). A point is a whole training run, so points are
independent processes at best: with several GPUs, one spawned process per GPU,
pinned with ``CUDA_VISIBLE_DEVICES`` (the default); on CPU, ``parallel=N``
spawned processes. Otherwise points run one by one in this process (a TPU host
also: the trainer already shards each point over all its chips).
``timing.json`` holds the wall time of the last run that ran points against
the sum of those points' own times (the one by one baseline; every run is
appended to ``timing_history.jsonl``). On shared cores each point is slower
than alone, so that sum overstates a true sequential run: time one with
``parallel=1`` too.

Modules, each one concern: ``grid`` (the points), ``plan`` (their epsilons),
``store`` (a point's directory), ``execute`` (one point, start to DONE),
``workers`` (in-process or spawned processes), ``run`` (the whole sweep).
"""
