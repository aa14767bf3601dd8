"""Kalshi request signing: RSA-PSS(SHA-256, MGF1(SHA-256), salt = digest length) over
`timestamp_ms + METHOD + path`, where path is the full URL path (including `/trade-api/v2`) without
the query string. Sent as the KALSHI-ACCESS-KEY / -TIMESTAMP / -SIGNATURE headers.

Credentials come from `KALSHI_API_KEY_ID` + `KALSHI_PRIVATE_KEY_PATH`; older names used across the
project's documents are accepted as aliases. The private key never appears in a repr, log or error.
"""

from __future__ import annotations

import base64
import logging
import os
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from precog.venues.kalshi.errors import KalshiConfigError

log = logging.getLogger(__name__)

HEADER_KEY = "KALSHI-ACCESS-KEY"
HEADER_TIMESTAMP = "KALSHI-ACCESS-TIMESTAMP"
HEADER_SIGNATURE = "KALSHI-ACCESS-SIGNATURE"

_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)

# (key id variable, key file variable) pairs, preferred first. Environment-specific names are tried
# for their environment before the generic ones.
GENERIC_ENV_PAIRS: tuple[tuple[str, str], ...] = (
    ("KALSHI_API_KEY_ID", "KALSHI_PRIVATE_KEY_PATH"),
    ("KALSHI_API_KEY", "KALSHI_PRIVATE_KEY_PATH"),
)
ENV_SPECIFIC_PAIRS: dict[str, tuple[tuple[str, str], ...]] = {
    "demo": (("KALSHI_DEMO_KEY_ID", "KALSHI_DEMO_KEYFILE"),),
    "prod": (
        ("KALSHI_PROD_KEY_ID", "KALSHI_PROD_KEYFILE"),
        ("KALSHI_PROD_API_KEY_ID", "KALSHI_PROD_API_KEYFILE"),
    ),
}


def signing_message(timestamp_ms: int | str, method: str, url_or_path: str) -> bytes:
    """The exact bytes Kalshi verifies: timestamp + METHOD + path (query string removed)."""
    path = urlsplit(url_or_path).path if "://" in url_or_path else url_or_path.split("?", 1)[0]
    return f"{timestamp_ms}{method.upper()}{path}".encode()


def load_private_key(path: str | os.PathLike[str]) -> rsa.RSAPrivateKey:
    """Read an unencrypted PEM RSA private key, with one clear error naming the file if it is unusable."""
    p = Path(path).expanduser()
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise KalshiConfigError(f"Kalshi private key file {p} does not exist") from None
    except IsADirectoryError:
        raise KalshiConfigError(f"Kalshi private key path {p} is a directory, not a PEM file") from None
    except PermissionError:
        raise KalshiConfigError(f"Kalshi private key file {p} is not readable (permission denied)") from None
    except OSError as exc:
        raise KalshiConfigError(f"Kalshi private key file {p} could not be read ({exc.strerror})") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise KalshiConfigError(
            f"Kalshi private key file {p} is password-protected; Kalshi keys are unencrypted PEM"
        ) from None
    except Exception:  # cryptography raises several types; the message must never echo key data
        raise KalshiConfigError(
            f"Kalshi private key file {p} is not a valid PEM private key (expected the RSA key "
            "downloaded when the API key was created)"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KalshiConfigError(f"Kalshi private key file {p} holds a non-RSA key; Kalshi needs RSA")
    _warn_if_exposed(p)
    return key


def _warn_if_exposed(p: Path) -> None:
    try:
        mode = p.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "Kalshi private key file %s is accessible by group/others (mode %s); run `chmod 600 %s`",
            p,
            oct(stat.S_IMODE(mode)),
            p,
        )


@dataclass(frozen=True)
class KalshiSigner:
    """Signs requests for one API key. The private key is excluded from repr and comparisons."""

    key_id: str
    private_key: rsa.RSAPrivateKey = field(repr=False, compare=False)
    key_path: str = ""

    @classmethod
    def from_files(cls, key_id: str, private_key_path: str | os.PathLike[str]) -> KalshiSigner:
        if not key_id or not key_id.strip():
            raise KalshiConfigError("Kalshi API key id is empty")
        return cls(key_id.strip(), load_private_key(private_key_path), str(private_key_path))

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.private_key.sign(message, _PSS, hashes.SHA256())).decode("ascii")

    def headers(self, method: str, url_or_path: str, timestamp_ms: int | None = None) -> dict[str, str]:
        ts = int(time.time() * 1000) if timestamp_ms is None else int(timestamp_ms)
        return {
            HEADER_KEY: self.key_id,
            HEADER_TIMESTAMP: str(ts),
            HEADER_SIGNATURE: self.sign(signing_message(ts, method, url_or_path)),
        }

    def public_key_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def verify_signature(public_key: rsa.RSAPublicKey, signature_b64: str, message: bytes) -> bool:
    """True when `signature_b64` is a valid Kalshi signature of `message` (used by tests and tools)."""
    try:
        public_key.verify(base64.b64decode(signature_b64), message, _PSS, hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def credentials_from_env(
    env: str | None = None, environ: Mapping[str, str] | None = None
) -> tuple[str, str] | None:
    """(key id, private key path) from the environment, or None when no key id is configured.

    A key id without a key file (or the reverse) is an error naming the missing variable.
    """
    environ = os.environ if environ is None else environ
    pairs = ENV_SPECIFIC_PAIRS.get(env or "", ()) + GENERIC_ENV_PAIRS
    for id_var, file_var in pairs:
        key_id = environ.get(id_var, "").strip()
        if not key_id:
            continue
        key_file = environ.get(file_var, "").strip()
        if not key_file:
            raise KalshiConfigError(f"{id_var} is set but {file_var} (the private key file) is not")
        return key_id, key_file
    for _, file_var in pairs:
        if environ.get(file_var, "").strip():
            id_vars = sorted({i for i, f in pairs if f == file_var})
            raise KalshiConfigError(f"{file_var} is set but no API key id ({' or '.join(id_vars)})")
    return None


def signer_from_env(env: str | None = None, environ: Mapping[str, str] | None = None) -> KalshiSigner | None:
    creds = credentials_from_env(env, environ)
    if creds is None:
        return None
    return KalshiSigner.from_files(*creds)
