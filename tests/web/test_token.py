"""The dashboard token: generated once into a 0600 file, PRECOG_DASHBOARD_TOKEN wins, unsafe files refused."""

from __future__ import annotations

import hmac
import stat
from pathlib import Path

import pytest

from precog.web import auth
from precog.web.auth import DashboardToken, TokenError, bearer_of, load_or_create_token


@pytest.fixture(autouse=True)
def no_env_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(auth.TOKEN_ENV, raising=False)


def test_first_start_generates_a_private_token_file_and_later_starts_reuse_it(tmp_path: Path) -> None:
    path = tmp_path / "home" / "dashboard_token"
    first = load_or_create_token(path)
    assert first.generated and len(first.value) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = load_or_create_token(path)
    assert second.value == first.value and not second.generated


def test_environment_token_wins_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "dashboard_token"
    load_or_create_token(path)
    monkeypatch.setenv(auth.TOKEN_ENV, "from-the-environment-123456")
    tok = load_or_create_token(path)
    assert tok.value == "from-the-environment-123456" and tok.source == "env"


def test_short_or_world_readable_tokens_are_refused_with_the_reason(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(auth.TOKEN_ENV, "short")
    with pytest.raises(TokenError, match="shorter than 16"):
        load_or_create_token(tmp_path / "t")
    monkeypatch.delenv(auth.TOKEN_ENV)
    path = tmp_path / "dashboard_token"
    path.write_text("a-long-enough-token-value\n")
    path.chmod(0o644)
    with pytest.raises(TokenError, match="chmod 600"):
        load_or_create_token(path)


def test_the_token_never_shows_in_its_repr() -> None:
    tok = DashboardToken("secret-value-that-must-not-leak", "env")
    assert "secret-value" not in repr(tok) and "secret-value" not in str(tok) and "secret-value" not in f"{tok}"


def test_comparison_goes_through_hmac_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    tok = DashboardToken("the-right-token-0123456789", "env")
    assert tok.matches("the-right-token-0123456789")
    assert not tok.matches("the-right-token-0123456780")
    assert not tok.matches("")
    assert len(calls) == 3


@pytest.mark.parametrize(("header", "expected"), [
    ("Bearer abc", "abc"), ("bearer   abc  ", "abc"), ("Basic abc", None), ("Bearer", None), ("", None), (None, None),
])
def test_bearer_header_parsing(header: str | None, expected: str | None) -> None:
    assert bearer_of(header) == expected
