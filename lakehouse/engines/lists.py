"""``list()`` and ``array_agg()`` on Spark with DuckDB's NULLs and order.

DuckDB (and Trino) collect every value, NULLs included, in the aggregate's
``ORDER BY`` order, and give NULL when no row was collected. Spark's
``collect_list`` drops NULLs, has no ``ORDER BY`` and gives ``[]``: sqlglot's
plain translation loses values silently. Spark keeps a struct whose fields
are NULL, so each value is collected inside a struct that starts with its
sort keys, the structs are sorted, and the values are taken out again::

    CASE WHEN size(C) = 0 THEN NULL
         ELSE transform(sort_array(C), item -> item.v) END
    -- C: collect_list(named_struct('n0', k0 IS NULL, 'k0', k0, ..., 'v', x))

Each key is preceded by a flag that puts its NULLs where DuckDB puts them
(last unless ``NULLS FIRST``). Keys in different directions cannot be sorted
by one ``sort_array`` and are refused.
"""

from __future__ import annotations

from sqlglot import exp

from lakehouse.errors import QueryError

_ITEM = "lakehouse_item"
_HINT = (
    "Give every ORDER BY key of the aggregate the same direction, "
    "or pass native=True (CLI: --native) and use Spark's collect_list."
)


def collect_faithfully_on_spark(tree: exp.Expr, text: str) -> None:
    """Rewrite each ``list``/``array_agg`` in ``tree`` (in place) as described above.

    Raises ``QueryError`` for ORDER BY keys in mixed directions.
    """
    for aggregate in list(tree.find_all(exp.ArrayAgg)):
        _rewrite(aggregate, text)


def _rewrite(aggregate: exp.ArrayAgg, text: str) -> None:
    argument = aggregate.this
    keys: list[exp.Ordered] = []
    if isinstance(argument, exp.Order):
        keys = list(argument.expressions)
        argument = argument.this
    distinct = isinstance(argument, exp.Distinct)
    value = argument.expressions[0] if distinct else argument
    descending = {bool(key.args.get("desc")) for key in keys}
    if len(descending) > 1:
        raise QueryError("spark", text, f"cannot translate '{aggregate.sql('duckdb')}' for spark: "
                         "its ORDER BY keys sort in different directions", hint=_HINT)  # fmt: skip
    fields: list[exp.Expr] = []
    for index, key in enumerate(keys):
        nulls_at_start = bool(key.args.get("nulls_first")) == bool(key.args.get("desc"))
        flag = exp.Is(this=key.this.copy(), expression=exp.Null())
        fields += [exp.Literal.string(f"n{index}"), flag if nulls_at_start else exp.not_(flag),
                   exp.Literal.string(f"k{index}"), key.this.copy()]  # fmt: skip
    fields += [exp.Literal.string("v"), value.copy()]
    whole: exp.Expr = aggregate
    while isinstance(whole.parent, exp.Window | exp.Filter):
        whole = whole.parent
    collected = whole.copy()
    inner = collected.find(exp.ArrayAgg)
    assert inner is not None
    collect = _call("COLLECT_LIST", _call("NAMED_STRUCT", *fields))
    collected = collect if inner is collected else _replaced(collected, inner, collect)
    whole.replace(_values_of(collected, keys, descending == {True}, distinct))


def _values_of(collected: exp.Expr, keys: list, descending: bool, distinct: bool) -> exp.Expr:
    items: exp.Expr = collected.copy()
    if keys:
        items = _call("SORT_ARRAY", items, *([exp.false()] if descending else []))
    field = exp.Dot(this=exp.column(_ITEM), expression=exp.to_identifier("v"))
    values = _call("TRANSFORM", items, exp.Lambda(this=field, expressions=[exp.to_identifier(_ITEM)]))  # fmt: skip
    if distinct:
        values = _call("ARRAY_DISTINCT", values)
    empty = exp.EQ(this=_call("SIZE", collected), expression=exp.Literal.number(0))
    return exp.Case(ifs=[exp.If(this=empty, true=exp.Null())], default=values)


def _replaced(whole: exp.Expr, inner: exp.Expr, replacement: exp.Expr) -> exp.Expr:
    inner.replace(replacement)
    return whole


def _call(name: str, *arguments: exp.Expr) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(arguments))
