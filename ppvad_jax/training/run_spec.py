"""What a training run started from, recorded beside its checkpoints, so a resume cannot mix runs.

A workdir's checkpoints do not say which data, which starting weights or which settings produced
them. Resuming them under another config would continue one run as if it were another: an old
head scored on new inputs, or an autoencoder from random weights carried on as if it had started
from a public export, with metrics that name the new start. Each trainer writes its spec on a
fresh start and refuses checkpoints whose recorded spec differs, naming the keys.

Hashing the few files that identify a dataset or an export costs milliseconds.
"""

import hashlib
import json
import os
import pathlib

from ppvad_jax.privacy import run_secret


def settings(config, resumable):
    """The config as a dict without what a resumed run may change. ``resumable`` maps a section
    (None: the top level) to the names in it that may change (a whole section is a top-level name)."""
    spec = config.to_dict()
    for section, names in resumable.items():
        target = spec if section is None else spec.get(section, {})
        for name in names:
            target.pop(name, None)
    return spec


def fingerprint(directory, names):
    """sha256 over the named files of a directory that exist (name and bytes), or None without one."""
    if not directory:
        return None
    digest = hashlib.sha256()
    for name in names:
        path = pathlib.Path(directory) / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def dataset_fingerprint(dataset_dir):
    """What identifies a prepared dataset's contents (a rebuild in place changes it)."""
    return fingerprint(dataset_dir, ("dataset_info.json", "prepare_summary.json"))


def export_fingerprint(export_dir):
    """What identifies an autoencoder export's weights (a retrain in place changes it); None without one."""
    return fingerprint(export_dir, ("encoder.msgpack", "decoder.msgpack"))


def _as_json(spec):
    return json.loads(json.dumps(spec, default=str))


def recorded(workdir, filename):
    """The spec recorded in ``workdir``, or None."""
    path = pathlib.Path(workdir) / filename
    return json.loads(path.read_text()) if path.is_file() else None


def can_resume(workdir, spec, filename, checkpoints="checkpoints"):
    """Whether ``workdir`` holds no checkpoints, or checkpoints recorded under ``spec``:
    what ``check_and_record`` accepts."""
    directory = pathlib.Path(workdir) / checkpoints
    # A private run's secret lives there too; it is not a checkpoint.
    empty = not (directory.is_dir() and any(p.name != run_secret.SECRET_FILE for p in directory.iterdir()))
    return empty or recorded(workdir, filename) == _as_json(spec)


def check_and_record(workdir, spec, *, filename, what, checkpoints="checkpoints"):
    """Refuses checkpoints of another run; records ``spec`` for a new or matching one.

    Args:
      workdir: the run's directory.
      spec: JSON-able dict of what the run depends on (values are stringified where JSON has no type).
      filename: where the spec lives in ``workdir``.
      what: the run's kind, for the error ("a classifier", "an autoencoder").
      checkpoints: the checkpoint directory under ``workdir``.

    Raises:
      ValueError: ``workdir/checkpoints`` holds checkpoints and the recorded spec differs from
        ``spec``, or there is none (a run from before specs were recorded).
    """
    workdir = pathlib.Path(workdir)
    want = _as_json(spec)
    if not can_resume(workdir, spec, filename, checkpoints):
        have = recorded(workdir, filename)
        if have is None:
            why = f"an unrecorded run (no {filename})"
        else:
            keys = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
            why = f"trained on other inputs or settings: {', '.join(keys)} differ from {filename}"
        raise ValueError(
            f"{workdir / checkpoints} holds {what} {why}; use a new --workdir, or move the old one away "
            "to retrain"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    # Through a file of this process's own, renamed over: the hosts of a multi-host run record
    # the same spec side by side, and a reader never sees half of one.
    tmp = workdir / f".{filename}.{os.getpid()}"
    tmp.write_text(json.dumps(want, indent=2))
    tmp.replace(workdir / filename)
