"""The fast path stamps the held markets' price cache entries once per step, not at every event time.

The reference cycle reads every market and puts each snapshot in the engine's price cache (`PriceCache.put`,
stamped with the cycle's time); the position monitor then reads a held market through that cache with a
freshness limit. The fast path reads only changed markets and writes the held markets' entries only when a
step runs (`BacktestEngine._put_held`): nothing else reads the cache. So whenever the monitor looks, each
held market's entry must be its current snapshot stamped with the step's own time, exactly as the
reference leaves it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backtest.bt_testkit import MeanReversionModel, method_row
from backtest.test_backtest_fast_path import _recording
from precog.backtest import stepping
from precog.backtest.runner import BacktestOptions, run_backtest
from precog.db.connection import connect


async def test_held_markets_price_entries_are_stamped_at_each_step(make_database: Any, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _recording(tmp_path / "rec", quotes=1500)
    seen = {"monitor_looks": 0, "held_entries": 0}
    original = stepping.BacktestEngine._monitor

    async def monitor_checking_the_cache(self: stepping.BacktestEngine, now: Any) -> None:
        seen["monitor_looks"] += 1
        for pos in self.portfolio.open_positions():
            snap = self.snapshots.get(pos.market_id)
            if snap is None:
                continue
            at, cached = self.prices._data[pos.market_id]
            assert at == now, f"{pos.market_id}: cache entry stamped {at}, step at {now}"
            assert cached is snap, f"{pos.market_id}: the cache holds another snapshot than the current one"
            seen["held_entries"] += 1
        await original(self, now)

    monkeypatch.setattr(stepping.BacktestEngine, "_monitor", monitor_checking_the_cache)
    url = make_database()
    with connect(url, autocommit=True) as conn:
        method = method_row(conn, "mean_reversion", "mean_reversion")
    result = await run_backtest(url, BacktestOptions(
        data=tmp_path / "rec", out=tmp_path / "out", fast_path=True,
        extra_models={"mean_reversion": MeanReversionModel()}, extra_methods=[method]))
    window = result.summary["windows"][0]
    assert window["idle_steps_skipped"] > 0  # events passed between steps: the entries were stamped by the step
    assert seen["monitor_looks"] > 50 and seen["held_entries"] > 50, seen
