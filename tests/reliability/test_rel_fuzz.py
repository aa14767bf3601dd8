"""Input fuzzing (hypothesis): Kalshi REST and WebSocket payloads, ESPN scoreboards and configuration YAML.

Every generated input must either parse or raise OUR clear error type (KalshiSchemaError naming a field,
EspnSchemaError naming a path, ConfigError naming the file) — never a TypeError/KeyError/crash, and never a
made-up price. Seeds are real payloads: the local exchange's own JSON responses and the ESPN samples; the
generators delete keys, swap values for arbitrary JSON, and rename fields, or send arbitrary JSON outright.

Fast mode (CI): PRECOG_FUZZ_EXAMPLES unset -> a few hundred inputs per target. Long run:
`PRECOG_FUZZ_EXAMPLES=100000` spreads 100,000 inputs over the targets (benchmarks/reliability_report.py).
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from precog.config.errors import ConfigError
from precog.config.loader import load_config
from precog.config.yamlio import load_yaml_text
from precog.domain.market import Market, OrderBook
from precog.domain.order import Fill, Order
from precog.feeds.espn_parse import EspnSchemaError, parse_scoreboard
from precog.reliability import tally
from precog.venues.kalshi import parsing as P
from precog.venues.kalshi.errors import KalshiSchemaError
from precog.venues.kalshi.websocket import KalshiWebSocket

TARGETS = 14  # fuzz targets sharing the long-run budget (the slow config-loader target runs a tenth on top)
FAST_PER_TARGET = 250
_budget = os.environ.get("PRECOG_FUZZ_EXAMPLES", "").strip()
PER_TARGET = max(FAST_PER_TARGET, int(_budget) // TARGETS + 1) if _budget else FAST_PER_TARGET
FUZZ = settings(max_examples=PER_TARGET, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
COUNTS: dict[str, int] = {}


def _count(target: str) -> None:
    COUNTS[target] = COUNTS.get(target, 0) + 1


@pytest.fixture(scope="module", autouse=True)
def _report_counts() -> Any:
    yield
    total = sum(COUNTS.values())
    if total:
        tally.record("input: fuzzed payloads (Kalshi REST/WS, ESPN, config YAML)", total,
                     "each input parsed or raised KalshiSchemaError / EspnSchemaError / ConfigError naming the field",
                     category="input", targets=dict(COUNTS))


# ---------------------------------------------------------------------------------------------- generators
scalars = (st.none() | st.booleans() | st.integers(min_value=-10**20, max_value=10**20)
           | st.decimals(allow_nan=True, allow_infinity=True) | st.floats() | st.text(max_size=20)
           | st.sampled_from(["", "0.5", "0.5000", "1.0001", "-0.01", "NaN", "Infinity", "1e400", "12.00", "1",
                              "yes", "no", "buy", "sell", "active", "resting", "2025-10-05T20:00:00Z", "nope"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)


@st.composite
def mutated(draw: st.DrawFn, seeds: list[Any]) -> Any:
    """A real payload with 1-4 edits: a key deleted, a value replaced by arbitrary JSON, a key renamed."""
    doc = copy.deepcopy(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        containers = _containers(doc)
        if not containers:
            break
        node = draw(st.sampled_from(containers))
        if isinstance(node, dict):
            if not node:
                continue
            key = draw(st.sampled_from(sorted(node)))
            op = draw(st.sampled_from(["delete", "replace", "rename", "null"]))
            if op == "delete":
                del node[key]
            elif op == "replace":
                node[key] = draw(json_values)
            elif op == "null":
                node[key] = None
            else:
                node[key + draw(st.sampled_from(["_v2", "_cents", "x", "_dollarz"]))] = node.pop(key)
        elif node:
            i = draw(st.integers(0, len(node) - 1))
            node[i] = draw(json_values)
    return doc


def _containers(doc: Any) -> list[Any]:
    out = []
    if isinstance(doc, dict | list):
        out.append(doc)
        for v in (doc.values() if isinstance(doc, dict) else doc):
            out.extend(_containers(v))
    return out


def payloads(seeds: list[Any]) -> st.SearchStrategy[Any]:
    return mutated(seeds) | json_values


def _as_json_roundtrip(doc: Any) -> Any:
    """What the client sees: JSON text decoded with parse_float=Decimal (NaN/Infinity become floats)."""
    try:
        text = json.dumps(doc, default=str)
    except ValueError:
        return doc
    return json.loads(text, parse_float=Decimal)


# ---------------------------------------------------------------------------------------------- seeds
@pytest.fixture(scope="module")
def kalshi_seeds(rel_key: tuple[str, Path, bytes]) -> dict[str, list[Any]]:
    """Real response bodies of the local exchange after some trading and a settlement."""
    from cryptography.hazmat.primitives import serialization

    from precog.venues.exchange.engine import Exchange
    from precog.venues.exchange.runner import ExchangeServer
    from precog.venues.kalshi.auth import KalshiSigner

    key_id, key_path, public_pem = rel_key
    ex = Exchange(seed=3)
    ex.create_series("KXNFLGAME", "Pro Football Game")
    ex.create_event("KXNFLGAME-FZ-AB", "KXNFLGAME", "A at B")
    for t in ("KXNFLGAME-FZ-AB-A", "KXNFLGAME-FZ-AB-B"):
        ex.create_market(t, "KXNFLGAME-FZ-AB", title="Will it?")
    ex.create_account("u", Decimal("1000"))
    ex.create_account("mm", Decimal("100000"))
    ex.place_order("mm", "KXNFLGAME-FZ-AB-A", "yes", "buy", 50, Decimal("0.40"))
    ex.place_order("mm", "KXNFLGAME-FZ-AB-A", "no", "buy", 50, Decimal("0.55"))
    ex.place_order("u", "KXNFLGAME-FZ-AB-A", "yes", "buy", 10, Decimal("0.45"))
    ex.place_order("u", "KXNFLGAME-FZ-AB-A", "yes", "buy", 5, Decimal("0.30"))
    ex.place_order("u", "KXNFLGAME-FZ-AB-B", "no", "buy", 3, Decimal("0.20"))
    ex.place_order("mm", "KXNFLGAME-FZ-AB-B", "yes", "buy", 3, Decimal("0.80"))
    ex.settle_market("KXNFLGAME-FZ-AB-B", Decimal("1"))
    server = ExchangeServer(ex)
    server.keys.register("u", serialization.load_pem_public_key(public_pem), key_id)  # type: ignore[arg-type]
    server.start()
    signer = KalshiSigner.from_files(key_id, key_path)
    prefix = httpx.URL(server.base_url).path

    def get(path: str) -> Any:
        r = httpx.get(server.base_url + path, headers=signer.headers("GET", prefix + path), timeout=10)
        r.raise_for_status()
        return json.loads(r.content, parse_float=Decimal)

    try:
        markets = get("/markets")["markets"]
        seeds = {
            "market": markets,
            "orderbook": [get("/markets/KXNFLGAME-FZ-AB-A/orderbook")],
            "order": get("/portfolio/orders")["orders"],
            "fill": get("/portfolio/fills")["fills"],
            "position": get("/portfolio/positions")["market_positions"],
            "balance": [get("/portfolio/balance")],
            "settlement": get("/portfolio/settlements")["settlements"],
            "trade": get("/markets/trades")["trades"],
            "event": [get("/events/KXNFLGAME-FZ-AB")["event"]],
            "series": [get("/series/KXNFLGAME")["series"]],
        }
    finally:
        server.stop()
    for name, rows in seeds.items():
        assert rows, f"the exchange returned no {name} to seed the fuzzer with"
    return seeds


def _only_schema_errors(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except KalshiSchemaError as exc:
        assert exc.field, "a schema error must name the field"
        assert str(exc).startswith("Kalshi ")
        return None


# ---------------------------------------------------------------------------------------------- Kalshi REST
REST_TARGETS: dict[str, Callable[[Any], Any]] = {
    "market": P.parse_market,
    "orderbook": lambda p: P.parse_orderbook(p, "KXNFLGAME-FZ-AB-A"),
    "order": P.parse_order,
    "fill": P.parse_fill,
    "position": P.parse_position,
    "balance": P.parse_balance,
    "settlement": P.parse_settlement,
    "trade": P.parse_trade,
    "event": P.parse_event,
    "series": P.parse_series,
}


@pytest.mark.parametrize("kind", sorted(REST_TARGETS))
def test_rel_kalshi_rest_payloads_parse_or_name_the_field(kind: str, kalshi_seeds: dict[str, list[Any]]) -> None:
    fn = REST_TARGETS[kind]
    for seed in kalshi_seeds[kind]:  # the unmutated real payloads parse
        assert fn(seed) is not None

    @FUZZ
    @given(doc=payloads(kalshi_seeds[kind]))
    def run(doc: Any) -> None:
        _count(f"kalshi.{kind}")
        for candidate in (doc, _as_json_roundtrip(doc)):
            result = _only_schema_errors(fn, candidate) if isinstance(candidate, dict) else \
                _only_schema_errors(lambda c: fn(P._mapping(c, "<body>", kind)), candidate)
            _no_made_up_price(result)

    run()


def _no_made_up_price(result: Any) -> None:
    """Whatever parsed carries only exact, in-range Decimal prices (no float, no NaN)."""
    if isinstance(result, Market):
        for name in ("yes_bid", "yes_ask", "last_price"):
            value = getattr(result, name, None)
            if value is not None:
                assert isinstance(value, Decimal) and value.is_finite() and 0 <= value <= 1, (name, value)
    elif isinstance(result, Order | Fill):
        price = getattr(result, "price", None) or getattr(result, "yes_price", None)
        if price is not None:
            assert isinstance(price, Decimal) and price.is_finite(), price
    elif isinstance(result, OrderBook):
        for level in (*result.yes_bids, *result.no_bids):
            assert isinstance(level.price, Decimal) and 0 < level.price < 1, level


def test_rel_kalshi_response_bodies_from_bytes() -> None:
    """Raw response bytes (anything a broken proxy could send) -> JSON error naming <body>, or a mapping."""
    from precog.venues.kalshi.client import _decode

    @FUZZ
    @given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
    def run(raw: bytes) -> None:
        _count("kalshi.body")
        try:
            _decode(raw, method="GET", path="/markets")
        except KalshiSchemaError as exc:
            assert exc.field == "<body>"

    run()


# ---------------------------------------------------------------------------------------------- Kalshi WebSocket
WS_SEEDS: list[Any] = [
    {"type": "orderbook_snapshot", "sid": 1, "seq": 1, "msg": {
        "market_ticker": "T-A", "yes_dollars_fp": [["0.4000", "10.00"], ["0.3900", "5.00"]],
        "no_dollars_fp": [["0.5500", "7.00"]]}},
    {"type": "orderbook_delta", "sid": 1, "seq": 2, "msg": {
        "market_ticker": "T-A", "price_dollars": "0.4000", "delta_fp": "-3.00", "side": "yes"}},
    {"type": "orderbook_delta", "sid": 1, "seq": 3, "msg": {
        "market_ticker": "T-A", "price_dollars": "0.4100", "delta_fp": "2.00", "side": "no"}},
    {"type": "ticker", "sid": 2, "msg": {"market_ticker": "T-A", "price_dollars": "0.4100",
                                          "yes_bid_dollars": "0.4000", "yes_ask_dollars": "0.4500",
                                          "volume_fp": "100.00", "ts": 1764000000}},
    {"type": "trade", "sid": 3, "msg": {"trade_id": "t1", "market_ticker": "T-A", "yes_price_dollars": "0.4100",
                                         "no_price_dollars": "0.5900", "count_fp": "3.00", "taker_side": "yes",
                                         "ts": 1764000000}},
    {"type": "fill", "sid": 4, "msg": {"trade_id": "t1", "order_id": "o1", "market_ticker": "T-A", "is_taker": True,
                                        "side": "yes", "action": "buy", "yes_price_dollars": "0.4100",
                                        "count_fp": "3.00", "ts": 1764000000}},
    {"type": "market_lifecycle_v2", "sid": 5, "msg": {"market_ticker": "T-A", "event_type": "settled",
                                                       "result": "yes", "settlement_value": 100}},
    {"type": "subscribed", "id": 1, "msg": {"channel": "orderbook_delta", "sid": 1}},
    {"type": "error", "id": 9, "msg": {"code": 6, "msg": "Already subscribed"}},
]


def test_rel_kalshi_websocket_messages_never_crash_the_reader() -> None:
    """Any text frame is handled: events, StreamError, or a resync — never an exception out of the reader."""
    loop = asyncio.new_event_loop()

    async def feed(frames: list[str]) -> None:
        ws = KalshiWebSocket("ws://127.0.0.1:9/unused", tickers=["T-A"])
        for frame in frames:
            ws._on_raw(frame)
        await asyncio.sleep(0)  # let spawned resync tasks run (no socket: they return at once)
        for task in list(ws._background):
            await task

    frame = payloads(WS_SEEDS).map(lambda d: json.dumps(d, default=str)) | st.text(max_size=60)

    @FUZZ
    @given(frames=st.lists(frame, min_size=1, max_size=6))
    def run(frames: list[str]) -> None:
        _count("kalshi.websocket")
        loop.run_until_complete(feed([json.dumps(WS_SEEDS[0]), *frames]))

    try:
        run()
    finally:
        loop.close()


# ---------------------------------------------------------------------------------------------- ESPN
@pytest.fixture(scope="module")
def espn_seeds(shared_data: Path) -> list[Any]:
    out = []
    for name in ("nfl_scoreboard_2025_week13_sample.json", "ncaaf_scoreboard_2025_sample.json"):
        path = shared_data / "espn" / name
        if not path.is_file():
            pytest.skip(f"ESPN sample {path} is not present")
        data = json.loads(path.read_bytes(), parse_float=Decimal)
        out.extend({"events": [ev]} for ev in data["events"][:6])  # one game per seed keeps mutations focused
    return out


def test_rel_espn_scoreboards_parse_or_name_the_path(espn_seeds: list[Any]) -> None:
    for seed in espn_seeds:
        parsed = parse_scoreboard(seed, "nfl")
        assert parsed.games or parsed.errors

    @FUZZ
    @given(doc=payloads(espn_seeds) | st.binary(max_size=120))
    def run(doc: Any) -> None:
        _count("espn.scoreboard")
        payload = doc if isinstance(doc, bytes) else (doc if isinstance(doc, dict) else json.dumps(doc, default=str))
        try:
            parsed = parse_scoreboard(payload, "nfl")
        except EspnSchemaError as exc:
            assert str(exc)
            return
        for err in parsed.errors:
            assert isinstance(err, EspnSchemaError) and str(err)
        for game in parsed.games:
            for side in ("home_score", "away_score"):
                score = getattr(game, side, None)
                assert score is None or (isinstance(score, int) and score >= 0)

    run()


# ---------------------------------------------------------------------------------------------- config
YAML_SEEDS = [
    "account:\n  daily_loss_limit_dollars: 250.00\n  max_open_positions: 12\n",
    "environment:\n  active: demo\nlogging:\n  level: INFO\n",
    "kelly:\n  fraction: 0.25\n",
    "a: [1, 2.5, {b: c}]\n",
    "x: 1.2.3\n", "t: 190:20:30.15\n", "n: .inf\n", "d: 2025-01-01\n", "s: !!binary aGVsbG8=\n",
    "k: &a [*a]\n", "- just\n- a list\n", "{unclosed: [1, 2\n", "? complex\n: key\n", "v: 1_000.5\n",
]
yaml_text = (st.sampled_from(YAML_SEEDS)
             | st.text(alphabet=st.sampled_from(list("abc:- \n\t{}[],.!&*?|>'\"#%@`0123456789eE+_")), max_size=80)
             | st.tuples(st.sampled_from(YAML_SEEDS), st.text(max_size=20)).map("".join)
             | st.tuples(st.sampled_from(["account", "kelly", "environment", "x"]),
                         st.sampled_from(["daily_loss_limit_dollars", "fraction", "active", "level", "y"]),
                         st.text(alphabet=st.sampled_from(list("0123456789.:-+eE_nafNIi ")), max_size=12))
             .map(lambda t: f"{t[0]}:\n  {t[1]}: {t[2]}\n"))


def test_rel_config_yaml_text_loads_or_raises_config_error() -> None:
    @FUZZ
    @given(text=yaml_text)
    def run(text: str) -> None:
        _count("config.yaml_text")
        try:
            data = load_yaml_text(text, "fuzz.yaml")
        except ConfigError as exc:
            assert "fuzz.yaml" in str(exc)
            return
        assert isinstance(data, dict)
        _no_floats(data)

    run()


def _no_floats(value: Any, seen: set[int] | None = None) -> None:
    seen = set() if seen is None else seen
    if isinstance(value, dict | list):
        if id(value) in seen:  # YAML anchors can make a node contain itself
            return
        seen.add(id(value))
        for v in (value.values() if isinstance(value, dict) else value):
            _no_floats(v, seen)
    else:
        assert not isinstance(value, float), f"a binary float {value!r} came out of the YAML loader"


CONFIG_FILES = ("trading", "system", "position_management")


def test_rel_config_loader_user_files_load_or_raise_config_error(tmp_path: Path) -> None:
    """A user's config directory with one fuzzed file: the merged, validated config or one ConfigError."""
    slow = settings(FUZZ, max_examples=max(40, PER_TARGET // 10))

    @slow
    @given(name=st.sampled_from(CONFIG_FILES), text=yaml_text)
    def run(name: str, text: str) -> None:
        _count("config.loader")
        folder = tmp_path / "cfg"
        folder.mkdir(exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
        try:
            cfg = load_config(folder, use_env=False, use_overrides=False)
        except ConfigError as exc:
            assert str(exc)
            return
        assert cfg.get("system.environment.active")

    run()
