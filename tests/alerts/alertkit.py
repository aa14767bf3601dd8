"""Test kit for the notification tests: real local servers (an HTTP recorder for Twilio / Slack / webhook /
Apprise json://, aiosmtpd SMTP servers with AUTH, STARTTLS or implicit TLS using a self-signed certificate made
per session) and settings helpers."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from precog.alerts.clock import ManualClock
from precog.alerts.settings import AlertSettings

SMTP_USER = "alerts@example.test"
SMTP_PASSWORD = "s3cret-smtp-pw"  # noqa: S105 - test credential


# ---------------------------------------------------------------------------------------------- settings
def make_settings(**overrides: Any) -> AlertSettings:
    """Defaults for tests: routing like system.yaml, channels enabled as asked, fast retries."""
    base = AlertSettings(environment="test", rate_limits={}, worker_poll_seconds=0.2)
    enabled = dict(base.enabled)
    enabled.update(overrides.pop("enabled", {}))
    return replace(base, enabled=enabled, **overrides)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


# ---------------------------------------------------------------------------------------------- HTTP recorder
@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}

    def basic_auth(self) -> tuple[str, str] | None:
        value = self.headers.get("authorization", "")
        if not value.lower().startswith("basic "):
            return None
        user, _, pw = base64.b64decode(value[6:]).decode().partition(":")
        return user, pw


Responder = Callable[[Request], tuple[int, dict[str, str], bytes]]


@dataclass
class HttpRecorder:
    url: str
    requests: list[Request] = field(default_factory=list)
    responder: Responder | None = None
    on_request: Callable[[Request], None] | None = None

    def respond(self, req: Request) -> tuple[int, dict[str, str], bytes]:
        if self.on_request is not None:
            self.on_request(req)
        if self.responder is not None:
            return self.responder(req)
        return 200, {"Content-Type": "text/plain"}, b"ok"


@pytest.fixture
def http_server() -> Iterator[HttpRecorder]:
    recorder = HttpRecorder(url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server naming
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if len(body) < length:  # the sender died mid-request (a killed process): nothing was delivered
                self.close_connection = True
                return
            req = Request("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            with lock:
                recorder.requests.append(req)
            status, headers, body = recorder.respond(req)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield recorder
    server.shutdown()
    server.server_close()


# ---------------------------------------------------------------------------------------------- TLS + SMTP
@dataclass(frozen=True)
class Cert:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


@pytest.fixture(scope="session")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> Cert:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return Cert(cert_path, key_path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: str | None


class SmtpHandler:
    def __init__(self, refuse_rcpt: bool = False) -> None:
        self.messages: list[Received] = []
        self.refuse_rcpt = refuse_rcpt

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:  # noqa: N802
        if self.refuse_rcpt:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        msg = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        data = session.auth_data
        login = data.decode() if isinstance(data, bytes) else data
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), msg, login))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    if isinstance(auth_data, LoginPassword) and auth_data.login == SMTP_USER.encode() \
            and auth_data.password == SMTP_PASSWORD.encode():
        return AuthResult(success=True, auth_data=auth_data.login)
    return AuthResult(success=False, handled=False)


@dataclass
class SmtpServer:
    port: int
    handler: SmtpHandler
    mode: str  # starttls | ssl | none

    def env(self, cert: Cert | None, **extra: str) -> dict[str, str]:
        env = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self.port), "SMTP_USERNAME": SMTP_USER,
               "SMTP_PASSWORD": SMTP_PASSWORD, "ALERT_FROM_EMAIL": "precog@example.test",
               "CRITICAL_ALERT_EMAILS": "oncall@example.test, boss@example.test",
               "DEFAULT_ALERT_EMAILS": "team@example.test"}
        if cert is not None:
            env["SMTP_CA_FILE"] = str(cert.cert)
        env.update(extra)
        return env


@pytest.fixture
def smtp_factory(self_signed: Cert) -> Iterator[Callable[..., SmtpServer]]:
    controllers: list[Controller] = []

    def start(mode: str = "starttls", refuse_rcpt: bool = False) -> SmtpServer:
        handler = SmtpHandler(refuse_rcpt=refuse_rcpt)
        port = free_port()
        kwargs: dict[str, Any] = {"authenticator": _authenticator, "hostname": "127.0.0.1", "port": port}
        if mode == "starttls":
            kwargs.update(tls_context=self_signed.server_context(), require_starttls=True, auth_require_tls=True)
        elif mode == "ssl":
            kwargs.update(ssl_context=self_signed.server_context(), auth_require_tls=False)
        else:
            kwargs.update(auth_require_tls=False)
        controller = Controller(handler, **kwargs)
        controller.start()
        controllers.append(controller)
        return SmtpServer(port, handler, mode)

    yield start
    for c in controllers:
        c.stop()



# ---------------------------------------------------------------------------------------------- manager + notifier
@dataclass
class Alerting:
    manager: Any
    notifier: Any
    console_out: Any

    def console_text(self) -> str:
        return str(self.console_out.getvalue())


@pytest.fixture
def alerting(db_url: str, clock: ManualClock, home: Path, tmp_path: Path) -> Iterator[Callable[..., Alerting]]:
    """Factory: an AlertManager + Notifier on this test's database, sharing the manual clock."""
    import io

    from rich.console import Console

    from precog.alerts import AlertManager, Notifier

    made: list[Any] = []

    def make(settings: AlertSettings | None = None, environ: dict[str, str] | None = None,
             **manager_kwargs: Any) -> Alerting:
        s = settings or make_settings()
        env = environ or {}
        out = io.StringIO()
        manager = AlertManager(db_url, settings=s, clock=clock, environ=env, spool_path=tmp_path / "spool.jsonl",
                               **manager_kwargs)
        notifier = Notifier(db_url, settings=s, clock=clock, environ=env, home=home,
                            console=Console(file=out, force_terminal=True, color_system="standard", width=200))
        made.append(manager)
        made.append(notifier)
        return Alerting(manager, notifier, out)

    yield make
    for obj in made:
        obj.close()
