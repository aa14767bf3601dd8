"""Reading a recording decodes current-shape ticker frames without the generic parser, and must read every frame
exactly as `parse_ticker` does: the same values, and the same frames refused (a refused frame is skipped and
counted, never replaced by a made-up price)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from precog.backtest.errors import BacktestError
from precog.backtest.recording import RecordingDataset, _current_ticker
from precog.ingest.recorder import Recorder, recording_files
from precog.venues.kalshi.errors import KalshiSchemaError
from precog.venues.kalshi.parsing import parse_ticker

TICKER = "KXNFLGAME-25NOV30DENWSH-WSH"
CURRENT = {"market_ticker": TICKER, "yes_bid_dollars": "0.4000", "yes_ask_dollars": "0.4200",
           "yes_bid_size_fp": "300", "yes_ask_size_fp": "250.00"}


def _full(msg: dict[str, Any]) -> tuple[Any, ...] | type[Exception]:
    try:
        q = parse_ticker(msg)
    except KalshiSchemaError:
        return KalshiSchemaError
    return q.ticker, q.yes_bid, q.yes_ask, q.yes_bid_size, q.yes_ask_size


def _fast(frame: str | bytes) -> tuple[Any, ...] | type[Exception] | None:
    try:
        q = _current_ticker(frame)
    except KalshiSchemaError:
        return KalshiSchemaError
    return None if q is None else (q.ticker, q.yes_bid, q.yes_ask, q.yes_bid_size, q.yes_ask_size)


def _check(msg: dict[str, Any]) -> tuple[Any, ...] | type[Exception] | None:
    """The fast reading of a frame agrees with the full parser, or leaves the frame to it (None)."""
    text = json.dumps({"type": "ticker", "sid": 1, "msg": msg})
    fast = _fast(text)
    assert _fast(text.encode()) == fast  # raw bytes (a frame recorded as an object) read the same
    if fast is not None:
        assert fast == _full(msg), (msg, fast)
    return fast


def test_current_frames_read_as_the_full_parser_reads_them() -> None:
    assert _check(CURRENT) == _full(CURRENT) and _full(CURRENT) is not KalshiSchemaError
    # the fields parse_ticker also reads are read here too (a live frame carries them)
    live = CURRENT | {"price_dollars": "0.4100", "volume_fp": "1234.00", "open_interest_fp": "77", "ts": 1764550000}
    assert _check(live) == _full(live)


@pytest.mark.parametrize("change", [
    {"yes_bid_dollars": "1.5"}, {"yes_ask_dollars": "-0.01"}, {"yes_bid_dollars": "abc"},
    {"yes_bid_dollars": "NaN"}, {"yes_bid_size_fp": "x"}, {"yes_ask_size_fp": "Infinity"},
    {"price_dollars": "2"}, {"price_dollars": "oops"}, {"volume_fp": "many"}, {"open_interest_fp": "-"},
    {"ts": "yesterday"}, {"ts": True}, {"ts_ms": "not a time"},
])
def test_a_bad_field_is_refused_as_the_full_parser_refuses_it(change: dict[str, Any]) -> None:
    msg = CURRENT | change
    assert _full(msg) is KalshiSchemaError
    assert _check(msg) in (KalshiSchemaError, None)


@pytest.mark.parametrize("change", [
    {"yes_bid_dollars": None}, {"yes_bid_dollars": 0.4}, {"yes_bid_size_fp": 300}, {"market_ticker": ""},
    {"market_ticker": None, "ticker": TICKER}, {"price": 41}, {"price_fixed": "0.41"}, {"volume": 12},
    {"open_interest": "12"},
])
def test_legacy_and_partial_shapes_are_left_to_the_full_parser(change: dict[str, Any]) -> None:
    assert _check(CURRENT | change) is None


def test_frames_that_are_not_current_tickers_are_left_to_the_full_parser() -> None:
    for frame in ("not json", '{"type": "ticker", "msg": [1, 2]}', '{"type": "ticker", "msg": "x"}',
                  json.dumps({"type": "market_lifecycle_v2", "msg": CURRENT}), json.dumps({"msg": CURRENT}),
                  '{"type": "ticker"}', "[]"):
        assert _fast(frame) is None, frame


_TEXT = st.one_of(st.none(), st.integers(-5, 500), st.floats(allow_nan=True), st.booleans(),
                  st.sampled_from(["0.4000", "0.42", "1", "1.0001", "-0", " 0.5 ", "1e-2", "abc", "", "NaN", "300",
                                   "250.00", "-1", "Infinity", "2025-11-30T20:00:00Z", TICKER]))
_FIELDS = ("market_ticker", "ticker", "yes_bid_dollars", "yes_ask_dollars", "yes_bid_size_fp", "yes_ask_size_fp",
           "price_dollars", "price", "volume_fp", "volume", "open_interest_fp", "open_interest", "ts", "ts_ms")


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(_FIELDS), _TEXT))
def test_any_frame_reads_as_the_full_parser_reads_it(changes: dict[str, Any]) -> None:
    _check(CURRENT | changes)


def test_a_recording_reads_the_same_whichever_way_frames_were_recorded(tmp_path: Path) -> None:
    """Frames recorded as text (what `precog ingest run --record` writes) and as objects give the same events;
    a frame the parser refuses is skipped and counted."""
    t0 = datetime(2025, 12, 1, 1, 0, tzinfo=UTC)
    frames = [{"type": "ticker", "sid": 1, "msg": CURRENT | {"yes_bid_dollars": f"0.{40 + i}00",
                                                             "yes_ask_dollars": f"0.{42 + i}00"}} for i in range(3)]
    frames.insert(1, {"type": "ticker", "sid": 1, "msg": CURRENT | {"yes_bid_dollars": "7"}})  # refused
    got = []
    for name, as_text in (("text", True), ("objects", False)):
        with Recorder(tmp_path / name) as rec:
            for i, f in enumerate(frames):
                rec.record("kalshi:ws", json.dumps(f) if as_text else f, t0 + timedelta(seconds=i))
        ds = RecordingDataset.open(tmp_path / name, recording_files(tmp_path / name))
        events = ds.events(None, None, "")
        got.append([(e.ts_ms, e.kind, e.ticker, e.data) for e in events])
        assert ds.skipped == 1
    assert got[0] == got[1] and len(got[0]) == 3
    assert [e[3]["bid"] for e in got[0]] == [Decimal("0.4000"), Decimal("0.4100"), Decimal("0.4200")]
    assert [(e[3]["bid_size"], e[3]["ask_size"]) for e in got[0]] == [(300, 250)] * 3


def test_a_line_that_is_not_a_recorded_message_names_the_file_and_line(tmp_path: Path) -> None:
    import gzip

    folder = tmp_path / "rec"
    folder.mkdir()
    path = folder / "x.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(json.dumps({"seq": 1, "source": "kalshi:ws", "received_at": "2025-12-01T01:00:00+00:00",
                             "recv_ns": 1, "payload": "{}"}) + "\n")
        fh.write('{"seq": 2, "source": "kalshi:ws"}\n')
    with pytest.raises(BacktestError, match=r"x\.jsonl\.gz:2: not a recorded message"):
        RecordingDataset.open(folder, [path])
