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
import pathlib


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


def recorded(workdir, filename):
    """The spec recorded in ``workdir``, or None."""
    path = pathlib.Path(workdir) / filename
    return json.loads(path.read_text()) if path.is_file() else None


def same(workdir, spec, filename):
    """Whether ``spec`` is the recorded one (as ``check_and_record`` compares them)."""
    return recorded(workdir, filename) == json.loads(json.dumps(spec, default=str))


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
    want = json.loads(json.dumps(spec, default=str))
    path = workdir / filename
    directory = workdir / checkpoints
    if directory.is_dir() and any(directory.iterdir()):
        have = recorded(workdir, filename)
        if have != want:
            if have is None:
                why = f"an unrecorded run (no {filename})"
            else:
                keys = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
                why = f"trained on other inputs or settings: {', '.join(keys)} differ from {filename}"
            raise ValueError(
                f"{directory} holds {what} {why}; use a new --workdir, or move the old one away to retrain"
            )
    workdir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(want, indent=2))
