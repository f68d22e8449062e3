"""The operator console in a real browser: Debian's headless Chromium driven by Selenium, against
a real analysis server, a real camera process and the console process, all on loopback.

Log in; a camera starts streaming and its tile appears; its alert appears in the list without a
reload; acknowledge it; restart the console and the server; the acknowledgement is still there;
a viewer cannot acknowledge. Screenshots of the main pages go to ``$PPVAD_CONSOLE_SCREENSHOTS``
(the README's come from ``PPVAD_CONSOLE_SCREENSHOTS=docs/console``) or the test's tmp dir.
.ci/run installs chromium and chromium-driver; elsewhere the test is skipped, saying so.
"""

import base64
import hashlib
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ppvad_jax.serving import alert_store, operator_store, tls
from ppvad_jax.serving.console import accounts
from tests import serving_support as support

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER),
        reason="needs Debian's chromium and chromium-driver "
        "(apt-get install chromium chromium-driver; .ci/run does)",
    ),
]
OPERATOR, VIEWER, PASSWORD = "olga", "victor", "correct horse battery"


def _spki_hash(cert_path):
    """Chromium's pin for exactly this certificate's key (base64 SHA-256 of its SPKI)."""
    cert = x509.load_pem_x509_certificate(pathlib.Path(cert_path).read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


class ConsoleProcess:
    def __init__(self, root, port):
        self.args = [
            sys.executable, "-m", "launch.console", f"--db={root / 'alerts.sqlite'}",
            f"--certs_dir={root / 'certs'}", f"--users={root / 'users.json'}", f"--config.port={port}",
            "--config.poll_s=0.5",
        ]  # fmt: skip
        self.port = port
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            self.args, cwd=support.ROOT, env=support.env(), stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"console exited: {self.proc.stderr.read()[-3000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError("the console did not listen within 60 s")

    def restart(self):
        self.stop()
        self.start()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("console")
    certs = tls.make_development_pki(root / "certs", ["cam1"])
    tls.add_console(certs, ["localhost", "127.0.0.1"])
    export = support.make_tiny_export(root / "ae")
    clip = support.write_clip(root / "clip.avi", num_frames=80, size=support.TINY_SIZE)
    book = accounts.Accounts(root / "users.json")
    book.add(OPERATOR, PASSWORD, "operator")
    book.add(VIEWER, PASSWORD, "viewer")
    server = support.server_process(export_dir=export, certs_dir=certs, db=root / "alerts.sqlite")
    console = ConsoleProcess(root, support.free_port())
    shots = pathlib.Path(os.environ.get("PPVAD_CONSOLE_SCREENSHOTS") or root / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    yield {"root": root, "certs": certs, "export": export, "clip": clip, "server": server, "console": console,
           "shots": shots}  # fmt: skip
    console.stop()
    server.terminate()


@pytest.fixture(scope="module")
def browser(site):
    from selenium import webdriver  # noqa: PLC0415
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # The console's own certificate pinned by its key: trusted, and nothing else is.
    pin = _spki_hash(site["certs"] / "console.crt")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--window-size=1280,900", f"--user-data-dir={site['root'] / 'chromium'}",
                f"--ignore-certificate-errors-spki-list={pin}"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _wait(driver, condition, timeout=90, what="condition"):
    from selenium.webdriver.support.ui import WebDriverWait  # noqa: PLC0415

    return WebDriverWait(driver, timeout, poll_frequency=0.25).until(lambda d: condition(d), message=what)


def _css(driver, selector):
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    return driver.find_elements(By.CSS_SELECTOR, selector)


def _log_in(driver, url, name):
    driver.get(url + "/")
    assert driver.current_url.endswith("/login")  # an unauthenticated visit lands on the login page
    _css(driver, "#username")[0].send_keys(name)
    _css(driver, "#password")[0].send_keys(PASSWORD)
    _css(driver, "#login-button")[0].click()
    _wait(driver, lambda d: _css(d, "#whoami"), what="the logged-in header")


def _camera(site, frames):
    return subprocess.Popen(
        [sys.executable, "-m", "launch.camera", f"--source={site['clip']}",
         f"--server=localhost:{site['server'].port}", f"--certs_dir={site['certs']}", "--camera_id=cam1",
         f"--ae_export={site['export']}", "--fps=8",
         f"--max_frames={frames}", "--realtime=True", "--quiet"],
        cwd=support.ROOT, env=support.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_operator_watches_a_camera_acknowledges_its_alert_and_it_survives_restarts(site, browser):
    url = f"https://localhost:{site['console'].port}"
    browser.get(url + "/login")
    assert "Log in" in browser.page_source
    browser.save_screenshot(str(site["shots"] / "login.png"))
    _log_in(browser, url, OPERATOR)
    assert _css(browser, "#no-cameras"), "the store should hold no camera before the camera starts"
    browser.execute_script("window.__notReloaded = true;")
    camera = _camera(site, frames=60)
    try:
        _wait(browser, lambda d: _css(d, '.tile[data-camera="cam1"]'), what="cam1's tile")
        # The rows are rebuilt on every event: read them in one script, never hold an element.
        row_js = (
            "const r = document.querySelector('#alert-rows tr.alert-row');"
            "return r && [r.dataset.alertId, r.innerText];"
        )
        alert_id, row_text = _wait(browser, lambda d: d.execute_script(row_js), what="an alert row")
        assert browser.execute_script("return window.__notReloaded === true;"), "the page was reloaded"
        assert "open" in row_text and "cam1" in row_text
        tile_js = "return document.querySelector('.tile[data-camera=\"cam1\"] .status').innerText;"
        _wait(browser, lambda d: d.execute_script(tile_js) == "connected", what="cam1 connected")
        thumb_js = (
            "const i = document.querySelector('.tile[data-camera=\"cam1\"] img.thumb');"
            "return i.complete && i.naturalWidth > 0;"
        )
        _wait(browser, lambda d: d.execute_script(thumb_js), what="the reconstruction thumbnail")
        # The camera sends 8 frames/s in real time: the tile says so (received / scored).
        fps_js = "return document.querySelector('.tile[data-camera=\"cam1\"] .fps').innerText;"
        time.sleep(2.5)
        received, scored = (
            float(x) for x in browser.execute_script(fps_js).split(" frames/s")[0].split(" / ")
        )
        assert 5.0 <= received <= 11.0 and 5.0 <= scored <= 11.0, (received, scored)
        _wait(browser, lambda d: _css(d, ".tile svg.timeline polyline.sas"), what="the SAS timeline")
        browser.save_screenshot(str(site["shots"] / "cameras.png"))
    finally:
        assert camera.wait(120) == 0, camera.stderr.read()[-3000:]
    browser.get(f"{url}/alerts/{alert_id}")
    _wait(browser, lambda d: _css(d, "#acknowledge"), what="the acknowledge button")
    _wait(browser, lambda d: _css(d, "svg.timeline rect.alert-span"), what="the alert's span on its timeline")
    assert _css(browser, ".strip img"), "the alert's reconstruction strip is empty"
    _css(browser, "#note")[0].send_keys("guard sent to the car park")
    _css(browser, "#acknowledge")[0].click()
    done = _wait(browser, lambda d: _css(d, "#done"), what="the saved message")[0]
    assert "acknowledged" in done.text
    browser.save_screenshot(str(site["shots"] / "alert.png"))

    site["console"].restart()
    site["server"].terminate()
    site["server"] = support.server_process(
        export_dir=site["export"], certs_dir=site["certs"], db=site["root"] / "alerts.sqlite"
    )
    browser.get(f"{url}/alerts/{alert_id}")
    history = _css(browser, "#history")[0].text
    assert "acknowledged by olga (operator)" in history and "guard sent to the car park" in history
    assert _css(browser, "#alert-state")[0].text == "acknowledged"
    _css(browser, "header .logout button")[0].click()
    _wait(browser, lambda d: d.current_url.endswith("/login"), what="logged out")

    _log_in(browser, url, VIEWER)
    browser.get(f"{url}/alerts/{alert_id}")
    assert (
        _css(browser, "#viewer-note") and not _css(browser, "#acknowledge") and not _css(browser, "#resolve")
    )
    status = browser.execute_script(
        "const token = document.querySelector('header input[name=csrf]').value;"
        "const body = new URLSearchParams({csrf: token, note: 'viewer tries'});"
        f"return fetch('/alerts/{alert_id}/resolve', {{method: 'POST', body}}).then(r => r.status);"
    )
    assert status == 403
    browser.get(url + "/privacy")
    assert "redact_fill@0.8+ae" in browser.page_source  # what the camera declared
    browser.save_screenshot(str(site["shots"] / "privacy.png"))
    store = alert_store.SqliteAlertReader(site["root"] / "alerts.sqlite")
    view = operator_store.OperatorStore(store).alert(alert_id)
    store.close()
    assert view.state == "acknowledged" and [(a.username, a.action) for a in view.actions] == [
        (OPERATOR, "acknowledge")
    ]
