"""A trading process for the reliability kill trials: the real Engine over HTTP (the Kalshi client) against the
test's local exchange, with the real AlertManager (durable alerts + outbox) and the real Notifier delivering in a
background thread, trading fast until it is SIGKILLed.

    python rel_kill_child.py BASE_URL KEY_ID KEY_PATH TICKER[,TICKER...] [STEPS]

Every cycle raises one distinct low-severity alert and prints `alert <id>` once raise_alert returned (the
alert is then durable): the test checks each printed alert survived the kill and was notified.
With STEPS it runs that many cycles, stops cleanly and exits 0.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests folder: reliability.relkit

from precog.alerts.manager import AlertManager  # noqa: E402
from precog.alerts.notifier import Notifier  # noqa: E402
from precog.db.connection import connect, database_url  # noqa: E402
from reliability.relkit import kalshi_client, make_engine  # noqa: E402


async def main(base_url: str, key_id: str, key_path: str, tickers: tuple[str, ...], steps: int | None) -> None:
    url = database_url()
    conn = connect(url, autocommit=True)
    alerts = AlertManager(url)
    notifier = Notifier(url)
    notifier.start()
    client = kalshi_client(base_url, base_url.replace("http", "ws"), key_id, key_path, alerts=alerts)
    engine = make_engine(conn, client, tickers, alerts=alerts)
    await engine.start()
    print("started", flush=True)
    n = 0
    while steps is None or n < steps:
        await engine.step()
        n += 1
        alert_id = alerts.raise_alert("rel_cycle", "low", "rel_kill_child", f"cycle {n} of process {os.getpid()}",
                                      dedup_key=f"{os.getpid()}-{n}")
        print(f"alert {alert_id}", flush=True)
        await asyncio.sleep(0.02)
    await engine.stop()
    await client.aclose()
    notifier.stop()
    alerts.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], tuple(sys.argv[4].split(",")),
                     int(sys.argv[5]) if len(sys.argv) > 5 else None))
