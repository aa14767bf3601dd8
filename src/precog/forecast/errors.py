"""Errors of the forecasting layer, phrased for people (the CLI prints them as one line)."""

from __future__ import annotations


class ForecastError(Exception):
    """Base class: something the user can fix (bad input, refused registry action, missing model)."""


class InputFileError(ForecastError):
    """A games or plays file that cannot be used: names the file, the row and the column."""

    def __init__(self, path: str, message: str, *, row: int | None = None, line: int | None = None,
                 column: str | None = None) -> None:
        where = [str(path)]
        if row is not None:
            where.append(f"row {row}" + (f" (line {line})" if line is not None else ""))
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {message}")
        self.path = path
        self.row = row
        self.line = line
        self.column = column


class UnknownTeamError(InputFileError):
    """A team code the model has no rating (or mapping) for."""


class RegistryError(ForecastError):
    """A registry action that cannot be done: unknown model, duplicate version, bad config."""


class LifecycleError(RegistryError):
    """A status change that the model lifecycle (spec 8.1) forbids."""


class ImmutabilityError(RegistryError):
    """An attempt to change what a model version froze (config, version, artifact hash)."""


class ArtifactError(ForecastError):
    """A model artifact that is missing, unreadable or does not match its recorded SHA-256."""
