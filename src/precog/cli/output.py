"""Shared output helpers: JSON with exact Decimals, Rich tables for people."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from precog.domain.jsonutil import dumps

console = Console()
err_console = Console(stderr=True)


def print_json(data: Any) -> None:
    typer.echo(dumps(data, indent=2))


# Cells up to this long (amounts, counts, dates, statuses) are never wrapped or cut: when a table is wider
# than the terminal, the longer text columns (names, tickers, versions) wrap instead, and when even that does
# not fit, each row is shown as its own two-column block (as psql's expanded display), never cropped.
_ATOMIC_CELL = 16
_TEXT_MIN = 12


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    widest = [max([len(col), *(len(r[j]) for r in cells if j < len(r))]) for j, col in enumerate(columns)]
    atomic = [max((len(r[j]) for r in cells if j < len(r)), default=0) <= _ATOMIC_CELL for j in range(len(columns))]
    borders = 3 * len(columns) + 1
    if sum(widest) + borders > console.width and sum(
            w if a else min(w, _TEXT_MIN) for w, a in zip(widest, atomic, strict=True)) + borders > console.width:
        _print_expanded(title, columns, cells)
        return
    table = Table(title=title, show_lines=False)
    for col, width, short in zip(columns, widest, atomic, strict=True):
        if short:
            table.add_column(col, no_wrap=True, min_width=width)
        else:
            table.add_column(col, overflow="fold")
    for row in cells:
        table.add_row(*row)
    console.print(table)


def _print_expanded(title: str | None, columns: Sequence[str], cells: list[list[str]]) -> None:
    for i, row in enumerate(cells, 1):
        block = Table(title=f"{title} ({i} of {len(cells)})" if title else None, show_header=False)
        block.add_column(no_wrap=True, style="bold")
        block.add_column(overflow="fold")
        for col, value in zip(columns, row, strict=False):
            block.add_row(col, value)
        console.print(block)
    if not cells:
        console.print(f"{title}: (none)" if title else "(none)")


def print_mapping(title: str | None, data: Mapping[str, Any]) -> None:
    print_table(title, ["key", "value"], ((k, v) for k, v in data.items()))
