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
