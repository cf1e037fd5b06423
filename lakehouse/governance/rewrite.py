"""The query rewrite that governs DuckDB and Spark (Trino applies its own rules).

A principal other than the admin never reads a lake table directly: every table
reference of its statement becomes the governed projection of that table,
``(SELECT <visible columns, masked> FROM ns.t WHERE <row filter>) AS t``, from
:func:`lakehouse.governance.access.table_access`. ``SELECT *`` then yields the
visible columns only, masks and filters apply in joins, CTEs, subqueries, UNION
and lateral joins alike, and ``--as-of`` still pins the table inside.

What the rewrite cannot govern is refused before anything runs, never run
ungoverned: table functions that read files or other catalogs (``read_parquet``,
``iceberg_scan``, ``query_table``), system schemas (which list hidden column
names), statements other than queries and table writes (COPY, ATTACH, DESCRIBE,
SET, views), and column aliases over a table whose columns are not all visible
(the positions would shift). A write needs its permission (INSERT, DELETE,
CREATE_TABLE, DROP, ALTER) before it runs; DELETE, UPDATE and MERGE also need
every row and column of their target, whose condition could otherwise test
hidden values.

The steps run inside the one translation step (``lakehouse.engines.translate``):
:meth:`Governance.prepare` right after parsing, :meth:`Governance.apply` last.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace

import sqlglot
from sqlglot import exp
from sqlglot.errors import OptimizeError
from sqlglot.optimizer.scope import Scope, traverse_scope

from lakehouse.config import Settings
from lakehouse.errors import AccessDeniedError, QueryError, TableNotFoundError
from lakehouse.governance.access import TableAccess, check, quote, table_access
from lakehouse.governance.policy import Permission, Policy

# Table functions that read no data: range() and generate_series().
_DATALESS_FUNCTIONS = (exp.GenerateSeries,)
# A table name starting so (or holding ://) is a file path or URL, which DuckDB would
# read itself (FROM 's3://b/x.parquet'): refused with a clear reason.
_FILE_STARTS = ("/", "~", "./", "../")
# Schemas that list every table's columns, hidden ones too.
_SYSTEM_SCHEMAS = frozenset({"information_schema", "pg_catalog", "system", "sys"})
ADMIN_HINT = "Run it as the admin (without --as / principal=), or use `lakehouse query` for reads."


@dataclass(frozen=True)
class Write:
    """A permission a statement needs: on a table (``ns.t``) or a namespace."""

    permission: Permission
    table: str | None = None
    namespace: str | None = None


@dataclass
class Governance:
    """One governed statement of ``principal``: the lake tables it reads, the
    writes it needs, and (after :meth:`decide`) each read table's access."""

    principal: str
    engine: str
    text: str
    namespace: str
    catalog: str
    reads: tuple[str, ...] = ()
    writes: tuple[Write, ...] = ()
    whole_targets: tuple[str, ...] = ()
    accesses: dict[str, TableAccess] = field(default_factory=dict)
    all_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    query_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    settings: Settings | None = None  # set: refusals and denials are audited too
    headers: dict[int, str] = field(default_factory=dict)
    # Time travel: each read table's columns NOW. A column of an older snapshot that the
    # table no longer has (dropped, renamed) is hidden: the policy no longer names it.
    current_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Each read table's {column: Iceberg field id} (of the schema read): a policy entry
    # whose column is another field now (renamed, re-added) refuses the table.
    field_ids: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def tables(self) -> tuple[str, ...]:
        """Every lake table the statement reads or must read whole (its schema is needed)."""
        return tuple(dict.fromkeys([*self.reads, *self.whole_targets]))

    def plan(self) -> None:
        """Parse the text and find what it reads and writes; refuse what cannot be governed."""
        from lakehouse.engines.translate import parse

        tree = parse(self.text, self.engine)
        self.writes, self.whole_targets = _writes(tree, self)
        self.reads = tuple(dict.fromkeys(name for _, name in self._references(tree)))

    def prepare(self, tree: exp.Expr) -> None:
        """Right after parsing: note the headers DuckDB gives the statement's unnamed
        columns as written, refuse what cannot be governed, name each lake table in full
        (``ns.t``, so snapshots pin it), refuse references to hidden columns."""
        self.headers = original_headers(tree)
        _writes(tree, self)
        for table, name in self._references(tree):
            table.set("catalog", None)
            table.set("db", exp.to_identifier(name.split(".", 1)[0]))
            self._refuse_column_aliases(table, name)
        self._refuse_hidden_columns(tree)

    def apply(self, tree: exp.Expr) -> None:
        """Last: replace each lake table read by its governed projection (in place),
        and head each unnamed column as DuckDB heads the text as written (a header
        taken from the rewritten text would show the masks and filters)."""
        for table, name in list(self._references(tree)):
            table.replace(self._projection(table, self.accesses[name]))
        _name_as_written(tree, self.headers)

    def original_error(self, error: QueryError) -> QueryError:
        """``error`` (raised on the rewritten text) as the principal may see it: the
        text as written, and the engine's reason without the rewritten SQL it quotes
        (DuckDB's ``LINE 1: ...``, Spark's ``== SQL ==``); a reason still naming a
        filter or mask expression is withheld."""
        reason = _without_quoted_sql(error.reason)
        if any(_flat(part) in _flat(reason) for part in self._policy_texts()):
            reason = ("the engine's message quotes the policy's filters or masks, so it is "
                      "withheld; the query as written failed on " + self.engine)  # fmt: skip
        return QueryError(self.engine, self.text, reason, hint=error.hint)

    def _policy_texts(self) -> list[str]:
        texts = []
        for access in self.accesses.values():
            texts += [
                c.expression for c in access.columns if c.mask or c.expression != quote(c.name)
            ]
            texts += [access.row_filter] if access.row_filter else []
        return [t for t in texts if len(_flat(t)) > 3]

    def _references(self, tree: exp.Expr) -> Iterator[tuple[exp.Table, str]]:
        target = _write_target(tree)
        for table in list(tree.find_all(exp.Table)):
            if table is target:
                continue
            name = self._lake_name(table)
            if name is not None:
                yield table, name

    def _lake_name(self, table: exp.Table) -> str | None:
        """'ns.t' of a lake table reference; None for a CTE; refuses anything else."""
        if not isinstance(table.this, exp.Identifier):
            if isinstance(table.this, _DATALESS_FUNCTIONS):
                return None
            function = table.this.sql("duckdb").split("(", 1)[0]
            raise self._refused(f"the table function {function}() reads data the policy cannot govern")  # fmt: skip
        if not table.db and _names_a_cte(table):
            return None
        if "://" in table.name or table.name.startswith(_FILE_STARTS):  # FROM 's3://b/x.csv'
            raise self._refused(f"{table.name!r} is a file path, and files are read ungoverned")
        if table.catalog and table.catalog.lower() != self.catalog.lower():
            raise self._refused(f"{table.sql('duckdb')} is outside the lake's catalog")
        db = table.db or self.namespace
        if db.lower() in _SYSTEM_SCHEMAS or table.name.lower().startswith("duckdb_"):
            raise self._refused(f"the system table {table.sql('duckdb')} lists hidden columns")
        return f"{db}.{table.name}"

    def _refused(self, why: str) -> QueryError:
        if self.settings is not None:
            audit(self.settings, self, "the statement", "SELECT", refused=why)
        return QueryError(self.engine, self.text, f"cannot be governed for {self.principal}: {why}",
                          hint=ADMIN_HINT)  # fmt: skip

    def denied(self, error: AccessDeniedError) -> AccessDeniedError:
        """``error``, audited."""
        if self.settings is not None:
            audit(self.settings, self, error.resource, error.permission, denied=error)
        return error

    def _refuse_column_aliases(self, table: exp.Table, name: str) -> None:
        alias = table.args.get("alias")
        access = self.accesses.get(name)
        if alias is None or not alias.columns or access is None or not self._hidden(name):
            return
        raise self._refused(f"column aliases over {name}, where some columns are hidden, "
                            "would name other columns than the admin's")  # fmt: skip

    def _hidden(self, name: str) -> frozenset[str]:
        visible = {c.name for c in self.accesses[name].columns}
        return frozenset(self.all_columns.get(name, ())) - visible

    def _refuse_hidden_columns(self, tree: exp.Expr) -> None:
        """AccessDeniedError naming the first column read that the principal may not see."""
        for scope in _scopes(tree):
            for column in scope.columns:
                name = self._hidden_source(scope, column)
                if name is not None:
                    raise self.denied(AccessDeniedError(
                        self.principal, "SELECT", name,
                        message=f"{self.principal} has no SELECT on column {column.name} of {name}.",
                        hint=f"The columns {self.principal} may read of {name}: "
                        f"{', '.join(c.name for c in self.accesses[name].columns)}. An admin "
                        f"can grant it: `lakehouse grant SELECT ON TABLE {name} COLUMNS "
                        f"{column.name} TO {self.principal}`.",
                    ))  # fmt: skip

    def _hidden_source(self, scope: Scope, column: exp.Column) -> str | None:
        """The lake table ``column`` surely reads as a hidden column, else None."""
        lowered = column.name.lower()
        if column.table:
            source = scope.sources.get(column.table)
            name = self._lake_name(source) if isinstance(source, exp.Table) else None
            hidden = {h.lower() for h in self._hidden(name)} if name in self.accesses else set()
            return name if name and lowered in hidden else None
        if _names_an_alias(scope.expression, column):
            return None
        found = None
        for source in scope.sources.values():
            name = self._lake_name(source) if isinstance(source, exp.Table) else None
            if name is None or name not in self.accesses:
                return None  # a subquery or CTE might provide it
            if lowered in {c.name.lower() for c in self.accesses[name].columns}:
                return None
            if lowered in {h.lower() for h in self._hidden(name)}:
                found = name
        return found

    def explain(self, error: QueryError) -> AccessDeniedError | None:
        """The engine's "column not found" for a hidden column (read through a CTE or
        subquery the rewrite could not see into), as the denial it is."""
        said = error.message.lower()
        for name in self.accesses:
            for column in sorted(self._hidden(name)):
                if f'"{column.lower()}"' in said or f"`{column.lower()}`" in said:
                    denial = AccessDeniedError(
                        self.principal, "SELECT", name,
                        message=f"{self.principal} has no SELECT on column {column} of {name}.",
                        hint=f"An admin can grant it: `lakehouse grant SELECT ON TABLE {name} "
                        f"COLUMNS {column} TO {self.principal}`.",
                    )  # fmt: skip
                    return self.denied(denial)
        return None

    def _projection(self, table: exp.Table, access: TableAccess) -> exp.Subquery:
        inner = table.copy()
        inner.set("alias", None)
        inner.set("catalog", exp.to_identifier(self.catalog))
        columns = [
            exp.alias_(sqlglot.parse_one(c.expression, read="duckdb"), c.name, quoted=True)
            for c in access.columns
        ]
        select = exp.select(*columns).from_(inner)
        if access.row_filter:
            select = select.where(sqlglot.parse_one(access.row_filter, read="duckdb"))
        if self.engine != "duckdb":
            from lakehouse.engines.functions import keep_verified_functions

            keep_verified_functions(select, self.engine, self.text)
        alias = table.args.get("alias") or exp.TableAlias(this=table.this.copy())
        return exp.Subquery(this=select, alias=alias.copy())


def decide(governance: Governance, settings: Settings,
           schema: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:  # fmt: skip
    """Check the statement's writes and decide each read table's access, from the
    stored policy (read now: a revocation holds at once); every decision is audited.

    ``schema`` maps each table of :attr:`Governance.tables` to its ``{column:
    DuckDB type}``. Returns the read tables' schema as the principal sees it
    (visible columns only), for the translation step. Raises AccessDeniedError
    (nothing ran), TableNotFoundError.
    """
    from lakehouse.governance.store import load_policy

    policy, admin = load_policy(settings), settings.governance_admin
    try:
        for write in governance.writes:
            check(policy, governance.principal, write.permission, admin=admin,
                  table=write.table, namespace=write.namespace)  # fmt: skip
            audit(settings, governance, write.table or str(write.namespace), write.permission)
        visible = {
            name: _read(governance, policy, admin, name, schema) for name in governance.reads
        }
        for target in governance.whole_targets:
            _require_whole(governance, policy, admin, target, schema)
    except AccessDeniedError as denied:
        raise governance.denied(denied) from None
    for name, access in governance.accesses.items():
        audit(settings, governance, name, Permission.SELECT, access=access)
    return visible


def visible_schema(settings: Settings, principal: str,
                   schema: Mapping[str, Mapping[str, str]],
                   field_ids: Mapping[str, Mapping[str, int]] | None = None,
                   ) -> dict[str, dict[str, str]]:  # fmt: skip
    """``schema`` as ``principal`` sees it (for engines that govern themselves, Trino:
    ``*`` is spelled out with these columns; ``field_ids``: each table's ``{column:
    field id}``). Tables it may not read are left as they are: the engine refuses
    them itself."""
    from lakehouse.governance.store import load_policy

    policy, admin = load_policy(settings), settings.governance_admin
    visible = {name: dict(types) for name, types in schema.items()}
    for name, types in schema.items():
        try:
            access = table_access(policy, principal, name, list(types), types, admin=admin,
                                  ids=(field_ids or {}).get(name))  # fmt: skip
        except AccessDeniedError:
            continue
        visible[name] = {c.name: types[c.name] for c in access.columns}
    return visible


def _read(governance: Governance, policy: Policy, admin: str, name: str,
          schema: Mapping[str, Mapping[str, str]]) -> dict[str, str]:  # fmt: skip
    types = _types(schema, name)
    access = table_access(policy, governance.principal, name, list(types), types, admin=admin,
                          ids=governance.field_ids.get(name))  # fmt: skip
    now = governance.current_columns.get(name)
    if now is not None and any(c.name not in now for c in access.columns):
        kept = tuple(c for c in access.columns if c.name in now)
        if not kept:
            raise AccessDeniedError(
                governance.principal, "SELECT", name,
                message=f"every column {governance.principal} may read of {name} at that "
                f"snapshot is gone from the table now (dropped or renamed), and the policy "
                f"no longer covers it.",
                hint="Query a later snapshot, or ask the admin to read it.")  # fmt: skip
        applied = (*access.applied, "time travel: columns the table no longer has hidden")
        access = replace(access, columns=kept, applied=applied)
    governance.all_columns[name] = tuple(types)
    governance.accesses[name] = access
    return {c.name: types[c.name] for c in access.columns}


def _require_whole(governance: Governance, policy: Policy, admin: str, target: str,
                   schema: Mapping[str, Mapping[str, str]]) -> None:  # fmt: skip
    """DELETE, UPDATE and MERGE test their condition on every row and column."""
    types = _types(schema, target)
    access = table_access(policy, governance.principal, target, list(types), types, admin=admin,
                          ids=governance.field_ids.get(target))  # fmt: skip
    if not access.unrestricted or len(access.columns) != len(types):
        raise AccessDeniedError(governance.principal, "SELECT on every row and column", target,
                                hint="DELETE, UPDATE and MERGE test their condition on every row "
                                "and column of their table; an admin can grant SELECT on it.")  # fmt: skip


def _types(schema: Mapping[str, Mapping[str, str]], name: str) -> Mapping[str, str]:
    if name not in schema:
        raise TableNotFoundError(f"Table {name} does not exist.",
                                 hint="Run `lakehouse tables` to see the tables.")  # fmt: skip
    return schema[name]


def audit(settings: Settings, governance: Governance, resource: str, permission: str, *,
          access: TableAccess | None = None, denied: AccessDeniedError | None = None,
          refused: str | None = None) -> None:  # fmt: skip
    """THE audit call site of the rewrite: one decision (allowed, or ``denied``) of the
    governed statement, with its query id, into ``lakehouse_audit.access_log``."""
    from lakehouse.governance.audit import record

    record(
        settings, governance.principal, governance.engine, resource,
        [c.name for c in access.columns] if access else [],
        [*access.applied, *([access.row_filter] if access.row_filter else [])] if access else [],
        denied is None and refused is None, governance.query_id, action=str(permission),
        reason=denied.message if denied else refused,
    )  # fmt: skip


def _write_target(tree: exp.Expr) -> exp.Table | None:
    """The table a write statement changes (not read through the rewrite)."""
    if not isinstance(tree, exp.Insert | exp.Delete | exp.Update | exp.Merge | exp.Create |
                      exp.Drop | exp.Alter):  # fmt: skip
        return None
    target = tree.this
    if isinstance(tree, exp.Drop):
        tables = tree.args.get("tables") or []
        target = tables[0] if len(tables) == 1 else None
    if isinstance(target, exp.Schema):
        target = target.this
    return target if isinstance(target, exp.Table) else None


def _writes(tree: exp.Expr, g: Governance) -> tuple[tuple[Write, ...], tuple[str, ...]]:
    """The permissions a statement needs, and the targets it must read whole."""
    if isinstance(tree, exp.Query):
        return (), ()
    target = _write_target(tree)
    if target is None or not isinstance(target.this, exp.Identifier):
        raise g._refused(f"'{tree.key.upper()}' statements are not governed")
    name = f"{target.db or g.namespace}.{target.name}"
    kind = str(tree.args.get("kind") or "").upper()
    if isinstance(tree, exp.Insert):
        return (Write(Permission.INSERT, table=name),), ()
    if isinstance(tree, exp.Delete):
        return (Write(Permission.DELETE, table=name),), (name,)
    if isinstance(tree, exp.Update | exp.Merge):
        return (Write(Permission.INSERT, table=name), Write(Permission.DELETE, table=name)), (name,)
    if isinstance(tree, exp.Create) and kind == "TABLE":
        return (Write(Permission.CREATE_TABLE, namespace=name.split(".", 1)[0]),), ()
    if isinstance(tree, exp.Drop) and kind == "TABLE":
        return (Write(Permission.DROP, table=name),), ()
    if isinstance(tree, exp.Alter) and kind in ("TABLE", ""):
        return (Write(Permission.ALTER, table=name),), ()
    raise g._refused(f"'{tree.key.upper()} {kind}' statements are not governed")


def _names_a_cte(table: exp.Table) -> bool:
    """Whether an unqualified name means a CTE where it stands (DuckDB's scoping:
    a CTE sees the ones before it, itself only WITH RECURSIVE; the query sees all)."""
    wanted = table.name.lower()
    node: exp.Expr = table
    while node.parent is not None:
        parent = node.parent
        if isinstance(parent, exp.With) and isinstance(node, exp.CTE):
            ctes = list(parent.expressions)
            upto = ctes.index(node) + (1 if parent.args.get("recursive") else 0)
            if any(c.alias_or_name.lower() == wanted for c in ctes[:upto]):
                return True
        elif isinstance(parent, exp.Query) and node is not parent.args.get("with_"):
            with_ = parent.args.get("with_")
            if with_ is not None and any(
                c.alias_or_name.lower() == wanted for c in with_.expressions
            ):
                return True
        node = parent
    return False


def _names_an_alias(select: exp.Expr, column: exp.Column) -> bool:
    """Whether ``column`` may mean an alias of ``select``'s projections (DuckDB reads
    aliases in WHERE, GROUP BY, ORDER BY and later projections), not its own."""
    wanted = column.name.lower()
    projections = select.expressions if isinstance(select, exp.Select) else []
    return any(
        isinstance(p, exp.Alias) and p.alias.lower() == wanted and column not in set(p.walk())
        for p in projections
    )


def _scopes(tree: exp.Expr) -> list[Scope]:
    """sqlglot's scopes of the statement's queries; none where it cannot tell (the
    engine then reports an unknown column: the column is still not readable)."""
    query = tree if isinstance(tree, exp.Query) else tree.args.get("expression")
    if not isinstance(query, exp.Query):
        return []
    try:
        return traverse_scope(query)
    except (OptimizeError, KeyError, ValueError):
        return []


def _naming_select(tree: exp.Expr) -> exp.Select | None:
    """The SELECT whose projections head the statement's result (the leftmost of a
    UNION; a CREATE TABLE AS or INSERT's query), None when there is none."""
    node: exp.Expr | None = tree
    if isinstance(node, exp.Create | exp.Insert):
        node = node.expression
    while isinstance(node, exp.SetOperation):
        node = node.this
    if isinstance(node, exp.Subquery):
        return _naming_select(node.this)
    return node if isinstance(node, exp.Select) else None


def _unnamed(projection: exp.Expr) -> bool:
    return not isinstance(projection, exp.Alias | exp.Star | exp.Column | exp.Dot)


def original_headers(tree: exp.Expr) -> dict[int, str]:
    """Position -> DuckDB's header of each unnamed projection of the statement as
    written (columns and aliases head themselves)."""
    from lakehouse.engines.headers import duckdb_headers

    select = _naming_select(tree)
    if select is None:
        return {}
    unnamed = [(i, p) for i, p in enumerate(select.expressions) if _unnamed(p)]
    names = duckdb_headers([p for _, p in unnamed])
    return {i: name for (i, _), name in zip(unnamed, names, strict=True)}


def _name_as_written(tree: exp.Expr, headers: Mapping[int, str]) -> None:
    select = _naming_select(tree)
    if select is None or not headers:
        return
    projections = list(select.expressions)
    for position, header in headers.items():
        if position >= len(projections):
            continue
        projection = projections[position]
        if isinstance(projection, exp.Alias):  # named from the rewritten text by translate
            projection.set("alias", exp.to_identifier(header, quoted=True))
        else:
            projection.replace(exp.alias_(projection.copy(), header, quoted=True))


def _without_quoted_sql(reason: str) -> str:
    """The engine's reason without the lines quoting the SQL it ran."""
    kept = []
    for line in reason.splitlines():
        if line.startswith(("LINE ", "== SQL", "== Parsed", "== Analyzed")) or line.strip() == "^":
            break
        kept.append(line)
    return "\n".join(kept).strip() or reason.splitlines()[0]


def _flat(text: str) -> str:
    return "".join(c for c in text.lower() if c not in '"`() \t\n')
