"""Database faults: the server stopped and restarted under a trading run (a separate embedded server this test
controls), a transaction failing mid-batch in the SCD2 writer, and the dashboard's connection pool exhausted."""

from __future__ import annotations

import concurrent.futures
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import psycopg_pool
import pytest

from precog.alerts.manager import AlertManager
from precog.db import embedded
from precog.engine.runner import run_loop
from precog.ingest import scd2
from precog.reliability import dbcontrol, tally
from reliability.conftest import RelExchange
from reliability.relkit import MovingMarketMaker, check_books, kalshi_client, make_engine


@pytest.mark.timeout(240)
async def test_rel_database_stopped_and_restarted_during_a_run(
        own_server: tuple[Path, str], rel_exchange: RelExchange, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """While PostgreSQL is down no order leaves (its row cannot be written first), every failed cycle raises an
    alert (spooled to disk, replayed when the database is back), and a restarted engine reconciles cleanly."""
    home, url = own_server
    admin = embedded.server_uri(home)
    monkeypatch.setenv("PRECOG_HOME", str(tmp_path / "precog-home"))
    monkeypatch.setenv("PRECOG_DATABASE_URL", url)
    rx = rel_exchange
    conn = psycopg.connect(url, autocommit=True)
    alerts = AlertManager(url, pool_timeout=0.5)
    client = kalshi_client(rx.base_url, rx.ws_url, rx.key_id, rx.key_path, alerts=alerts)
    engine = make_engine(conn, client, rx.tickers, alerts=alerts)
    mm = MovingMarketMaker(rx.exchange, rx.mm, rx.tickers)
    mm.start()
    marks: dict[str, int] = {}
    cycle = {"n": 0, "ok_after_restart": 0}
    failed: list[int] = []
    real_step = engine.step

    async def step() -> None:
        try:
            await real_step()
        except Exception:
            failed.append(cycle["n"])
            raise
        if cycle["n"] > 16:
            cycle["ok_after_restart"] += 1

    engine.step = step  # type: ignore[method-assign]

    def before_step(_: float) -> None:
        cycle["n"] += 1  # loop cycles (the engine's own step counter stops while it cannot reach the database)
        if cycle["n"] == 10:
            marks["orders_at_stop"] = len(rx.exchange.account(rx.user).orders)
            assert embedded.stop(home), "the server did not stop"
        elif cycle["n"] == 16:
            marks["orders_at_restart"] = len(rx.exchange.account(rx.user).orders)
            dbcontrol.start(home, admin)

    try:
        await run_loop(engine, interval_s=0.05, venue_label="local", before_step=before_step,
                       until=lambda: cycle["ok_after_restart"] >= 8 or cycle["n"] >= 60)
    finally:
        mm.stop()
    # and a restarted engine (new connection) finds nothing to repair
    conn2 = psycopg.connect(url, autocommit=True)
    engine2 = make_engine(conn2, client, rx.tickers, alerts=alerts)
    await run_loop(engine2, interval_s=0.05, venue_label="local", until=lambda: engine2.stats.steps >= 3)
    await client.aclose()
    deadline = time.monotonic() + 20
    while alerts._spool_waiting() and time.monotonic() < deadline:  # the replay runs in the background
        try:
            alerts.replay_spool()
        except (psycopg.Error, psycopg_pool.PoolTimeout):
            pass  # the pool is still replacing the connections the restart broke (the alerts stay spooled)
        time.sleep(0.2)
    alerts.flush()
    alerts.close()
    books = check_books(conn2, rx.exchange, rx.user)
    stored = conn2.execute("SELECT count(*) FROM alerts WHERE alert_type = 'engine_step_failed'").fetchone()[0]
    reconnected = conn2.execute("SELECT count(*) FROM alerts WHERE alert_type = 'database_reconnected'"
                                ).fetchone()[0]
    halted = conn2.execute("SELECT trading_state FROM engine_runs WHERE run_id = %s", (engine2.run_id,)).fetchone()
    conn2.close()
    conn.close()
    down_failures = [n for n in failed if 10 <= n < 16]
    assert marks["orders_at_restart"] == marks["orders_at_stop"], "an order left while its row could not be written"
    assert down_failures, "cycles must fail while the database is down"
    assert books.clean, books
    assert stored >= 1, "the failures raised while the database was down were spooled and replayed"
    assert cycle["ok_after_restart"] >= 8, "the running engine must trade on once the database is back"
    assert reconnected >= 1, "the reconnect is announced"
    assert halted is not None and halted[0] in (None, "ACTIVE"), halted
    tally.record("database: server stopped and restarted during a run", 1,
                 f"{len(down_failures)} cycles failed while down, each alerted (spooled to disk, replayed: "
                 f"{stored} stored); no order sent while down; the engine reconnected, reconciled and traded on; "
                 "books equal the exchange's", lost_orders=books.lost_orders + books.duplicate_orders, lost_fills=books.lost_fills)


@pytest.mark.timeout(120)
async def test_rel_the_running_engine_resumes_after_a_database_restart(
        own_server: tuple[Path, str], make_rig_on: Any) -> None:
    home, url = own_server
    admin = embedded.server_uri(home)
    rig = make_rig_on(url)
    rig.quote("0.49", "0.50")
    engine = rig.make_engine()
    await engine.start()
    await rig.step()
    assert embedded.stop(home)
    with pytest.raises(psycopg.Error):
        await rig.step()
    dbcontrol.start(home, admin)
    await rig.step()  # the database is back: the next cycle reconnects and works again
    await rig.step()
    assert not engine.conn.closed and engine.conn is not rig.conn


def _market(i: int, bid: str) -> dict[str, Any]:
    t = f"KXREL-SCD2-{i:05d}"
    return {"market_id": t, "platform_id": "kalshi", "external_id": t, "ticker": t, "title": f"market {i}",
            "market_type": "binary", "yes_bid": Decimal(bid), "yes_ask": Decimal("0.60"), "status": "open",
            "tick_size": Decimal("0.01"), "notional_value": Decimal("1"), "volume": 0, "open_interest": 0}


def _versions(conn: psycopg.Connection[Any]) -> tuple[int, int, set[Decimal]]:
    total, current = conn.execute("SELECT count(*), count(*) FILTER (WHERE row_current_ind) FROM markets "
                                  "WHERE market_id LIKE 'KXREL-SCD2-%%'").fetchone()
    bids = {r[0] for r in conn.execute("SELECT yes_bid FROM markets WHERE row_current_ind AND "
                                       "market_id LIKE 'KXREL-SCD2-%%'").fetchall()}
    return total, current, bids


def test_rel_a_batch_failing_midway_leaves_nothing_half_written(db_url: str) -> None:
    conn = psycopg.connect(db_url, autocommit=True)
    n = 40
    assert scd2.write_batch(conn, scd2.MARKETS, [_market(i, "0.40") for i in range(n)]).versions_written == n
    before = _versions(conn)
    assert before == (n, n, {Decimal("0.4000")})
    # 1) a row in the middle breaks a constraint (a price of 1.5): the whole batch rolls back
    bad = [_market(i, "0.45") for i in range(n)]
    bad[n // 2]["yes_bid"] = Decimal("1.5")
    with pytest.raises(psycopg.errors.CheckViolation):
        scd2.write_batch(conn, scd2.MARKETS, bad)
    assert _versions(conn) == before
    # 2) the connection is cut while a big batch is being written: nothing of it is visible
    big = [_market(i, "0.47") for i in range(n)] + [_market(i, "0.41") for i in range(n, 30000)]
    victim = psycopg.connect(db_url, autocommit=True)
    pid = victim.info.backend_pid
    errors: list[BaseException] = []

    def write() -> None:
        try:
            scd2.write_batch(victim, scd2.MARKETS, big)
        except BaseException as exc:  # noqa: BLE001 - the cut is the point
            errors.append(exc)

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(write)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not future.done():
            state = conn.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
            if state and state[0] == "active":
                time.sleep(0.05)
                conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
                break
            time.sleep(0.005)
        future.result(timeout=30)
    victim.close()
    assert errors and isinstance(errors[0], psycopg.OperationalError), errors
    assert _versions(conn) == before, "a cut batch must leave no version behind"
    # 3) the same batch again, on a healthy connection, applies whole
    assert scd2.write_batch(conn, scd2.MARKETS, [_market(i, "0.45") for i in range(n)]).versions_written == n
    total, current, bids = _versions(conn)
    assert (total, current, bids) == (2 * n, n, {Decimal("0.4500")})
    conn.close()
    tally.record("database: a transaction failing mid-batch (constraint violation / connection cut)", 2,
                 "the SCD2 batch rolled back whole: every key kept exactly one current version, nothing half-written")


def test_rel_dashboard_pool_exhausted_answers_503_quickly_then_recovers(db_url: str) -> None:
    """Every pooled connection is stuck behind a lock: further requests get a clear 503 within the pool timeout
    (no hang); once the lock goes, the dashboard answers again."""
    from precog.web.app import DashboardSettings
    from precog.web.auth import DashboardToken
    from web.dashkit import running_dashboard

    settings = DashboardSettings(db_url=db_url, token=DashboardToken("t" * 32, "test"), poll_seconds=5,
                                 pool_max=2, pool_timeout=1.0)
    locker = psycopg.connect(db_url)
    with running_dashboard(db_url, settings=settings) as dash, httpx.Client(base_url=dash.url, timeout=30) as http:
        assert http.get("/api/alerts").status_code == 200
        locker.execute("LOCK TABLE alerts IN ACCESS EXCLUSIVE MODE")  # readers of alerts now wait
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            started = time.monotonic()
            futures = [pool.submit(http.get, "/api/alerts") for _ in range(6)]
            time.sleep(2.5)
            done = [f for f in futures if f.done()]
            answers = [f.result() for f in done]
            assert answers, "requests beyond the pool must be answered, not hang"
            assert all(r.status_code == 503 for r in answers), [r.status_code for r in answers]
            body = answers[0].json()
            assert "database" in json_text(body)
            assert time.monotonic() - started < 10
            locker.rollback()  # the lock goes: the stuck requests finish
            rest = [f.result(timeout=20) for f in futures if f not in done]
        assert rest and all(r.status_code == 200 for r in rest)
        assert http.get("/api/alerts").status_code == 200
    locker.close()
    tally.record("database: connection pool exhausted (dashboard)", len(answers),
                 "requests beyond the pool got 503 naming the database within the 1 s pool timeout; no hang; "
                 "served again once connections freed")


def json_text(body: Any) -> str:
    import json

    return json.dumps(body).lower()
