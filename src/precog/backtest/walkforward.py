"""Walk-forward windows: `train=3y,test=1y,step=1y` -> train on [a, a+3y), trade [a+3y, a+4y), move a by 1y.

Test windows never overlap (step >= test): a game traded in two windows would be traded twice, the second
time with cash that already holds its P&L, and the run's equity curve would go back in time."""

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

    @property
    def months(self) -> int:
        return self.n * 12 if self.unit == "y" else self.n if self.unit == "m" else 0

    @property
    def days(self) -> int:
        return self.n if self.unit == "d" else 0

    def add(self, d: date) -> date:
        return _shift(d, self.months, self.days)

    def sub(self, d: date) -> date:
        return _shift(d, -self.months, -self.days)

    def __str__(self) -> str:
        return f"{self.n}{self.unit}"


def _shift(d: date, months: int, days: int) -> date:
    """d + months (the day clamped to the month's last) + days."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    day = min(d.day, [31, 29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28, 31, 30, 31, 30,
                      31, 31, 30, 31, 30, 31][month - 1])
    return date(year, month, day) + timedelta(days=days)


def _at(start: date, k: int, step: Span, *spans: Span) -> date:
    """start + k steps + spans, in one shift from `start`: chaining shifts from the previous window's dates would
    clamp month ends differently for a+train+test and (a+step)+train, leaving a day between test windows."""
    return _shift(start, k * step.months + sum(s.months for s in spans), k * step.days + sum(s.days for s in spans))


def _overlap_error(wf: WalkForward) -> BacktestError:
    return BacktestError(f"--walk-forward {wf}: step={wf.step} is shorter than test={wf.test}, so the test windows "
                         "would overlap (the same games traded in two windows); test windows must not overlap: use "
                         f"step >= test (e.g. step={wf.test})")


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
    wf = WalkForward(parts["train"], parts["test"], parts.get("step", parts["test"]))
    step, test = wf.step, wf.test
    if (step.days == test.days == 0 and step.months < test.months) or \
            (step.months == test.months == 0 and step.days < test.days):
        raise _overlap_error(wf)  # comparable units: refused up front (mixed units are checked by `windows`)
    return wf


def windows(wf: WalkForward, start: date, end: date) -> list[Window]:
    out: list[Window] = []
    k = 0
    while True:
        train_to = _at(start, k, wf.step, wf.train)
        if train_to > end:
            break
        test_to = min(_at(start, k, wf.step, wf.train, wf.test) - timedelta(days=1), end)
        if out and train_to <= out[-1].test_to:
            raise _overlap_error(wf)  # e.g. test=30d,step=1m over a February
        out.append(Window(len(out), _at(start, k, wf.step), train_to, train_to, test_to))
        k += 1
    if not out:
        raise BacktestError(f"--walk-forward {wf}: the data range {start} .. {end} is shorter than one training "
                            "window; widen --from/--to or shorten train=")
    return out
