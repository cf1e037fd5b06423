"""Athena's SQL as Trino runs it: Athena engine 3 *is* Trino, so most text passes
unchanged; what differs is translated here.

- ``awsdatacatalog`` (any case, quoted or not) as a catalog name is the lake's Trino
  catalog (replaced token by token, so nothing else in the text moves).
- ``CREATE TABLE ... TBLPROPERTIES ('table_type'='ICEBERG', ...)`` with ``LOCATION``
  and ``PARTITIONED BY`` becomes Trino's Iceberg ``CREATE TABLE ... WITH (...)``
  (Hive type names to Trino's, ``timestamp`` to ``timestamp(6)``, Athena's partition
  transforms ``bucket(16, c)`` to Iceberg's ``'bucket(c, 16)'``, other properties to
  properties of the new table, set through the catalog once Trino made it: Trino
  accepts no extra properties unless its configuration lists them).
- ``OPTIMIZE t REWRITE DATA USING BIN_PACK [WHERE p]`` is ``ALTER TABLE t EXECUTE
  optimize [WHERE p]``; ``VACUUM t`` is ``expire_snapshots`` then
  ``remove_orphan_files`` with the table's ``vacuum_max_snapshot_age_seconds``.

What cannot run raises :class:`AthenaSqlError`; the query then FAILS with its text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.dialects.trino import Trino
from sqlglot.tokens import TokenType

from lakehouse.aws.athena_ctas import CtasError, translate_ctas

ATHENA_CATALOG = "awsdatacatalog"
# (database, table) -> the Trino catalog holding it (None: unknown there).
Resolver = Callable[[str, str], str | None]
# Athena's default for vacuum_max_snapshot_age_seconds (5 days).
VACUUM_DEFAULT_AGE_SECONDS = 432000
_OPTIMIZE = re.compile(
    r"^OPTIMIZE\s+(?P<table>\S+)\s+REWRITE\s+DATA\s+USING\s+BIN_PACK(?:\s+WHERE\s+(?P<where>.+))?$",
    re.IGNORECASE | re.DOTALL,
)
_VACUUM = re.compile(r"^VACUUM\s+(?P<table>\S+)$", re.IGNORECASE)
_TRANSFORM = re.compile(
    r"^(?P<name>bucket|truncate)\s*\(\s*(?P<n>\d+)\s*,\s*(?P<col>.+?)\s*\)$", re.I
)
# Athena's Iceberg TBLPROPERTIES that are Trino table properties of another name.
_FORMATS = {"parquet": "PARQUET", "orc": "ORC", "avro": "AVRO"}
_IGNORED = {"table_type", "format", "write_compression", "write_target_data_file_size_bytes"}
# First keyword -> (StatementType, SubstatementType, has a header row).
_KINDS = {
    "select": ("DML", "SELECT", True), "with": ("DML", "SELECT", True),
    "values": ("DML", "SELECT", True), "table": ("DML", "SELECT", True),
    "insert": ("DML", "INSERT", False), "update": ("DML", "UPDATE", False),
    "delete": ("DML", "DELETE", False), "merge": ("DML", "MERGE_INTO", False),
    "explain": ("UTILITY", "EXPLAIN", True), "show": ("DDL", "SHOW", False),
    "describe": ("DDL", "DESCRIBE", False), "desc": ("DDL", "DESCRIBE", False),
    "create": ("DDL", "CREATE_TABLE", False), "drop": ("DDL", "DROP_TABLE", False),
    "alter": ("DDL", "ALTER_TABLE", False), "optimize": ("DML", "OPTIMIZE", False),
    "vacuum": ("DML", "VACUUM", False),
}  # fmt: skip


class AthenaSqlError(Exception):
    """A statement lakehouse's Athena cannot run; the message is the FAILED reason."""


@dataclass
class Statement:
    """What to run on Trino for one Athena query.

    ``sql`` is Trino's text; ``vacuum_table`` is set for VACUUM (the runner reads the
    table's retention, then runs both procedures); ``kind``/``substatement`` are
    Athena's StatementType and SubstatementType; ``header`` says whether results
    start with the column names (Athena does that for SELECT-like queries)."""

    sql: str
    kind: str
    substatement: str
    header: bool
    vacuum_table: str | None = None
    session: dict[str, str] = field(default_factory=dict)
    ctas_table: str | None = None  # a CTAS's new table: its data files make the manifest
    created_table: str | None = None  # a CREATE TABLE's table, for table_properties
    table_properties: dict[str, str] = field(default_factory=dict)


def translate(query: str, lake_catalog: str) -> Statement:
    """Athena's ``query`` as a :class:`Statement` for the lake's Trino catalog.

    Raises AthenaSqlError (empty text, several statements, unsupported syntax)."""
    text = query.strip().rstrip(";").strip()
    if not text:
        raise AthenaSqlError("line 1:1: the query is empty")
    if _statement_count(text) > 1:
        raise AthenaSqlError("Only one sql statement is allowed.")
    text = with_lake_catalog(text, lake_catalog)
    first = text.split(None, 1)[0].lower()
    kind, substatement, header = _KINDS.get(first, ("DDL", "OTHER", False))
    if (found := _OPTIMIZE.match(text)) is not None:
        where = f" WHERE {found['where']}" if found["where"] else ""
        return Statement(f"ALTER TABLE {found['table']} EXECUTE optimize{where}", kind,
                         substatement, header)  # fmt: skip
    if (found := _VACUUM.match(text)) is not None:
        return Statement("", kind, substatement, header, vacuum_table=found["table"])
    if first == "create":
        try:
            ctas = translate_ctas(text)
        except CtasError as exc:
            raise AthenaSqlError(str(exc)) from exc
        if ctas is not None:
            return Statement(
                ctas.sql, "DDL", "CREATE_TABLE_AS_SELECT", False, ctas_table=ctas.table
            )
    if first == "create" and re.search(r"\bTBLPROPERTIES\b", text, re.IGNORECASE):
        sql, table, extra = iceberg_create(text)
        return Statement(
            sql, kind, substatement, header, created_table=table, table_properties=extra
        )
    if first == "create" and re.match(r"CREATE\s+EXTERNAL\s+TABLE", text, re.IGNORECASE):
        raise AthenaSqlError(
            "lakehouse's Athena creates Iceberg tables only (TBLPROPERTIES "
            "('table_type'='ICEBERG')); register a Hive-style external table with Glue's CreateTable."
        )
    if first == "create" and re.search(r"\bAS\s+(SELECT|WITH)\b", text, re.IGNORECASE):
        substatement = "CREATE_TABLE_AS_SELECT"
    return Statement(text, kind, substatement, header)


def _statement_count(text: str) -> int:
    try:
        tokens = Trino().tokenize(text)
    except sqlglot.errors.TokenError:
        return 1  # Trino's parser gives the message
    pieces = 1
    for index, token in enumerate(tokens):
        if token.token_type == TokenType.SEMICOLON and index < len(tokens) - 1:
            pieces += 1
    return pieces


def with_lake_catalog(text: str, lake_catalog: str) -> str:
    """``text`` with every ``awsdatacatalog.`` (any case, quoted or not) naming the lake's
    catalog; strings, comments and everything else stay as written."""
    try:
        tokens = Trino().tokenize(text)
    except sqlglot.errors.TokenError:
        return text
    if (
        tokens and tokens[0].token_type in Trino.tokenizer_class.COMMANDS
    ):  # the rest is one raw token
        rest = text[tokens[0].end + 1 :]
        return text[: tokens[0].end + 1] + (with_lake_catalog(rest, lake_catalog) if rest else "")
    pieces, last = [], 0
    for index, token in enumerate(tokens[:-1]):
        names_catalog = token.token_type in (TokenType.VAR, TokenType.IDENTIFIER)
        dotted = tokens[index + 1].token_type == TokenType.DOT
        if names_catalog and dotted and token.text.lower() == ATHENA_CATALOG:
            pieces.append(text[last : token.start])
            pieces.append(f'"{lake_catalog}"')
            last = token.end + 1
    pieces.append(text[last:])
    return "".join(pieces)


def iceberg_create(text: str) -> tuple[str, str, dict[str, str]]:
    """Athena's Iceberg ``CREATE TABLE`` as Trino's (see the module's docstring): the
    statement, the table's name as written, and the properties to set afterwards."""
    partitions = _partition_text(text)
    if partitions is not None:
        text = text.replace(partitions[0], "")
    try:
        tree = sqlglot.parse_one(text, read="athena")
    except sqlglot.errors.ParseError as exc:
        raise AthenaSqlError(
            f"line 1:1: {exc.errors[0]['description'] if exc.errors else exc}"
        ) from exc
    if not isinstance(tree, exp.Create) or not isinstance(tree.this, exp.Schema):
        raise AthenaSqlError("CREATE TABLE with TBLPROPERTIES needs a column list.")
    properties = _properties(tree)
    if properties.pop("table_type", "").upper() != "ICEBERG":
        raise AthenaSqlError(
            "lakehouse's Athena creates Iceberg tables only: set TBLPROPERTIES "
            "('table_type'='ICEBERG'), or register a Hive-style table with Glue's CreateTable."
        )
    options = _trino_options(properties, partitions[1] if partitions else [])
    extra = {k: v for k, v in properties.items() if k not in _IGNORED}
    schema = tree.this
    for column_type in schema.find_all(exp.DataType):
        if column_type.this == exp.DataType.Type.TIMESTAMP and not column_type.expressions:
            column_type.set("expressions", [exp.DataTypeParam(this=exp.Literal.number(6))])
    columns = ", ".join(column.sql("trino") for column in schema.expressions)
    exists = "IF NOT EXISTS " if tree.args.get("exists") else ""
    name = schema.this.sql("trino")
    return f"CREATE TABLE {exists}{name} ({columns}) WITH ({', '.join(options)})", name, extra


def _properties(tree: exp.Create) -> dict[str, str]:
    found: dict[str, str] = {}
    props = tree.args.get("properties")
    for prop in props.expressions if props else []:
        if isinstance(prop, exp.LocationProperty):
            found["location"] = prop.this.name
        elif isinstance(prop, exp.Property):
            found[prop.name.lower()] = prop.args["value"].name
    return found


def _trino_options(properties: dict[str, str], partitions: list[str]) -> list[str]:
    options = []
    if "location" in properties:
        options.append(f"location = {_literal(properties.pop('location'))}")
    file_format = properties.pop("format", "parquet").lower()
    if file_format not in _FORMATS:
        raise AthenaSqlError(
            f"Unsupported Iceberg file format '{file_format}' (parquet, orc, avro)."
        )
    options.append(f"format = '{_FORMATS[file_format]}'")
    if partitions:
        options.append("partitioning = ARRAY[" + ", ".join(_literal(p) for p in partitions) + "]")
    return options


def _partition_text(text: str) -> tuple[str, list[str]] | None:
    """(the whole ``PARTITIONED BY (...)`` clause, its items as Iceberg transforms)."""
    found = re.search(r"\bPARTITIONED\s+BY\s*\(", text, re.IGNORECASE)
    if found is None:
        return None
    depth, items, current = 1, [], ""
    for index in range(found.end(), len(text)):
        char = text[index]
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            items.append(current.strip())
            return text[found.start() : index + 1], [_transform(item) for item in items if item]
        if char == "," and depth == 1:
            items.append(current.strip())
            current = ""
        else:
            current += char
    raise AthenaSqlError("PARTITIONED BY has no closing parenthesis.")


def _transform(item: str) -> str:
    """Athena's ``bucket(16, id)`` is Iceberg's ``bucket(id, 16)``; others unchanged."""
    found = _TRANSFORM.match(item)
    if found is not None:
        return f"{found['name'].lower()}({found['col']}, {found['n']})"
    return item


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def route_tables(text: str, database: str, lake_catalog: str, resolve: Resolver) -> str:
    """``text`` with each lake table reference that ``resolve(database, table)`` places
    in another Trino catalog (Glue's Hive-style tables: ``hive``) pointed there.

    Only the catalog part of those names changes; text sqlglot cannot parse is left
    as it is (Trino then says what is wrong)."""
    try:
        tree = sqlglot.parse_one(text, read="trino")
    except sqlglot.errors.ParseError:
        return text
    if tree is None:
        return text
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    edits: list[tuple[int, int, str]] = []
    for table in tree.find_all(exp.Table):
        catalog, schema = table.args.get("catalog"), table.args.get("db")
        if not table.name or (not schema and table.name in ctes):
            continue
        if catalog is not None and catalog.name.lower() != lake_catalog.lower():
            continue
        owner = resolve((schema.name if schema else database).lower(), table.name.lower())
        if owner is None or owner == lake_catalog:
            continue
        if catalog is not None and "start" in catalog.meta:
            edits.append((catalog.meta["start"], catalog.meta["end"] + 1, f'"{owner}"'))
        elif schema is not None and "start" in schema.meta:
            edits.append((schema.meta["start"], schema.meta["start"], f'"{owner}".'))
        elif "start" in table.this.meta:
            start = table.this.meta["start"]
            edits.append((start, start, f'"{owner}"."{database}".'))
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def with_parameters(sql: str, parameters: list[str] | None) -> str:
    """Athena's ExecutionParameters (SQL literals for the ``?`` marks, in order) as
    Trino's ``EXECUTE IMMEDIATE '...' USING ...``; ``sql`` unchanged without any."""
    if not parameters:
        return sql
    quoted = "'" + sql.replace("'", "''") + "'"
    return f"EXECUTE IMMEDIATE {quoted} USING {', '.join(parameters)}"
