"""The pre-game price of a play-by-play game uses pre-game information only.

nflfastR's `wp` of the first row of a game is the state after the opening kickoff (the file has no kickoff
rows and no pre-game column such as spread_line): a game without a closing spread has no pre-game price, so
its market opens at kickoff; a game with one is quoted before kickoff at the closing line."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from backtest.bt_testkit import one_game_folder
from precog.backtest.feed import LIST, QUOTE, STATE
from precog.backtest.history import fair_from_spread, game_events, load_nfl


def test_no_play_price_is_quoted_before_kickoff(shared_data: Path) -> None:
    hist = load_nfl(shared_data / "nfl")
    games = [g for g in hist.between(date(2020, 9, 1), date(2023, 2, 28)) if g.plays]
    assert len(games) > 800
    for g in games:
        events = list(game_events([g], "T-"))
        first_state = next(e for e in events if e.kind == STATE)
        before = [e for e in events if e.ts_ms < first_state.ts_ms]
        assert before == [], f"{g.game_id}: quoted before kickoff without a pre-game price: {before}"
        listing = [e for e in events if e.kind in (LIST, QUOTE)]
        assert [e.kind for e in listing] == [LIST] and listing[0].ts_ms == first_state.ts_ms
        assert listing[0].seq < first_state.seq  # listed, then its first state applied at the same instant


@pytest.mark.parametrize("home_first", [True, False], ids=["same-order", "teams-reversed"])
def test_a_closing_spread_prices_a_play_by_play_game_before_kickoff(shared_data: Path, tmp_path: Path,
                                                                     home_first: bool) -> None:
    """A game in both files is one market: listed 26 h before kickoff and quoted 2 h before at the closing line
    (on the plays file's home side, whatever order spreadspoke lists the teams in), then in-game from its plays."""
    # SF at home, favoured by 7 (the plays file: home SF, away ARI)
    teams = ("San Francisco 49ers,20,24,Arizona Cardinals" if home_first
             else "Arizona Cardinals,24,20,San Francisco 49ers")
    one_game_folder(shared_data, tmp_path, spreadspoke=f"9/13/2020,2020,1,FALSE,{teams},SF,-7,47,X,FALSE,,,,\n")
    hist = load_nfl(tmp_path)
    assert len(hist.games) == 1
    g = hist.games[0]
    assert (g.home, g.away) == ("SF", "ARI") and g.plays
    assert g.fair == fair_from_spread(7.0, 13.5)
    events = list(game_events([g], "T-"))
    kickoff = next(e for e in events if e.kind == STATE).ts_ms
    pre = [e for e in events if e.ts_ms < kickoff]
    assert [e.kind for e in pre] == [LIST, QUOTE]
    assert all(e.data["fair"] == Decimal("0.6980") for e in pre)
    assert len(hist.archive) == 1  # one result, trained on once
