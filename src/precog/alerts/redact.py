"""Keep secrets out of logs, errors and database rows.

Every error text a channel produces passes through `Redactor.redact` before it is logged or stored. The
redactor knows the values of the secret environment variables (passwords, tokens, webhook URLs whose path
is the secret, Apprise URLs) and also masks any `scheme://user:password@` credentials.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

# Variables whose whole value is secret.
SECRET_VARS: tuple[str, ...] = ("SMTP_PASSWORD", "TWILIO_AUTH_TOKEN", "PRECOG_WEBHOOK_SECRET")
# Variables holding URLs whose path/query/userinfo carry a token (Slack's webhook path is the credential).
SECRET_URL_VARS: tuple[str, ...] = ("SLACK_WEBHOOK_URL", "CUSTOM_WEBHOOK_URL", "PRECOG_APPRISE_URLS")

MASK = "***"
_USERINFO_RE = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@")
_MIN_SECRET_LEN = 4


def split_urls(value: str) -> list[str]:
    """PRECOG_APPRISE_URLS style lists: separated by commas and/or whitespace."""
    return [u for u in re.split(r"[,\s]+", value.strip()) if u]


def safe_url(url: str) -> str:
    """What may be shown of a secret-bearing URL: scheme and host of an http(s) URL; only the scheme of any
    other (Apprise) URL, whose "host" is often the token itself (pover://USER@TOKEN, prowl://APIKEY)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    if not parts.scheme:
        return MASK
    if parts.scheme.lower() not in ("http", "https"):
        return f"{parts.scheme}://{MASK}"
    if not parts.hostname:
        return MASK
    return f"{parts.scheme}://{parts.hostname}/{MASK}"


def _url_secrets(url: str) -> list[str]:
    out: list[str] = []
    try:
        parts = urlsplit(url)
    except ValueError:
        return out
    if parts.password:
        out.append(parts.password)
    if parts.username and parts.scheme.lower() not in ("http", "https"):
        out.append(parts.username)  # Apprise puts tokens in the user part (tgram://bottoken@...)
    path = parts.path.strip("/")
    if path and len(path) >= 8:
        out.append(path)
        out.extend(seg for seg in path.split("/") if len(seg) >= 8)
    if parts.query and len(parts.query) >= 8:
        out.append(parts.query)
    if parts.scheme.lower() not in ("http", "https") and parts.netloc:
        out.append(parts.netloc)  # e.g. json://host:port or token-bearing hosts of Apprise schemes
        host = parts.netloc.rpartition("@")[2]
        host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        # The host of an Apprise URL may be a token: masked as written and as urlsplit lower-cases it.
        out.extend(h for h in {host, host.lower()} if h)
    return out


class Redactor:
    def __init__(self, secrets: Iterable[str] = (), urls: Iterable[str] = ()) -> None:
        replacements: dict[str, str] = {s: MASK for s in secrets if s and len(s) >= _MIN_SECRET_LEN}
        for url in urls:
            for part in _url_secrets(url):
                if len(part) >= _MIN_SECRET_LEN:
                    replacements.setdefault(part, MASK)
            replacements[url] = safe_url(url)
        # Longest first so a URL is replaced whole before its parts.
        self._pairs = sorted(replacements.items(), key=lambda kv: len(kv[0]), reverse=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Redactor:
        env = os.environ if environ is None else environ
        secrets = [env.get(var, "").strip() for var in SECRET_VARS]
        urls = [url for var in SECRET_URL_VARS for url in split_urls(env.get(var, ""))]
        return cls(secrets, urls)

    @property
    def active(self) -> bool:
        return bool(self._pairs)

    def redact(self, text: str) -> str:
        for secret, replacement in self._pairs:
            if secret in text:
                text = text.replace(secret, replacement)
        return _USERINFO_RE.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)

    def redact_obj(self, value: object) -> object:
        """Redact every string inside a JSON-like structure."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self.redact_obj(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact_obj(v) for v in value]
        return value


class RedactingFilter(logging.Filter):
    """Masks secrets in records of third-party loggers (httpx logs full request URLs at INFO)."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        if self.redactor.active:
            record.msg = self.redactor.redact(record.getMessage())
            record.args = None
        return True


def install_log_redaction(redactor: Redactor, loggers: Iterable[str] = ("httpx", "httpcore", "apprise")) -> None:
    for name in loggers:
        logger = logging.getLogger(name)
        for existing in list(logger.filters):
            if isinstance(existing, RedactingFilter):
                logger.removeFilter(existing)
        logger.addFilter(RedactingFilter(redactor))
