"""DuckDB's answer on every engine, where Trino and Spark would answer otherwise.

The query language is DuckDB's, so DuckDB's result (values and types) is the
one every engine gives. Trino and Spark differ from it in ways sqlglot does
not translate; the rewrites here need the types of the columns involved, which
come from the lake's own table schemas (``Schema``: ``'ns.table'`` -> ordered
``{column: DuckDB type text}``). A rewrite applies only where the type is
known; what stays different is listed in the README ("where the engines
differ") and pinned by ``tests/integration/test_engine_semantics.py``.

- ``SELECT *`` and ``t.*`` over lake tables are spelled out on Trino, each
  column aliased with the table's own name (Trino lower-cases the headers of
  unaliased columns, e.g. ``Customer ID`` -> ``customer id``).
- ``avg(decimal)`` is a double on DuckDB (Trino keeps the input's scale and
  rounds, Spark adds 4 digits): written as the exact sum over the count.
- ``sum(integer)`` is a 38-digit decimal on DuckDB (a bigint that can overflow
  on Trino and Spark); Spark's ``sum(decimal(p, s))`` is widened to 38 digits.
- ``a // b`` truncates integers and divides floats on DuckDB; sqlglot's Trino
  spelling goes through a double (digits lost past 2^53, floats truncated).
  ``//`` and ``%`` by zero are NULL, as on DuckDB.
- ``/`` with a decimal operand is a double on DuckDB (a decimal on Spark).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlglot import exp

from lakehouse.errors import QueryError

Schema = Mapping[str, Mapping[str, str]]

_ICEBERG_TYPES = {
    "boolean": "BOOLEAN", "int": "INTEGER", "long": "BIGINT", "float": "FLOAT",
    "double": "DOUBLE", "date": "DATE", "time": "TIME", "timestamp": "TIMESTAMP",
    "timestamptz": "TIMESTAMPTZ", "string": "VARCHAR", "uuid": "UUID", "binary": "BLOB",
}  # fmt: skip
_INTEGERS = {exp.DataType.Type.TINYINT, exp.DataType.Type.SMALLINT,
             exp.DataType.Type.INT, exp.DataType.Type.BIGINT}  # fmt: skip
_FLOATS = {exp.DataType.Type.FLOAT, exp.DataType.Type.DOUBLE}
_INT_RANK = [exp.DataType.Type.TINYINT, exp.DataType.Type.SMALLINT,
             exp.DataType.Type.INT, exp.DataType.Type.BIGINT]  # fmt: skip


def duckdb_type(iceberg_type: str) -> str | None:
    """DuckDB's spelling of an Iceberg primitive type (``decimal(12, 2)`` too); None if nested."""
    if iceberg_type.startswith("decimal"):
        return iceberg_type.upper()
    return _ICEBERG_TYPES.get(iceberg_type)


def table_columns(fields: Iterable[Any]) -> dict[str, str]:
    """Ordered ``{column: DuckDB type text}`` of Iceberg top-level fields ('' when nested)."""
    return {field.name: duckdb_type(str(field.field_type)) or "" for field in fields}


def expand_stars(tree: exp.Expr, schema: Schema) -> None:
    """Spell out ``*`` and ``t.*`` over lake tables as aliased columns (in place).

    A SELECT whose stars read a subquery, a CTE, an unknown table, or a join
    with USING/NATURAL (DuckDB merges those columns) is left as written.
    """
    for select in list(tree.find_all(exp.Select)):
        stars = [p for p in select.expressions if star_of(p) is not None]
        if not stars or merges_columns(select):
            continue
        sources = _sources(select, schema)
        projections: list[exp.Expr] = []
        for projection in select.expressions:
            star = star_of(projection)
            if star is None:
                projections.append(projection)
                continue
            expanded = _expand(projection, star, sources)
            if expanded is None:
                break
            projections.extend(expanded)
        else:
            select.set("expressions", projections)


def align(tree: exp.Expr, schema: Schema, engine: str, text: str) -> None:
    """Rewrite ``tree`` (in place) so ``engine`` gives DuckDB's values and types."""
    types = Types(schema)
    # First: the casts below are the rewrites' own, already exact.
    for cast in list(tree.find_all(exp.Cast, exp.TryCast)):
        if cast.to.this in _INTEGERS:
            _round_like_duckdb(cast, types, engine, text)
    for avg in list(tree.find_all(exp.Avg)):
        if types.is_kind(avg.this, "decimal"):
            _avg_as_sum_over_count(avg)
    for total in list(tree.find_all(exp.Sum)):
        argument = total.this.this if isinstance(total.this, exp.Distinct) else total.this
        scale = types.decimal_scale(argument)
        if types.is_kind(argument, "integer"):
            argument.replace(exp.cast(argument.copy(), "DECIMAL(38, 0)"))
        elif engine == "spark" and scale is not None:
            argument.replace(exp.cast(argument.copy(), f"DECIMAL(38, {scale})"))
    for division in list(tree.find_all(exp.IntDiv)):
        _integer_division(division, types, engine, text)
    for modulo in list(tree.find_all(exp.Mod)):
        modulo.set("expression", exp.Nullif(this=modulo.expression.copy(), expression=exp.Literal.number(0)))  # fmt: skip
    if engine == "spark":
        for quotient in list(tree.find_all(exp.Div)):
            if types.is_kind(quotient.this, "decimal") or types.is_kind(quotient.expression, "decimal"):  # fmt: skip
                quotient.set("this", exp.cast(quotient.this.copy(), "DOUBLE"))


def _avg_as_sum_over_count(avg: exp.Avg) -> None:
    """``avg(x)`` as ``CAST(sum(x) AS DOUBLE) / count(x)``, keeping any window or filter."""
    whole: exp.Expr = avg
    while isinstance(whole.parent, exp.Window | exp.Filter):
        whole = whole.parent
    parts = []
    for function in (exp.Sum, exp.Count):
        copy = whole.copy()
        inner = copy.find(exp.Avg)  # the copy itself when there is no window or filter
        assert inner is not None
        replacement = function(this=inner.this.copy())
        if inner is copy:
            copy = replacement
        else:
            inner.replace(replacement)
        parts.append(copy)
    total, count = parts
    whole.replace(exp.Paren(this=exp.Div(this=exp.cast(total, "DOUBLE"), expression=count)))


def _integer_division(division: exp.IntDiv, types: Types, engine: str, text: str) -> None:
    left, right = division.this, division.expression
    divisor = exp.Nullif(this=right.copy(), expression=exp.Literal.number(0))
    if types.is_kind(left, "integer") and types.is_kind(right, "integer"):
        widest = max(_INT_RANK.index(types.of(left).this), _INT_RANK.index(types.of(right).this))  # type: ignore[union-attr]
        if engine == "trino":  # Trino's integer '/' truncates toward zero, like '//'
            quotient: exp.Expr = exp.Div(this=left.copy(), expression=divisor, typed=True)
        else:
            quotient = exp.IntDiv(this=left.copy(), expression=divisor)
        division.replace(exp.cast(exp.Paren(this=quotient), _INT_RANK[widest].value))
    elif any(types.is_kind(side, kind) for side in (left, right) for kind in ("float", "decimal")):
        # DuckDB's '//' divides floats and decimals as doubles, without truncating
        division.replace(exp.Paren(this=exp.Div(this=exp.cast(left.copy(), "DOUBLE"), expression=divisor, typed=True)))  # fmt: skip
    else:
        raise QueryError(engine, text, f"cannot translate '{division.sql('duckdb')}' for {engine}: "
                         "'//' needs operands whose type is known to be integer or floating point",
                         hint="Cast the operands (CAST(x AS BIGINT) // 2), or pass native=True.")  # fmt: skip


def _round_like_duckdb(cast: exp.Cast, types: Types, engine: str, text: str) -> None:
    """Cast to an integer as DuckDB does: doubles half to even, decimals half away from zero.

    Spark truncates both; Trino rounds doubles half away from zero.
    """
    operand = cast.this
    kind = types.kind(operand)
    if kind == "decimal" and engine == "spark":
        cast.set("this", exp.Round(this=operand.copy()))
    elif kind == "float" and engine == "spark":
        cast.set("this", exp.Anonymous(this="BROUND", expressions=[operand.copy()]))
    elif kind == "float":
        cast.set("this", _half_even_on_trino(operand))
    elif kind is None:
        raise QueryError(engine, text, f"cannot translate '{cast.sql('duckdb')}' for {engine}: "
                         "the operand's type is not known, and DuckDB rounds doubles half to even "
                         "and decimals half away from zero",
                         hint="Cast the operand first, e.g. CAST(CAST(x AS DOUBLE) AS INTEGER), "
                         "or pass native=True.")  # fmt: skip


def _half_even_on_trino(x: exp.Expr) -> exp.Expr:
    """``round(x)`` to the even neighbour on a tie, which Trino has no function for."""
    fraction = exp.Sub(this=x.copy(), expression=exp.Floor(this=x.copy()))
    half = exp.Div(this=x.copy(), expression=exp.Literal.number(2))
    even = exp.Mul(this=exp.Literal.number(2), expression=exp.Round(this=half))
    tie = exp.EQ(this=fraction, expression=exp.Literal.number(0.5))
    return exp.Case(ifs=[exp.If(this=tie, true=even)], default=exp.Round(this=x.copy()))


# Functions whose result has the kind of their first argument, or a fixed kind.
_SAME_KIND = (exp.Sum, exp.Min, exp.Max, exp.Abs, exp.Round, exp.Floor, exp.Ceil, exp.Neg)
_FIXED_KIND = {exp.Count: "integer", exp.Length: "integer", exp.Extract: "integer",
               exp.Avg: "float", exp.Div: "float", exp.Boolean: "other", exp.Predicate: "other"}  # fmt: skip


class Types:
    """The DuckDB type of an expression, where it can be told from the lake's schemas."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema

    def of(self, node: exp.Expr) -> exp.DataType | None:
        if isinstance(node, exp.Paren):
            return self.of(node.this)
        if isinstance(node, exp.Cast | exp.TryCast):
            return node.to
        if isinstance(node, exp.Literal) and node.is_number:
            text = node.name
            if text.isdigit():
                return exp.DataType.build("INTEGER" if int(text) < 2**31 else "BIGINT")
            whole, _, fraction = text.partition(".")
            if (whole + fraction).isdigit():  # DuckDB reads 7.5 as DECIMAL(2, 1)
                digits = max(len(whole + fraction), len(fraction) + 1)
                return exp.DataType.build(f"DECIMAL({digits}, {len(fraction)})")
            return None
        if isinstance(node, exp.Neg):
            return self.of(node.this)
        if isinstance(node, exp.Column):
            select = node.find_ancestor(exp.Select)
            if select is None:
                return None
            found = _lookup(_sources(select, self.schema), node)
            return exp.DataType.build(found, dialect="duckdb") if found else None
        return None

    def kind(self, node: exp.Expr) -> str | None:
        """'integer', 'float', 'decimal' or 'other' (known, not a number); None if unknown.

        Looks through arithmetic and common functions, where ``of`` needs the exact type.
        """
        t = self.of(node)
        if t is not None:
            groups = {
                "integer": _INTEGERS,
                "float": _FLOATS,
                "decimal": {exp.DataType.Type.DECIMAL},
            }
            return next((name for name, group in groups.items() if t.this in group), "other")
        if isinstance(node, exp.Literal) and node.is_number:
            return "float"  # 1e3: DuckDB reads an exponent as a DOUBLE
        if isinstance(node, exp.Literal | exp.Null):
            return "other"
        fixed = next((k for cls, k in _FIXED_KIND.items() if isinstance(node, cls)), None)
        if fixed is not None:
            return fixed
        if isinstance(node, _SAME_KIND) and not node.args.get("decimals"):
            return self.kind(node.this)
        if isinstance(node, exp.Add | exp.Sub | exp.Mul | exp.Mod):
            kinds = {self.kind(node.this), self.kind(node.expression)}
            return next((k for k in (None, "other", "float", "decimal") if k in kinds), "integer")
        return None

    def is_kind(self, node: exp.Expr, kind: str) -> bool:
        t = self.of(node)
        if t is None:
            return False
        wanted = {"integer": _INTEGERS, "float": _FLOATS, "decimal": {exp.DataType.Type.DECIMAL}}
        return t.this in wanted[kind]

    def decimal_scale(self, node: exp.Expr) -> int | None:
        t = self.of(node)
        if t is None or t.this != exp.DataType.Type.DECIMAL:
            return None
        params = t.expressions
        return int(params[1].name) if len(params) == 2 else 3  # DuckDB's DECIMAL is (18, 3)


def star_of(projection: exp.Expr) -> exp.Star | None:
    if isinstance(projection, exp.Star):
        return projection
    if isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
        return projection.this
    return None


def merges_columns(select: exp.Select) -> bool:
    return any(j.args.get("using") or j.args.get("method") for j in select.args.get("joins") or [])


def _sources(select: exp.Select, schema: Schema) -> list[tuple[str, Mapping[str, str] | None]]:
    """(alias, columns) for each FROM/JOIN source; columns None when not a lake table."""
    from_ = select.args.get("from_") or select.args.get("from")
    nodes = ([from_.this] if from_ else []) + [j.this for j in select.args.get("joins") or []]
    sources: list[tuple[str, Mapping[str, str] | None]] = []
    for node in nodes:
        columns = None
        if isinstance(node, exp.Table) and node.db and not node.catalog:
            columns = schema.get(f"{node.db}.{node.name}")
        sources.append((node.alias_or_name, columns))
    return sources


def _lookup(sources: list[tuple[str, Mapping[str, str] | None]], column: exp.Column) -> str | None:
    """The type text of ``column`` if exactly one lake-table source has it (any case)."""
    if any(columns is None for _, columns in sources) and not column.table:
        return None  # might come from a subquery: unknown
    found = [
        columns[name]
        for alias, columns in sources
        if columns is not None and (not column.table or alias.lower() == column.table.lower())
        for name in columns
        if name.lower() == column.name.lower()
    ]
    return found[0] if len(found) == 1 else None


def _expand(projection: exp.Expr, star: exp.Star, sources: list) -> list[exp.Expr] | None:
    if star.args.get("replace") or star.args.get("rename"):
        return None
    qualifier = projection.table if isinstance(projection, exp.Column) else ""
    chosen = [(a, c) for a, c in sources if not qualifier or a.lower() == qualifier.lower()]
    if not chosen or any(columns is None for _, columns in chosen):
        return None
    excluded = {c.name.lower() for c in star.args.get("except_") or star.args.get("except") or []}
    return [
        exp.alias_(exp.column(name, table=exp.to_identifier(alias, quoted=True), quoted=True), name, quoted=True)
        for alias, columns in chosen
        for name in columns
        if name.lower() not in excluded
    ]  # fmt: skip
