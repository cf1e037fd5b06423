"""Which DuckDB functions reach Trino and Spark, and how.

The query language is DuckDB's. A function reaches Trino or Spark only if this
table says its translation gives DuckDB's values there: ``FAITHFUL`` (sqlglot's
own translation, checked on the engines), or a rewrite of ours that keeps
DuckDB's answer. Every other function is refused with a ``QueryError`` naming
the function and the engine: a different answer is never returned silently.
DuckDB itself is never restricted.

Keys are sqlglot expression classes, or lower-case names for functions sqlglot
keeps as ``Anonymous``. Each entry maps an engine to its verdict; an engine
missing from an entry refuses the function. The checked differences that stay
(result types, non-ASCII case mapping) are listed in the README.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from lakehouse.errors import QueryError

FAITHFUL = "faithful"
# A rewrite changes a function node (in place) so the engine answers as DuckDB
# does; it raises QueryError for arguments it cannot keep faithful.
Rewrite = Callable[[exp.Func, str, str], None]
Verdict = str | Rewrite
Key = type[exp.Func] | str
HINT = (
    "Pass native=True (CLI: --native) to send the engine's own SQL, "
    "or run the query on DuckDB (--engine duckdb)."
)
_BOTH = ("trino", "spark")


def _refuse(node: exp.Func, engine: str, text: str, why: str) -> None:
    raise QueryError(engine, text, f"'{function_name(node)}' cannot be translated for {engine}: {why}", hint=HINT)  # fmt: skip


def _count_star(node: exp.Func, engine: str, text: str) -> None:
    """``count_star()`` is DuckDB's own name for ``count(*)``."""
    if node.expressions:
        _refuse(node, engine, text, "count_star() takes no arguments")
    node.replace(exp.Count(this=exp.Star()))


def _skip_nulls(node: exp.Func, engine: str, text: str) -> None:
    """``greatest``/``least`` ignore NULLs on DuckDB; Trino answers NULL if any is NULL.

    Each argument is replaced by the first non-NULL among it and the others, so
    NULLs never win and the answer is NULL only when every argument is.
    """
    arguments = [node.this, *node.expressions]
    filled = [
        exp.Coalesce(this=a.copy(), expressions=[o.copy() for o in arguments if o is not a])
        for a in arguments
    ]
    node.set("this", filled[0])
    node.set("expressions", filled[1:])


def _replace_all_only(node: exp.Func, engine: str, text: str) -> None:
    """``regexp_replace(s, p, r, 'g')``: Trino and Spark only replace every match.

    Without ``'g'`` DuckDB replaces the first match only, which Trino cannot
    say. A replacement with ``\\`` or ``$`` (group references differ) is refused.
    """
    modifiers = node.args.get("modifiers")
    replacement = node.args.get("replacement")
    if not isinstance(modifiers, exp.Literal) or modifiers.name != "g":
        _refuse(node, engine, text, "without the 'g' option DuckDB replaces only the first "
                "match, which Trino and Spark cannot do; add 'g' to replace every match")  # fmt: skip
    if not isinstance(replacement, exp.Literal) or any(c in replacement.name for c in "\\$"):
        _refuse(node, engine, text, "the replacement must be plain text (group references differ)")
    node.set("modifiers", None)


_BOUNDARY_UNITS = {"YEAR", "QUARTER", "MONTH", "DAY", "HOUR", "MINUTE", "SECOND"}


def _count_boundaries(node: exp.Func, engine: str, text: str) -> None:
    """``date_diff(unit, a, b)`` counts unit boundaries on DuckDB; Spark counts whole units.

    Both ends are truncated to the unit first, which makes the two the same.
    """
    unit = node.args.get("unit")
    name = unit.name.upper() if unit is not None else "DAY"
    if name not in _BOUNDARY_UNITS:
        _refuse(node, engine, text, f"the unit '{name.lower()}' is not checked for {engine}")
    if engine == "spark":
        for key in ("this", "expression"):
            end = node.args[key]
            node.set(key, exp.TimestampTrunc(this=end.copy(), unit=exp.var(name)))


_TIME_FORMATS = {"%Y", "%m", "%d", "%H", "%M", "%S", "%%"}


def _plain_time_format(node: exp.Func, engine: str, text: str) -> None:
    """``strftime`` with numeric directives only; names and ``%j`` differ per engine."""
    fmt = node.args.get("format")
    if not isinstance(fmt, exp.Literal):
        _refuse(node, engine, text, "the format must be a literal")
    assert isinstance(fmt, exp.Literal)
    directives = {fmt.name[i : i + 2] for i, c in enumerate(fmt.name) if c == "%"}
    unchecked = sorted(directives - _TIME_FORMATS)
    if unchecked:
        _refuse(node, engine, text, f"the directives {', '.join(unchecked)} differ per engine; "
                f"only {' '.join(sorted(_TIME_FORMATS))} are the same everywhere")  # fmt: skip


def _both(verdict: Verdict) -> dict[str, Verdict]:
    return dict.fromkeys(_BOTH, verdict)


_FAITHFUL_EVERYWHERE: tuple[Key, ...] = (
    # Operators and constructs that sqlglot parses as functions.
    exp.And, exp.Or, exp.Case, exp.If, exp.Cast, exp.TryCast, exp.Exists, exp.Array,
    exp.Map, exp.ToMap, exp.Coalesce, exp.Nullif, exp.Replace,
    # Aggregates (checked: NULLs ignored, count(DISTINCT) too; avg/sum typed in semantics).
    exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max, exp.ArrayAgg,
    # Window functions.
    exp.RowNumber, exp.Rank, exp.DenseRank, exp.Lag, exp.Lead,
    # Numbers (values checked; integer widths may differ, see the README).
    exp.Abs, exp.Round, exp.Floor, exp.Ceil, exp.Sqrt, exp.Pow,
    # Text. upper/lower map non-ASCII letters differently (README).
    exp.Lower, exp.Upper, exp.Length, exp.Substring, exp.Concat, exp.Trim,
    exp.Left, exp.Right, exp.StartsWith, exp.StrPosition,
    # Dates and times.
    exp.Extract, exp.Year, exp.Month, exp.Day, exp.Hour, exp.Minute, exp.Second,
    exp.DayOfWeek, exp.DayOfWeekIso, exp.TimestampTrunc, exp.DateTrunc, exp.DateAdd,
)  # fmt: skip

TABLE: dict[Key, dict[str, Verdict]] = {
    **{key: _both(FAITHFUL) for key in _FAITHFUL_EVERYWHERE},
    "count_star": _both(_count_star),
    exp.Greatest: {"trino": _skip_nulls, "spark": FAITHFUL},
    exp.Least: {"trino": _skip_nulls, "spark": FAITHFUL},
    exp.RegexpReplace: _both(_replace_all_only),
    exp.DateDiff: _both(_count_boundaries),
    exp.TimeToStr: _both(_plain_time_format),
}


def function_name(node: exp.Func) -> str:
    """The name DuckDB users write for ``node`` (lower case)."""
    if isinstance(node, exp.Anonymous):
        return node.name.lower()
    return node.sql_name().lower()


def verdict(node: exp.Func, engine: str) -> Verdict | None:
    """The table's verdict for ``node`` on ``engine``; None when refused."""
    key: Key = node.name.lower() if isinstance(node, exp.Anonymous) else type(node)
    return TABLE.get(key, {}).get(engine)


def keep_verified_functions(tree: exp.Expr, engine: str, text: str) -> None:
    """Check every function call in ``tree`` against the table for ``engine``; rewrite in place.

    Raises ``QueryError`` (naming the function and the engine, with a hint)
    for the first function that is not known to be faithful there. DuckDB is
    never restricted.
    """
    if engine == "duckdb":
        return
    for node in list(tree.find_all(exp.Func)):
        if isinstance(node, exp.Struct) and isinstance(node.parent, exp.ToMap):
            continue  # MAP {k: v}'s pairs: written as arrays by the translation step
        found = verdict(node, engine)
        if found is None:
            _refuse(node, engine, text, f"the function is not known to give DuckDB's answer on {engine}")  # fmt: skip
        elif callable(found):
            found(node, engine, text)
