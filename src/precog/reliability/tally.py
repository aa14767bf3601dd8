"""What the fault-injection tests did, for `benchmarks/reliability_report.py`.

Each test calls `record(...)` once per fault scenario. When PRECOG_RELIABILITY_TALLY names a file, a JSON
line is appended to it (several pytest processes may append at once: one short write per line); without the
variable `record` does nothing, so the tests run the same way in CI.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

TALLY_ENV = "PRECOG_RELIABILITY_TALLY"


@dataclass
class FaultRecord:
    fault: str  # what was injected, e.g. "venue: 503 storm on order create"
    injected: int  # how many times
    behaviour: str  # what the system did
    survived: int  # how many of the injections ended in a correct state
    lost_orders: int = 0
    lost_fills: int = 0
    lost_alerts: int = 0
    category: str = ""
    extra: dict[str, object] = field(default_factory=dict)


def record(fault: str, injected: int, behaviour: str, *, survived: int | None = None, lost_orders: int = 0,
           lost_fills: int = 0, lost_alerts: int = 0, category: str = "", **extra: object) -> FaultRecord:
    rec = FaultRecord(fault, injected, behaviour, injected if survived is None else survived, lost_orders,
                      lost_fills, lost_alerts, category or fault.split(":", 1)[0].strip(), dict(extra))
    path = os.environ.get(TALLY_ENV, "").strip()
    if path:
        line = json.dumps(asdict(rec), default=str, sort_keys=True) + "\n"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    return rec


def read(path: Path) -> list[FaultRecord]:
    out: list[FaultRecord] = []
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            out.append(FaultRecord(**json.loads(line)))
    return out


def merge(records: Iterable[FaultRecord]) -> list[FaultRecord]:
    """One row per fault name: counts summed, the first behaviour text kept."""
    merged: dict[str, FaultRecord] = {}
    for r in records:
        m = merged.get(r.fault)
        if m is None:
            merged[r.fault] = FaultRecord(r.fault, r.injected, r.behaviour, r.survived, r.lost_orders, r.lost_fills,
                                          r.lost_alerts, r.category, dict(r.extra))
        else:
            m.injected += r.injected
            m.survived += r.survived
            m.lost_orders += r.lost_orders
            m.lost_fills += r.lost_fills
            m.lost_alerts += r.lost_alerts
    return list(merged.values())
