"""The --jax_distributed path of launch.train_autoencoder, exercised: two local processes with two
fake CPU devices each (gloo collectives, a coordinator on loopback) train the same run as one
process with four devices, and a private run's secret is one for the whole job."""

import json
import os
import subprocess
import sys

import pytest

from tests import serving_support

pytestmark = pytest.mark.slow


def _flags(dataset_dir, workdir, *, fixed_seed):
    return [
        sys.executable, "-m", "launch.train_autoencoder", f"--workdir={workdir}",
        "--config=configs/autoencoder.py:optimizer=dpadam,runlocal=True",
        f"--config.data.dataset_dir={dataset_dir}",
        "--config.data.height=48", "--config.data.width=64", "--config.model_features=16,8,4",
        "--config.dp.expected_batch_size=4", "--config.dp.microbatch_size=2", "--config.dp.batch_bucket=8",
        "--config.schedule.max_steps=3", "--config.schedule.log_every_steps=1",
        "--config.schedule.eval_batch_size=4", f"--config.dp.insecure_fixed_seed={fixed_seed}",
    ]  # fmt: skip


def _env(devices):
    env = serving_support.env()
    env["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}"
    return env


def _metrics(out):
    return json.loads(out[out.index("{") : out.rindex("}") + 1])


def _two_processes(dataset_dir, workdir, *, fixed_seed):
    port = serving_support.free_port()
    procs = [
        subprocess.Popen(
            [
                *_flags(dataset_dir, workdir, fixed_seed=fixed_seed),
                "--jax_distributed",
                f"--jax_coordinator_address=127.0.0.1:{port}",
                "--jax_num_processes=2",
                f"--jax_process_id={i}",
            ],
            cwd=serving_support.ROOT,
            env=_env(2),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    return [_metrics(out) for out, _ in outs]


def test_two_hosts_train_what_one_host_with_as_many_devices_trains(dataset_dir, tmp_path):
    hosts = _two_processes(dataset_dir, tmp_path / "two", fixed_seed=True)
    one = subprocess.run(
        _flags(dataset_dir, tmp_path / "one", fixed_seed=True), cwd=serving_support.ROOT, env=_env(4),
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]
    alone = _metrics(one.stdout)
    for host in hosts:
        assert host["epsilon_pld"] == alone["epsilon_pld"] and host["steps"] == alone["steps"] == 3
        for key in ("mse", "psnr", "ssim"):
            assert host[key] == pytest.approx(alone[key], rel=1e-6), key
    written = json.loads((tmp_path / "two" / "metrics.json").read_text())  # by process 0 alone
    assert written["mse"] == pytest.approx(alone["mse"], rel=1e-6)
    assert (tmp_path / "two" / "export").is_dir()


def test_a_private_multihost_run_draws_one_secret_for_all_hosts(dataset_dir, tmp_path):
    # Before process 0 alone created it, both hosts unlinked and created the file (a race that
    # crashed one of them, or left each host its own noise).
    hosts = _two_processes(dataset_dir, tmp_path / "secret", fixed_seed=False)
    assert all(h["randomness"].startswith("secret") for h in hosts)
    secret = tmp_path / "secret" / "checkpoints" / "dp_secret.json"
    assert secret.is_file() and secret.stat().st_mode & 0o077 == 0
