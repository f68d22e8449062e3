"""A sweep split over three processes into one workdir, then gathered, equals the same sweep in one.

What a job array does (``--config.shard=I/N`` per task, then ``launch.sweep --report_only``),
here as three local processes. Points draw a fixed seed (``insecure_fixed_seed``, for this
comparison only) so that two runs of a point can be compared number for number.
"""

import csv
import hashlib
import json
import subprocess
import sys

import pytest

from ppvad_jax.pipelines.sweep import grid, run
from tests import serving_support
from tests.test_sweep import tiny_sweep

pytestmark = pytest.mark.slow
_SHARD = """
import json, sys
from tests.test_sweep import tiny_sweep
from ppvad_jax.pipelines.sweep import run
config = tiny_sweep(sys.argv[1])
config.autoencoder.dp.insecure_fixed_seed = True
config.shard = sys.argv[3]
run.run_sweep(config, sys.argv[2], parallel=1, log=lambda *a: None)
"""
TIMES = ("seconds", "time")  # columns that differ between any two runs


def _config(dataset_dir):
    config = tiny_sweep(dataset_dir)
    config.autoencoder.dp.insecure_fixed_seed = True
    return config


def _rows(workdir):
    with open(workdir / "results.csv") as f:
        return {
            r["point"]: {k: v for k, v in r.items() if not any(t in k for t in TIMES)}
            for r in csv.DictReader(f)
        }


def test_three_shards_gathered_equal_one_process(dataset_dir, tmp_path):
    config = _config(dataset_dir)
    names = [p.name for p in grid.grid(config)]
    assert sorted({grid.shard_of(n, 3) for n in names}) != [0]  # the points really are split
    alone = tmp_path / "alone"
    run.run_sweep(config, alone, parallel=1, log=lambda *a: None)

    shared = tmp_path / "shared"
    procs = [
        subprocess.Popen([sys.executable, "-c", _SHARD, str(dataset_dir), str(shared), f"{i}/3"],
                         cwd=serving_support.ROOT, env=serving_support.env(), stderr=subprocess.PIPE,
                         text=True)
        for i in range(3)
    ]  # fmt: skip
    for p in procs:
        assert p.wait(600) == 0, p.stderr.read()[-3000:]
    assert not (shared / "results.csv").exists()  # shards leave the report to the gathering run
    ran = {
        i: json.loads((shared / "shards" / f"shard-{i}-of-3.json").read_text())["points"] for i in range(3)
    }
    for i, points in ran.items():
        assert sorted(points) == sorted(n for n in names if grid.shard_of(n, 3) == i)

    summary = run.run_sweep(config, shared, report_only=True, log=lambda *a: None)
    assert summary["timing"]["points_run"] == len(names) and "3 shard run(s)" in summary["timing"]["mode"]
    got, want = _rows(shared), _rows(alone)
    assert sorted(got) == sorted(want) == sorted(names) and all(r["status"] == "done" for r in got.values())
    assert got == want
    assert (shared / "utility_vs_epsilon.png").is_file() and "3 shard run(s)" in (
        shared / "results.md"
    ).read_text()


def test_a_bad_shard_is_refused_and_the_assignment_is_stable():
    for bad in ("3/3", "-1/2", "1", "a/b", "1/0"):
        with pytest.raises(ValueError, match="I/N"):
            grid.parse_shard(bad)
    assert grid.parse_shard("") is None and grid.parse_shard("2/5") == (2, 5)
    # The documented contract (a job array's tasks on other machines and versions must agree):
    # the first 8 bytes of SHA-256 of the name, big-endian, modulo N; spread evenly.
    names = [f"dpadam_nm{0.05 * k:g}" for k in range(200)]
    want = [int(hashlib.sha256(n.encode()).hexdigest()[:16], 16) % 4 for n in names]
    assert [grid.shard_of(n, 4) for n in names] == want
    assert all(30 <= want.count(i) <= 70 for i in range(4))
