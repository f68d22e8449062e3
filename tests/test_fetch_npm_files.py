"""tools/fetch_npm_files.py: the model files of a pinned npm package without npm, refused unless
the tarball's sha512 is the lock file's. A local registry (file:// URLs) stands in for npm's."""

import base64
import hashlib
import io
import json
import pathlib
import sys
import tarfile

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tools"))
import fetch_npm_files  # noqa: E402

PACKAGE = "@scope/pkg"
FILES = {PACKAGE: ("LICENSE", "models/m.bin")}


def _tarball(members):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _registry(tmp_path, members, *, integrity_of=None):
    """A registry folder holding the package's tarball and a lock file pinning it."""
    data = _tarball(members)
    tgz = tmp_path / "registry" / PACKAGE / "-" / "pkg-1.2.3.tgz"
    tgz.parent.mkdir(parents=True)
    tgz.write_bytes(data)
    digest = base64.b64encode(hashlib.sha512(integrity_of or data).digest()).decode()
    lock = tmp_path / "package-lock.json"
    entry = {"version": "1.2.3", "integrity": f"sha512-{digest}"}
    lock.write_text(json.dumps({"packages": {f"node_modules/{PACKAGE}": entry}}))
    return lock, f"file://{tmp_path / 'registry'}", tgz


def test_only_the_listed_files_are_written_where_npm_puts_them(tmp_path):
    members = {"LICENSE": b"MIT", "models/m.bin": b"\x00\x01weights", "dist/big.js": b"x" * 100}
    lock, registry, tgz = _registry(tmp_path, members)
    written = fetch_npm_files.fetch(lock, tmp_path / "tools", registry=registry, files=FILES)
    dest = tmp_path / "tools" / "node_modules" / PACKAGE
    assert sorted(p.relative_to(dest).as_posix() for p in written) == ["LICENSE", "models/m.bin"]
    assert (dest / "models" / "m.bin").read_bytes() == b"\x00\x01weights"
    assert not (dest / "dist").exists()
    tgz.unlink()  # a second call finds the files with the lock's integrity: no download
    assert fetch_npm_files.fetch(lock, tmp_path / "tools", registry=registry, files=FILES) == []


def test_a_tarball_that_is_not_the_pinned_one_is_refused_and_nothing_written(tmp_path):
    members = {"LICENSE": b"MIT", "models/m.bin": b"tampered"}
    lock, registry, _ = _registry(tmp_path, members, integrity_of=b"the published tarball")
    with pytest.raises(fetch_npm_files.FetchError, match="not the lock file's"):
        fetch_npm_files.fetch(lock, tmp_path / "tools", registry=registry, files=FILES)
    assert not (tmp_path / "tools" / "node_modules").exists()


def test_a_missing_member_and_a_missing_pin_are_named(tmp_path):
    lock, registry, _ = _registry(tmp_path, {"LICENSE": b"MIT"})
    with pytest.raises(fetch_npm_files.FetchError, match="no package/models/m.bin"):
        fetch_npm_files.fetch(lock, tmp_path / "tools", registry=registry, files=FILES)
    with pytest.raises(fetch_npm_files.FetchError, match="no pinned version and integrity for @other/x"):
        fetch_npm_files.fetch(lock, tmp_path / "tools", registry=registry, files={"@other/x": ("a",)})


def test_the_real_lock_pins_what_the_centernet_backend_reads():
    lock = pathlib.Path(__file__).resolve().parents[1] / "tools" / "package-lock.json"
    version, integrity = fetch_npm_files.pinned(lock, "@vladmandic/human")
    assert version == "3.3.6" and integrity.startswith("sha512-")
    assert fetch_npm_files.tarball_url("@vladmandic/human", version) == (
        "https://registry.npmjs.org/@vladmandic/human/-/human-3.3.6.tgz"
    )
    assert set(fetch_npm_files.FILES["@vladmandic/human"]) >= {
        "models/centernet.json",
        "models/centernet.bin",
    }
