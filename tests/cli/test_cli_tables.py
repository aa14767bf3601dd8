"""CLI tables on a narrow terminal: amounts are never cut, long names wrap, and a table that cannot fit is shown
row by row (expanded) instead of being cropped."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from precog.cli import output


def _render(monkeypatch: pytest.MonkeyPatch, width: int, columns: list[str], rows: list[list[object]]) -> str:
    buffer = io.StringIO()
    monkeypatch.setattr(output, "console", Console(file=buffer, width=width, no_color=True))
    output.print_table("P&L", columns, rows)
    return buffer.getvalue()


def test_amounts_stay_whole_and_long_names_wrap(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _render(monkeypatch, 60, ["method", "realized", "fees"],
                   [["nfl_live_wp_with_a_very_long_method_name v1.1", "-$7,178.56", "$3,678.20"]])
    assert "-$7,178.56" in text and "$3,678.20" in text
    assert "".join(line.split("│")[1].strip() for line in text.splitlines() if line.startswith("│")) == \
        "nfl_live_wp_with_a_very_long_method_name v1.1"  # folded over lines, every character kept
    assert all(len(line) <= 60 for line in text.splitlines())


def test_a_table_too_wide_for_the_terminal_is_shown_row_by_row(monkeypatch: pytest.MonkeyPatch) -> None:
    columns = ["method", "positions", "closed", "winners", "realized", "unrealized", "fees"]
    rows: list[list[object]] = [["nfl_live_wp v1.1", 256, 256, 59, "-$7,178.56", "$0.00", "$3,678.20"],
                                ["nfl_elo_pregame v1.1", 3, 3, 1, "$12.00", None, "$0.21"]]
    text = _render(monkeypatch, 60, columns, rows)
    assert "P&L (1 of 2)" in text and "P&L (2 of 2)" in text
    for value in ("nfl_live_wp v1.1", "-$7,178.56", "$3,678.20", "nfl_elo_pregame v1.1", "$0.21"):
        assert value in text
    assert all(len(line) <= 60 for line in text.splitlines())
    wide = _render(monkeypatch, 120, columns, rows)  # fits: one ordinary table
    assert "(1 of 2)" not in wide and "-$7,178.56" in wide and "nfl_elo_pregame v1.1" in wide


def test_an_empty_table_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _render(monkeypatch, 20, ["a_long_column_name", "another_long_name"], [])
    assert "P&L" in text
