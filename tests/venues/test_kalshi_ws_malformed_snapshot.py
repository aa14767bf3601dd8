"""A malformed `orderbook_snapshot` is rejected loudly (schema alert, resync) and the WebSocket reader goes
on: it never dies silently while the client still reports SUBSCRIBED.

Book levels are lists of [price, quantity] pairs (the REST twin, OpenAPI `OrderbookCountFp.yes_dollars`: array
of `PriceLevelDollarsCountFp`); the stream's `LocalBook._side` checks that, as `parsing.book_side` does, and
raises KalshiSchemaError."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.server import serve

from precog.venues.kalshi.events import ConnectionState, StreamEvent, TickerUpdated
from precog.venues.kalshi.websocket import KalshiWebSocket


class Alerts:
    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []

    def raise_alert(self, alert_type: str, severity: str, component: str, message: str, details: Any = None,
                    **kw: Any) -> int:
        self.alerts.append({"type": alert_type, "message": message})
        return len(self.alerts)


async def test_malformed_snapshot_does_not_silently_kill_the_stream() -> None:
    go_on = asyncio.Event()

    async def handler(conn: Any) -> None:
        sid = 0
        for _ in range(2):  # one subscribe command per market channel
            cmd = json.loads(await conn.recv())
            sid += 1
            await conn.send(json.dumps({"id": cmd["id"], "type": "subscribed",
                                        "msg": {"channel": cmd["params"]["channels"][0], "sid": sid}}))
        # a snapshot whose yes side is a number instead of a list of levels
        await conn.send(json.dumps({"type": "orderbook_snapshot", "sid": 1, "seq": 1,
                                    "msg": {"market_ticker": "T", "yes_dollars_fp": 5,
                                            "no_dollars_fp": [["0.5500", "10.00"]]}}))
        await go_on.wait()
        await conn.send(json.dumps({"type": "ticker", "sid": 2, "seq": 1,
                                    "msg": {"market_ticker": "T", "price_dollars": "0.4300",
                                            "yes_bid_dollars": "0.4200", "yes_ask_dollars": "0.4400",
                                            "ts": 1700000000}}))
        await asyncio.sleep(2)

    events: list[StreamEvent] = []
    alerts = Alerts()
    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        ws = KalshiWebSocket(f"ws://127.0.0.1:{port}/trade-api/ws/v2", tickers=["T"],
                             channels=["orderbook_delta", "ticker"], on_event=events.append, alerts=alerts,
                             reconnect_base=0.05, reconnect_max=0.1)
        task = ws.start()
        try:
            await ws.wait_for_state(ConnectionState.SUBSCRIBED, timeout=5)
            await asyncio.sleep(0.3)
            go_on.set()
            await asyncio.sleep(0.5)
            died = task.done() and not task.cancelled() and task.exception() is not None
            state = ws.state
            got_ticker = any(isinstance(e, TickerUpdated) for e in events)
        finally:
            await ws.stop()
    detail = (f"reader task died={died} ({task.exception() if died else ''!r}), state={state.value}, "
              f"later ticker received={got_ticker}, alerts={[a['type'] for a in alerts.alerts]}")
    # the bad snapshot is reported (venue_schema_error) and the stream keeps going (or reconnects): a later
    # ticker message is still processed
    assert not died and got_ticker, detail
