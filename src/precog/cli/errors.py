"""Errors that the CLI turns into one readable line (exit code 1; traceback only with --debug)."""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix: bad input, missing setup, refused action."""

    exit_code = 1


# Exception types from other layers that are already phrased for people. The CLI prints them as one line.
def readable_errors() -> tuple[type[BaseException], ...]:
    from precog.config.errors import ConfigError
    from precog.db.connection import DatabaseUnavailable
    from precog.db.embedded import EmbeddedDatabaseError
    from precog.db.migrate import MigrationError
    from precog.domain.money import MoneyError

    return (UserError, ConfigError, DatabaseUnavailable, EmbeddedDatabaseError, MigrationError, MoneyError)
