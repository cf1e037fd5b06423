"""Helpers every `lakehouse` subcommand module shares: errors, settings, lists."""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console

from lakehouse.config import Settings, load_settings
from lakehouse.errors import LakehouseError

if TYPE_CHECKING:
    from lakehouse.client import Lakehouse

F = TypeVar("F", bound=Callable[..., Any])

out = Console()
err = Console(stderr=True)


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
    root = ctx.find_root().params
    return load_settings(home=root.get("home"), **overrides)


def lake_of(settings: Settings) -> Lakehouse:
    from lakehouse.client import Lakehouse

    return Lakehouse(settings)


def csv_list(value: str | None) -> list[str] | None:
    return [item.strip() for item in value.split(",") if item.strip()] if value else None
