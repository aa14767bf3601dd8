"""markets.yaml global_filters `min_bid_ask_size` / `min_market_age_hours` and prioritization
`max_simultaneous_markets` / `max_per_sport` / `max_correlated` (spec 4.3 markets.yaml): the audit found Precog refused these keys as
unknown, so nothing stopped an entry into a market with 3 contracts on offer, one listed a minute ago, or a 25th
market at once. Each is now a pre-trade check (precog.trading.risk); `sort_by` orders a scan's candidates for
approval, largest edge first (composite: tests/trading/test_composite_priority.py); the spec's key Precog cannot
compute (max_implied_volatility) is refused with the reason."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from trading_dbkit import KC, World, create_testing_method
from trading_testkit import DEFAULTS, NOW, engine, game, intent, market, settings, venue_market

from precog.config.errors import ConfigError
from precog.config.loader import load_config
from precog.domain.market import Market
from precog.engine.demo import DemoOptions, ensure_demo_methods, run_demo, simulated_market_settings
from precog.engine.entries import Edge, EngineRisk, EntryPlan
from precog.trading.risk import Approval, Rejection, RejectionLog, RiskManager
from precog.trading.scan import run_scan
from precog.trading.settings import TradingSettings
from precog.trading.views import PositionView

D = Decimal


def _approve(m: Any, *, side: str = "yes", cfg: TradingSettings = DEFAULTS,
             held: list[PositionView] | None = None) -> Approval | Rejection:
    risk = RiskManager(cfg, recorder=RejectionLog(), clock=lambda: NOW)
    if held:
        risk.sync(held)
    out: Approval | Rejection = risk.approve(intent(m, side=side, cfg=cfg, p="0.70" if side == "yes" else "0.72"))
    return out


def _refused(out: Approval | Rejection, check: str, says: str) -> None:
    assert isinstance(out, Rejection), f"approved {out.intent.ticker}"
    assert out.check == check and says in out.reason, (out.check, out.reason)


# ------------------------------------------------------------------ the packaged values are the spec's

def test_the_packaged_values_are_the_spec_s() -> None:
    assert (DEFAULTS.min_bid_ask_size, DEFAULTS.min_market_age_seconds) == (10, 3600)
    assert (DEFAULTS.max_simultaneous_markets, DEFAULTS.max_markets_per_sport) == (20, 10)
    assert DEFAULTS.max_correlated_markets == 5


# ------------------------------------------------------------------ min_bid_ask_size

def test_the_size_offered_at_the_yes_ask_refuses_below_ten_and_passes_at_ten() -> None:
    assert isinstance(_approve(market(ask_size="10")), Approval)
    _refused(_approve(market(ask_size="9")), "bid_ask_size", "9 contracts offered at the YES ask 0.52 (minimum 10")
    # a fractional count just under the minimum is not rounded up to it
    _refused(_approve(market(ask_size="9.99")), "bid_ask_size", "minimum 10")


def test_a_no_entry_reads_the_size_of_the_yes_bid_which_is_the_no_ask() -> None:
    """NO ask = 1 - YES bid: the contracts a NO buyer can take are the YES bid's size, not the YES ask's."""
    thin_bid = market(bid_size="9", ask_size="5000")
    _refused(_approve(thin_bid, side="no"), "bid_ask_size", "9 contracts offered at the NO ask 0.50")
    assert isinstance(_approve(market(bid_size="10", ask_size="1"), side="no"), Approval)


def test_an_unreported_size_is_refused_while_the_filter_is_on_and_passes_when_off() -> None:
    _refused(_approve(market(ask_size=None)), "bid_ask_size", "size at the YES ask unknown")
    assert isinstance(_approve(market(ask_size=None), cfg=settings(min_bid_ask_size=0)), Approval)


# ------------------------------------------------------------------ min_market_age_hours

def test_a_market_open_less_than_an_hour_is_refused_and_one_open_an_hour_passes() -> None:
    assert isinstance(_approve(market(opened_ago=3600)), Approval)
    _refused(_approve(market(opened_ago=3599)), "market_age", "market opened 1.00 h ago (minimum 1 h")
    _refused(_approve(market(opened_ago=60)), "market_age", "opened 0.02 h ago")


def test_an_unreported_open_time_is_refused_while_the_filter_is_on() -> None:
    _refused(_approve(market(opened_ago=None)), "market_age", "open time unknown")
    assert isinstance(_approve(market(opened_ago=None), cfg=settings(min_market_age_seconds=0)), Approval)


# ------------------------------------------------------------------ prioritization caps

def _held(n: int, sport: str = "nfl") -> list[PositionView]:
    """`n` positions, each in its own game (so the per-game limits stay out of the way), $20 each."""
    prefix = "KXNFLGAME" if sport == "nfl" else "KXNCAAFGAME"
    return [PositionView(f"{prefix}-G{i}-A", f"{prefix}-G{i}", sport, "yes", 40, D("20")) for i in range(n)]


def test_max_simultaneous_markets_refuses_one_more_market_than_the_cap() -> None:
    cfg = settings(max_open_positions=100, max_simultaneous_markets=4, max_markets_per_sport=100)
    assert isinstance(_approve(market(), cfg=cfg, held=_held(3)), Approval)  # the 4th market
    _refused(_approve(market(), cfg=cfg, held=_held(4)), "simultaneous_markets",
             "4 markets held (max 4, markets.prioritization.max_simultaneous_markets)")
    # more of a market already held is not one more market
    held = _held(3) + [PositionView(market().ticker, market().event_ticker, "nfl", "yes", 10, D("5"))]
    assert isinstance(_approve(market(), cfg=cfg, held=held), Approval)


def test_max_correlated_counts_the_markets_held_in_the_entry_s_correlated_group() -> None:
    """The correlated group is the one `max_correlated_exposure` caps in dollars: the sport and the slate day."""
    m = market()
    cfg = settings(max_open_positions=100, max_simultaneous_markets=100, max_markets_per_sport=100,
                   max_correlated_markets=2)
    same_slate = [replace(p, correlation_group=m.group) for p in _held(2)]
    _refused(_approve(m, cfg=cfg, held=same_slate), "correlated_markets",
             f"2 markets held in correlated group {m.group} (max 2, markets.prioritization.max_correlated)")
    assert isinstance(_approve(m, cfg=cfg, held=same_slate[:1]), Approval)  # the 2nd market of the slate
    other_slate = [replace(p, correlation_group="nfl:2025-12-21") for p in _held(2)]
    assert isinstance(_approve(m, cfg=cfg, held=other_slate), Approval)
    # more of a market already held is not one more market
    held = same_slate[:1] + [PositionView(m.ticker, m.event_ticker, "nfl", "yes", 10, D("5"), correlation_group=m.group)]
    assert isinstance(_approve(m, cfg=cfg, held=held), Approval)


def test_max_per_sport_counts_only_the_sport_of_the_entry() -> None:
    cfg = settings(max_open_positions=100, max_simultaneous_markets=100, max_markets_per_sport=3)
    college = market("KXNCAAFGAME-25NOV29OSUMICH-MICH", event="KXNCAAFGAME-25NOV29OSUMICH", sport="ncaaf")
    assert isinstance(_approve(market(), cfg=cfg, held=_held(2)), Approval)
    _refused(_approve(market(), cfg=cfg, held=_held(3)), "markets_per_sport",
             "3 nfl markets held (max 3, markets.prioritization.max_per_sport)")
    assert isinstance(_approve(college, cfg=cfg, held=_held(3)), Approval)  # three NFL markets, no college one
    _refused(_approve(college, cfg=cfg, held=_held(3, "ncaaf")), "markets_per_sport", "3 ncaaf markets held")


def test_an_outstanding_approval_counts_as_a_market_held() -> None:
    """Working entries count: two approvals issued back to back see each other."""
    cfg = settings(max_open_positions=100, max_simultaneous_markets=2, max_markets_per_sport=100)
    risk = RiskManager(cfg, recorder=RejectionLog(), clock=lambda: NOW)
    risk.sync(_held(1))
    assert isinstance(risk.approve(intent(market(), cfg=cfg)), Approval)
    other = market("KXNFLGAME-25DEC28NEMIA-NE", event="KXNFLGAME-25DEC28NEMIA")
    _refused(risk.approve(intent(other, cfg=cfg)), "simultaneous_markets", "2 markets held")


# ------------------------------------------------------------------ configuration

def _load(tmp_path: Path, markets_yaml: str) -> TradingSettings:
    (tmp_path / "markets.yaml").write_text(markets_yaml)
    return TradingSettings.from_config(load_config(tmp_path, use_env=False, use_overrides=False))


def test_a_user_file_sets_each_new_key(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "global_filters:\n  min_bid_ask_size: 25\n  min_market_age_hours: 0.5\n"
                          "prioritization:\n  max_simultaneous_markets: 7\n  max_per_sport: 3\n")
    assert (cfg.min_bid_ask_size, cfg.min_market_age_seconds) == (25, 1800)
    assert (cfg.max_simultaneous_markets, cfg.max_markets_per_sport) == (7, 3)
    _refused(_approve(market(ask_size="24"), cfg=cfg), "bid_ask_size", "minimum 25")
    assert isinstance(_approve(market(opened_ago=1800), cfg=cfg), Approval)


@pytest.mark.parametrize(("text", "key"), [
    ("global_filters:\n  min_bid_ask_size: -1\n", "global_filters.min_bid_ask_size"),
    ("global_filters:\n  min_bid_ask_size: '10'\n", "global_filters.min_bid_ask_size"),
    ("global_filters:\n  min_market_age_hours: -0.5\n", "global_filters.min_market_age_hours"),
    ("global_filters:\n  min_market_age_hours: 721\n", "global_filters.min_market_age_hours"),
    ("prioritization:\n  max_simultaneous_markets: 0\n", "prioritization.max_simultaneous_markets"),
    ("prioritization:\n  sort_by: score\n", "prioritization.sort_by"),
    ("prioritization:\n  max_correlated: 0\n", "prioritization.max_correlated"),
    ("prioritization:\n  max_per_sport: 0\n", "prioritization.max_per_sport"),
    ("prioritization:\n  max_per_sport: 1001\n", "prioritization.max_per_sport"),
])
def test_out_of_range_values_are_refused_naming_the_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, text)
    assert "markets.yaml" in str(err.value) and key in str(err.value), str(err.value)


@pytest.mark.parametrize(("text", "key", "why"), [
    ("global_filters:\n  max_implied_volatility: 0.5\n", "global_filters.max_implied_volatility", "implied volatility"),
    ("prioritization:\n  composite_weights:\n    edge: 0.5\n", "prioritization.composite_weights",
     "prioritization.composite.edge"),
])
def test_the_spec_keys_precog_cannot_compute_are_refused_with_the_reason(tmp_path: Path, text: str, key: str,
                                                                          why: str) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, text)
    message = str(err.value)
    assert "markets.yaml" in message and repr(key) in message and "not used by Precog" in message and why in message


# ------------------------------------------------------------------ where the numbers come from

def test_a_scan_from_the_database_reads_the_stored_size_and_open_time(world: World) -> None:
    """`precog edges scan` / the decision planner (precog run --venue kalshi): the size ingestion keeps in the
    markets row's metadata and the row's open_time reach the gate."""
    create_testing_method(world.conn)

    def kc_checks() -> list[str]:
        report = run_scan(world.conn, load_config(use_env=False), world.connect())
        return [r.check for r in report.result.rejections if r.market is not None and r.market.ticker == KC]

    def stored(sql: str, *params: Any) -> None:
        world.conn.execute("SET session_replication_role = replica")  # the stored version in place (SCD2 set-up)
        world.conn.execute(sql + " WHERE market_id = %s AND row_current_ind", (*params, KC))
        world.conn.execute("SET session_replication_role = origin")

    assert "bid_ask_size" not in kc_checks() and "market_age" not in kc_checks()
    stored("UPDATE markets SET metadata = metadata || '{\"yes_ask_size\": \"4\"}'::jsonb")
    assert kc_checks() == ["bid_ask_size"]
    stored("UPDATE markets SET metadata = metadata || '{\"yes_ask_size\": \"40\"}'::jsonb, open_time = %s",
           world.now - timedelta(minutes=10))
    assert kc_checks() == ["market_age"]


def test_the_trading_loop_gate_reads_the_venue_market_s_size_and_open_time(db_url: str) -> None:
    """EngineRisk.approve (the trading loop's own planner) hands the venue Market's sizes and open_time over."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        specs = ensure_demo_methods(conn)
        risk = EngineRisk(conn, DEFAULTS, mode="paper", record=False)
        risk.load_units(specs)
        risk.sync([], D("10000"), now=NOW)
        plan = EntryPlan("yes", 10, D("0.52"), "limit", "good_till_canceled",
                         Edge("yes", D("0.70"), D("0.52"), D("0.02"), D("0.16")))

        def approve(m: Market) -> Any:
            return risk.approve(plan, m, specs[0], event_id="KXNFLGAME-T", sport="nfl", confidence="high", now=NOW)

        assert isinstance(approve(venue_market()), Approval)
        for m, check in ((venue_market(yes_ask_size=D("9")), "bid_ask_size"),
                         (venue_market(yes_ask_size=None), "bid_ask_size"),
                         (venue_market(open_time=datetime.fromtimestamp(NOW - 600, UTC)), "market_age"),
                         (venue_market(open_time=None), "market_age")):
            out = approve(m)
            assert isinstance(out, Rejection) and out.check == check, out


# ------------------------------------------------------------------ simulated worlds

def test_simulated_markets_relax_the_market_filters_but_keep_the_caps() -> None:
    cfg = load_config(use_env=False)
    configured, sim = TradingSettings.from_config(cfg), simulated_market_settings(cfg)
    assert (configured.min_market_age_seconds, configured.min_bid_ask_size) == (3600, 10)
    assert (sim.min_market_age_seconds, sim.min_bid_ask_size) == (0, 0)
    assert (sim.max_simultaneous_markets, sim.max_markets_per_sport) == (20, 10)


@pytest.mark.timeout(300)
async def test_the_demo_still_trades(db_url: str) -> None:
    result = await run_demo(db_url, DemoOptions(games=1, speed=0, seed=7))
    assert result.trades > 0 and result.ledger_match
    with psycopg.connect(db_url) as conn:
        refused = conn.execute("SELECT check_name, count(*) FROM risk_rejections WHERE check_name IN"
                               " ('bid_ask_size', 'market_age') GROUP BY 1").fetchall()
    assert refused == [], refused


# ------------------------------------------------------------------ prioritization.sort_by

# three markets of three games (ticker order A, B, C), each with an edge the scan takes: B's is the largest, then C's
_THREE = {"KXNFLGAME-25DEC28AAABBB-AAA": "0.70", "KXNFLGAME-25DEC28CCCDDD-CCC": "0.80",
          "KXNFLGAME-25DEC28EEEFFF-EEE": "0.75"}


def _scan_room_for(n: int, sort_by: str) -> list[str]:
    """The markets a scan approves when only `n` more markets fit (max_simultaneous_markets)."""
    cfg = replace(settings(max_open_positions=100, max_simultaneous_markets=n, max_markets_per_sport=100),
                  prioritize_by=sort_by)
    markets = [market(t, event=t.rsplit("-", 1)[0]) for t in _THREE]
    games = {m.event_ticker: game(start_in=3 * 3600) for m in markets}
    result = engine(dict(_THREE), cfg=cfg).scan(markets, games, positions=[], balance=D("10000"), now=NOW)
    return [a.intent.ticker for a in result.approved]


def test_the_largest_edges_get_the_room_left_and_ticker_order_is_the_alternative() -> None:
    assert DEFAULTS.prioritize_by == "edge"  # the spec's packaged value
    assert _scan_room_for(1, "edge") == ["KXNFLGAME-25DEC28CCCDDD-CCC"]
    assert _scan_room_for(2, "edge") == ["KXNFLGAME-25DEC28CCCDDD-CCC", "KXNFLGAME-25DEC28EEEFFF-EEE"]
    assert _scan_room_for(1, "ticker") == ["KXNFLGAME-25DEC28AAABBB-AAA"]
    assert _scan_room_for(3, "edge") == ["KXNFLGAME-25DEC28CCCDDD-CCC", "KXNFLGAME-25DEC28EEEFFF-EEE",
                                         "KXNFLGAME-25DEC28AAABBB-AAA"]


def test_sort_by_is_read_from_markets_yaml(tmp_path: Path) -> None:
    assert _load(tmp_path, "prioritization:\n  sort_by: ticker\n").prioritize_by == "ticker"
