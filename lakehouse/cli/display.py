"""Tables for people that never cut a value, at any width.

Every CLI listing (`status`, `tables`, `describe`, `history`, `sync status`,
`query`) prints through ``print_table``:

- not a terminal (piped, redirected, tests): a table as wide as its widest
  row, whatever ``COLUMNS`` says, so each row is one line that grep and cut can
  read and no value is folded or cut;
- a terminal wide enough for the table: the table;
- a terminal too narrow: one block per row, ``header  value`` per line (like
  psql's expanded mode), so IDs, timestamps and URLs stay whole and copyable;
  a value wider than the terminal is wrapped by the terminal, never cut.

Cells are plain text or rich ``Text`` (for colour); never markup.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    Cell = str | Text


def folding_table(headers: Sequence[str], rows: Iterable[Sequence[Cell]]) -> Table:
    """A rich table whose every column folds (wraps) instead of cutting with an ellipsis."""
    from rich.table import Table
    from rich.text import Text

    table = Table()
    for header in headers:  # a repeated header is a column of its own
        table.add_column(Text(header), overflow="fold", no_wrap=False)
    for row in rows:
        table.add_row(*(cell if isinstance(cell, Text) else Text(cell) for cell in row))
    return table


def print_table(
    headers: Sequence[str], rows: Iterable[Sequence[Cell]], console: Console | None = None
) -> None:
    """Print ``rows`` under ``headers`` on ``console`` (default: stdout); see the module doc."""
    from rich.measure import Measurement

    from lakehouse.cli.common import out

    console = console or out
    rows = list(rows)
    table = folding_table(headers, rows)
    natural = Measurement.get(console, console.options.update(width=10**6), table).maximum
    if not console.is_terminal:
        _print_wide(console, table, natural)
    elif natural <= console.width:
        console.print(table)
    else:
        print_vertical(headers, rows, console)


def _print_wide(console: Console, table: Table, width: int) -> None:
    """``table`` at ``width`` columns at least, to ``console``'s file.

    A console of its own: ``Console.print`` caps at the console's width, and
    ``console`` may be a shared, lazily created one.
    """
    from rich.console import Console

    wide = Console(file=console.file, width=max(width, console.width), markup=False,
                   emoji=False, highlight=False, force_terminal=False)  # fmt: skip
    wide.on_broken_pipe = console.on_broken_pipe  # type: ignore[method-assign]
    wide.print(table, crop=False)


def print_vertical(
    headers: Sequence[str], rows: Sequence[Sequence[Cell]], console: Console
) -> None:
    """One block per row: a ``-[ n ]-`` line, then ``header  value`` lines, aligned.

    A value's own line breaks are kept, its later lines indented under the first.
    """
    from rich.text import Text

    width = max((len(h) for h in headers), default=0)
    for number, row in enumerate(rows, start=1):
        console.print(f"-[ {number} ]-", style="dim", soft_wrap=True)
        for header, cell in zip(headers, row, strict=True):
            text = cell.copy() if isinstance(cell, Text) else Text(cell)
            indent = "\n" + " " * (width + 2)
            lines = text.split("\n", allow_blank=True)
            value = Text(indent).join(lines) if len(lines) > 1 else text
            console.print(Text(header.ljust(width) + "  ", "bold") + value, soft_wrap=True)
