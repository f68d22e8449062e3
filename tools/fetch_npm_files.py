"""Fetches chosen files of a package pinned in tools/package-lock.json, without Node.js or npm.

  python3 tools/fetch_npm_files.py [--lock=tools/package-lock.json] [--prefix=tools]

Where npm is missing (a fresh machine with only Python and pip), ``launch/setup_node.sh`` runs
this so that the default bag of objects still has its model and the privacy attacks their group
photos: the npm registry's tarball of each package in ``FILES``, at the version the lock file
pins, is downloaded once, checked against the lock file's ``integrity`` (sha512, as npm checks
it) and only the listed files are written where ``npm ci --prefix tools`` would put them
(``tools/node_modules/<package>/``). Nothing runs from the tarball; nothing else of it is kept.
A file already present with the content the tarball holds is left alone. Standard library only:
it runs before any virtual environment exists.

The TensorFlow.js runtime (the tests' reference) is not fetched: its tests skip without Node.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import pathlib
import sys
import tarfile
import urllib.request

REGISTRY = "https://registry.npmjs.org"
# package -> the files (paths inside the package) that ppvad_jax reads at run time, and its licence.
FILES = {
    "@vladmandic/human": ("LICENSE", "models/centernet.json", "models/centernet.bin"),
    "@vladmandic/face-api": ("LICENSE", *(f"demo/sample{i}.jpg" for i in range(1, 7))),
}


class FetchError(RuntimeError):
    """The lock file, the download or the tarball is not what it should be; the message says which."""


def pinned(lock_path: pathlib.Path, package: str) -> tuple[str, str]:
    """(version, integrity) of ``package`` in an npm v2/v3 lock file."""
    try:
        entry = json.loads(lock_path.read_text())["packages"][f"node_modules/{package}"]
        return entry["version"], entry["integrity"]
    except (OSError, ValueError, KeyError) as e:
        raise FetchError(f"{lock_path}: no pinned version and integrity for {package} ({e!r})") from e


def tarball_url(package: str, version: str, registry: str = REGISTRY) -> str:
    """The registry's tarball address, as npm forms it: scope/name/-/name-version.tgz."""
    return f"{registry}/{package}/-/{package.rsplit('/', 1)[-1]}-{version}.tgz"


def check_integrity(data: bytes, integrity: str, where: str) -> None:
    """Refuses ``data`` unless its sha512 is the lock file's (Subresource Integrity form)."""
    algorithm, _, expected = integrity.partition("-")
    if algorithm != "sha512":
        raise FetchError(f"{where}: integrity {integrity[:20]}... is not sha512; refusing to trust it")
    got = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if got != expected:
        raise FetchError(
            f"{where}: sha512 {got[:16]}... is not the lock file's {expected[:16]}...; not written"
        )


def extract(data: bytes, members: tuple[str, ...], dest: pathlib.Path, where: str) -> list[pathlib.Path]:
    """Writes ``package/<member>`` of the tarball to ``dest/<member>``; returns the files written."""
    written = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in members:
            try:
                info = tar.getmember(f"package/{member}")
            except KeyError as e:
                raise FetchError(f"{where}: the tarball has no package/{member}") from e
            if not info.isfile():
                raise FetchError(f"{where}: package/{member} is not a regular file")
            content = tar.extractfile(info).read()
            target = dest / member
            if target.is_file() and target.read_bytes() == content:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            partial.write_bytes(content)
            partial.replace(target)  # never a half-written model file under the real name
            written.append(target)
    return written


def fetch(lock_path, prefix, *, registry: str = REGISTRY, files=None) -> list[pathlib.Path]:
    """Every package of ``files`` (default ``FILES``): download, check, extract."""
    lock_path, prefix = pathlib.Path(lock_path), pathlib.Path(prefix)
    written = []
    npm_stamp = prefix / "node_modules" / ".installed-package-lock.sha256"  # launch/setup_node.sh's
    npm_done = (
        npm_stamp.is_file()
        and npm_stamp.read_text().strip() == hashlib.sha256(lock_path.read_bytes()).hexdigest()
    )
    for package, members in (files or FILES).items():
        version, integrity = pinned(lock_path, package)
        dest = prefix / "node_modules" / package
        marker = dest / ".fetched-integrity"
        present = all((dest / m).is_file() for m in members)
        if present and (npm_done or (marker.is_file() and marker.read_text() == integrity)):
            continue
        url = tarball_url(package, version, registry)
        with urllib.request.urlopen(url, timeout=120) as response:
            data = response.read()
        check_integrity(data, integrity, url)
        written += extract(data, members, dest, url)
        marker.write_text(integrity)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lock", default="tools/package-lock.json")
    parser.add_argument("--prefix", default="tools")
    args = parser.parse_args(argv)
    try:
        written = fetch(args.lock, args.prefix)
    except (FetchError, OSError) as e:
        print(f"fetch_npm_files: {e}", file=sys.stderr)
        return 1
    for path in written:
        print(f"fetched {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
