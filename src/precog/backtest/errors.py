"""Errors of the backtester."""

from __future__ import annotations


class BacktestError(ValueError):
    """A backtest that cannot run as asked (bad data path, bad option); the message is one readable line."""


class LookAheadError(RuntimeError):
    """A model or strategy asked for data that was not yet known at the simulated time (a result, a later
    game state, a settlement). The run is invalid: its P&L would be fiction."""
