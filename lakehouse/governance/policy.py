"""The governance policy as data: principals, grants, data cells filters, column masks
and LF-tags (Lake Formation's model, in lakehouse's words).

A :class:`Policy` is a plain pydantic document. It is stored under the home by
:mod:`lakehouse.governance.store`, exported and imported as a file (JSON or TOML),
and read by every enforcer through :mod:`lakehouse.governance.access`, which turns it
into one decision per (principal, table). Nothing here talks to a server.

Expressions (row filters, custom masks) are SQL in lakehouse's query language
(DuckDB's dialect); each enforcer translates them with sqlglot. They may name only
the columns of their own table.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ADMIN_ROLE = "admin"  # every member of this role may do everything, and grant it


class Permission(StrEnum):
    """Lake Formation's permissions (``ALL`` stands for every one of them)."""

    SELECT = "SELECT"
    INSERT = "INSERT"
    DELETE = "DELETE"
    ALTER = "ALTER"
    DROP = "DROP"
    DESCRIBE = "DESCRIBE"
    CREATE_TABLE = "CREATE_TABLE"
    ALL = "ALL"


TABLE_PERMISSIONS = frozenset(
    {Permission.SELECT, Permission.INSERT, Permission.DELETE, Permission.ALTER,
     Permission.DROP, Permission.DESCRIBE}
)  # fmt: skip
NAMESPACE_PERMISSIONS = frozenset(
    {Permission.CREATE_TABLE, Permission.ALTER, Permission.DROP, Permission.DESCRIBE}
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Principal(_Strict):
    """A user or a role (a group). Users belong to roles; roles do not nest."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.@-]{0,127}$")
    kind: Literal["user", "role"] = "user"
    roles: tuple[str, ...] = ()


class Resource(_Strict):
    """What a grant covers: exactly one of

    - ``namespace``: the namespace itself (CREATE_TABLE, ALTER, DROP, DESCRIBE);
    - ``namespace`` + ``all_tables=True``: every table in it, now and later;
    - ``table`` (``ns.name``), optionally narrowed to ``columns`` or widened to all
      but ``excluded_columns``;
    - ``data_cells_filter``: a named filter (rows and columns of one table);
    - ``tags``: an LF-tag expression ``{key: [values]}`` (all keys must match, any
      listed value of a key) over tables and columns, now and later.
    """

    namespace: str | None = None
    all_tables: bool = False
    table: str | None = None
    columns: tuple[str, ...] | None = None
    excluded_columns: tuple[str, ...] | None = None
    data_cells_filter: str | None = None
    tags: dict[str, tuple[str, ...]] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Resource:
        kinds = [self.namespace is not None, self.table is not None,
                 self.data_cells_filter is not None, self.tags is not None]  # fmt: skip
        if sum(kinds) != 1:
            raise ValueError(
                "a grant names exactly one of: a namespace, a table, a data cells filter, "
                "or an LF-tag expression"
            )
        if self.all_tables and self.namespace is None:
            raise ValueError("all_tables applies to a namespace")
        if (self.columns is not None or self.excluded_columns is not None) and self.table is None:
            raise ValueError("columns and excluded_columns apply to a table")
        if self.columns is not None and self.excluded_columns is not None:
            raise ValueError("give columns or excluded_columns, not both")
        if self.table is not None and self.table.count(".") < 1:
            raise ValueError(f"table {self.table!r} must be namespace.table")
        if self.tags is not None and not self.tags:
            raise ValueError("an LF-tag expression needs at least one key")
        return self

    def describe(self) -> str:
        """A short human form: ``retail.customers (email excluded)``, ``TAG pii=false``."""
        if self.table is not None:
            if self.columns is not None:
                return f"{self.table} ({', '.join(self.columns)})"
            if self.excluded_columns is not None:
                return f"{self.table} (all but {', '.join(self.excluded_columns)})"
            return self.table
        if self.namespace is not None:
            return f"all tables in {self.namespace}" if self.all_tables else self.namespace
        if self.data_cells_filter is not None:
            return f"data cells filter {self.data_cells_filter}"
        assert self.tags is not None
        return "TAG " + ",".join(f"{k}={'|'.join(v)}" for k, v in sorted(self.tags.items()))


class Grant(_Strict):
    """Permissions of one principal (user or role) on one resource."""

    principal: str
    permissions: tuple[Permission, ...]
    resource: Resource
    grant_option: bool = False

    @field_validator("permissions")
    @classmethod
    def _some(cls, value: tuple[Permission, ...]) -> tuple[Permission, ...]:
        if not value:
            raise ValueError("a grant needs at least one permission")
        return tuple(dict.fromkeys(value))


class DataCellsFilter(_Strict):
    """LF's data cells filter: the rows of ``table`` matching ``row_filter`` (SQL,
    DuckDB dialect; ``None`` = every row), showing ``columns`` (``None`` = all) or all
    but ``excluded_columns``."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,127}$")
    table: str
    row_filter: str | None = None
    columns: tuple[str, ...] | None = None
    excluded_columns: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _columns(self) -> DataCellsFilter:
        if self.columns is not None and self.excluded_columns is not None:
            raise ValueError("give columns or excluded_columns, not both")
        return self


class ColumnMask(_Strict):
    """What ``principal`` sees instead of ``table.column``: ``hash`` (SHA-256 hex),
    ``partial`` (all but the last four characters replaced by ``*``), ``null``, or
    ``expression`` (SQL of the column, DuckDB dialect, e.g. ``left(email, 2) || '…'``)."""

    table: str
    column: str
    principal: str
    kind: Literal["hash", "partial", "null", "expression"]
    expression: str | None = None

    @model_validator(mode="after")
    def _expression(self) -> ColumnMask:
        if (self.kind == "expression") != (self.expression is not None):
            raise ValueError("a mask of kind 'expression' needs an expression (and only it)")
        return self


class TagKey(_Strict):
    """An LF-tag key and the values it may take."""

    key: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
    values: tuple[str, ...]


class TagAssignment(_Strict):
    """Tags on a namespace (``ns``), a table (``ns.t``) or a column (``ns.t.col``).
    Tables inherit their namespace's tags and columns their table's; a lower level's
    value for the same key wins."""

    resource: str
    tags: dict[str, str]


class Policy(_Strict):
    """The whole policy; ``revision`` grows by one with every stored change."""

    revision: int = 0
    principals: tuple[Principal, ...] = ()
    grants: tuple[Grant, ...] = ()
    data_cells_filters: tuple[DataCellsFilter, ...] = ()
    masks: tuple[ColumnMask, ...] = ()
    tag_keys: tuple[TagKey, ...] = ()
    tags: tuple[TagAssignment, ...] = ()
    #: ``{table: {column: Iceberg field id}}``: the field each column the entries above
    #: name had when the entry was made (see :mod:`lakehouse.governance.binding`).
    #: Absent for a column named before ids were recorded: it is bound at the next
    #: change or import; until then it is checked by name only.
    column_ids: dict[str, dict[str, int]] = {}

    def principal(self, name: str) -> Principal | None:
        return next((p for p in self.principals if p.name == name), None)

    def identities(self, name: str) -> tuple[str, ...]:
        """The principal's own name and its roles' names (what grants may name)."""
        found = self.principal(name)
        return (name, *(found.roles if found else ()))

    def is_admin(self, name: str, admin: str) -> bool:
        """``admin`` (the configured admin principal) or a member of the admin role."""
        return name == admin or ADMIN_ROLE in self.identities(name)[1:]

    def filter_named(self, name: str) -> DataCellsFilter | None:
        return next((f for f in self.data_cells_filters if f.name == name), None)
