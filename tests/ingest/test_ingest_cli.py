"""`precog ingest run`, `precog ingest status|replay` and `precog markets history`, run as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from feeds.espn_testkit import run_cli
from precog.cli.errors import UserError
from precog.feeds.espn_server import LocalEspnServer
from venues.conftest import LocalExchange

NE = "KXNFLGAME-25OCT05-NEBUF-NE"


def _env(db_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "PRECOG_DATABASE_URL": db_url, "NO_COLOR": "1", "COLUMNS": "200"}
    for key in ("KALSHI_API_KEY_ID", "KALSHI_PRIVATE_KEY_PATH", "KALSHI_BASE_URL"):
        env.pop(key, None)
    env.update(extra or {})
    return env


def _key_env(lx: LocalExchange) -> dict[str, str]:
    return {"KALSHI_API_KEY_ID": lx.key_id, "KALSHI_PRIVATE_KEY_PATH": str(lx.private_key_path)}


def precog(*args: str, db_url: str, env: dict[str, str] | None = None, timeout: float = 90
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "precog", *args], capture_output=True, text=True,
                          env=_env(db_url, env), timeout=timeout, check=False)


def test_once_snapshot_then_history_and_point_in_time(local_exchange: LocalExchange, db_url: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("KALSHI_API_KEY_ID", "KALSHI_PRIVATE_KEY_PATH", "KALSHI_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    local_exchange.counterparty_order(NE, "yes", "buy", 10, "0.40")
    run = ("ingest", "run", "--venue", "local", "--base-url", local_exchange.base_url, "--sports", "nfl",
           "--no-games", "--once")
    first = run_cli(*run, "--json")
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert summary["series"] == ["KXNFLGAME"] and summary["markets"]["markets"] == 2
    between = time.time()
    time.sleep(0.05)
    local_exchange.counterparty_order(NE, "no", "buy", 10, "0.52")
    second = precog(*run, db_url=db_url)  # the real entry point, in its own process
    assert second.returncode == 0, second.stderr
    assert "markets: 2 followed" in second.stdout

    history = run_cli("markets", "history", NE, "--json")
    assert history.exit_code == 0, history.output
    versions = json.loads(history.stdout)
    assert [(v["yes_bid"], v["yes_ask"], v["current"]) for v in versions] == [
        ("0.4000", "1.0000", False), ("0.4000", "0.4800", True)]
    at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(between)) + f".{int(between % 1 * 1e6):06d}Z"
    then = json.loads(run_cli("markets", "history", NE, "--at", at, "--json").stdout)
    assert then["yes_ask"] == "1.0000" and then["current"] is False
    table = run_cli("markets", "history", NE)
    assert table.exit_code == 0 and "0.4800" in table.stdout

    missing = run_cli("markets", "history", "KXNOPE-1")
    assert isinstance(missing.exception, UserError) and "no stored history" in str(missing.exception)
    early = run_cli("markets", "history", NE, "--at", "2001-01-01T00:00:00Z")
    assert isinstance(early.exception, UserError) and "had no stored state" in str(early.exception)
    bad = precog("markets", "history", NE, "--at", "yesterday", db_url=db_url)
    assert bad.returncode == 1 and "--at" in bad.stderr and "Traceback" not in bad.stderr


def test_bad_arguments_are_one_line_errors(db_url: str, local_exchange: LocalExchange) -> None:
    result = run_cli("ingest", "run", "--venue", "local", "--base-url", local_exchange.base_url, "--sports", "nba",
                     "--no-games", "--once")  # this exchange lists no NBA series
    assert isinstance(result.exception, UserError) and "KXNBAGAME" in str(result.exception)
    result = run_cli("ingest", "run", "--venue", "polymarket")
    assert isinstance(result.exception, UserError) and "--venue must be kalshi or local" in str(result.exception)
    result = run_cli("ingest", "run", "--sports", "nfl,cricket", "--once")
    assert isinstance(result.exception, UserError) and "cricket" in str(result.exception)
    result = run_cli("ingest", "run", "--no-games", "--no-markets")
    assert isinstance(result.exception, UserError) and "nothing to do" in str(result.exception)


def test_long_running_ingest_of_games_and_markets_with_recording(
        local_exchange: LocalExchange, db_url: str, espn_samples: dict[str, bytes], tmp_path: Path) -> None:
    """The real process: ESPN + local exchange streaming (with the account's key: the exchange, like Kalshi,
    refuses an unsigned stream), Ctrl-C, then games / status / replay commands."""
    local_exchange.exchange.create_event("KXNFLGAME-25NOV30DENWAS", "KXNFLGAME", "Denver at Washington")
    for code, name in (("DEN", "Denver"), ("WAS", "Washington")):
        local_exchange.exchange.create_market(f"KXNFLGAME-25NOV30DENWAS-{code}", "KXNFLGAME-25NOV30DENWAS",
                                              title=f"Will {name} win?", yes_sub_title=name)
    record = tmp_path / "rec"
    with LocalEspnServer() as espn:
        espn.set_scoreboard("nfl", espn_samples["nfl"])
        proc = subprocess.Popen(
            [sys.executable, "-m", "precog", "ingest", "run", "--venue", "local", "--base-url",
             local_exchange.base_url, "--sports", "nfl", "--record", str(record)],
            env=_env(db_url, {"PRECOG_ESPN_BASE_URL": espn.base_url, **_key_env(local_exchange)}),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            with psycopg.connect(db_url, autocommit=True) as conn:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    feeds = dict(conn.execute("SELECT feed, mode FROM ingest_feed_status").fetchall())
                    if feeds.get("local:markets") == "streaming" and "espn:nfl" in feeds:
                        break
                    time.sleep(0.2)
                else:
                    raise AssertionError(f"feeds never became healthy: {proc.stderr.read() if proc.poll() else ''}")
                local_exchange.counterparty_order(NE, "yes", "buy", 7, "0.61")
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    row = conn.execute("SELECT yes_bid FROM markets WHERE market_id = %s AND row_current_ind",
                                       (NE,)).fetchone()
                    if row and row[0] == Decimal("0.61"):
                        break
                    time.sleep(0.1)
                else:
                    raise AssertionError("the streamed quote never reached the database")
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "espn nfl: ok; 16 games" in out
    assert "linked KXNFLGAME-25NOV30DENWAS -> ESPN nfl game 401772931 (DEN @ WSH, by ticker codes)" in out
    assert "recorded" in out and "no API key" not in out

    games = json.loads(precog("games", "--live", "--json", db_url=db_url).stdout)
    [den] = [g for g in games if g["game_id"] == "401772931"]
    assert den["kalshi_events"][0]["event_id"] == "KXNFLGAME-25NOV30DENWAS"
    assert den["kalshi_events"][0]["markets"] == {"KXNFLGAME-25NOV30DENWAS-DEN": "away",
                                                  "KXNFLGAME-25NOV30DENWAS-WAS": "home"}

    status: dict[str, Any] = json.loads(precog("ingest", "status", "--json", db_url=db_url).stdout)
    assert status["data_breaker"]["open"] is False
    assert {f["feed"] for f in status["feeds"]} == {"local:markets", "espn:nfl"}

    replay = precog("ingest", "replay", str(record), "--source", "kalshi:ws", "--json", "--limit", "500",
                    db_url=db_url)
    assert replay.returncode == 0, replay.stderr
    assert '"yes_bid_dollars":"0.6100"' in replay.stdout.replace(" ", "").replace("\\", "")
    summary = precog("ingest", "replay", str(record), db_url=db_url)
    assert "espn:nfl" in summary.stdout and "local:rest" in summary.stdout and "kalshi:ws" in summary.stdout


def test_events_stored_before_the_poll_are_linked_by_it_and_shown(
        local_exchange: LocalExchange, db_url: str, espn_samples: dict[str, bytes]) -> None:
    """Which links an event, market discovery or the ESPN poll, depends on which comes second; the user sees the
    same line either way. Here the markets are stored first (a markets-only run), so the games-only poll links."""
    local_exchange.exchange.create_event("KXNFLGAME-25NOV30DENWAS", "KXNFLGAME", "Denver at Washington")
    for code, name in (("DEN", "Denver"), ("WAS", "Washington")):
        local_exchange.exchange.create_market(f"KXNFLGAME-25NOV30DENWAS-{code}", "KXNFLGAME-25NOV30DENWAS",
                                              title=f"Will {name} win?", yes_sub_title=name)
    base = ("ingest", "run", "--venue", "local", "--base-url", local_exchange.base_url, "--sports", "nfl", "--once")
    markets = precog(*base, "--no-games", db_url=db_url)
    assert markets.returncode == 0, markets.stderr
    assert "linked" not in markets.stdout  # no games polled yet: nothing to link to
    with LocalEspnServer() as espn:
        espn.set_scoreboard("nfl", espn_samples["nfl"])
        games = precog(*base, "--no-markets", db_url=db_url, env={"PRECOG_ESPN_BASE_URL": espn.base_url})
    assert games.returncode == 0, games.stderr
    assert "linked 1 events" in games.stdout
    assert "linked KXNFLGAME-25NOV30DENWAS -> ESPN nfl game 401772931 (DEN @ WSH, by ticker codes)" in games.stdout


def test_ingest_without_a_key_polls_the_local_exchange_as_it_would_kalshi(local_exchange: LocalExchange,
                                                                          db_url: str) -> None:
    """No KALSHI_* key: the local exchange refuses the WebSocket handshake (401) as Kalshi does, so ingestion
    falls back to REST polling; `precog ingest status` says so, and market prices still reach the database."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "precog", "ingest", "run", "--venue", "local", "--base-url", local_exchange.base_url,
         "--sports", "nfl", "--no-games", "--fallback-poll-seconds", "1"],
        env=_env(db_url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with psycopg.connect(db_url, autocommit=True) as conn:
            deadline = time.monotonic() + 60
            mode = None
            while time.monotonic() < deadline and mode != "polling":
                row = conn.execute("SELECT mode FROM ingest_feed_status WHERE feed = 'local:markets'").fetchone()
                mode = row[0] if row else None
                time.sleep(0.2)
            assert mode == "polling", proc.stderr.read() if proc.poll() is not None else mode
            local_exchange.counterparty_order(NE, "yes", "buy", 4, "0.57")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                row = conn.execute("SELECT yes_bid FROM markets WHERE market_id = %s AND row_current_ind",
                                   (NE,)).fetchone()
                if row and row[0] == Decimal("0.57"):
                    break
                time.sleep(0.1)
            else:
                raise AssertionError("the polled quote never reached the database")
        status: dict[str, Any] = json.loads(precog("ingest", "status", "--json", db_url=db_url).stdout)
        [feed] = [f for f in status["feeds"] if f["feed"] == "local:markets"]
        assert feed["mode"] == "polling" and feed["reliable_realtime"] is False
        assert not local_exchange.server.core.hub.connections  # the stream was never accepted
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "no API key (KALSHI_API_KEY_ID / KALSHI_PRIVATE_KEY_PATH): the venue refuses the WebSocket" in out
    assert "mode polling" in out


def test_status_of_an_ingester_that_is_gone_says_down(db_url: str) -> None:
    """`precog ingest status` after the ingester was killed kept showing `streaming True` for good (its last row);
    a row not written for 30 s (a running ingester writes every 2 s) is shown as down, its last report kept."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO ingest_feed_status (feed, platform_id, mode, reliable_realtime, last_message_at, "
                     "updated_at) VALUES ('local:markets', 'local', 'streaming', TRUE, now() - interval '5 minutes', "
                     "now() - interval '5 minutes'), ('espn:nfl', NULL, 'polling', FALSE, now(), now())")
    result = precog("ingest", "status", "--json", db_url=db_url)
    assert result.returncode == 0, result.stderr
    feeds = {f["feed"]: f for f in json.loads(result.stdout)["feeds"]}
    gone = feeds["local:markets"]
    assert gone["mode"].startswith("down") and gone["reliable_realtime"] is False
    assert gone["reported_mode"] == "streaming" and gone["status_age_seconds"] > 290
    assert feeds["espn:nfl"]["mode"] == "polling"  # written just now: as reported
    table = precog("ingest", "status", db_url=db_url)
    assert "no status from an ingester" in " ".join(table.stdout.split())
