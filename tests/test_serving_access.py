"""Who may stream, and how that changes while the server runs: make_certs, CRL, SIGHUP, the
runlocal address. Each docstring names the defect it guards and what the old code did."""

import os
import signal
import stat
import subprocess
import sys
import time

import grpc
import numpy as np
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from ppvad_jax.serving import camera_client, tls
from tests import serving_support as support

CAMERAS = ("cam1", "cam2")


def _make_certs(*flags):
    return subprocess.run(
        [sys.executable, "-m", "launch.make_certs", *flags],
        cwd=support.ROOT, env=support.env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _issuer_verifies(certs, camera):
    """Whether ``camera``'s certificate is signed by the CA now in ``certs`` (raises if not)."""
    ca = x509.load_pem_x509_certificate((certs / "ca.crt").read_bytes())
    cert = x509.load_pem_x509_certificate((certs / f"{camera}.crt").read_bytes())
    cert.verify_directly_issued_by(ca)
    return True


def test_make_certs_refuses_an_existing_ca_and_adds_cameras_with_it(tmp_path):
    """Defect 5: a second launch.make_certs silently replaced the CA and cameras.txt, so every
    deployed camera certificate stopped verifying. Now it refuses without --force, and
    --add_cameras signs new cameras with the same CA and appends them to the list."""
    certs = tmp_path / "certs"
    assert _make_certs(f"--out_dir={certs}", "--cameras=cam1,cam2").returncode == 0
    ca_before = (certs / "ca.crt").read_bytes()
    again = _make_certs(f"--out_dir={certs}", "--cameras=cam9")
    assert again.returncode != 0 and "--add_cameras" in again.stderr and "--force" in again.stderr
    assert (certs / "ca.crt").read_bytes() == ca_before and tls.known_cameras(certs) == CAMERAS
    added = _make_certs(f"--out_dir={certs}", "--add_cameras=cam3")
    assert added.returncode == 0, added.stderr
    assert (certs / "ca.crt").read_bytes() == ca_before
    assert tls.known_cameras(certs) == (*CAMERAS, "cam3")
    assert _issuer_verifies(certs, "cam1") and _issuer_verifies(certs, "cam3")
    twice = _make_certs(f"--out_dir={certs}", "--add_cameras=cam3")
    assert twice.returncode != 0 and "cam3 already" in twice.stderr
    forced = _make_certs(f"--out_dir={certs}", "--cameras=cam1", "--force")
    assert forced.returncode == 0 and (certs / "ca.crt").read_bytes() != ca_before
    with pytest.raises(InvalidSignature):
        _issuer_verifies(certs, "cam3")  # the old camera's certificate no longer verifies: why --force


def test_private_keys_are_created_0600_not_chmodded_afterwards(tmp_path, monkeypatch):
    """Defect 6: keys were written with the default mode (0644 under umask 022) and chmodded to
    0600 afterwards, readable by others in between. With umask 0 and every chmod disabled, a key
    created with the default mode stays 0666; one created 0600 from the start is 0600."""

    def no_chmod(*args, **kwargs):
        pass

    monkeypatch.setattr(os, "chmod", no_chmod)
    monkeypatch.setattr(type(tmp_path), "chmod", no_chmod)
    old = os.umask(0)
    try:
        certs = tls.make_development_pki(tmp_path / "certs", CAMERAS)
        modes = {k.name: stat.S_IMODE(k.stat().st_mode) for k in certs.glob("*.key")}
        assert modes == dict.fromkeys(["ca.key", "cam1.key", "cam2.key", "server.key"], 0o600)
        tls.add_cameras(certs, ["cam3"])  # the same for a camera signed later
        assert stat.S_IMODE((certs / "cam3.key").stat().st_mode) == 0o600
    finally:
        os.umask(old)
    assert not list(certs.glob(".*"))  # no temporary file left behind


def test_a_crl_not_signed_by_the_ca_is_refused_naming_the_file(tmp_path):
    """Defect 7: a forged CRL (another CA's) must not replace the real one, nor empty it."""
    certs = tls.make_development_pki(tmp_path / "certs", CAMERAS)
    other = tls.make_development_pki(tmp_path / "other", CAMERAS)
    tls.revoke(other, ["cam1"])
    (certs / "crl.pem").write_bytes((other / "crl.pem").read_bytes())
    with pytest.raises(ValueError, match="crl.pem: not signed by"):
        tls.revoked_serials(certs)
    (certs / "crl.pem").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="crl.pem: not a PEM certificate revocation list"):
        tls.revoked_serials(certs)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """An in-process server that polls cameras.txt and crl.pem every 0.1 s."""
    root = tmp_path_factory.mktemp("access")
    with support.in_process_world(root, CAMERAS, reload_every_s=0.1) as world:
        yield world


class _Camera:
    """A CameraClient sending one frame every ``period`` s from a thread, until ``stop``."""

    def __init__(self, world, camera_id, period=0.05):
        self.client = camera_client.CameraClient(
            server=f"localhost:{world['server'].port}", certs_dir=world["certs"], camera_id=camera_id,
            backoff_s=0.05, max_backoff_s=0.2, max_unacked=4,
        )  # fmt: skip
        self.latent = np.ones(world["server"].decoder.latent_shape, np.float16)
        self.period, self.sent = period, 0

    def step(self, n):
        for _ in range(n):
            self.client.send(frame_index=self.sent, timestamp=time.time(), latent=self.latent, timeout=5)
            self.sent += 1
            time.sleep(self.period)


def _wait(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_a_revoked_camera_is_refused_while_the_others_keep_streaming(world):
    """Defect 7: certificates were read at start only, with no revocation: a stolen camera key
    kept working until every server restarted. Now launch.make_certs --revoke writes crl.pem,
    the server notices the change, ends that camera's stream (PERMISSION_DENIED) and refuses
    its reconnects, and no other stream is touched (same session, no reconnect)."""
    srv, certs = world["server"], world["certs"]
    honest, stolen = _Camera(world, "cam1"), _Camera(world, "cam2")
    honest.step(5)
    stolen.step(5)
    assert _wait(lambda: honest.client.stats["ok"] == 5 and stolen.client.stats["ok"] == 5)
    honest_session = srv.service.sessions()["cam1"]
    done = _make_certs(f"--out_dir={certs}", "--revoke=cam2")
    assert done.returncode == 0, done.stderr
    assert _wait(lambda: "cam2" not in srv.service.sessions()), "the revoked stream was not ended"
    honest.step(10)
    stolen.step(3)
    assert _wait(lambda: honest.client.stats["ok"] == 15), honest.client.stats
    assert srv.service.sessions()["cam1"] is honest_session  # never disconnected
    assert honest.client.stats["connects"] == 1 and honest.client.stats["disconnects"] == 0
    time.sleep(0.5)  # the stolen camera keeps trying; every attempt is refused
    assert stolen.client.stats["ok"] == 5
    assert stolen.client.last_error["code"] == str(grpc.StatusCode.PERMISSION_DENIED)
    assert "revoked" in stolen.client.last_error["message"]
    assert honest.client.close(timeout=10) == 0
    stolen.client.close(timeout=0.1)


def test_a_camera_added_with_the_same_ca_streams_without_a_restart(world):
    """Defect 7 (the camera list): cameras.txt was read at start only; a camera added with
    --add_cameras streams as soon as the server has seen the file change."""
    srv = world["server"]
    tls.add_cameras(world["certs"], ["cam4"])
    assert _wait(lambda: "cam4" in srv.service.options.known_cameras)
    camera = _Camera(world, "cam4")
    camera.step(2)
    assert camera.client.close(timeout=10) == 0 and camera.client.stats["ok"] == 2


@pytest.mark.slow
def test_launch_serve_runlocal_listens_on_loopback_and_reloads_on_sighup(tmp_path):
    """Defects 7 and 8: launch.serve re-reads crl.pem on SIGHUP (polling off here) and says so;
    runlocal listened on every interface ([::]) and printed no address; now 127.0.0.1."""
    certs = tls.make_development_pki(tmp_path / "certs", CAMERAS)
    export = support.make_tiny_export(tmp_path / "ae")
    flags = [f for f in support.config_flags(export) if not f.startswith("--config.host=")]
    proc = support.server_process_lib.ServerProcess(
        certs_dir=certs, db=tmp_path / "a.sqlite", config_flags=[*flags, "--config.reload_every_s=0"],
        env=support.env(), timeout=180,
    )  # fmt: skip
    try:
        assert proc.listening["address"] == f"127.0.0.1:{proc.port}"
        tls.revoke(certs, ["cam2"])
        proc.proc.send_signal(signal.SIGHUP)
        reloaded = proc.wait_for("reloaded", 30)
        assert reloaded["revoked_serials"] == 1 and reloaded["cameras"] == list(CAMERAS)
    finally:
        assert proc.terminate() == 0
