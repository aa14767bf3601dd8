"""`precog run --venue kalshi --paper` end to end with the local exchange standing in for Kalshi: the engine
prices what it holds from the WebSocket — its own connection with --no-ingest, ingestion's with --ingest."""

from __future__ import annotations

import re
import time
from typing import Any

import psycopg
import pytest

from engine.streamkit import CountingFaults


@pytest.mark.timeout(200)
@pytest.mark.parametrize("ingest", ["--no-ingest", "--ingest"])
def test_precog_run_on_kalshi_reads_prices_from_the_stream(db_url: str, precog_cli: Any, tmp_path: Any,
                                                          ingest: str) -> None:
    from cryptography.hazmat.primitives import serialization

    from precog.venues.exchange.auth import generate_key_pair
    from precog.venues.exchange.runner import ExchangeServer
    from trading.trading_dbkit import BUF, KC, create_testing_method, seed_world, world_exchange

    world = seed_world(db_url, probability="0.75")
    create_testing_method(world.conn)
    key_id, key_path, public_pem = generate_key_pair(tmp_path / "keys")
    ex, _ = world_exchange()
    faults = CountingFaults()
    server = ExchangeServer(ex, faults=faults, auth_clock=lambda: int(time.time() * 1000))
    server.keys.register("us", serialization.load_pem_public_key(public_pem), key_id)  # type: ignore[arg-type]
    server.start()
    try:
        r = precog_cli("run", "--venue", "kalshi", "--env", "demo", "--paper", ingest, "--no-notify", "--quiet",
                       "--interval", "0.2", "--duration", "5",
                       env={"KALSHI_BASE_URL": server.base_url, "KALSHI_API_KEY_ID": key_id,
                            "KALSHI_PRIVATE_KEY_PATH": str(key_path),
                            # ingestion's game feed gets 404s here (no ESPN in tests): it alerts and goes on
                            "PRECOG_ESPN_BASE_URL": server.root_url}, timeout=150)
    finally:
        server.stop()
    assert r.returncode == 0, r.stderr
    m = re.search(r"run \d+: (\d+) cycles, (\d+) fills, (\d+) open positions", r.stdout)
    assert m and int(m.group(2)) > 0 and int(m.group(3)) > 0, r.stdout
    cycles = int(m.group(1))
    md = re.search(r"market data: (\d+) reads from the stream \(([a-z ]+)\), (\d+) over REST, (\d+) stream prices "
                   r"rejected", r.stdout)
    assert md, r.stdout
    assert md.group(2) == ("ingestion" if ingest == "--ingest" else "own connection")
    stream_reads, rest_reads = int(md.group(1)), int(md.group(3))
    assert stream_reads > 0 and int(md.group(4)) == 0, r.stdout
    # the held markets are read from memory every cycle: only the first reads (before the subscription was
    # confirmed) went to REST
    single = sum(n for (method, path), n in faults.requests.items()
                 if method == "GET" and path in (f"/trade-api/v2/markets/{KC}", f"/trade-api/v2/markets/{BUF}"))
    assert single == rest_reads and single < cycles / 2 < stream_reads, (single, rest_reads, stream_reads, cycles)
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT market_id, mode FROM positions WHERE row_current_ind AND status = 'open'"
                            ).fetchall()
        down = conn.execute("SELECT count(*) FROM alerts WHERE alert_type = 'market_stream_down'").fetchone()
    assert rows and all(mode == "paper" for _, mode in rows)
    assert down == (0,)
    assert len(ex.account("us").orders) == 0  # paper: nothing was sent to the venue
    world.conn.close()


def test_a_bad_market_view_cadence_is_refused_naming_the_key(precog_cli: Any, tmp_path: Any) -> None:
    (tmp_path / "markets.yaml").write_text("discovery:\n  cache_ttl_seconds: 0\n")
    r = precog_cli("run", "--venue", "kalshi", "--paper", "--no-notify", "--quiet", "--duration", "1",
                   env={"PRECOG_CONFIG_DIR": str(tmp_path)})
    assert r.returncode == 1
    assert "discovery.cache_ttl_seconds must be a positive number of seconds, got 0" in r.stderr
