"""The one translation step in front of every engine.

Users write DuckDB's dialect (double-quoted identifiers, ``'text'`` literals, a
trailing ``;``). sqlglot parses it once and writes it for the engine that runs
it, so the same text gives the same rows on DuckDB, Trino and Spark. On the
way, the tree is made explicit where the engines would otherwise disagree:

- unnamed projections get the header DuckDB gives them (``count_star()``,
  ``(a + 1)``), and column references keep the case they were written in
  (Trino lower-cases them);
- ``GROUP BY alias`` becomes ``GROUP BY <the aliased expression>`` (Trino
  groups only by expressions);
- DuckDB map literals (``MAP {'k': 1}``) become key and value arrays, which
  sqlglot otherwise writes as a struct;
- ``--as-of`` pins each table to its snapshot;
- ``GROUP BY ALL`` is spelled out for Trino, ``ORDER BY ALL`` as positions;
- only functions that ``lakehouse.engines.functions`` lists as faithful for
  the engine get through (some rewritten); any other is refused, as is ``*``
  over a USING/NATURAL join.

Whatever sqlglot cannot write for the target raises ``QueryError`` with a hint:
never a silently different query. ``native=True`` skips all of this.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, UnsupportedError

from lakehouse.engines import semantics
from lakehouse.engines.base import check_one_statement
from lakehouse.engines.functions import keep_verified_functions
from lakehouse.engines.headers import duckdb_headers
from lakehouse.engines.lists import collect_faithfully_on_spark
from lakehouse.engines.semantics import Schema
from lakehouse.errors import QueryError

if TYPE_CHECKING:
    from lakehouse.governance.rewrite import Governance

_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SOURCE_DIALECT = "duckdb"
# lakehouse engine name -> sqlglot dialect it is written in.
DIALECTS = {"duckdb": "duckdb", "trino": "trino", "spark": "spark"}
NATIVE_HINT = "Pass native=True (CLI: --native) to send the text to the engine unchanged."


@dataclass(frozen=True)
class Translation:
    """The text an engine runs, and the tables (``ns.table``) it reads."""

    sql: str
    tables: tuple[str, ...]


def parse(text: str, engine: str = "lakehouse") -> exp.Expr:
    """One statement in DuckDB's dialect; a trailing ``;`` is allowed.

    Raises ``QueryError`` for a syntax error, several statements, or a
    statement sqlglot only keeps as raw text (it could not be translated).
    """
    try:
        parsed = sqlglot.parse(text, read=SOURCE_DIALECT)
    except ParseError as exc:
        raise QueryError(engine, text, f"cannot parse the query: {_first_error(exc)}",
                         hint=_syntax_hint(text)) from exc  # fmt: skip
    # A comment after the last ';' parses as an empty Semicolon: not a statement.
    statements = [s for s in parsed if s is not None and not isinstance(s, exp.Semicolon)]
    check_one_statement(engine, text, len(statements))
    tree = statements[0]
    if isinstance(tree, exp.Command):
        raise QueryError(engine, text, f"'{tree.name}' statements cannot be translated",
                         hint=NATIVE_HINT)  # fmt: skip
    return tree


def referenced_tables(tree: exp.Expr) -> tuple[str, ...]:
    """'ns.table' names a statement reads or writes, ignoring CTE names; sorted, unique."""
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    names = {
        f"{table.db}.{table.name}"
        for table in tree.find_all(exp.Table)
        if table.db and not table.catalog and table.name not in ctes
    }
    return tuple(sorted(names))


def translate(
    text: str, engine: str, snapshots: dict[str, int] | None = None, schema: Schema | None = None,
    governance: Governance | None = None,
) -> Translation:  # fmt: skip
    """``text`` (DuckDB dialect) written for ``engine``, tables pinned to ``snapshots``.

    ``snapshots`` maps 'ns.table' to a snapshot id. ``schema`` maps 'ns.table'
    to its ordered ``{column: DuckDB type}``: with it, ``SELECT *`` keeps the
    table's own column names and DuckDB's semantics are kept where the other
    engines differ (``lakehouse.engines.semantics``). Raises ``QueryError`` when
    the text cannot be parsed or written for the engine. ``governance`` (a
    principal's decided access) makes each lake table its governed projection
    (``lakehouse.governance.rewrite``), last, after everything else here.
    """
    tree = parse(text, engine)
    if governance is not None:
        governance.prepare(tree)  # tables named in full, so they pin; hidden columns refused
    tables = referenced_tables(tree)
    if snapshots:
        pin_snapshots(tree, snapshots, engine)
    if engine == "duckdb":
        if governance is not None:
            governance.apply(tree)
        # DuckDB reads the user's own dialect: only a pinned or governed tree is rewritten.
        return Translation(tree.sql(dialect="duckdb") if snapshots or governance else text, tables)
    for select in tree.find_all(exp.Select):
        _refuse_merged_stars(select, engine, text)
        _expand_group_by_all(select, engine)
        _expand_order_by_all(select, engine, text)
        _expand_group_by_aliases(select)
    _name_projections(tree)
    keep_verified_functions(tree, engine, text, schema)  # after naming: headers are DuckDB's
    if engine == "trino":
        semantics.expand_stars(tree, schema or {})
    semantics.align(tree, schema or {}, engine, text)
    _map_literals_as_arrays(tree)
    _spell_days_of_week(tree, engine)
    _quote_unusual_identifiers(tree)
    if engine == "spark":
        collect_faithfully_on_spark(tree, text)
    if governance is not None:
        governance.apply(tree)
    try:
        sql = tree.sql(dialect=DIALECTS[engine], unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as exc:
        raise QueryError(engine, text, f"cannot translate the query for {engine}: {exc}",
                         hint=NATIVE_HINT) from exc  # fmt: skip
    return Translation(sql, tables)


def pin_snapshots(tree: exp.Expr, snapshots: dict[str, int], engine: str) -> None:
    """Make each table named in ``snapshots`` read its snapshot (in place)."""
    for table in tree.find_all(exp.Table):
        snapshot = snapshots.get(f"{table.db}.{table.name}")
        if snapshot is None or table.catalog:
            continue
        number = exp.Literal.number(snapshot)
        if engine == "duckdb":
            table.set("when", exp.HistoricalData(this="AT", kind="VERSION", expression=number))
        else:
            table.set("version", exp.Version(this="VERSION", kind="AS OF", expression=number))


def _refuse_merged_stars(select: exp.Select, engine: str, text: str) -> None:
    """``*`` with a USING or NATURAL join: DuckDB merges the join columns, each engine its own way."""
    stars = [p for p in select.expressions if semantics.star_of(p) is not None]
    if stars and semantics.merges_columns(select):
        raise QueryError(engine, text, f"cannot translate '{stars[0].sql('duckdb')}' with a USING or "
                         f"NATURAL join for {engine}: the join columns come out in other places",
                         hint="Spell the columns out (SELECT t.a, t.b ...), or join with ON.")  # fmt: skip


def _expand_group_by_all(select: exp.Select, engine: str) -> None:
    """``GROUP BY ALL`` (Trino lacks it): every projection without an aggregate, as DuckDB does."""
    group = select.args.get("group")
    if engine != "trino" or not group or not group.args.get("all"):
        return
    keys = [p.unalias().copy() for p in select.expressions
            if not p.find(exp.AggFunc, exp.Window) and not isinstance(p.unalias(), exp.Literal)]  # fmt: skip
    select.set("group", exp.Group(expressions=keys) if keys else None)


def _expand_order_by_all(select: exp.Select, engine: str, text: str) -> None:
    """``ORDER BY ALL`` (Trino lacks it): every projection by position, left to right.

    The direction and NULL placement written after ALL apply to each one, as in
    DuckDB. With a ``*`` the positions are not known here, so that is refused.
    """
    order = select.args.get("order")
    if not order or len(order.expressions) != 1:
        return
    ordered = order.expressions[0]
    if not (isinstance(ordered.this, exp.Var) and ordered.this.name.upper() == "ALL"):
        return
    if any(p.is_star for p in select.expressions):
        raise QueryError(engine, text, "ORDER BY ALL over a * cannot be translated",
                         hint="Name the columns to order by, or use DuckDB.")  # fmt: skip
    keys = [
        exp.Ordered(this=exp.Literal.number(position), desc=ordered.args.get("desc"),
                    nulls_first=ordered.args.get("nulls_first"))
        for position in range(1, len(select.expressions) + 1)
    ]  # fmt: skip
    select.set("order", exp.Order(expressions=keys))


def _expand_group_by_aliases(select: exp.Select) -> None:
    """Replace ``GROUP BY alias`` by the aliased expression, as DuckDB resolves it.

    DuckDB binds a GROUP BY name to a table column first; a name that is also
    read as a column elsewhere in the SELECT is therefore left alone.
    """
    group = select.args.get("group")
    if not group:
        return
    aliased = {p.alias: p.this for p in select.expressions if isinstance(p, exp.Alias)}
    read_as_column = {
        c.name for p in select.expressions for c in p.find_all(exp.Column) if not c.table
    }
    for key in group.expressions:
        if not isinstance(key, exp.Column) or key.table:
            continue
        target = aliased.get(key.name)
        if target is None or key.name in read_as_column or isinstance(target, exp.Literal):
            continue
        key.replace(target.copy())


def _name_projections(tree: exp.Expr) -> None:
    """Alias every projection with the header DuckDB would give it."""
    unnamed: list[exp.Expr] = []
    for select in tree.find_all(exp.Select):
        for projection in select.expressions:
            if isinstance(projection, exp.Alias | exp.Star) or (
                isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)
            ):
                continue
            if isinstance(projection, exp.Column | exp.Dot):
                projection.replace(exp.alias_(projection.copy(), projection.name, quoted=True))
            else:
                unnamed.append(projection)
    for projection, header in zip(unnamed, duckdb_headers(unnamed), strict=True):
        projection.replace(exp.alias_(projection.copy(), header, quoted=True))


def _map_literals_as_arrays(tree: exp.Expr) -> None:
    """``MAP {k: v, ...}`` as ``MAP([k, ...], [v, ...])``, which every target can write."""
    for literal in list(tree.find_all(exp.ToMap)):
        struct = literal.this
        if not isinstance(struct, exp.Struct):
            continue
        pairs = [p for p in struct.expressions if isinstance(p, exp.PropertyEQ)]
        keys = exp.Array(expressions=[p.this.copy() for p in pairs])
        values = exp.Array(expressions=[p.expression.copy() for p in pairs])
        literal.replace(exp.Map(keys=keys, values=values))


def _spell_days_of_week(tree: exp.Expr, engine: str) -> None:
    """DuckDB's isodow (Monday 1 .. Sunday 7) and dayofweek (Sunday 0 .. Saturday 6).

    sqlglot writes both wrongly for Spark (and dayofweek for Trino): wrong
    days, no error. Spelled here with each engine's own functions instead.
    """
    for extract in list(tree.find_all(exp.Extract)):
        unit = extract.this.name.upper() if isinstance(extract.this, exp.Var) else ""
        if unit in ("ISODOW", "DOW"):
            kind = exp.DayOfWeekIso if unit == "ISODOW" else exp.DayOfWeek
            extract.replace(kind(this=extract.expression.copy()))
    for node in list(tree.find_all(exp.DayOfWeekIso, exp.DayOfWeek)):
        day = node.this.copy()
        iso = isinstance(node, exp.DayOfWeekIso)
        if engine == "spark":  # BIGINT: DuckDB's and Trino's type for a day number
            number = (
                exp.Extract(this=exp.var("DAYOFWEEK_ISO"), expression=day)
                if iso
                else exp.Sub(this=exp.Anonymous(this="DAYOFWEEK", expressions=[day]), expression=exp.Literal.number(1))
            )  # fmt: skip
            spelled: exp.Expr = exp.cast(number, "BIGINT")
        elif engine == "trino":
            weekday = exp.Anonymous(this="DAY_OF_WEEK", expressions=[day])
            spelled = weekday if iso else exp.Paren(this=exp.Mod(this=weekday, expression=exp.Literal.number(7)))  # fmt: skip
        else:
            continue
        node.replace(spelled)


def _quote_unusual_identifiers(tree: exp.Expr) -> None:
    """Quote names beyond ``[A-Za-z_][A-Za-z0-9_]*`` (``ünï``): DuckDB reads them bare, Trino and Spark do not."""
    for identifier in tree.find_all(exp.Identifier):
        if not identifier.quoted and not _PLAIN_NAME.fullmatch(identifier.name):
            identifier.set("quoted", True)


def _first_error(exc: ParseError) -> str:
    return str(exc).splitlines()[0]


def _syntax_hint(text: str) -> str:
    if "`" in text:
        return 'Quote identifiers with double quotes ("Customer ID"), as in DuckDB; backticks are not part of the query language.'
    return "Queries are written in DuckDB's SQL dialect; pass native=True (CLI: --native) for engine-specific text."
