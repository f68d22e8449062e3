"""Mutual TLS: a development CA and certificates, and the gRPC credentials built from them.

``make_development_pki`` writes, under one directory::

    ca.crt  ca.key            the CA (keep ca.key off the server and cameras in production)
    server.crt  server.key    SAN localhost, 127.0.0.1 (and any extra hosts)
    <camera>.crt  <camera>.key  one client certificate per camera, CN = camera id
    cameras.txt               the camera ids, one a line: the server's default known cameras
    crl.pem                   revoked camera certificates (``revoke``), if any

Keys are ECDSA P-256 (fast handshakes, small certificates); certificates last
one year. This is a development PKI: a deployment issues the same shapes of
certificate from its own CA (the server only needs ``ca.crt`` and its own
pair, a camera ``ca.crt`` and its own pair). Certificates are never
committed (``.gitignore``: ``certs/``).

The server requires a client certificate that chains to ``ca.crt``
(``require_client_auth=True``): a client with none, or with one from another
CA, fails the TLS handshake and never reaches the service. The camera id is
taken from the verified certificate's CN, never from the message.

An existing directory is never overwritten without ``force`` (a new
CA invalidates every deployed camera certificate); ``add_cameras`` signs more
cameras with the existing CA; private keys are created 0600 (never briefly
readable by others); ``revoke`` writes a CRL signed by the CA, which the server
reads at start and again on SIGHUP or when the file changes
(``server.AnalysisServer.reload``), checking each stream's certificate serial
against it (gRPC's Python API takes no CRL, so the check is the service's).
"""

import datetime
import ipaddress
import os
import pathlib
import tempfile

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 365


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name):
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ppvad-jax dev"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _certificate(*, subject, subject_key, issuer, issuer_key, ca, usage=None, sans=()):
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key()), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        ).add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def write_private(path, data):
    """Writes ``data`` to ``path`` through a file created 0600 (``mkstemp``: O_EXCL, mode 0600
    whatever the umask), then renamed over ``path``: no moment at which others can read it, and
    a crash leaves the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _write(out_dir, stem, cert, key):
    (out_dir / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_private(out_dir / f"{stem}.key", pem)


def _san(host):
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _camera_ids(cameras):
    cameras = [c.strip() for c in cameras if c.strip()]
    if not cameras:
        raise ValueError("give at least one camera id")
    for camera in cameras:
        if camera in ("ca", "server", "crl") or not all(ch.isalnum() or ch in "-_." for ch in camera):
            raise ValueError(
                f"camera id {camera!r}: use letters, digits, '-', '_', '.', not 'ca', 'server' or 'crl'"
            )
    if len(set(cameras)) != len(cameras):
        raise ValueError(f"camera ids {cameras} repeat one")
    return cameras


def _sign_camera(out_dir, camera, ca_cert, ca_key):
    key = _key()
    cert = _certificate(
        subject=_name(camera), subject_key=key, issuer=ca_cert.subject, issuer_key=ca_key, ca=False,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )  # fmt: skip
    _write(out_dir, camera, cert, key)


def make_development_pki(out_dir, cameras, *, server_hosts=("localhost", "127.0.0.1"), force=False):
    """Writes a CA, a server certificate and one client certificate per camera (module docstring).

    Refuses a directory that already holds a CA (FileExistsError) unless ``force``: a new CA
    invalidates every camera certificate signed by the old one. ``add_cameras`` adds cameras.

    Returns:
      The output directory (a ``pathlib.Path``).
    """
    cameras = _camera_ids(cameras)
    out_dir = pathlib.Path(out_dir)
    existing = [n for n in ("ca.crt", "ca.key", "cameras.txt") if (out_dir / n).exists()]
    if existing and not force:
        raise FileExistsError(
            f"{out_dir} already holds {', '.join(existing)}: a new CA would invalidate every camera "
            "certificate signed by it. Add cameras with --add_cameras, or replace all with --force"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "crl.pem").unlink(missing_ok=True)  # a new CA: the old CRL is meaningless
    ca_key = _key()
    ca_name = _name("ppvad-jax development CA")
    ca_cert = _certificate(subject=ca_name, subject_key=ca_key, issuer=ca_name, issuer_key=ca_key, ca=True)
    _write(out_dir, "ca", ca_cert, ca_key)
    server_key = _key()
    server_cert = _certificate(
        subject=_name(server_hosts[0]), subject_key=server_key, issuer=ca_name, issuer_key=ca_key, ca=False,
        usage=ExtendedKeyUsageOID.SERVER_AUTH, sans=[_san(h) for h in server_hosts],
    )  # fmt: skip
    _write(out_dir, "server", server_cert, server_key)
    for camera in cameras:
        _sign_camera(out_dir, camera, ca_cert, ca_key)
    (out_dir / "cameras.txt").write_text("".join(f"{c}\n" for c in cameras))
    return out_dir


def _load_ca(certs_dir):
    cert = x509.load_pem_x509_certificate(_read(certs_dir, "ca.crt"))
    key = serialization.load_pem_private_key(_read(certs_dir, "ca.key"), password=None)
    return cert, key


def add_cameras(certs_dir, cameras):
    """Signs certificates for new cameras with the existing CA and appends them to cameras.txt.

    Refuses a camera id that already has a certificate or is listed (ValueError): re-issuing
    is revoke, then a new id. Returns the ids added."""
    certs_dir = pathlib.Path(certs_dir)
    cameras = _camera_ids(cameras)
    listed = set(known_cameras(certs_dir))
    taken = [c for c in cameras if c in listed or (certs_dir / f"{c}.crt").exists()]
    if taken:
        raise ValueError(f"camera(s) {', '.join(taken)} already have a certificate in {certs_dir}")
    ca_cert, ca_key = _load_ca(certs_dir)
    for camera in cameras:
        _sign_camera(certs_dir, camera, ca_cert, ca_key)
    listing = certs_dir / "cameras.txt"
    text = listing.read_bytes()
    sep = "\n" if text and not text.endswith(b"\n") else ""  # a hand-edited last line
    with open(listing, "a") as f:  # appended last: the server sees signed cameras only
        f.write(sep + "".join(f"{c}\n" for c in cameras))
    return cameras


def add_console(certs_dir, hosts=("localhost", "127.0.0.1")):
    """Signs an HTTPS certificate for the operator console (``console.crt`` / ``console.key``)
    with the existing CA, for ``hosts``; replaces an earlier one. Returns the certificate's path.

    Its own key, not the analysis server's: the console is another process, often on another
    machine, and a leak of one key should not let anyone impersonate the other."""
    if not hosts:
        raise ValueError("the console certificate needs at least one host name")
    ca_cert, ca_key = _load_ca(certs_dir)
    key = _key()
    cert = _certificate(
        subject=_name(hosts[0]), subject_key=key, issuer=ca_cert.subject, issuer_key=ca_key, ca=False,
        usage=ExtendedKeyUsageOID.SERVER_AUTH, sans=[_san(h) for h in hosts],
    )  # fmt: skip
    _write(pathlib.Path(certs_dir), "console", cert, key)
    return pathlib.Path(certs_dir) / "console.crt"


def _crl_entries(certs_dir):
    crl = load_crl(certs_dir, verify=True)
    return list(crl) if crl is not None else []


def revoke(certs_dir, cameras):
    """Adds these cameras' certificates to ``crl.pem`` (signed by the CA; earlier entries kept).

    The server refuses them from its next reload (SIGHUP, or within ``config.reload_every_s`` of
    the file changing). Returns the revoked serials."""
    certs_dir = pathlib.Path(certs_dir)
    ca_cert, ca_key = _load_ca(certs_dir)
    entries = {e.serial_number: e for e in _crl_entries(certs_dir)}
    now = datetime.datetime.now(datetime.UTC)
    serials = []
    for camera in _camera_ids(cameras):
        cert = x509.load_pem_x509_certificate(_read(certs_dir, f"{camera}.crt"))
        serials.append(cert.serial_number)
        if cert.serial_number not in entries:
            entries[cert.serial_number] = (
                x509.RevokedCertificateBuilder()
                .serial_number(cert.serial_number)
                .revocation_date(now)
                .build()
            )
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - datetime.timedelta(minutes=5))
        .next_update(now + datetime.timedelta(days=VALID_DAYS))
    )
    for entry in entries.values():
        builder = builder.add_revoked_certificate(entry)
    crl = builder.sign(ca_key, hashes.SHA256())
    target = certs_dir / "crl.pem"
    tmp = certs_dir / ".crl.pem.tmp"
    tmp.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    os.replace(tmp, target)  # a server polling the file never reads half of it
    return serials


def load_crl(certs_dir, *, verify=True):
    """``certs_dir/crl.pem`` as an ``x509.CertificateRevocationList``, or None if there is none.

    Raises ValueError, naming the file, if it is unreadable or not signed by ``ca.crt``."""
    path = pathlib.Path(certs_dir) / "crl.pem"
    if not path.is_file():
        return None
    try:
        crl = x509.load_pem_x509_crl(path.read_bytes())
    except ValueError as e:
        raise ValueError(f"{path}: not a PEM certificate revocation list ({e})") from e
    if verify:
        ca_cert = x509.load_pem_x509_certificate(_read(certs_dir, "ca.crt"))
        if not crl.is_signature_valid(ca_cert.public_key()):
            raise ValueError(f"{path}: not signed by {path.parent / 'ca.crt'}")
    return crl


def revoked_serials(certs_dir):
    """The serials in the verified CRL (empty without one)."""
    crl = load_crl(certs_dir)
    return frozenset(e.serial_number for e in crl) if crl is not None else frozenset()


def _read(certs_dir, name):
    path = pathlib.Path(certs_dir) / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: make certificates with python -m launch.make_certs")
    return path.read_bytes()


def known_cameras(certs_dir):
    """The camera ids in ``certs_dir/cameras.txt``."""
    return tuple(
        line.strip() for line in _read(certs_dir, "cameras.txt").decode().splitlines() if line.strip()
    )


def server_credentials(certs_dir):
    """gRPC server credentials that require a client certificate signed by ``ca.crt``."""
    return grpc.ssl_server_credentials(
        [(_read(certs_dir, "server.key"), _read(certs_dir, "server.crt"))],
        root_certificates=_read(certs_dir, "ca.crt"),
        require_client_auth=True,
    )


def camera_credentials(certs_dir, camera_id):
    """gRPC channel credentials presenting ``<camera_id>.crt`` and trusting only ``ca.crt``."""
    return grpc.ssl_channel_credentials(
        root_certificates=_read(certs_dir, "ca.crt"),
        private_key=_read(certs_dir, f"{camera_id}.key"),
        certificate_chain=_read(certs_dir, f"{camera_id}.crt"),
    )


def peer_serial(context):
    """The serial number of a gRPC call's verified client certificate, or None."""
    pems = context.auth_context().get("x509_pem_cert") or []
    if not pems:
        return None
    return x509.load_pem_x509_certificate(pems[0]).serial_number


def peer_common_name(context):
    """The CN of the verified client certificate of a gRPC call, or None."""
    auth = context.auth_context()
    names = auth.get("x509_common_name") or []
    return names[0].decode() if names else None
