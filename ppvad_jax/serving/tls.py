"""Mutual TLS: a development CA and certificates, and the gRPC credentials built from them.

``make_development_pki`` writes, under one directory::

    ca.crt  ca.key            the CA (keep ca.key off the server and cameras in production)
    server.crt  server.key    SAN localhost, 127.0.0.1 (and any extra hosts)
    <camera>.crt  <camera>.key  one client certificate per camera, CN = camera id
    cameras.txt               the camera ids, one a line: the server's default known cameras

Keys are ECDSA P-256 (fast handshakes, small certificates); certificates last
one year. This is a development PKI: a deployment issues the same shapes of
certificate from its own CA (the server only needs ``ca.crt`` and its own
pair, a camera ``ca.crt`` and its own pair). Certificates are never
committed (``.gitignore``: ``certs/``).

The server requires a client certificate that chains to ``ca.crt``
(``require_client_auth=True``): a client with none, or with one from another
CA, fails the TLS handshake and never reaches the service. The camera id is
taken from the verified certificate's CN, never from the message.
"""

import datetime
import ipaddress
import pathlib

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


def _write(out_dir, stem, cert, key):
    (out_dir / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path = out_dir / f"{stem}.key"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)


def _san(host):
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def make_development_pki(out_dir, cameras, *, server_hosts=("localhost", "127.0.0.1")):
    """Writes a CA, a server certificate and one client certificate per camera (module docstring).

    Returns:
      The output directory (a ``pathlib.Path``).
    """
    cameras = [c.strip() for c in cameras if c.strip()]
    if not cameras:
        raise ValueError("give at least one camera id")
    for camera in cameras:
        if camera in ("ca", "server") or not all(ch.isalnum() or ch in "-_." for ch in camera):
            raise ValueError(
                f"camera id {camera!r}: use letters, digits, '-', '_', '.', not 'ca' or 'server'"
            )
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
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
        key = _key()
        cert = _certificate(
            subject=_name(camera), subject_key=key, issuer=ca_name, issuer_key=ca_key, ca=False,
            usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        )  # fmt: skip
        _write(out_dir, camera, cert, key)
    (out_dir / "cameras.txt").write_text("".join(f"{c}\n" for c in cameras))
    return out_dir


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


def peer_common_name(context):
    """The CN of the verified client certificate of a gRPC call, or None."""
    auth = context.auth_context()
    names = auth.get("x509_common_name") or []
    return names[0].decode() if names else None
