"""A local ESPN-compatible scoreboard server: serves saved or scripted responses on 127.0.0.1.

Same paths as ESPN (`/apis/site/v2/sports/{football/nfl|...}/scoreboard`), so `EspnClient` pointed at
`server.base_url` cannot tell the difference. Used by tests, demos and replays of recorded ESPN bodies.
Responses are queued per sport: each request takes the next one, the last one repeats.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from precog.feeds.espn import SPORT_PATHS

_PATH_TO_SPORT = {f"/apis/site/v2/sports/{path}/scoreboard": sport for sport, path in SPORT_PATHS.items()}


@dataclass(frozen=True, slots=True)
class ServedResponse:
    status: int
    body: bytes
    content_type: str = "application/json"


@dataclass(frozen=True, slots=True)
class SeenRequest:
    sport: str | None
    path: str
    query: dict[str, list[str]]


def _body(value: bytes | str | dict[str, Any] | list[Any]) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value).encode()


class LocalEspnServer:
    """`with LocalEspnServer() as espn: espn.set_scoreboard("nfl", body); EspnClient(espn.base_url)`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._responses: dict[str, deque[ServedResponse]] = {}
        self._lock = threading.Lock()
        self.requests: list[SeenRequest] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                parts = urlsplit(self.path)
                sport = _PATH_TO_SPORT.get(parts.path.rstrip("/"))
                query = parse_qs(parts.query)
                with server._lock:
                    server.requests.append(SeenRequest(sport, parts.path, query))
                    day = (query.get("dates") or [""])[0]
                    queue = server._responses.get(f"{sport}@{day}") if day else None
                    queue = queue or server._responses.get(sport or "")
                    response = None
                    if queue:
                        response = queue[0] if len(queue) == 1 else queue.popleft()
                if response is None:
                    response = ServedResponse(404, b'{"code":404,"message":"not found"}')
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                self.wfile.write(response.body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
                return

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/apis/site/v2"

    def start(self) -> LocalEspnServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="local-espn", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LocalEspnServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_scoreboard(self, sport: str, body: bytes | str | dict[str, Any] | list[Any], status: int = 200, *,
                       day: str | None = None) -> None:
        """Serve this body for `sport` from now on (replaces anything queued); with `day` (YYYYMMDD) only for that
        day's scoreboard (`?dates=`), which otherwise gets the sport's body."""
        with self._lock:
            self._responses[sport if day is None else f"{sport}@{day}"] = deque([ServedResponse(status, _body(body))])

    def queue(self, sport: str, *bodies: bytes | str | dict[str, Any] | list[Any], status: int = 200) -> None:
        """Append responses served one per request (the last one then repeats)."""
        with self._lock:
            q = self._responses.setdefault(sport, deque())
            q.extend(ServedResponse(status, _body(b)) for b in bodies)

    def fail_next(self, sport: str, status: int, times: int = 1) -> None:
        """The next `times` requests for `sport` get `status`, then the current body again."""
        with self._lock:
            q = self._responses.setdefault(sport, deque())
            for _ in range(times):
                q.appendleft(ServedResponse(status, b'{"code":%d,"message":"injected failure"}' % status))

    def requests_for(self, sport: str) -> list[SeenRequest]:
        with self._lock:
            return [r for r in self.requests if r.sport == sport]
