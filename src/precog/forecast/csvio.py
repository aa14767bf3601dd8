"""Reading CSV (optionally gzip-compressed) input files with errors that name the file, row and column."""

from __future__ import annotations

import csv
import gzip
import io
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

from precog.forecast.errors import InputFileError

# Data rows are numbered from 0 (the index a user sees in our outputs); line = row + 2 (the header is line 1).
LINE_OFFSET = 2


def open_text(path: Path) -> TextIO:
    """Open a .csv or .csv.gz file for reading; refuses a missing file with a clear message."""
    if not path.exists():
        raise InputFileError(str(path), "file not found")
    if not path.is_file():
        raise InputFileError(str(path), "not a file")
    raw = path.open("rb")
    head = raw.read(2)
    raw.seek(0)
    if head == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.GzipFile(fileobj=raw), encoding="utf-8", newline="")
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


class CsvTable:
    """A CSV file's header and rows (lists of strings), with helpers that raise located errors."""

    def __init__(self, path: Path, header: list[str], rows: list[list[str]]) -> None:
        self.path = path
        self.header = header
        self.rows = rows
        self.index = {name: i for i, name in enumerate(header)}

    @classmethod
    def read(cls, path: Path | str) -> CsvTable:
        path = Path(path)
        try:
            with open_text(path) as fh:
                reader = csv.reader(fh)
                try:
                    header = [h.strip() for h in next(reader)]
                except StopIteration:
                    raise InputFileError(str(path), "the file is empty (no header line)") from None
                rows = list(reader)
        except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
            raise InputFileError(str(path), f"cannot read the file: {exc}") from exc
        rows = [r for r in rows if r and any(cell.strip() for cell in r)]
        for i, r in enumerate(rows):
            if len(r) != len(header):
                raise InputFileError(str(path), f"has {len(r)} fields, the header has {len(header)}",
                                     row=i, line=i + LINE_OFFSET)
        return cls(path, header, rows)

    def __len__(self) -> int:
        return len(self.rows)

    def require(self, columns: Sequence[str], purpose: str) -> None:
        missing = [c for c in columns if c not in self.index]
        if missing:
            raise InputFileError(str(self.path), f"missing column(s) {', '.join(missing)} needed {purpose} "
                                 f"(the file has: {', '.join(self.header)})")

    def has(self, column: str) -> bool:
        return column in self.index

    def error(self, row: int, column: str, message: str) -> InputFileError:
        return InputFileError(str(self.path), message, row=row, line=row + LINE_OFFSET, column=column)

    def text(self, row: int, column: str) -> str:
        return self.rows[row][self.index[column]].strip()

    def column_text(self, column: str) -> Iterator[str]:
        i = self.index[column]
        return (r[i].strip() for r in self.rows)

    def number(self, row: int, column: str, *, allow_empty: bool = False) -> float | None:
        """The cell as a finite float; empty (or NA) -> None when allowed, else a located error."""
        cell = self.text(row, column)
        if cell in ("", "NA", "NaN", "nan"):
            if allow_empty:
                return None
            raise self.error(row, column, "is empty")
        try:
            value = float(cell)
        except ValueError:
            raise self.error(row, column, f"{cell!r} is not a number") from None
        if not math.isfinite(value):
            raise self.error(row, column, f"{cell!r} is not a finite number")
        return value

    def integer(self, row: int, column: str, *, allow_empty: bool = False) -> int | None:
        value = self.number(row, column, allow_empty=allow_empty)
        if value is None:
            return None
        if value != int(value):
            raise self.error(row, column, f"{self.text(row, column)!r} is not a whole number")
        return int(value)
