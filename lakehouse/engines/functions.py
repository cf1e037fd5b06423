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

import re
from collections.abc import Callable

from sqlglot import exp

from lakehouse.engines.semantics import Schema, Types
from lakehouse.errors import QueryError

FAITHFUL = "faithful"
# A rewrite changes a function node (in place) so the engine answers as DuckDB
# does; it raises QueryError for arguments it cannot keep faithful. ``Types``
# tells the DuckDB type of an operand where the lake's schemas prove it.
Rewrite = Callable[[exp.Func, str, str, Types], None]
Verdict = str | Rewrite
Key = type[exp.Func] | str
HINT = (
    "Pass native=True (CLI: --native) to send the engine's own SQL, "
    "or run the query on DuckDB (--engine duckdb)."
)
_BOTH = ("trino", "spark")


def _refuse(node: exp.Func, engine: str, text: str, why: str) -> None:
    raise QueryError(engine, text, f"'{function_name(node)}' cannot be translated for {engine}: {why}", hint=HINT)  # fmt: skip


def _count_star(node: exp.Func, engine: str, text: str, types: Types) -> None:
    """``count_star()`` is DuckDB's own name for ``count(*)``."""
    if node.expressions:
        _refuse(node, engine, text, "count_star() takes no arguments")
    node.replace(exp.Count(this=exp.Star()))


def _skip_nulls(node: exp.Func, engine: str, text: str, types: Types) -> None:
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


def _replace_all_only(node: exp.Func, engine: str, text: str, types: Types) -> None:
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


def _count_boundaries(node: exp.Func, engine: str, text: str, types: Types) -> None:
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


# "%%" is not among them: Spark writes it as "%%" (checked).
_TIME_FORMATS = {"%Y", "%m", "%d", "%H", "%M", "%S"}


def _plain_time_format(node: exp.Func, engine: str, text: str, types: Types) -> None:
    """``strftime`` with numeric directives only; names and ``%j`` differ per engine."""
    fmt = node.args.get("format")
    if not isinstance(fmt, exp.Literal):
        _refuse(node, engine, text, "the format must be a literal")
    assert isinstance(fmt, exp.Literal)
    directives = set(re.findall("%.?", fmt.name, flags=re.DOTALL))  # "%%" is one directive
    unchecked = sorted(directives - _TIME_FORMATS)
    if unchecked:
        _refuse(node, engine, text, f"the directives {', '.join(unchecked)} differ per engine; "
                f"only {' '.join(sorted(_TIME_FORMATS))} are the same everywhere")  # fmt: skip


# Operand types whose text is the same on every engine (checked: DuckDB, Trino
# and Spark print them alike). Floats differ (1.5 / 1.5E0, nan / NaN), and so
# do timestamps (Trino pads .000000, DuckDB writes +00 for a zone).
_T = exp.DataType.Type
_SAME_TEXT = {*exp.DataType.TEXT_TYPES, _T.TINYINT, _T.SMALLINT, _T.INT, _T.BIGINT, _T.INT128,
              _T.DECIMAL, _T.DATE, _T.BOOLEAN}  # fmt: skip
# Functions whose result is text whatever their operands (which are checked themselves).
_TEXT_RESULTS = (exp.Lower, exp.Upper, exp.Substring, exp.Concat, exp.DPipe, exp.Trim,
                 exp.Left, exp.Right, exp.Replace, exp.RegexpReplace, exp.TimeToStr,
                 exp.Repeat, exp.SHA2)  # fmt: skip
TEXT_HINT = (
    "Cast the value to a type whose text is the same on every engine first (BIGINT, "
    "DECIMAL(p, s), DATE, BOOLEAN), e.g. CAST(CAST(x AS DECIMAL(18, 3)) AS VARCHAR); "
    "or pass native=True (CLI: --native), or run the query on DuckDB (--engine duckdb)."
)


def same_text_everywhere(node: exp.Expr, types: Types) -> bool:
    """True when ``node``'s value is written as the same text on DuckDB, Trino and Spark."""
    if isinstance(node, exp.Paren):
        return same_text_everywhere(node.this, types)
    if isinstance(node, (exp.Literal, exp.Null, exp.Boolean, *_TEXT_RESULTS)):
        return not (isinstance(node, exp.Literal) and types.kind(node) == "float")
    known = types.of(node)
    if known is not None:
        return known.this in _SAME_TEXT
    return types.kind(node) == "integer"


def _check_text_operands(node: exp.Expr, operands: list[exp.Expr], engine: str, text: str, types: Types) -> None:  # fmt: skip
    for operand in operands:
        if not same_text_everywhere(operand, types):
            raise QueryError(engine, text, f"cannot translate '{node.sql('duckdb')}' for {engine}: "
                             f"'{operand.sql('duckdb')}' becomes text, and its type is not known to be "
                             "written the same way there (floats and timestamps are not)",
                             hint=TEXT_HINT)  # fmt: skip


def _cast_to_text(node: exp.Func, engine: str, text: str, types: Types) -> None:
    """A cast to text needs an operand whose text is the same everywhere; other casts pass."""
    if isinstance(node, exp.Cast) and node.to.this in exp.DataType.TEXT_TYPES:
        _check_text_operands(node, [node.this], engine, text, types)


def _concat(node: exp.Func, engine: str, text: str, types: Types) -> None:
    """``concat`` writes each operand as text, a NULL as ''.

    Each operand is cast to text explicitly: sqlglot's Spark spelling
    ``COALESCE(d, '')`` would read '' as a date and fail on a NULL.
    """
    _check_text_operands(node, list(node.expressions), engine, text, types)
    for operand in node.expressions:
        if not (isinstance(operand, exp.Literal) and operand.is_string):
            operand.replace(exp.cast(operand.copy(), "VARCHAR"))


def _whole_number(node: exp.Expr | None, lowest: int) -> bool:
    return isinstance(node, exp.Literal) and node.is_int and int(node.name) >= lowest


def _positive_start(node: exp.Func, engine: str, text: str, types: Types) -> None:
    """``substring(s, start[, length])``: starts below 1 and negative lengths differ per engine.

    (DuckDB ``substring('hello', 0, 2)`` is 'h', Trino's '', Spark's 'he'.)
    """
    length = node.args.get("length")
    if not _whole_number(node.args.get("start"), 1) or not (length is None or _whole_number(length, 0)):  # fmt: skip
        _refuse(node, engine, text, "the start must be a number literal of at least 1 and the "
                "length a literal of at least 0; other positions count differently there")  # fmt: skip


def _counted(node: exp.Func, engine: str, text: str, types: Types) -> None:
    """``left``/``right`` with a negative count drop characters on DuckDB, return '' elsewhere."""
    if not _whole_number(node.expression, 0):
        _refuse(node, engine, text, "the count must be a number literal of at least 0")


def _both(verdict: Verdict) -> dict[str, Verdict]:
    return dict.fromkeys(_BOTH, verdict)


_FAITHFUL_EVERYWHERE: tuple[Key, ...] = (
    # Operators and constructs that sqlglot parses as functions.
    exp.And, exp.Or, exp.Case, exp.If, exp.Exists, exp.Array,
    exp.Map, exp.ToMap, exp.Coalesce, exp.Nullif, exp.Replace,
    # Aggregates (checked: NULLs ignored, count(DISTINCT) too; avg/sum typed in semantics).
    exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max, exp.ArrayAgg,
    # Window functions.
    exp.RowNumber, exp.Rank, exp.DenseRank, exp.Lag, exp.Lead,
    # Numbers (values checked; integer widths may differ, see the README).
    exp.Abs, exp.Round, exp.Floor, exp.Ceil, exp.Sqrt, exp.Pow,
    # Text. upper/lower map non-ASCII letters differently (README).
    exp.Lower, exp.Upper, exp.Length, exp.Trim, exp.StartsWith, exp.StrPosition,
    # Dates and times.
    exp.Extract, exp.Year, exp.Month, exp.Day, exp.Hour, exp.Minute, exp.Second,
    exp.DayOfWeek, exp.DayOfWeekIso, exp.TimestampTrunc, exp.DateTrunc, exp.DateAdd,
)  # fmt: skip

TABLE: dict[Key, dict[str, Verdict]] = {
    **{key: _both(FAITHFUL) for key in _FAITHFUL_EVERYWHERE},
    exp.Cast: _both(_cast_to_text),
    exp.TryCast: _both(_cast_to_text),
    exp.Concat: _both(_concat),
    exp.Substring: _both(_positive_start),
    exp.Left: _both(_counted),
    exp.Right: _both(_counted),
    "count_star": _both(_count_star),
    exp.Greatest: {"trino": _skip_nulls, "spark": FAITHFUL},
    exp.Least: {"trino": _skip_nulls, "spark": FAITHFUL},
    exp.RegexpReplace: _both(_replace_all_only),
    exp.DateDiff: _both(_count_boundaries),
    exp.TimeToStr: _both(_plain_time_format),
    # The governance masks (checked on Spark by test_governance_engines): sha256() as
    # lower-case hex, repeat(text, n). Trino's repeat() builds an array instead.
    exp.SHA2: {"spark": FAITHFUL},
    exp.Repeat: {"spark": FAITHFUL},
}


def function_name(node: exp.Func) -> str:
    """The name DuckDB users write for ``node`` (lower case)."""
    if isinstance(node, exp.Anonymous):
        return node.name.lower()
    if isinstance(node, exp.TimeToStr):
        return "strftime"  # sqlglot's own name is time_to_str
    return node.sql_name().lower()


def verdict(node: exp.Func, engine: str) -> Verdict | None:
    """The table's verdict for ``node`` on ``engine``; None when refused."""
    key: Key = node.name.lower() if isinstance(node, exp.Anonymous) else type(node)
    return TABLE.get(key, {}).get(engine)


def keep_verified_functions(
    tree: exp.Expr, engine: str, text: str, schema: Schema | None = None
) -> None:
    """Check every function call in ``tree`` against the table for ``engine``; rewrite in place.

    ``schema`` (as in ``lakehouse.engines.semantics``) proves operand types:
    a value becomes text (a cast, ``concat``, ``||``) only where its type is
    written alike on every engine.

    Raises ``QueryError`` (naming the function and the engine, with a hint)
    for the first function that is not known to be faithful there. DuckDB is
    never restricted.
    """
    if engine == "duckdb":
        return
    types = Types(schema or {})
    for pipe in tree.find_all(exp.DPipe):
        _check_text_operands(pipe, [pipe.this, pipe.expression], engine, text, types)
    for node in list(tree.find_all(exp.Func)):
        if isinstance(node, exp.Struct) and isinstance(node.parent, exp.ToMap):
            continue  # MAP {k: v}'s pairs: written as arrays by the translation step
        found = verdict(node, engine)
        if found is None:
            _refuse(node, engine, text, f"the function is not known to give DuckDB's answer on {engine}")  # fmt: skip
        elif callable(found):
            found(node, engine, text, types)
