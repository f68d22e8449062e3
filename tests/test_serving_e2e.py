"""The remote scenario on loopback: certificates, server, cameras, alerts, refusals, bad input."""

import subprocess
import sys
import time

import grpc
import numpy as np
import pytest

from ppvad_jax.models import autoencoder_io
from ppvad_jax.serving import alert_store, quantization, server, tls, wire
from tests import serving_support as support


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One server (in process) for the module: two known cameras, an intruder cert from the same CA."""
    root = tmp_path_factory.mktemp("serving")
    certs = tls.make_development_pki(root / "certs", ["cam1", "cam2", "intruder"])
    export = support.make_tiny_export(root / "ae")
    clip = support.write_clip(root / "clip.avi", num_frames=20)
    cfg = support.config(export, cameras="cam1,cam2")
    srv = server.AnalysisServer(cfg, certs_dir=certs, db_path=root / "alerts.sqlite", port=0).start()
    yield {"root": root, "certs": certs, "export": export, "clip": clip, "server": srv}
    srv.shutdown(grace_s=5)


def _camera(world, camera_id, *extra):
    return subprocess.Popen(
        [
            sys.executable, "-m", "launch.camera", f"--source={world['clip']}",
            f"--server=localhost:{world['server'].port}", f"--certs_dir={world['certs']}",
            f"--camera_id={camera_id}", f"--ae_export={world['export']}", "--fps=20", *extra,
        ],
        cwd=support.ROOT, env=support.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_two_cameras_stream_get_scores_and_an_alert_is_stored(world):
    cams = [_camera(world, "cam1"), _camera(world, "cam2", "--quantize=int8", "--max_frames=12")]
    outs = [c.communicate(timeout=90) for c in cams]
    for cam, (out, err) in zip(cams, outs, strict=True):
        assert cam.returncode == 0, err[-3000:]
        assert "confidence" in out and "sas" in out
        assert "ALERT opened" in out
    assert outs[1][0].count("frame ") == 12  # --max_frames
    store = world["server"].store
    alerts = {a.camera_id: a for a in store.list_alerts()}
    assert set(alerts) == {"cam1", "cam2"}
    # confidence ~1 from the first frame: -7 -> -5 -> -3 -> -1 -> +1 opens the alert on frame 3
    assert alerts["cam1"].start_frame == 3 and alerts["cam1"].end_frame == 19
    assert alerts["cam2"].end_frame == 11 and alerts["cam2"].peak_score > 0.99
    csv_path = world["root"] / "alerts.csv"
    done = subprocess.run(
        [sys.executable, "-m", "launch.alerts", f"--db={store.path}", f"--csv={csv_path}"],
        cwd=support.ROOT, env=support.env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert csv_path.read_text().count("\n") >= 3  # header + both cameras' alerts


def _refused(port, credentials):
    send, responses, end = support.raw_stream(port, credentials)
    send(b"hello")
    try:
        with pytest.raises(grpc.RpcError) as info:
            next(responses)
        return info.value.code()
    finally:
        end()


def test_a_client_without_a_certificate_is_refused(world):
    credentials = grpc.ssl_channel_credentials(root_certificates=(world["certs"] / "ca.crt").read_bytes())
    assert _refused(world["server"].port, credentials) == grpc.StatusCode.UNAVAILABLE  # TLS handshake fails


def test_a_certificate_from_another_ca_is_refused(world, tmp_path):
    other = tls.make_development_pki(tmp_path / "other", ["cam1"])
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(world["certs"] / "ca.crt").read_bytes(),  # trusts the right server...
        private_key=(other / "cam1.key").read_bytes(),  # ...but presents a foreign client cert
        certificate_chain=(other / "cam1.crt").read_bytes(),
    )
    assert _refused(world["server"].port, credentials) == grpc.StatusCode.UNAVAILABLE


def test_a_valid_certificate_of_an_unknown_camera_is_refused(world):
    code = _refused(world["server"].port, tls.camera_credentials(world["certs"], "intruder"))
    assert code == grpc.StatusCode.PERMISSION_DENIED


def _frame(camera_id, index, latent, **kw):
    array, scale = quantization.quantize(latent, "float16")
    return wire.encode_frame(
        camera_id=camera_id, run_id="malformed-test", frame_index=index, timestamp=time.time(),
        latent=kw.pop("array", array), scale=kw.pop("scale", scale),
    )  # fmt: skip


def test_malformed_latents_are_rejected_and_the_other_camera_continues(world):
    port = world["server"].port
    shape = world["server"].decoder.latent_shape
    good = np.random.default_rng(0).random(shape, dtype=np.float32)
    nan = good.copy()
    nan[0, 0, 0] = np.nan
    header_ok = _frame("cam2", 0, good)
    bad = {
        "shape": _frame("cam2", 0, np.zeros((shape[0] + 1, *shape[1:]), np.float32)),
        "not_finite": _frame("cam2", 0, nan),
        "dtype": header_ok.replace(b'"dtype":"float16"', b'"dtype":"float64"'),
        "payload_size": header_ok[:-10],
        "too_large": header_ok + bytes(300_000),
        "malformed": b"PPVL\x00\x01garbage",
        "camera_mismatch": _frame("cam1", 0, good),
    }
    send2, responses2, end2 = support.raw_stream(port, tls.camera_credentials(world["certs"], "cam2"))
    send1, responses1, end1 = support.raw_stream(port, tls.camera_credentials(world["certs"], "cam1"))
    try:
        for i, (code, message) in enumerate(bad.items()):
            send2(message)
            send1(_frame("cam1", i, good))  # the other camera streams meanwhile
            response = next(responses2)
            assert response["status"] == "error" and response["code"] == code, response
            assert response["message"]
            assert next(responses1)["status"] == "ok"
        send2(_frame("cam2", 0, good))  # the same stream still works after all of that
        assert next(responses2)["status"] == "ok"
    finally:
        end1()
        end2()


def test_a_resent_frame_is_replayed_not_scored_twice(world):
    port = world["server"].port
    latent = np.ones(world["server"].decoder.latent_shape, np.float32)
    send, responses, end = support.raw_stream(port, tls.camera_credentials(world["certs"], "cam1"))
    try:
        message = wire.encode_frame(
            camera_id="cam1", run_id="replay-test", frame_index=0, timestamp=time.time(), latent=latent
        )
        send(message)
        first = next(responses)
        send(message)
        second = next(responses)
    finally:
        end()
    assert first["status"] == "ok" and second["status"] == "replayed"
    assert second["accumulator"] == first["accumulator"]
    store = world["server"].store
    assert isinstance(store, alert_store.SqliteAlertStore)
    assert sum(r.run_id == "replay-test" for r in store.frame_results("cam1")) == 1


def test_the_decoder_compiled_once_per_bucket_and_matches_the_export(world):
    decoder = world["server"].decoder
    latents = np.random.default_rng(2).random((7, *decoder.latent_shape), dtype=np.float32)
    frames = decoder(latents)  # 7 > max_batch 4: a chunk of 4 and one of 3 (padded to 4)
    decode_fn, _ = autoencoder_io.load_decoder(world["export"])
    reference = np.round(np.asarray(decode_fn(latents)) * 255)
    assert frames.dtype == np.uint8 and np.abs(frames - reference).max() <= 1
    assert decoder.traces == len(decoder.buckets)  # warm-up only: no compilation while serving
