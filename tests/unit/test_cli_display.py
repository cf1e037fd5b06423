"""CLI tables never cut a value: wide when piped, vertical when a terminal is narrow."""

from __future__ import annotations

import io

from rich.console import Console
from rich.text import Text

from lakehouse.cli.display import print_table
from lakehouse.cli.sync import _status_cells

STAMP = "2026-11-29T21:15:48.123456+00:00"
URL = "postgresql://127.0.0.1:5432/a_database_with_a_rather_long_name?sslmode=disable"
HEADERS = ["snapshot_id", "committed_at (UTC)", "operation", "added", "total rows"]
ROWS = [["7208783037241471056", STAMP, "append", "100", "100"], ["1", URL, "overwrite", "1", "2"]]


def render(width: int, terminal: bool, headers: list[str] = HEADERS, rows: list = ROWS) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=terminal, color_system=None,
                      markup=False, emoji=False)  # fmt: skip
    print_table(headers, rows, console)
    return buffer.getvalue()


def test_piped_output_keeps_every_row_on_one_line_at_80_columns() -> None:
    text = render(80, terminal=False)
    assert "…" not in text
    lines = text.splitlines()
    assert any(STAMP in line and "7208783037241471056" in line for line in lines), text
    assert any(URL in line for line in lines), text
    assert len(lines) == 6  # top, header, rule, one line per row, bottom


def test_a_narrow_terminal_prints_each_row_vertically_with_whole_values() -> None:
    text = render(40, terminal=True)
    assert "…" not in text
    assert f"committed_at (UTC)  {STAMP}" in text.splitlines()
    assert text.splitlines().count("-[ 2 ]-") == 1
    assert URL in text.replace("\n", "")  # the terminal wraps it; nothing is dropped


def test_a_wide_terminal_prints_the_table() -> None:
    text = render(200, terminal=True)
    assert "┃ snapshot_id" in text and STAMP in text and URL in text


def test_multiline_values_and_coloured_cells_keep_their_text() -> None:
    rows = [["a\nbb", Text.assemble(("no", "red"), " (connection refused)")]]
    text = render(12, terminal=True, headers=["note", "healthy"], rows=rows)
    assert "note     a\n         bb\n" in text
    assert "healthy  no (connection refused)" in text
    assert "a\nbb" not in render(12, terminal=False, headers=["note", "x"], rows=[["a\nbb", "y"]])


def test_sync_status_keeps_the_whole_last_error() -> None:
    error = "stopped: " + "column qty changed type long -> string; " * 5
    row = {"name": "shop-to-lake", "route": "postgres -> iceberg", "shown_state": "stopped",
           "position": "0/26A1730", "lag_seconds": None, "rows_per_second": 0.0,
           "changes_applied": 1234, "dead_letters": 0, "last_error": error}  # fmt: skip
    cells = _status_cells(row)
    assert cells[-1] == error and cells[4] == "-" and cells[6] == "1,234"
    assert error in render(80, terminal=False, headers=["name"] * 9, rows=[cells])


def _rich_reference(headers: list[str], rows: list[list[str]]) -> str:
    """What rich itself prints for the table on a pipe (the format piped output keeps)."""
    from rich.measure import Measurement

    from lakehouse.cli.display import _print_wide, folding_table

    buffer = io.StringIO()
    console = Console(file=buffer, width=80, markup=False, emoji=False)
    table = folding_table(headers, rows)
    natural = Measurement.get(console, console.options.update(width=10**6), table).maximum
    _print_wide(console, table, natural)
    return buffer.getvalue()


def test_piped_output_is_written_exactly_as_rich_draws_the_table() -> None:
    import random

    pieces = ["a", "Zürich", "日本", "e\u0301", "😀", "👨\u200d👩\u200d👧", " ", "  ", "\n", "", "|",
              "[b]x[/b]", "\u200b", "\xa0", "\u3000", "\u2028", "─", "NULL", "7208783037241471056"]  # fmt: skip
    chooser = random.Random(20261130)
    for _ in range(300):
        columns = chooser.randint(1, 4)
        cell = lambda: "".join(chooser.choices(pieces, k=chooser.randint(0, 4)))  # noqa: E731
        headers = [cell() for _ in range(columns)]
        rows = [[cell() for _ in range(columns)] for _ in range(chooser.randint(0, 4))]
        assert render(80, terminal=False, headers=headers, rows=rows) == _rich_reference(
            headers, rows
        ), (headers, rows)


def test_control_characters_and_tabs_print_as_rich_prints_them() -> None:
    rows = [["tab\there"], ["bell\x07"], ["esc\x1b[31m"], ["cr\rx"]]
    assert render(80, terminal=False, headers=["v"], rows=rows) == _rich_reference(["v"], rows)


class _ClosedAfter(io.StringIO):
    """A pipe whose reader goes away after the first write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        if self.writes > 1:
            raise BrokenPipeError
        return super().write(text)


def test_a_long_piped_table_is_written_in_pieces_and_stops_when_the_reader_goes() -> None:
    pipe = _ClosedAfter()
    console = Console(file=pipe, width=80, markup=False, emoji=False)
    gone: list[bool] = []
    console.on_broken_pipe = lambda: gone.append(True)  # type: ignore[method-assign]
    print_table(["n"], [[str(n)] for n in range(100_000)], console)
    assert gone == [True] and pipe.writes == 2  # no write after the reader went
    assert pipe.getvalue().startswith("┏━━━━━━━┓\n┃ n     ┃\n┡━━━━━━━┩\n│ 0     │\n")
    assert "│ 99999 │" not in pipe.getvalue()
