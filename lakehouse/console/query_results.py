"""What the Query page shows of a result: the grid's rows, the chart, and the results
kept for CSV download.

The grid shows the first ``GRID_ROWS`` rows as ``lakehouse query`` prints them
(``engines.output.table_rows``) and says how many there are. The CSV is
``engines.output.to_csv`` of the whole result, byte for byte what
``lakehouse query --format csv`` prints; results are kept in memory for download
(the newest ``KEPT_RESULTS``, up to ``KEPT_BYTES`` together), so a download is
the result the page showed, not a second run that may read newer data.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakehouse.console import cells
from lakehouse.console.chart_choice import ChartChoice, choose_chart
from lakehouse.errors import LakehouseError

if TYPE_CHECKING:
    import plotly.graph_objects as go

GRID_ROWS = 500
KEPT_RESULTS = 8
KEPT_BYTES = 256 * 2**20


@dataclass(frozen=True)
class KeptResult:
    """A result kept for download: ``ident`` names it in the download URL;
    ``revision`` is the governance policy's revision it was computed under (None:
    not governed), so a download after a revoke is refused, not served."""

    ident: str
    query: str
    engine: str
    table: pa.Table
    revision: int | None = None


class ResultStore:
    """The newest results, kept in memory for CSV download; thread-safe."""

    def __init__(self, count: int = KEPT_RESULTS, max_bytes: int = KEPT_BYTES) -> None:
        self.count = count
        self.max_bytes = max_bytes
        self._kept: OrderedDict[str, KeptResult] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, query: str, engine: str, table: pa.Table,
             revision: int | None = None) -> KeptResult | None:  # fmt: skip
        """Keep ``table`` (dropping the oldest beyond the limits); None when it alone is
        larger than ``max_bytes``."""
        if table.nbytes > self.max_bytes:
            return None
        kept = KeptResult(secrets.token_urlsafe(12), query, engine, table, revision)
        with self._lock:
            self._kept[kept.ident] = kept
            while len(self._kept) > self.count or self._bytes() > self.max_bytes:
                self._kept.popitem(last=False)
        return kept

    def get(self, ident: str) -> KeptResult:
        """The result ``ident``; LakehouseError when it is no longer kept."""
        with self._lock:
            kept = self._kept.get(ident)
        if kept is None:
            raise LakehouseError(
                "That result is no longer kept: the console keeps only the newest "
                f"{self.count} results (or restarted since).",
                hint="Run the query again and download it then, or use "
                '`lakehouse query --format csv "..."`.',
            )
        return kept

    def _bytes(self) -> int:
        return sum(kept.table.nbytes for kept in self._kept.values())


def grid(table: pa.Table) -> tuple[list[str], list[list[str]]]:
    """The column names and the first GRID_ROWS rows as text (``lakehouse query``'s,
    through the console's one cell formatter, ``cells.grid``)."""
    return cells.grid(table.slice(0, GRID_ROWS))


def chart_figure(table: pa.Table, choice: ChartChoice | None = None) -> go.Figure | None:
    """The plotly figure of ``choice`` (chosen from ``table`` when None); None for "none".

    Drawn from the first ``choice.rows_drawn`` rows; a line is drawn in time order.
    """
    import plotly.graph_objects as go

    choice = choice or choose_chart(table)
    if choice.kind == "none" or choice.x is None:
        return None
    drawn = table.slice(0, choice.rows_drawn)
    if choice.kind == "line":
        drawn = drawn.sort_by(choice.x)
    x = _values(drawn.column(choice.x))
    if choice.kind == "bar":
        x = ["NULL" if v is None else str(v) for v in x]
        traces = [go.Bar(x=x, y=_values(drawn.column(y)), name=y) for y in choice.y]
    else:
        mode = "lines+markers" if choice.kind == "line" else "markers"
        traces = [go.Scatter(x=x, y=_values(drawn.column(y)), name=y, mode=mode) for y in choice.y]
    figure = go.Figure(traces)
    figure.update_layout(xaxis_title=choice.x, yaxis_title=", ".join(choice.y),
                         showlegend=len(choice.y) > 1, barmode="group")  # fmt: skip
    return figure


def _values(column: pa.ChunkedArray) -> list[Any]:
    """Python values plotly can draw: decimals as floats (the grid keeps the exact digits)."""
    values = column.to_pylist()
    if pa.types.is_decimal(column.type):
        return [None if v is None else float(v) for v in values]
    return [float(v) if isinstance(v, Decimal) else v for v in values]


def null_x_rows(table: pa.Table, choice: ChartChoice) -> int:
    """Rows drawn whose x is null: a chart leaves them out (the page says so)."""
    if choice.x is None:
        return 0
    return int(table.slice(0, choice.rows_drawn).column(choice.x).null_count)
