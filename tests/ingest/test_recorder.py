"""The raw-feed recorder: gzip JSON lines with receive times, read back in order for replay."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

from precog.ingest.recorder import Recorder, read_recording, replay

T0 = datetime(2025, 12, 1, 1, 20, tzinfo=UTC)


def test_round_trip_keeps_payloads_times_and_order(tmp_path: Path) -> None:
    frame = '{"type":"ticker","sid":1,"msg":{"market_ticker":"KXNFLGAME-25NOV30DENWSH-DEN","yes_bid_dollars":"0.4200"}}'
    with Recorder(tmp_path) as rec:
        rec.record("espn:nfl", {"url": "http://x/scoreboard", "body": '{"events": []}'}, T0)
        rec.record("kalshi:ws", frame, T0 + timedelta(milliseconds=5))
        rec.record("kalshi:rest:markets", {"markets": [], "cursor": ""}, T0 + timedelta(seconds=1))
    messages = list(read_recording(tmp_path))
    assert [m.source for m in messages] == ["espn:nfl", "kalshi:ws", "kalshi:rest:markets"]
    assert messages[1].payload == frame  # exactly as received
    assert messages[1].json_payload()["msg"]["yes_bid_dollars"] == "0.4200"
    assert messages[0].json_payload() == {"events": []}
    assert messages[0].received_at == T0 and messages[1].received_at == T0 + timedelta(milliseconds=5)
    assert [m.source for m in read_recording(tmp_path, sources=["kalshi"])] == ["kalshi:ws", "kalshi:rest:markets"]
    assert all(p.name.endswith(".jsonl.gz") for p in tmp_path.iterdir())


def test_reader_survives_a_crash_mid_file(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, flush_seconds=0)
    for i in range(50):
        rec.record("kalshi:ws", f'{{"seq":{i}}}')
    rec.flush()
    path = rec.paths[0]
    data = path.read_bytes()  # the process "dies" here: no gzip trailer, and we cut into the last block
    path.write_bytes(data[: len(data) - 3])
    got = [m.json_payload()["seq"] for m in read_recording(path)]
    assert got == list(range(len(got))) and len(got) >= 1  # a clean prefix, no exception


def test_rotation_and_multi_file_merge(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, rotate_seconds=0)  # a new file per message
    for i in range(3):
        rec.record("espn:nba", {"i": i}, T0 + timedelta(seconds=i))
    rec.close()
    assert len(list(tmp_path.glob("*.jsonl.gz"))) == 3
    assert [m.payload["i"] for m in read_recording(tmp_path)] == [0, 1, 2]
    with gzip.open(rec.paths[0], "rt") as fh:
        assert '"source":"espn:nba"' in fh.read()


async def test_replay_feeds_a_handler_in_order(tmp_path: Path) -> None:
    with Recorder(tmp_path) as rec:
        for i in range(5):
            rec.record("kalshi:ws", f'{{"n":{i}}}', T0 + timedelta(milliseconds=10 * i))
    seen: list[int] = []

    async def handler(message) -> None:  # type: ignore[no-untyped-def]
        seen.append(message.json_payload()["n"])

    assert await replay(tmp_path, handler, speed=10.0) == 5
    assert seen == [0, 1, 2, 3, 4]
