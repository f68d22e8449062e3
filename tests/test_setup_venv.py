"""launch/setup_venv.sh installs requirements-nodeps.txt with --no-deps, after the others, and
its stamp notices a change in any of the files (run against a stub .venv/bin/python that logs)."""

import os
import pathlib
import shutil
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[1]


def make_tree(tmp_path):
    (tmp_path / "launch").mkdir()
    shutil.copy(ROOT / "launch" / "setup_venv.sh", tmp_path / "launch")
    for name in ("requirements.txt", "requirements-dev.txt", "requirements-nodeps.txt"):
        (tmp_path / name).write_text(f"# {name}\n")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text('#!/usr/bin/env bash\necho "$*" >> "$(dirname "$0")/../../pip.log"\n')
    python.chmod(0o755)
    return tmp_path


def setup(tree, *files):
    subprocess.run(["bash", "launch/setup_venv.sh", *files], cwd=tree, check=True, capture_output=True)
    log = tree / "pip.log"
    calls = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return calls


def test_nodeps_file_goes_last_without_dependencies_and_the_stamp_tracks_it(tmp_path):
    tree = make_tree(tmp_path)
    assert setup(tree, "requirements.txt", "requirements-dev.txt") == [
        "-m pip install --quiet --upgrade pip",
        "-m pip install --quiet -r requirements.txt -r requirements-dev.txt",
        "-m pip install --quiet --no-deps -r requirements-nodeps.txt",
    ]
    assert setup(tree, "requirements.txt", "requirements-dev.txt") == []  # nothing changed
    (tree / "requirements-nodeps.txt").write_text("some-weights==2.0\n")
    assert setup(tree, "requirements.txt", "requirements-dev.txt")[-1].endswith(
        "--no-deps -r requirements-nodeps.txt"
    )
    assert setup(tree, "requirements.txt")[1:] == [  # the demo's set has its own stamp
        "-m pip install --quiet -r requirements.txt",
        "-m pip install --quiet --no-deps -r requirements-nodeps.txt",
    ]
    assert os.path.isfile(tree / ".venv" / ".installed-requirements.txt.sha256")
