"""Plotly figures for templates, in one place.

A page builds a ``plotly.graph_objects.Figure`` and passes ``chart_json(fig)`` to
its template, which includes ``_chart.html``: the JSON sits in a
``<script type="application/json">`` block and ``static/console.js`` calls
``Plotly.newPlot`` on it. plotly.js itself is served from the plotly wheel
(``/static/vendor/plotly.min.js``), so charts draw offline.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import plotly.graph_objects as go

# Same look on every page: small margins, the console's font, no plotly logo.
LAYOUT = {
    "margin": {"l": 50, "r": 20, "t": 30, "b": 40},
    "font": {"family": "system-ui, sans-serif", "size": 12},
    "height": 320,
    "template": "plotly_white",
}
# The same look for figures given as plain dicts (a template name means nothing to plotly.js).
PLAIN_LAYOUT = {
    **{key: value for key, value in LAYOUT.items() if key != "template"},
    "paper_bgcolor": "#fff", "plot_bgcolor": "#fff",
    "xaxis": {"gridcolor": "#ebf0f8"}, "yaxis": {"gridcolor": "#ebf0f8"},
}  # fmt: skip


def plotly_js_path() -> Path:
    """plotly.min.js as shipped inside the plotly wheel."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def chart_json(figure: go.Figure | dict[str, Any]) -> str:
    """The figure as JSON safe inside a ``<script>`` block (``<``, ``>``, ``&`` escaped).

    ``figure`` is a plotly Figure, or a plain ``{"data": [...], "layout": {...}}``
    in plotly.js's own terms: that skips plotly's validation of every point,
    which costs about 0.2 s for a chart of 1,000 points. The console's layout
    defaults are applied first; the page's own layout wins.
    """
    if isinstance(figure, dict):
        layout = {**PLAIN_LAYOUT, **figure.get("layout", {})}
        plain = {"data": figure.get("data", []), "layout": layout}
        text = json.dumps(literal_text(plain), default=str)
    else:
        import plotly.io as pio

        given = figure.layout.to_plotly_json()
        figure.update_layout({key: value for key, value in LAYOUT.items() if key not in given})
        figure.update_layout(template=LAYOUT["template"])  # set at construction, so always given
        text = pio.to_json(literal_text(figure.to_plotly_json()), validate=False, engine="json")
    # A value such as "</script>" must not end the block it is embedded in.
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# Keys whose strings are the console's own plotly markup (``%{x}<br>...``), not data.
MARKUP_KEYS = frozenset({"hovertemplate", "texttemplate", "template"})


def literal_text(value: Any, key: str = "") -> Any:
    """``value`` with every string HTML-escaped, so plotly shows it as written.

    plotly.js reads a subset of HTML in its texts (category labels, names,
    titles, hover text): a value ``<a href=...>x</a>`` from a table would become
    a live link. Escaped, ``&lt;a ...&gt;`` is drawn as the literal ``<a ...>``.
    Strings under ``MARKUP_KEYS`` are the console's own and are left as they are.
    """
    if isinstance(value, str):
        return html.escape(value, quote=False)
    if isinstance(value, dict):
        return {k: v if k in MARKUP_KEYS else literal_text(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [literal_text(item, key) for item in value]
    if getattr(value, "dtype", None) is not None and value.dtype.kind in "OUS":
        return [literal_text(item, key) for item in value.tolist()]
    return value
