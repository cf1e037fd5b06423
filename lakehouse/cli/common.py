"""Helpers every `lakehouse` subcommand module shares: errors, settings, lists.

Imports stay light here: `lakehouse --help` must not pay for rich, pydantic or
the engines (see bench/startup.py); each loads on first use.
"""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from lakehouse.errors import LakehouseError, ServiceNotRunningError

if TYPE_CHECKING:
    from rich.console import Console

    from lakehouse.client import Lakehouse
    from lakehouse.config import Settings

F = TypeVar("F", bound=Callable[..., Any])


class _LazyConsole:
    """A rich Console created on first use (importing rich costs ~20 ms)."""

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            # Printed text holds user data (values, names, paths): never
            # read it as markup or emoji codes; styles go through rich Text.
            self._console = Console(stderr=self._stderr, markup=False, emoji=False)
        return getattr(self._console, name)


out = cast("Console", _LazyConsole(stderr=False))
err = cast("Console", _LazyConsole(stderr=True))


def friendly_errors(func: F) -> F:
    """Turn a LakehouseError into one message on stderr and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        try:
            return func(*args, **kwargs)
        except LakehouseError as exc:
            if ctx.find_root().params.get("verbose"):
                traceback.print_exc()
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def settings_of(ctx: click.Context, **overrides: Any) -> Settings:
    from lakehouse.config import load_settings

    root = ctx.find_root().params
    return load_settings(home=root.get("home"), **overrides)


def require_stack(settings: Settings) -> None:
    """Raise when no lake house was ever started in ``settings.home`` (local runtime).

    The message says how the home was chosen and, when it was searched for,
    each directory tried.
    """
    if settings.runtime != "local" or settings.home_dir.is_dir():
        return
    from lakehouse.home import home_origin

    flag = click.get_current_context(silent=True)
    given = bool(flag and flag.find_root().params.get("home"))
    raise ServiceNotRunningError(
        f"No lake house found: {settings.home_dir} does not exist "
        f"({home_origin(settings.home_dir, given)}).",
        hint="Start one with `lakehouse up` in your project directory, or point at a "
        "running one with --home or LAKEHOUSE_HOME (a lakehouse.toml makes a directory a project).",
    )


def lake_of(settings: Settings) -> Lakehouse:
    """A library connection for a command that needs a running stack."""
    from lakehouse.client import Lakehouse

    require_stack(settings)
    return Lakehouse(settings)


def csv_list(value: str | None) -> list[str] | None:
    return [item.strip() for item in value.split(",") if item.strip()] if value else None
