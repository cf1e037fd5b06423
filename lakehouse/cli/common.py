"""Helpers every `lakehouse` subcommand module shares: errors, settings, lists.

Imports stay light here: `lakehouse --help` must not pay for rich, pydantic or
the engines (see bench/startup.py); each loads on first use.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import click

from lakehouse.errors import LakehouseError, ServiceNotRunningError
from lakehouse.privacy import PRIVATE_UMASK, write_private

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
            # rich's own handling exits 1, as for a failure; ours exits as `| head` expects.
            self._console.on_broken_pipe = exit_reader_gone  # type: ignore[method-assign]
        return getattr(self._console, name)


out = cast("Console", _LazyConsole(stderr=False))
err = cast("Console", _LazyConsole(stderr=True))


# Control characters (but newline and tab) in a message would drive the terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


# Long enough for a message of ours (a list of directories searched, a query),
# short enough that a quoted value of megabytes does not flood the terminal.
LINE_CHARS = 2000


def printable(text: str) -> str:
    """``text`` with control characters written as escapes (``\\x1b``), never sent raw,
    and each line cut to LINE_CHARS (a message may quote a long value)."""
    escaped = _CONTROL.sub(lambda found: repr(found.group())[1:-1], text)
    return "\n".join(
        line
        if len(line) <= LINE_CHARS
        else f"{line[:LINE_CHARS]}... ({len(line) - LINE_CHARS:,} more characters)"
        for line in escaped.split("\n")
    )


def friendly_errors(func: F) -> F:
    """Turn a LakehouseError into one message on stderr and exit code 1.

    Any other exception is a bug: one line saying so, with the log file that holds its
    traceback (printed too with --verbose); Ctrl-C exits 130 without a traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        verbose = bool(ctx.find_root().params.get("verbose"))
        try:
            return func(*args, **kwargs)
        except LakehouseError as exc:
            if verbose:
                traceback.print_exc()
            click.echo(f"Error: {printable(str(exc))}", err=True)
            sys.exit(1)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except BrokenPipeError:
            exit_reader_gone()
        except Exception as exc:
            if verbose:
                traceback.print_exc()
            log = _log_bug(ctx)
            first = printable(str(exc).strip().splitlines()[0][:300]) if str(exc).strip() else ""
            click.echo(
                f"Error: unexpected {type(exc).__name__}: {first}\n"
                f"Hint: This is a bug in lakehouse; the traceback is in {log} "
                "(or run again with --verbose). Please report it.",
                err=True,
            )
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


# What a shell reports for a process that SIGPIPE ended (128 + 13), as `yes | head` does.
EXIT_READER_GONE = 141


def exit_reader_gone() -> NoReturn:
    """Exit quietly because whoever read stdout closed it (``| head``, ``| true``).

    Not an error of ours: no message. Output still buffered goes to /dev/null, so
    Python's own flush at shutdown does not report the broken pipe either.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    sys.exit(EXIT_READER_GONE)


class LakehouseGroup(click.Group):
    """The root command group: flushes stdout itself before exit, so that a reader
    that went away ends the command quietly (see :func:`exit_reader_gone`) rather
    than with Python's "Exception ignored ... BrokenPipeError" at shutdown."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        # Every file a command writes (into the home, a backup, a log) is private:
        # see lakehouse.privacy. Restored for a caller that runs `main` in-process.
        caller_umask = os.umask(PRIVATE_UMASK)
        try:
            try:
                return super().main(*args, **kwargs)
            finally:
                sys.stdout.flush()
        except BrokenPipeError:
            exit_reader_gone()
        finally:
            os.umask(caller_umask)


def _log_bug(ctx: click.Context) -> Path:
    """Append the current exception's traceback to a log file; its path."""
    try:
        home = settings_of(ctx).home_dir
        log = home / "logs" / "cli-errors.log" if home.is_dir() else None
    except Exception:  # the settings may be what is broken
        log = None
    log = log or Path(tempfile.gettempdir()) / f"lakehouse-cli-errors-{os.getuid()}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    header = f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(sys.argv)}\n"
    write_private(log, header + traceback.format_exc(), append=True)
    return log


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
