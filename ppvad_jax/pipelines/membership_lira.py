"""LiRA against a trained autoencoder: reference models on halves of the candidate frames.

  python -m launch.membership_lira --config=configs/autoencoder.py:optimizer=dpadam,runlocal=True \
      --config.data.dataset_dir=D --target_workdir=runs/ae --workdir=runs/lira [--references=8]

The candidates are every unit the target's config splits (its training units are the members,
its validation and test units the non-members). ``references`` models (even) are trained with the
target's own config, each on half of the candidates (``lira.balanced_membership``: every
candidate in exactly half of them), in ``WORKDIR/ref<k>`` (resumable: a finished one is reused).
Each model's loss on a candidate is its reconstruction MSE; ``evaluation.lira`` scores the
target's losses, online and offline, next to the plain loss threshold on the same candidates.
Reported as AUC and TPR at 1% / 0.1% FPR, with the target's accountant epsilon beside them
(the attack measures membership of training frames, which is what that epsilon bounds).

Cost: ``references`` more training runs of the target's size; frame units only.
"""

import copy
import json
import pathlib

import numpy as np

from ppvad_jax.data import autoencoder_data
from ppvad_jax.evaluation import lira, membership
from ppvad_jax.evaluation import privacy_report as pieces
from ppvad_jax.privacy import accounting
from ppvad_jax.training import autoencoder as trainer


def candidate_pool(config):
    """``(units, member)``: every unit of the target's splits, and which ones it trained on."""
    splits, _ = trainer.split_units(config)
    units = autoencoder_data.pool(splits)
    return units, np.arange(len(units)) < len(splits["train"])


def losses(workdir, frames, batch_size=16):
    """[N] reconstruction MSE of ``workdir``'s exported model on each frame (the loss of
    ``evaluation.membership``'s attacks)."""
    encode_fn, decode_fn, _ = pieces.load_autoencoder(workdir)
    return membership.frame_losses(lambda x: decode_fn(encode_fn(x)), frames, batch_size=batch_size)


def train_references(config, workdir, num_references, seed):
    """The reference models' workdirs and [K, N] membership, trained now or reused."""
    units, _ = candidate_pool(config)
    masks = lira.balanced_membership(num_references, len(units), np.random.default_rng(seed))
    dirs = []
    for k, mask in enumerate(masks):
        ref_dir = pathlib.Path(workdir) / f"ref{k}"
        ref_dir.mkdir(parents=True, exist_ok=True)
        subset = ref_dir / "train_subset.npy"
        np.save(subset, np.flatnonzero(mask))
        if not (ref_dir / "metrics.json").is_file():
            ref_config = copy.deepcopy(config)
            with ref_config.unlocked():
                ref_config.data.train_subset = str(subset)
            trainer.train_and_evaluate(ref_config, ref_dir)
        dirs.append(ref_dir)
    return dirs, masks


def run(config, *, target_workdir, workdir, num_references=8, seed=0):
    """The attack of the module docstring; writes and returns ``WORKDIR/lira.json``."""
    if config.dp.unit != "frame":
        raise ValueError("LiRA here scores frames: use a target trained with dp.unit=frame")
    units, member = candidate_pool(config)
    source = autoencoder_data.FrameSource(config.data.dataset_dir, config.data.source_split)
    dirs, masks = train_references(config, workdir, num_references, seed)
    frames = source.fetch(np.concatenate(units.records))  # read once for every model
    target = losses(target_workdir, frames)
    refs = np.stack([losses(d, frames) for d in dirs])
    result = {
        "target_workdir": str(target_workdir),
        "references": num_references,
        "candidates": len(units),
        "online": lira.report(member, lira.scores(target, refs, masks)),
        "offline": lira.report(member, lira.scores(target, refs, masks, online=False)),
        "loss_threshold": lira.report(member, membership.loss_threshold_scores(target)),
        "target_training_privacy": pieces.training_privacy(target_workdir),
        "unit": "one training frame (the target's unit of privacy)",
    }
    out = pathlib.Path(workdir) / "lira.json"
    out.write_text(json.dumps(accounting.json_safe(result), indent=2))
    return result
