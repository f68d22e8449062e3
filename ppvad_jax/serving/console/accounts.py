"""Operator accounts: a JSON file of users, roles and scrypt password hashes.

  {"users": {"alice": {"role": "operator", "scrypt": "<n>$<r>$<p>$<salt hex>$<hash hex>"}}}

Roles: ``viewer`` sees everything the console shows; ``operator`` may also acknowledge and
resolve alerts. Passwords are never stored, only scrypt (``hashlib.scrypt``, n = 2^14, r = 8,
p = 1: about 50 ms and 16 MiB a check, so guessing is slow) with a random 16-byte salt. The file
is written 0600 through a temporary file and a rename, like the project's private keys.
"""

import hashlib
import hmac
import json
import pathlib
import re
import secrets

from ppvad_jax.serving import tls

ROLES = ("viewer", "operator")
_N, _R, _P = 2**14, 8, 1
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MIN_PASSWORD = 10


def hash_password(password, *, salt=None):
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"{_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def check_password(password, stored):
    """Whether ``password`` matches ``stored`` (constant-time comparison of the digests)."""
    try:
        n, r, p, salt, digest = stored.split("$")
        got = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)


def write_private(path, text):
    """``text`` into ``path`` as ``tls.write_private`` writes keys (0600, fsync, rename over),
    creating the folder first."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tls.write_private(path, text.encode())


class Accounts:
    """The users file at ``path`` (read at each login, so an added user needs no restart)."""

    def __init__(self, path):
        self.path = pathlib.Path(path)

    def _load(self):
        if not self.path.is_file():
            return {}
        try:
            users = json.loads(self.path.read_text())["users"]
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{self.path}: not a console users file ({e})") from e
        return users

    def add(self, username, password, role):
        """Adds or replaces a user; refuses bad names, unknown roles and short passwords."""
        if not _NAME.match(username or ""):
            raise ValueError(f"user name {username!r}: 1-64 letters, digits, '_', '.' or '-'")
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        if len(password) < MIN_PASSWORD:
            raise ValueError(f"password of {username!r} is shorter than {MIN_PASSWORD} characters")
        users = self._load()
        users[username] = {"role": role, "scrypt": hash_password(password)}
        write_private(self.path, json.dumps({"users": users}, indent=1, sort_keys=True))

    def authenticate(self, username, password):
        """The user's role if the password is right, else None (unknown users cost a hash too)."""
        user = self._load().get(username)
        stored = user["scrypt"] if user else hash_password("not a password")
        ok = check_password(password, stored)
        return user["role"] if ok and user and user.get("role") in ROLES else None

    def role(self, username):
        """The user's current role (a removed user or changed role takes effect at once)."""
        user = self._load().get(username)
        return user.get("role") if user and user.get("role") in ROLES else None


def session_secret(path):
    """The key that signs session cookies, created (0600) on first use and kept, so a restarted
    console keeps its operators logged in; deleting the file logs everyone out."""
    path = pathlib.Path(path)
    if not path.is_file():
        write_private(path, secrets.token_hex(32))
    return path.read_text().strip()
