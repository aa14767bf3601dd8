"""Server side of Kalshi's request signing: API key registry and RSA-PSS signature verification.

A request is signed over `timestamp_ms + METHOD + path` (path including `/trade-api/v2`, without the
query string) with RSA-PSS, SHA-256, MGF1(SHA-256) and salt length = digest length (32 bytes). The
timestamp must be within `max_skew_ms` of the exchange clock, so a client with a wrong clock gets a 401
that says so.
"""

from __future__ import annotations

import base64
import binascii
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from precog.venues.exchange.errors import InvalidRequest, Unauthorized

HEADER_KEY = "kalshi-access-key"
HEADER_TIMESTAMP = "kalshi-access-timestamp"
HEADER_SIGNATURE = "kalshi-access-signature"
AUTH_HEADERS = (HEADER_KEY, HEADER_TIMESTAMP, HEADER_SIGNATURE)

_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    user_id: str
    public_key: rsa.RSAPublicKey


def load_public_key(pem: bytes | str, *, source: str = "public key") -> rsa.RSAPublicKey:
    """An RSA public key from PEM (a private key PEM is accepted too; only its public half is kept)."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            raise InvalidRequest(f"{source} is not a PEM RSA public key") from None
        key = private.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise InvalidRequest(f"{source} is not an RSA key (Kalshi keys are RSA)")
    return key


class KeyRegistry:
    """API keys the exchange accepts, each bound to one account."""

    def __init__(self) -> None:
        self._keys: dict[str, ApiKey] = {}
        self._lock = threading.Lock()

    def register(self, user_id: str, public_key: rsa.RSAPublicKey | bytes | str,
                 key_id: str | None = None) -> ApiKey:
        if not isinstance(public_key, rsa.RSAPublicKey):
            public_key = load_public_key(public_key)
        kid = key_id or str(uuid.uuid4())
        if not kid.strip() or len(kid) > 200:
            raise InvalidRequest(f"key id {kid!r} is not valid")
        with self._lock:
            existing = self._keys.get(kid)
            if existing is not None and existing.user_id != user_id:
                raise InvalidRequest(f"key id {kid} is already registered to another account")
            api_key = ApiKey(kid, user_id, public_key)
            self._keys[kid] = api_key
            return api_key

    def get(self, key_id: str) -> ApiKey | None:
        return self._keys.get(key_id)

    def keys(self) -> list[ApiKey]:
        with self._lock:
            return list(self._keys.values())

    def verify(self, headers: Mapping[str, str], method: str, path: str, now_ms: int, max_skew_ms: int) -> str:
        """The account id of a correctly signed request, else Unauthorized with the reason."""
        missing = [h.upper() for h in AUTH_HEADERS if not headers.get(h)]
        if missing:
            raise Unauthorized(f"missing authentication header(s): {', '.join(missing)}",
                               code="missing_authentication")
        key_id = headers[HEADER_KEY]
        api_key = self._keys.get(key_id)
        if api_key is None:
            raise Unauthorized(f"unknown API key id {key_id!r}", code="invalid_api_key")
        ts_text = headers[HEADER_TIMESTAMP].strip()
        if not ts_text.isdigit():
            raise Unauthorized(f"KALSHI-ACCESS-TIMESTAMP must be milliseconds since the epoch, got {ts_text!r}",
                               code="invalid_timestamp")
        skew = int(ts_text) - now_ms
        if abs(skew) > max_skew_ms:
            direction = "ahead of" if skew > 0 else "behind"
            raise Unauthorized(
                f"request timestamp is {abs(skew) / 1000:.1f} s {direction} the exchange clock (allowed "
                f"±{max_skew_ms / 1000:g} s); check the system clock (NTP) of the client",
                code="timestamp_out_of_range")
        try:
            signature = base64.b64decode(headers[HEADER_SIGNATURE], validate=True)
        except (binascii.Error, ValueError):
            raise Unauthorized("KALSHI-ACCESS-SIGNATURE is not base64", code="invalid_signature") from None
        message = f"{ts_text}{method.upper()}{path}".encode()
        try:
            api_key.public_key.verify(signature, message, _PSS, hashes.SHA256())
        except InvalidSignature:
            raise Unauthorized(
                "invalid signature: sign timestamp + METHOD + path (full path including /trade-api/v2, no query "
                "string) with RSA-PSS, SHA-256, MGF1(SHA-256), salt length 32",
                code="invalid_signature", details=f"expected message: {message.decode()}") from None
        return api_key.user_id


def generate_key_pair(directory: Path, key_id: str | None = None) -> tuple[str, Path, bytes]:
    """Create an RSA-2048 key pair; the private key is written to `directory/<key_id>.pem` (mode 600).

    Returns (key id, private key path, public key PEM)."""
    kid = key_id or str(uuid.uuid4())
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{kid}.pem"
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(pem)
    public = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    return kid, path, public
