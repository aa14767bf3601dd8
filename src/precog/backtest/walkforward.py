"""Walk-forward windows: `train=3y,test=1y,step=1y` -> train on [a, a+3y), trade [a+3y, a+4y), move a by 1y."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from precog.backtest.errors import BacktestError

_PART = re.compile(r"^(train|test|step)=(\d+)([ymd])$")


@dataclass(frozen=True)
class Span:
    n: int
    unit: str  # y | m | d

    def add(self, d: date) -> date:
        if self.unit == "d":
            return d + timedelta(days=self.n)
        months = self.n * (12 if self.unit == "y" else 1)
        y, m = divmod(d.month - 1 + months, 12)
        year, month = d.year + y, m + 1
        day = min(d.day, [31, 29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28, 31, 30, 31, 30,
                          31, 31, 30, 31, 30, 31][month - 1])
        return date(year, month, day)

    def sub(self, d: date) -> date:
        return Span(-self.n, self.unit).add(d) if self.unit != "d" else d - timedelta(days=self.n)

    def __str__(self) -> str:
        return f"{self.n}{self.unit}"


@dataclass(frozen=True)
class WalkForward:
    train: Span
    test: Span
    step: Span

    def __str__(self) -> str:
        return f"train={self.train},test={self.test},step={self.step}"


@dataclass(frozen=True)
class Window:
    index: int
    train_from: date | None
    train_to: date | None  # exclusive
    test_from: date
    test_to: date  # inclusive


def parse(text: str) -> WalkForward:
    parts: dict[str, Span] = {}
    for raw in text.split(","):
        m = _PART.match(raw.strip())
        if not m:
            raise BacktestError(f"--walk-forward: {raw.strip()!r} is not KEY=N(y|m|d) with KEY train, test or step "
                                "(e.g. train=3y,test=1y,step=1y)")
        if int(m.group(2)) <= 0:
            raise BacktestError(f"--walk-forward: {m.group(1)} must be positive")
        parts[m.group(1)] = Span(int(m.group(2)), m.group(3))
    missing = [k for k in ("train", "test") if k not in parts]
    if missing:
        raise BacktestError(f"--walk-forward: missing {', '.join(missing)} (e.g. train=3y,test=1y,step=1y)")
    return WalkForward(parts["train"], parts["test"], parts.get("step", parts["test"]))


def windows(wf: WalkForward, start: date, end: date) -> list[Window]:
    out: list[Window] = []
    a = start
    while True:
        train_to = wf.train.add(a)
        if train_to > end:
            break
        test_to = min(wf.test.add(train_to) - timedelta(days=1), end)
        out.append(Window(len(out), a, train_to, train_to, test_to))
        a = wf.step.add(a)
    if not out:
        raise BacktestError(f"--walk-forward {wf}: the data range {start} .. {end} is shorter than one training "
                            "window; widen --from/--to or shorten train=")
    return out
