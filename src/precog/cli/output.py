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


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    table = Table(title=title, show_lines=False)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


def print_mapping(title: str | None, data: Mapping[str, Any]) -> None:
    print_table(title, ["key", "value"], ((k, v) for k, v in data.items()))
