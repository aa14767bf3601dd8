"""The `precog` command. Command groups live in sibling modules exposing `register(app)`."""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import sys
import traceback

import typer

import precog
from precog.cli.errors import readable_errors
from precog.cli.output import err_console

app = typer.Typer(
    name="precog",
    help="Precog: automated trading for prediction-market event contracts.\n\n"
    "Quick start: `precog demo` runs a complete paper-trading session on the built-in local exchange.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)

_state = {"debug": False}


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"precog {precog.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks and debug logs."),
) -> None:
    _state["debug"] = debug or os.environ.get("PRECOG_DEBUG", "") in ("1", "true", "yes")
    _setup_logging(_state["debug"])


def _setup_logging(debug: bool) -> None:
    """The structured log of system.yaml `logging` (`precog.config.logsetup`). With a configuration that does not
    load, the console alone (the command itself then says what is wrong, or does not need the configuration)."""
    from precog.config.errors import ConfigError
    from precog.config.loader import load_config
    from precog.config.logsetup import configure_logging

    try:
        configure_logging(load_config(use_overrides=False), debug=debug)
    except ConfigError:
        logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _register_commands() -> None:
    package = importlib.import_module("precog.cli")
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name in {"main", "errors", "output"} or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"precog.cli.{info.name}")
        register = getattr(module, "register", None)
        if callable(register):
            register(app)


_register_commands()


def _click_exception_types() -> tuple[type[BaseException], ...]:
    """ClickException of click and of the copy of click that newer Typer versions vendor (typer._click)."""
    import click

    types: list[type[BaseException]] = [click.exceptions.ClickException]
    try:
        from typer._click.exceptions import ClickException as TyperClickException
    except ImportError:  # Typer before 0.22 uses click itself
        pass
    else:
        types.append(TyperClickException)
    return tuple(types)


def run() -> None:
    """Console-script entry point: readable one-line errors, tracebacks only with --debug."""
    debug = "--debug" in sys.argv or os.environ.get("PRECOG_DEBUG", "") in ("1", "true", "yes")
    try:
        # Without standalone mode Typer returns (not raises) a command's `typer.Exit(code)`.
        code = app(standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool) and code:
            sys.exit(code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the CLI boundary
        click_exceptions = _click_exception_types()
        if isinstance(exc, click_exceptions):
            exc.show()  # type: ignore[attr-defined]  # usage errors: usage line, the message, exit code 2
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        import click

        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        if debug:
            traceback.print_exc()
        if isinstance(exc, readable_errors()):
            err_console.print(f"[red]error:[/red] {exc}", highlight=False, markup=True, soft_wrap=True)
        elif isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
            # a file the user named (--out into a missing directory, a directory for a file): the path and why
            where = f"{exc.filename} -> {exc.filename2}" if exc.filename2 is not None else str(exc.filename)
            from rich.markup import escape

            err_console.print(f"[red]error:[/red] {escape(where)}: {exc.strerror}", highlight=False, markup=True,
                              soft_wrap=True)
        else:
            err_console.print(f"[red]error:[/red] {type(exc).__name__}: {exc}  (run with --debug for the traceback)",
                              highlight=False, soft_wrap=True)
        sys.exit(1)
