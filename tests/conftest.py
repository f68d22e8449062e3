"""Shared fixtures: one tiny synthetic world per test session."""

import os
import pathlib
import shutil
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# LLVM optimisation off for every test process (and, through the environment, every
# subprocess: sweep workers, servers, the 8-device check). Measured on the 2-core CPU: the
# suite's time is mostly XLA compilation of tiny models (13 s for the test autoencoder's init,
# 20 s for its DP step; 1.2 s for one truncated-normal initialiser), and level 0 cuts it
# ~10x; the whole suite went from 11 min 12 s to 6 min 18 s. The HLO passes (fusion, SPMD
# partitioning) are unchanged; the cost is slower elementwise code, which these tiny inputs
# do not feel. Benchmarks and the demo compile at the default level. Set
# PPVAD_TEST_XLA_OPT=default to test with the optimised backend.
if os.environ.get("PPVAD_TEST_XLA_OPT", "0") != "default":
    flags = os.environ.get("XLA_FLAGS", "")
    os.environ["XLA_FLAGS"] = f"{flags} --xla_backend_optimization_level=0".strip()

import jax  # noqa: E402

from ppvad_jax.data.synthetic import world  # noqa: E402

# Tests build the same jitted programs many times (each trainer run makes fresh closures); a
# persistent compilation cache turns every repeat into a cache hit (.pytest_cache is git-ignored).
jax.config.update("jax_compilation_cache_dir", str(ROOT / ".pytest_cache" / "xla"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

TINY = world.WorldParams(num_videos=8, seed=3, seconds=2.0, crowd=2)


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory):
    """A tiny synthetic UCFCrime2Local tree (8 videos of 2 s). Do not modify it: copy it."""
    out = tmp_path_factory.mktemp("world")
    manifest = world.generate_world(out, TINY)
    return out, manifest


@pytest.fixture(scope="module")
def dataset_dir(tiny_world, tmp_path_factory):
    """The tiny world prepared at 48x64 (one per test module: trainers write beside it)."""
    from configs import ucf_crime2local as data_config
    from ppvad_jax.data import prepare

    root, _ = tiny_world
    config = data_config.get_config()
    config.height, config.width = 48, 64
    summary = prepare.prepare(manual_dir=root, data_dir=tmp_path_factory.mktemp("tfds"), config=config)
    return summary["dataset_dir"]


@pytest.fixture
def world_copy(tiny_world, tmp_path):
    """A private, writable copy of the tiny world."""
    src, manifest = tiny_world
    dst = tmp_path / "world"
    shutil.copytree(src, dst)
    return dst, manifest


def pytest_configure(config):
    # "slow": long but still run in CI (the whole suite must stay under 15 minutes there);
    # FAST=1 bash tests/run.sh deselects them (the 3-minute lane).
    config.addinivalue_line("markers", "slow: long-running test, still part of CI")


@pytest.fixture(scope="session")
def postgres_server():
    """DSN of a throwaway PostgreSQL server on loopback (tests/postgres_support.py)."""
    from tests import postgres_support  # noqa: PLC0415

    if postgres_support.binaries() is None:
        pytest.fail("no PostgreSQL binaries: install requirements-dev.txt (pgserver) or postgresql")
    with postgres_support.temporary_server() as dsn:
        yield dsn
