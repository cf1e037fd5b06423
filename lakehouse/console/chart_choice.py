"""Which chart fits a query result, chosen from its column types.

Pure logic over an Arrow table, no plotting: the Query page turns a
:class:`ChartChoice` into a plotly figure.

- **line**: a temporal column (date, timestamp, time) and one or more numeric ones;
- **bar**: a category column (text, boolean, or an integer key named ``id`` /
  ``*_id``) and one or more numeric ones;
- **scatter**: two numeric columns and nothing to group them by;
- **none**: anything else (one value, text only, a single numeric column), with
  the reason.

Numeric means integer, floating point or decimal; booleans are categories. A
column whose values are all null carries nothing to draw and is passed over.
At most ``MAX_SERIES`` numeric columns are drawn. Rows beyond the caps are not
drawn, and the choice says so (``rows_drawn`` against ``rows``), so a chart
never pretends to show what it left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa

ChartKind = Literal["bar", "line", "scatter", "none"]
MAX_SERIES = 6
MAX_BARS = 50  # categories beyond these are unreadable as bars
MAX_POINTS = 5_000  # line and scatter points drawn per series


@dataclass(frozen=True)
class ChartChoice:
    """The chart for a result: ``x`` and ``y`` are column names.

    ``rows`` is the result's row count and ``rows_drawn`` how many of them
    (first in result order) are drawn; ``reason`` says why, or why not.
    """

    kind: ChartKind
    x: str | None = None
    y: tuple[str, ...] = field(default_factory=tuple)
    rows: int = 0
    rows_drawn: int = 0
    reason: str = ""

    @property
    def capped(self) -> bool:
        return self.rows_drawn < self.rows


def is_numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def is_temporal(t: pa.DataType) -> bool:
    return pa.types.is_date(t) or pa.types.is_timestamp(t) or pa.types.is_time(t)


def is_category(name: str, t: pa.DataType) -> bool:
    """Text, booleans, dictionary-encoded values and integer keys (``id``, ``*_id``)."""
    if pa.types.is_dictionary(t):
        return True
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_boolean(t):
        return True
    return pa.types.is_integer(t) and _is_key_name(name)


def _is_key_name(name: str) -> bool:
    lowered = name.lower()
    return lowered == "id" or lowered.endswith("_id")


def choose_chart(result: pa.Table) -> ChartChoice:
    """The chart for ``result`` (see the module's rules); never raises."""
    rows = result.num_rows
    if rows == 0:
        return ChartChoice("none", rows=0, reason="The result has no rows.")
    drawable = [
        (name, column.type)
        for name, column in zip(result.column_names, result.columns, strict=True)
        if column.null_count < rows and not pa.types.is_null(column.type)
    ]
    temporal = [name for name, t in drawable if is_temporal(t)]
    categories = [name for name, t in drawable if is_category(name, t)]
    numbers = [name for name, t in drawable if is_numeric(t) and name not in categories]
    if not numbers:
        return ChartChoice("none", rows=rows, reason="No numeric column to draw.")
    series = tuple(numbers[:MAX_SERIES])
    if temporal:
        return _capped("line", temporal[0], series, rows, MAX_POINTS, "over")
    if categories:
        return _capped("bar", categories[0], series, rows, MAX_BARS, "by")
    if len(numbers) >= 2:
        return _capped("scatter", numbers[0], (numbers[1],), rows, MAX_POINTS, "against")
    if rows == 1:
        return ChartChoice("none", rows=rows, reason="A single value: nothing to compare.")
    return ChartChoice("none", rows=rows, reason=f"Only one numeric column ({numbers[0]}): "
                       "add a column to draw it over or by.")  # fmt: skip


def _capped(kind: ChartKind, x: str, y: tuple[str, ...], rows: int, cap: int,
            word: str) -> ChartChoice:  # fmt: skip
    drawn = min(rows, cap)
    reason = f"{', '.join(y)} {word} {x}"
    if drawn < rows:
        reason += f" (the first {drawn:,} of {rows:,} rows)"
    return ChartChoice(kind, x, y, rows, drawn, reason)
