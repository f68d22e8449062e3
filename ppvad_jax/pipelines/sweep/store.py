"""A point's directory, ``W/points/<name>``: its markers, its stored config, and its rows.

Files: ``point.json`` (the autoencoder config it was trained with),
``privacy.json``, ``result.json`` and last ``DONE``, or ``error.json`` when it
failed. Every JSON file is written atomically (``write_json``): a killed run
never leaves half a file for the next one to trust.
"""

import json
import os
import pathlib

from ppvad_jax.privacy import accounting

DONE, RESULT, ERROR, PRIVACY, POINT_CONFIG = "DONE", "result.json", "error.json", "privacy.json", "point.json"


def point_dir(workdir, name):
    return pathlib.Path(workdir) / "points" / name


def read_json(path):
    try:
        return json.loads(pathlib.Path(path).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}): delete it to redo what wrote it") from e


def write_text(path, text):
    """Atomic, and safe beside other processes writing the same file (the shards of one sweep
    write the same plan): each writes its own temporary file, then renames it over ``path``."""
    tmp = pathlib.Path(f"{path}.{os.getpid()}.partial")
    tmp.write_text(text)
    tmp.replace(path)  # atomic: a killed run never leaves half a file


def write_json(path, value):
    write_text(path, json.dumps(accounting.json_safe(value), indent=2, default=str))


def privacy_settings(config):
    """What the privacy stage depends on besides the autoencoder: a changed setting redoes it."""
    return {
        "privacy": config.privacy.to_dict(),
        "latent_ldp": config.latent_ldp.to_dict(),
        "frame_privacy": config.frame_privacy.to_dict(),
    }


def eval_settings(config):
    return {**privacy_settings(config), "classifier": config.classifier.to_dict()}


def is_finished(directory, config):
    """DONE, and evaluated with the current privacy / classifier settings."""
    directory = pathlib.Path(directory)
    if not (directory / DONE).is_file() or not (directory / RESULT).is_file():
        return False
    return read_json(directory / RESULT).get("eval_settings") == accounting.json_safe(eval_settings(config))


class StalePointError(ValueError):
    """A point directory trained with another autoencoder config than the sweep's current one."""


def check_point_config(point, directory):
    """Refuses a workdir whose stored autoencoder config for this point differs from the current one.

    A field the stored config lacks (added to ``configs/autoencoder.py`` since)
    is not a difference while it is off (empty, zero, false): that run had no
    such knob, which is the same as the knob off. Set, it is a difference: a
    point trained from random weights must not pass for one started from
    ``init_from``.
    """
    path = pathlib.Path(directory) / POINT_CONFIG
    if not path.is_file():
        return
    stored = read_json(path)["autoencoder"]
    diff = sorted(config_diff(stored, json.loads(point.config.to_json_best_effort(sort_keys=True))))
    if diff:
        raise StalePointError(
            f"{directory} was trained with another autoencoder config (differs at {', '.join(diff)}); "
            "use a new --workdir or delete that point's directory"
        )


def config_diff(stored, current, prefix=""):
    """Dotted paths where ``stored`` has a value that ``current`` does not, or ``current`` sets a
    field ``stored`` lacks."""
    if isinstance(stored, dict) and isinstance(current, dict):
        for key in sorted(stored):
            yield from config_diff(stored[key], current.get(key), f"{prefix}{key}.")
        for key in sorted(set(current) - set(stored)):
            if isinstance(current[key], dict):  # a new section: each of its fields on its own
                yield from config_diff({}, current[key], f"{prefix}{key}.")
            elif current[key] not in (None, "", 0, False, [], ()):
                yield f"{prefix}{key}"
    elif stored != current:
        yield prefix.rstrip(".")


def collect_rows(points, workdir):
    """Every point's rows: its results when DONE, else a failed or not-run row."""
    rows = []
    for point in points:
        directory = point_dir(workdir, point.name)
        base = {
            "point": point.name,
            "optimizer": point.optimizer,
            "noise_multiplier": point.noise_multiplier,
            "latent_ldp_noise": None,
        }
        if (directory / DONE).is_file() and (directory / RESULT).is_file():
            rows += read_json(directory / RESULT)["rows"]
        elif (directory / ERROR).is_file():
            error = read_json(directory / ERROR)
            rows.append({**base, "status": "failed", "error": f"{error['stage']}: {error['error']}"})
        else:
            rows.append({**base, "status": "not run"})
    return rows


def record_plan_failures(plan_errors, workdir):
    """A point that could not be accounted is not trained: its error.json says why."""
    for name, error in plan_errors.items():
        directory = point_dir(workdir, name)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / DONE).unlink(missing_ok=True)
        write_json(directory / ERROR, {"status": "failed", "point": name, "stage": "plan", "error": error})
