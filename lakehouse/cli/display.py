"""Tables for people that never cut a value, at any width.

Every CLI listing (`status`, `tables`, `describe`, `history`, `sync status`,
`query`) prints through ``print_table``:

- not a terminal (piped, redirected, tests): a table as wide as its widest
  row, whatever ``COLUMNS`` says, so each row is one line that grep and cut can
  read and no value is folded or cut. Written row by row as it is formatted,
  so ``| head`` ends at once (rich lays out every row before writing the
  first: 17 s for 100,000 rows);
- a terminal wide enough for the table: the table;
- a terminal too narrow: one block per row, ``header  value`` per line (like
  psql's expanded mode), so IDs, timestamps and URLs stay whole and copyable;
  a value wider than the terminal is wrapped by the terminal, never cut.

Cells are plain text or rich ``Text`` (for colour); never markup.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    Cell = str | Text

# Characters rich's Text changes when it renders (strips, expands, breaks or folds
# at, or drops at a line's end like a space, yet they are not one): a table
# holding one is drawn by rich itself, so the output is the same either way.
_RICH_ONLY = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]|[^\S \n]")
# Lines written at a time by the streaming writer.
_CHUNK_LINES = 500


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
    if (
        not console.is_terminal
        and _writes_straight(console)
        and _stream_wide(console, headers, rows)
    ):
        return
    table = folding_table(headers, rows)
    natural = Measurement.get(console, console.options.update(width=10**6), table).maximum
    if not console.is_terminal:
        _print_wide(console, table, natural)
    elif natural <= console.width:
        console.print(table)
    else:
        print_vertical(headers, rows, console)


def _writes_straight(console: Console) -> bool:
    """True if text written to ``console.file`` is all ``console`` would do with it:
    not recording, not capturing (rich's buffer is then not flushed after a print)."""
    return not console.record and getattr(console, "_buffer_index", 0) == 0


def _stream_wide(console: Console, headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> bool:
    """``rows`` under ``headers`` as rich draws a folding table at its natural width
    (heavy head, one line per line of a value), written to ``console.file`` a chunk
    of lines at a time; False, having written nothing, for a table only rich draws
    right. A reader gone away ends it as rich would (on_broken_pipe)."""
    split = _split_texts(headers, rows)
    widths = _column_widths(split) if split else None
    if split is None or widths is None:
        return False
    lines = _box_lines(split, widths)
    try:
        while chunk := [line for _, line in zip(range(_CHUNK_LINES), lines, strict=False)]:
            console.file.write("\n".join(chunk) + "\n")
        console.file.flush()
    except BrokenPipeError:
        console.on_broken_pipe()
    return True


def _split_texts(
    headers: Sequence[str], rows: Sequence[Sequence[Cell]]
) -> list[list[list[str]]] | None:
    """Header and rows, each cell as its plain lines; None if a cell holds a character
    rich's Text changes (a control character, whitespace but space and newline) or
    there are no columns."""
    texts = [list(headers), *([c if isinstance(c, str) else c.plain for c in r] for r in rows)]
    if not headers or any(_RICH_ONLY.search(text) for row in texts for text in row):
        return None
    return [[text.split("\n") for text in row] for row in texts]


def _column_widths(split: list[list[list[str]]]) -> list[int] | None:
    """Each column's width, its widest line's; None if one is 0 wide (rich crops
    what such a column holds: zero-width characters, extra lines)."""
    widths = [max(_width(line) for row in split for line in row[i]) for i in range(len(split[0]))]
    return None if 0 in widths else widths


def _box_lines(split: list[list[list[str]]], widths: list[int]) -> Iterator[str]:
    """The lines of the table, top edge to bottom edge, made as they are read."""
    yield "┏" + "┳".join("━" * (w + 2) for w in widths) + "┓"
    yield from _row_lines(split[0], widths, "┃", bottom=True)
    yield "┡" + "╇".join("━" * (w + 2) for w in widths) + "┩"
    for row in split[1:]:
        yield from _row_lines(row, widths, "│")
    yield "└" + "┴".join("─" * (w + 2) for w in widths) + "┘"


def _row_lines(
    cells: list[list[str]], widths: list[int], bar: str, bottom: bool = False
) -> Iterator[str]:
    """One row's lines: a value of n lines makes the row n lines high, a shorter value
    blank below (above in the header: rich bottom-aligns headers)."""
    height = max(len(lines) for lines in cells)
    if bottom:
        cells = [[""] * (height - len(lines)) + lines for lines in cells]
    for number in range(height):
        texts = [lines[number] if number < len(lines) else "" for lines in cells]
        padded = (f" {t}{' ' * (w - _width(t))} " for t, w in zip(texts, widths, strict=True))
        yield bar + bar.join(padded) + bar


def _width(text: str) -> int:
    """Columns ``text`` takes in a terminal (rich's measure; ASCII: its length)."""
    return len(text) if text.isascii() else _cell_len(text)


def _cell_len(text: str) -> int:
    from rich.cells import cell_len

    return cell_len(text)


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
