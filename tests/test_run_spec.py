"""Run specs: checkpoints resume only under the spec that made them."""

import json

import pytest

from ppvad_jax.training import run_spec


def test_a_new_run_records_a_matching_one_resumes_another_is_refused(tmp_path):
    spec = {"lr": 1e-3, "widths": (4, 2), "path": tmp_path}  # tuples and paths stored as JSON sees them
    run_spec.check_and_record(tmp_path, spec, filename="s.json", what="a run")
    assert json.loads((tmp_path / "s.json").read_text())["widths"] == [4, 2]
    (tmp_path / "checkpoints" / "10").mkdir(parents=True)
    run_spec.check_and_record(tmp_path, spec, filename="s.json", what="a run")  # same: resumes
    assert run_spec.can_resume(tmp_path, spec, "s.json")
    assert not run_spec.can_resume(tmp_path, {**spec, "lr": 1e-2}, "s.json")
    with pytest.raises(ValueError, match="holds a run trained on other inputs or settings: lr, seed differ"):
        run_spec.check_and_record(tmp_path, {**spec, "lr": 1e-2, "seed": 1}, filename="s.json", what="a run")
    assert json.loads((tmp_path / "s.json").read_text())["lr"] == 1e-3  # the refused spec is not written
    (tmp_path / "s.json").unlink()
    with pytest.raises(ValueError, match="unrecorded run"):
        run_spec.check_and_record(tmp_path, spec, filename="s.json", what="a run")


def test_fingerprint_follows_file_contents(tmp_path):
    (tmp_path / "a.json").write_text("1")
    first = run_spec.fingerprint(tmp_path, ("a.json", "missing.json"))
    assert run_spec.fingerprint(tmp_path, ("a.json",)) == first
    (tmp_path / "a.json").write_text("2")
    assert run_spec.fingerprint(tmp_path, ("a.json",)) != first
    assert run_spec.fingerprint("", ("a.json",)) is None and run_spec.export_fingerprint(None) is None
