"""One trading loop per venue account (`precog run`).

Every loop books each fill of its account (the venue's fill list) into the positions it holds in memory, and
exits them. Two loops on one account (a restart while the old process is still alive or stopping, a second
terminal, a service plus a manual start) would each book the other's fills: when one closes a position the
other keeps its open copy, saves it open again and sells contracts the account no longer holds. So a loop claims
its account for as long as it runs: a PostgreSQL advisory lock keyed by platform, mode and venue account
(`engine_runs.account_ref`), held by the engine's own database session. The server releases it when that
session ends, however the process ended (a kill included), so a restart is never blocked by a dead process.

A paper loop and a live loop on the same Kalshi account are different accounts here (`paper:<account>`), as
they are for orders and positions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

LOCK_NAMESPACE = 0x61636374  # "acct": the advisory-lock key space of venue accounts (simulated runs use "prec")
WAIT_SECONDS = 15.0  # how long a new loop waits for one that is stopping (canceling its orders) to let go
POLL_SECONDS = 0.5


class AccountInUse(RuntimeError):
    """Another loop is trading this venue account."""


def account_key(platform_id: str, mode: str, account_ref: str | None) -> str:
    return f"{platform_id}|{mode}|{account_ref or ''}"


def _try_lock(conn: Any, key: str) -> bool:
    row = conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", (LOCK_NAMESPACE, key)).fetchone()
    return bool(row and row[0])


def _holder(conn: Any, engine: Any, key: str) -> str:
    """The run holding the account: the one whose database session holds the lock (each claim notes its session
    in its run's summary); else the account's latest run that has not ended (a killed run never ends its row)."""
    row = conn.execute(
        "SELECT r.run_id, r.started_at FROM pg_locks l JOIN engine_runs r "
        "  ON r.summary->>'session_pid' = l.pid::text AND r.ended_at IS NULL "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND l.classid::bigint = %s "
        "  AND l.objid::bigint = (hashtext(%s)::bigint & 4294967295) ORDER BY r.run_id DESC LIMIT 1",
        (LOCK_NAMESPACE, key)).fetchone()
    if row is None:
        row = conn.execute(
            "SELECT run_id, started_at FROM engine_runs WHERE platform_id = %s AND mode = %s "
            "AND account_ref IS NOT DISTINCT FROM %s AND ended_at IS NULL AND run_id <> %s "
            "ORDER BY run_id DESC LIMIT 1",
            (engine.venue.platform_id, engine.mode, engine.venue.account_ref, engine.run_id)).fetchone()
    if row is None:
        return "another loop"
    return f"run {row[0]} (started {row[1]:%Y-%m-%d %H:%M:%S %Z})"


class AccountClaim:
    """The engine's claim on its venue account, on the engine's database session."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.key = account_key(engine.venue.platform_id, engine.mode, engine.venue.account_ref)
        self.conn: Any = None

    def _refusal(self) -> AccountInUse:
        e = self.engine
        return AccountInUse(
            f"{_holder(e.conn, e, self.key)} is already trading {e.mode} on this account ({e.venue.platform_id} "
            f"{e.venue.account_ref}); stop it first (Ctrl-C or kill its process): two loops on one account would "
            "each book the other's fills and exit the same positions twice")

    async def take(self, wait_s: float = WAIT_SECONDS,
                   sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """Claim the account, waiting up to `wait_s` for a loop that is stopping; AccountInUse when it is held."""
        conn = self.engine.conn
        deadline = time.monotonic() + wait_s
        told = False
        while not _try_lock(conn, self.key):
            if time.monotonic() >= deadline:
                raise self._refusal()
            if not told:
                log.warning("waiting up to %.0f s for %s to release the account", wait_s, _holder(conn, self.engine, self.key))
                told = True
            await sleep(POLL_SECONDS)
        self.conn = conn
        self._note_session()

    def _note_session(self) -> None:
        """Name this run as the holder (a refused loop reads it), by its database session's pid."""
        self.conn.execute("UPDATE engine_runs SET summary = coalesce(summary, '{}'::jsonb) || "
                          "jsonb_build_object('session_pid', pg_backend_pid()) WHERE run_id = %s",
                          (self.engine.run_id,))

    async def follow(self) -> None:
        """After the engine reconnected to the database (its old session, and the claim, are gone): claim again
        on the new session, without waiting; AccountInUse when another loop took the account meanwhile."""
        if self.conn is None or self.engine.conn is self.conn:
            return
        try:
            got = _try_lock(self.engine.conn, self.key)
            if got:
                self.conn = self.engine.conn
                self._note_session()
        except Exception as exc:  # noqa: BLE001 - the database is failing again: the next cycle reconnects, we retry
            log.warning("could not claim the account again after a reconnect: %s", exc)
            return
        if not got:
            raise self._refusal()

    def release(self) -> None:
        if self.conn is None or self.conn.closed:
            return
        try:
            self.conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (LOCK_NAMESPACE, self.key))
        except Exception as exc:  # noqa: BLE001 - the session ending releases it anyway
            log.warning("could not release the account claim: %s", exc)
        self.conn = None


def close_refused_run(engine: Any, reason: str) -> None:
    """A loop refused before it started: its run row says so and is closed (it is not a run that died)."""
    from precog.ingest.scd2 import jsonb

    engine.conn.execute("UPDATE engine_runs SET ended_at = now(), summary = %s WHERE run_id = %s",
                        (jsonb({"refused": reason}), engine.run_id))
