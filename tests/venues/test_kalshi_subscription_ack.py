"""Markets added to a live WebSocket subscription: the client announces them (MarketsSubscribed) only once the
venue has applied their subscription, and the engine's market view confirms such a market by a REST snapshot
taken after that moment. The local exchange parks subscribe commands on request (`hold_subscriptions`), which
opens the window between a REST snapshot and the subscription taking effect deterministically."""

from __future__ import annotations

from typing import Any

from engine.streamkit import wait_for
from precog.domain.market import MarketStatus
from precog.engine.market_stream import MarketStream
from precog.venues.exchange.ws import WebSocketHub
from precog.venues.kalshi.auth import KalshiSigner
from precog.venues.kalshi.client import AsyncKalshiClient
from precog.venues.kalshi.environments import KalshiEnvironment
from precog.venues.kalshi.events import (
    BookResync,
    ConnectionState,
    MarketsSubscribed,
    StateChanged,
    StreamError,
    StreamEvent,
)
from precog.venues.kalshi.websocket import LIFECYCLE, ORDERBOOK, TICKER, KalshiWebSocket


def held(hub: WebSocketHub, ticker: str) -> bool:
    return any(ticker in (c.get("params") or {}).get("market_tickers", []) for c in hub.held_subscriptions())


async def test_added_markets_are_announced_only_when_the_venue_applied_their_subscription(
        local_exchange: Any) -> None:
    events: list[StreamEvent] = []
    ne, buf = local_exchange.tickers
    hub: WebSocketHub = local_exchange.server.core.hub
    signer = KalshiSigner.from_files(local_exchange.key_id, local_exchange.private_key_path)
    ws = KalshiWebSocket(local_exchange.ws_url, signer=signer, tickers=[ne], on_event=events.append,
                         channels=(ORDERBOOK, TICKER, LIFECYCLE), reconnect_base=0.05, reconnect_max=0.2)
    async with ws:
        await ws.wait_for_state(ConnectionState.SUBSCRIBED)
        # the first subscription (one command per channel): announced once, after all of them, before SUBSCRIBED
        kinds = [e for e in events if isinstance(e, MarketsSubscribed | StateChanged)]
        assert kinds[-2:] == [MarketsSubscribed((ne,)), StateChanged(ConnectionState.SUBSCRIBED)]
        assert [e for e in events if isinstance(e, MarketsSubscribed)] == [MarketsSubscribed((ne,))]

        hub.hold_subscriptions()
        await ws.add_markets([buf])
        await wait_for(lambda: held(hub, buf), what="the subscribe command parked at the exchange")
        assert ws.subscribing() == {buf}
        assert MarketsSubscribed((buf,)) not in events  # not applied by the venue: not announced
        hub.release_subscriptions()
        await wait_for(lambda: MarketsSubscribed((buf,)) in events, what="the acknowledgement")
        assert ws.subscribing() == set() and ws.state is ConnectionState.SUBSCRIBED

        # a book resync subscribes again but adds no market: nothing announced
        announced = len([e for e in events if isinstance(e, MarketsSubscribed)])
        assert local_exchange.admin.skip_ws_seq(1) == 1
        local_exchange.counterparty_order(ne, "yes", "buy", 5, "0.33")
        await wait_for(lambda: any(isinstance(e, BookResync) for e in events), what="the gap")
        await wait_for(lambda: ws.resyncs >= 1 and ws.book(ne) is not None, what="the resync's fresh snapshot")
        assert len([e for e in events if isinstance(e, MarketsSubscribed)]) == announced

        # a subscription the venue refuses is never announced (and does not stay "subscribing")
        await ws.add_markets(["KXNFLGAME-25OCT05-NEBUF-TIE"])  # no such market on the venue
        # code 11, "Invalid parameter": Kalshi's document retired "Market not found" (16)
        await wait_for(lambda: any(isinstance(e, StreamError) and e.code == 11 for e in events), what="the refusal")
        assert ws.subscribing() == set()
        assert len([e for e in events if isinstance(e, MarketsSubscribed)]) == announced


async def test_the_engine_view_confirms_an_added_market_after_its_subscription_took_effect(
        local_exchange: Any) -> None:
    """The engine follows a new market while its stream is up. A REST snapshot taken before the venue applied
    the subscription must not make the view live: a settlement in between would never reach it."""
    ne, buf = local_exchange.tickers
    hub: WebSocketHub = local_exchange.server.core.hub
    client = AsyncKalshiClient(KalshiEnvironment("local", local_exchange.base_url, local_exchange.ws_url),
                               signer=KalshiSigner.from_files(local_exchange.key_id, local_exchange.private_key_path),
                               rate_limits="unlimited")
    view = MarketStream(client, max_price_age_seconds=120.0, overlay_seconds=600.0)
    view.open_connection()
    try:
        await view.follow([ne])
        await wait_for(view.is_up, what="subscribed")
        await view.follow([ne])
        assert view.is_live(ne)

        hub.hold_subscriptions()
        await view.follow([ne, buf])  # BUF joins the live subscription: parked at the exchange
        await wait_for(lambda: held(hub, buf), what="BUF's subscribe parked")
        assert not view.is_live(buf) and view.market(buf) is None  # not subscribed yet: the caller reads REST
        await view.follow([ne, buf])
        assert not view.is_live(buf)
        local_exchange.settle(buf, "1")  # in the window: the stream cannot deliver it
        hub.release_subscriptions()
        ws = view.ws
        assert ws is not None
        await wait_for(lambda: buf not in ws.subscribing(), what="BUF's subscription acknowledged")
        await view.follow([ne, buf])  # the next cycle confirms BUF by a REST snapshot taken after the ack
        assert view.is_live(buf)
        m = view.market(buf)
        assert m is not None and m.status is MarketStatus.SETTLED and m.result == "yes"
        assert view.is_live(ne)  # the market already followed was live throughout
    finally:
        await view.close()
        await client.aclose()
