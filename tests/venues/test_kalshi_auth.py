"""Kalshi request signing: test vectors, key loading errors, environment variables, secrecy."""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from precog.venues.kalshi.auth import (
    HEADER_KEY,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    KalshiSigner,
    credentials_from_env,
    load_private_key,
    signing_message,
    verify_signature,
)
from precog.venues.kalshi.errors import KalshiConfigError

KEY_ID = "a952bcbe-ec3b-4b5b-b8f9-11dae589608c"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def key_file(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> Path:
    path = tmp_path / "kalshi.pem"
    path.write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)
    return path


def test_signed_string_is_timestamp_method_full_path_without_query() -> None:
    assert signing_message(1703123456789, "get", "/trade-api/v2/portfolio/balance") == (
        b"1703123456789GET/trade-api/v2/portfolio/balance"
    )
    assert signing_message("1703123456789", "POST", "/trade-api/v2/portfolio/orders?subaccount=0") == (
        b"1703123456789POST/trade-api/v2/portfolio/orders"
    )
    url = "https://api.elections.kalshi.com/trade-api/v2/markets?limit=5&cursor=abc"
    assert signing_message(1, "GET", url) == b"1GET/trade-api/v2/markets"


def test_signature_verifies_with_public_key_and_uses_pss_digest_length_salt(key_file: Path) -> None:
    signer = KalshiSigner.from_files(KEY_ID, key_file)
    headers = signer.headers("GET", "/trade-api/v2/portfolio/balance?x=1", timestamp_ms=1703123456789)
    assert headers[HEADER_KEY] == KEY_ID
    assert headers[HEADER_TIMESTAMP] == "1703123456789"
    public = signer.private_key.public_key()
    expected = b"1703123456789GET/trade-api/v2/portfolio/balance"
    assert verify_signature(public, headers[HEADER_SIGNATURE], expected)
    # salt length is exactly the digest length (32): verification with that explicit length succeeds ...
    public.verify(
        base64.b64decode(headers[HEADER_SIGNATURE]),
        expected,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )
    # ... and any other message (query included, other method, other path) does not verify
    assert not verify_signature(public, headers[HEADER_SIGNATURE], expected + b"?x=1")
    assert not verify_signature(public, headers[HEADER_SIGNATURE], b"1703123456789POST/trade-api/v2/portfolio/balance")
    assert not verify_signature(public, headers[HEADER_SIGNATURE], b"1703123456789GET/portfolio/balance")


def test_signatures_agree_with_official_sdk(key_file: Path) -> None:
    """Kalshi's own SDK signs the same bytes: its signature verifies against our signing message."""
    from kalshi_python_sync.auth import KalshiAuth

    sdk = KalshiAuth(KEY_ID, key_file.read_text())
    url = "http://127.0.0.1:9/trade-api/v2/portfolio/orders?ticker=X"
    headers = sdk.create_auth_headers("POST", url)
    ts = headers["KALSHI-ACCESS-TIMESTAMP"]
    public = load_private_key(key_file).public_key()
    assert verify_signature(public, headers["KALSHI-ACCESS-SIGNATURE"], signing_message(ts, "POST", url))
    ours = KalshiSigner.from_files(KEY_ID, key_file).headers("POST", url, timestamp_ms=int(ts))
    assert verify_signature(public, ours[HEADER_SIGNATURE], signing_message(ts, "POST", "/trade-api/v2/portfolio/orders"))


def test_missing_key_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(KalshiConfigError, match=str(missing)) as info:
        load_private_key(missing)
    assert "does not exist" in str(info.value)


def test_garbage_key_file_is_one_clear_error_without_its_contents(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN RSA PRIVATE KEY-----\nSUPERSECRETMATERIAL\n-----END RSA PRIVATE KEY-----\n")
    with pytest.raises(KalshiConfigError) as info:
        load_private_key(bad)
    message = str(info.value)
    assert str(bad) in message and "not a valid PEM private key" in message
    assert "SUPERSECRET" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_directory_encrypted_and_non_rsa_keys_are_refused(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(KalshiConfigError, match="is a directory"):
        load_private_key(tmp_path)
    encrypted = tmp_path / "enc.pem"
    encrypted.write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        )
    )
    with pytest.raises(KalshiConfigError, match="password-protected"):
        load_private_key(encrypted)
    ec_file = tmp_path / "ec.pem"
    ec_file.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(KalshiConfigError, match="non-RSA"):
        load_private_key(ec_file)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can read any file")
def test_unreadable_key_file(key_file: Path) -> None:
    key_file.chmod(0o000)
    try:
        with pytest.raises(KalshiConfigError, match="not readable"):
            load_private_key(key_file)
    finally:
        key_file.chmod(0o600)


def test_group_readable_key_file_warns(key_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    key_file.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="precog.venues.kalshi.auth"):
        load_private_key(key_file)
    assert any("accessible by group/others" in r.getMessage() and "chmod 600" in r.getMessage() for r in caplog.records)
    caplog.clear()
    key_file.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="precog.venues.kalshi.auth"):
        load_private_key(key_file)
    assert not caplog.records


def test_signer_repr_never_shows_key_material(key_file: Path) -> None:
    signer = KalshiSigner.from_files(KEY_ID, key_file)
    text = repr(signer) + str(signer)
    assert KEY_ID in text
    assert "PRIVATE" not in text and "RSAPrivateKey" not in text and "object at" not in text


def test_env_names_and_aliases(key_file: Path) -> None:
    path = str(key_file)
    assert credentials_from_env(environ={}) is None
    assert credentials_from_env(environ={"KALSHI_API_KEY_ID": "k1", "KALSHI_PRIVATE_KEY_PATH": path}) == ("k1", path)
    assert credentials_from_env(environ={"KALSHI_API_KEY": "k2", "KALSHI_PRIVATE_KEY_PATH": path}) == ("k2", path)
    demo = {"KALSHI_DEMO_KEY_ID": "d", "KALSHI_DEMO_KEYFILE": path}
    assert credentials_from_env("demo", demo) == ("d", path)
    assert credentials_from_env("prod", demo) is None  # a demo key is never used for prod
    prod = {"KALSHI_PROD_KEY_ID": "p", "KALSHI_PROD_KEYFILE": path}
    assert credentials_from_env("prod", prod) == ("p", path)
    prod2 = {"KALSHI_PROD_API_KEY_ID": "p2", "KALSHI_PROD_API_KEYFILE": path}
    assert credentials_from_env("prod", prod2) == ("p2", path)
    # environment-specific names win over the generic pair for their environment
    both = {**demo, "KALSHI_API_KEY_ID": "generic", "KALSHI_PRIVATE_KEY_PATH": path}
    assert credentials_from_env("demo", both) == ("d", path)
    assert credentials_from_env("local", both) == ("generic", path)


def test_half_configured_credentials_name_the_missing_variable(key_file: Path) -> None:
    with pytest.raises(KalshiConfigError, match="KALSHI_PRIVATE_KEY_PATH"):
        credentials_from_env(environ={"KALSHI_API_KEY_ID": "k"})
    with pytest.raises(KalshiConfigError, match="KALSHI_API_KEY_ID"):
        credentials_from_env(environ={"KALSHI_PRIVATE_KEY_PATH": str(key_file)})
