"""The local Kalshi-compatible exchange: engine (pure state machine), HTTP/WS server, runner, scenarios.

    from precog.venues.exchange import Exchange, ExchangeServer
    ex = Exchange()                       # in-process, clock injectable (SimClock for backtests)
    with ExchangeServer(ex) as server:    # uvicorn on 127.0.0.1:<free port> in a background thread
        server.base_url, server.ws_url
"""

from precog.venues.exchange.clock import SimClock, WallClock
from precog.venues.exchange.engine import Exchange, ExchangeEvent
from precog.venues.exchange.errors import ExchangeError
from precog.venues.exchange.runner import ExchangeServer
from precog.venues.exchange.server import create_app

__all__ = ["Exchange", "ExchangeEvent", "ExchangeError", "ExchangeServer", "SimClock", "WallClock", "create_app"]
