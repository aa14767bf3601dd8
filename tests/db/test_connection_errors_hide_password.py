"""A database URL's password never appears in an error, whatever is wrong with the URL.

Product rule: secrets are redacted in errors. `connect()` only handled psycopg's OperationalError; a malformed
URL raises ProgrammingError whose text quotes the URL (or the offending password), and the CLI printed it
verbatim. `redact_url` also missed quoted keyword passwords (`password='a b'`) and a password holding '@'.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from precog.db.connection import DatabaseUnavailable, connect, redact_url

BAD_URLS = [
    ("mysql://bob:s3cr3t@127.0.0.1:1/precog", ["s3cr3t"]),  # not a PostgreSQL URL
    ("postgresql://bob:s3 cr3t@127.0.0.1:1/precog", ["s3 cr3t", "cr3t"]),  # unencoded space
    ("host=127.0.0.1 port=1 user=bob password='s3 cr3t'", ["s3 cr3t", "cr3t"]),  # quoted keyword value
    ("postgresql://bob:p@ssw0rd@127.0.0.1:1/precog", ["p@ssw0rd", "ssw0rd"]),  # unencoded '@'
    ("postgresql://bob:s3cr3t@127.0.0.1:1/precog?sslmode=bogus", ["s3cr3t"]),
]


@pytest.mark.parametrize(("url", "secrets"), BAD_URLS)
def test_connect_error_is_readable_and_password_free(url: str, secrets: list[str]):
    with pytest.raises(DatabaseUnavailable) as err:
        connect(url, connect_timeout=2)
    for secret in secrets:
        assert secret not in str(err.value)
    for secret in secrets:
        assert secret not in redact_url(url)


def test_cli_reports_a_malformed_url_without_the_password(tmp_path: Path):
    env = dict(os.environ, PRECOG_HOME=str(tmp_path / "home"), NO_COLOR="1",
               PRECOG_DATABASE_URL="mysql://bob:s3cr3t@127.0.0.1:1/precog")
    result = subprocess.run([sys.executable, "-m", "precog", "db", "status"], capture_output=True, text=True,
                            env=env, timeout=120, check=False)
    assert result.returncode == 1
    assert "s3cr3t" not in result.stderr + result.stdout
    assert "database" in result.stderr and "ProgrammingError" not in result.stderr
