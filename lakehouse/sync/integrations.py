"""Zero-ETL integrations: what is declared, and where declarations live.

An integration is declared once, either as a ``[sync.<name>]`` table in
the project's ``lakehouse.toml`` (found from any subdirectory, see
:mod:`lakehouse.home`) or with ``lakehouse sync create`` (stored under
``<home>/sync/integrations.json``). Names are unique across both.
"""

from __future__ import annotations

import json
import os
import re
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lakehouse.config import CONFIG_FILE_NAME, Settings, config_file_path, read_config_file
from lakehouse.errors import ConfigError
from lakehouse.privacy import write_private
from lakehouse.sync.generations import GenerationStore
from lakehouse.sync.options import (
    FieldError,
    check_namespace,
    index_name_problem,
    names_in_list,
    shown,
    unused_option_refusal,
)

if TYPE_CHECKING:
    from pyiceberg.schema import Schema

SUPPORTED = {("postgres", "iceberg"), ("postgres", "opensearch"), ("iceberg", "opensearch")}
NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,40}$"
# OpenSearch index names: lowercase, none of \\ / * ? " < > | , # : or space, not
# starting with - _ +. Checked, never lowercased silently.
INDEX_PREFIX_PATTERN = r"^([a-z0-9][a-z0-9._-]*)?$"
# A day: longer waits overflowed the follower's clock arithmetic (inf: OverflowError).
MAX_BATCH_SECONDS = 86_400.0
# What a refused field must look like, in words (pydantic's own text names regexes).
FIELD_RULES = {
    "name": "must start with a lowercase letter and hold only a-z, 0-9, _ and - "
    "(at most 41 characters)",
    "index_prefix": "must be lowercase and hold only a-z, 0-9, ., _ and - (not first), "
    "as OpenSearch index names do",
    "tables": "must name at least one table",
    "batch_seconds": f"must be more than 0 and at most {MAX_BATCH_SECONDS:,.0f}",
    "batch_rows": "must be at least 1",
}


class Integration(BaseModel):
    """One source -> target integration."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    source: Literal["postgres", "iceberg"]
    target: Literal["iceberg", "opensearch"]
    tables: tuple[str, ...] = Field(min_length=1)
    key: tuple[str, ...] = Field(
        default=(),
        description="Key columns; default: the source's primary key / identifier fields.",
    )
    database: str | None = Field(default=None, description="PostgreSQL database (default shop).")
    namespace: str | None = Field(
        default=None, description="Iceberg namespace of the target tables (default: database)."
    )
    index_prefix: str | None = Field(
        default=None,
        pattern=INDEX_PREFIX_PATTERN,
        description="OpenSearch index name prefix (default '<database>-').",
    )
    batch_seconds: float | None = Field(
        default=None, gt=0, le=MAX_BATCH_SECONDS, allow_inf_nan=False,
        description="How long changes gather before a commit when idle (default: sync_poll_seconds).",
    )  # fmt: skip
    batch_rows: int | None = Field(default=None, ge=1, description="Most changes per batch.")
    generation: str = Field(
        default="", exclude=True,
        description="Which incarnation this is (lakehouse.sync.generations); set by the store.",
    )  # fmt: skip

    @model_validator(mode="after")
    def _supported_pair(self) -> Integration:
        if (self.source, self.target) not in SUPPORTED:
            pairs = ", ".join(f"{s} -> {t}" for s, t in sorted(SUPPORTED))
            raise ValueError(
                f"The route {self.source} -> {self.target} is not supported; use {pairs}"
            )
        names_in_list(self.tables, "tables", "table", once=False)  # below, schema-qualified
        names_in_list(self.key, "key", "column")
        check_namespace(self.namespace)
        if self.database is not None and not self.database.strip():
            raise FieldError("database", f"must name a database; got {self.database!r}",
                             hint="Leave it out for the default: settings' postgres_db.")  # fmt: skip
        if self.source == "iceberg" and any(
            "." not in t or not all(t.split(".")) for t in self.tables
        ):
            raise ValueError("iceberg tables must be namespace-qualified, e.g. retail.products")
        named = [self.source_table(t) if self.source == "postgres" else t for t in self.tables]
        if twice := sorted({".".join(t) if isinstance(t, tuple) else t
                            for t in named if named.count(t) > 1}):  # fmt: skip
            raise ValueError(f"table {', '.join(twice)} is listed more than once")
        return self

    def database_name(self, settings: Settings) -> str:
        return self.database or settings.postgres_db

    def slot_name(self) -> str:
        """Replication slot and publication name (letters, digits and _ only, at most
        60), ending in the generation, so a re-created integration never reuses one."""
        return slot_prefix(self.name) + (f"_{self.generation}" if self.generation else "")

    def source_table(self, table: str) -> tuple[str, str]:
        """(schema, table) of a PostgreSQL table name ('orders' is public.orders)."""
        schema, _, name = table.rpartition(".")
        return schema or "public", name

    def key_of(self, schema: Schema) -> tuple[str, ...]:
        """The declared key, else the Iceberg table's identifier fields (may be empty)."""
        return self.key or tuple(
            schema.find_column_name(i) or "" for i in schema.identifier_field_ids
        )

    def iceberg_target(self, table: str, settings: Settings) -> str:
        return f"{self.namespace or self.database_name(settings)}.{self.source_table(table)[1]}"

    def targets(self, settings: Settings) -> list[tuple[str, str]]:
        """(target kind, table or index name) written for each source table."""
        if self.target == "iceberg":
            return [("iceberg", self.iceberg_target(t, settings)) for t in self.tables]
        return [("opensearch", self.index_name(t, settings)) for t in self.tables]

    def index_name(self, table: str, settings: Settings) -> str:
        if self.source == "iceberg":
            default_prefix = table.split(".")[0] + "-"
        else:
            default_prefix = self.database_name(settings) + "-"
        prefix = default_prefix if self.index_prefix is None else self.index_prefix
        return (prefix + table.split(".")[-1]).lower()


class IntegrationStore:
    """Integrations from lakehouse.toml plus those created with ``sync create``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.path = settings.home_dir / "sync" / "integrations.json"

    def all(self) -> dict[str, Integration]:
        """Every declared integration with its current generation (one seen for the
        first time gets one minted and stored)."""
        declared = self._from_config_file()
        created = self._from_home()
        clash = set(declared) & set(created)
        if clash:
            raise ConfigError(
                f"Integration(s) {', '.join(sorted(clash))} are both in lakehouse.toml and "
                f"created with `lakehouse sync create`.",
                hint=f"Delete one: `lakehouse sync delete NAME` or edit {_config_name()}.",
            )
        known = declared | created
        refuse_shared_targets(known, self.settings)
        generations = GenerationStore(self.settings).ensure(known)
        return {n: i.model_copy(update={"generation": generations[n]}) for n, i in known.items()}

    def declared_in_config_file(self, name: str) -> bool:
        return name in self._from_config_file()

    def get(self, name: str, checked: bool = True) -> Integration:
        """The integration ``name``; ``checked=False`` skips the check that no two
        integrations write one target (so one that clashes can still be deleted)."""
        if not checked and name in (created := self._from_home()):
            generation = GenerationStore(self.settings).current(name) or ""
            return created[name].model_copy(update={"generation": generation})
        known = self.all()
        if name not in known:
            raise ConfigError(
                f"No integration named '{name}'.",
                hint=f"Known: {', '.join(sorted(known)) or 'none'}; create one with "
                "`lakehouse sync create`.",
            )
        return known[name]

    def create(self, integration: Integration, replace: bool = False) -> None:
        created = self.refuse_conflicts(integration, replace)
        if integration.name not in created:
            # A new incarnation: nothing a namesake stored before is trusted.
            GenerationStore(self.settings).renew(integration.name)
        created[integration.name] = integration
        self._save(created)

    def refuse_conflicts(
        self, integration: Integration, replace: bool = False
    ) -> dict[str, Integration]:
        """ConfigError when the name is taken (declared in the config file, or created
        with other settings) or the target is another integration's; else the created
        integrations. Checked before the source, so a taken name is the error shown."""
        if integration.name in self._from_config_file():
            raise ConfigError(
                f"'{integration.name}' is declared in {_config_name()}.",
                hint="Change it there, or pick another name.",
            )
        created = self._from_home()
        existing = created.get(integration.name)
        if existing is not None and not replace and existing != integration:
            raise ConfigError(
                f"An integration named '{integration.name}' already exists with other "
                f"settings ({describe(existing)}); it differs in "
                f"{', '.join(differences(existing, integration))}.",
                hint="Choose another name, or delete it first with `lakehouse sync delete`.",
            )
        others = self._from_config_file() | created
        others.pop(integration.name, None)
        refuse_shared_targets(others | {integration.name: integration}, self.settings)
        return created

    def remove(self, name: str) -> None:
        created = self._from_home()
        if name not in created:
            raise ConfigError(
                f"No integration '{name}' was created with `lakehouse sync create`.",
                hint="Integrations declared in lakehouse.toml are removed by editing the file.",
            )
        del created[name]
        self._save(created)

    def _save(self, integrations: dict[str, Integration]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            name: i.model_dump(mode="json", exclude_defaults=True, exclude={"name"})
            for name, i in integrations.items()
        }
        staging = self.path.with_suffix(".tmp")
        write_private(staging, json.dumps(data, indent=2, sort_keys=True))
        os.replace(staging, self.path)

    def _from_home(self) -> dict[str, Integration]:
        if not self.path.is_file():
            return {}
        return _parse(json.loads(self.path.read_text()), str(self.path))

    def _from_config_file(self) -> dict[str, Integration]:
        return _parse(read_config_file("sync"), _config_name(), declared=True)


def refuse_shared_targets(integrations: dict[str, Integration], settings: Settings) -> None:
    """ConfigError naming both integrations when two write the same table or index:
    one's snapshot would wipe the other's rows, and deleting one would drop both's."""
    writers: dict[tuple[str, str], tuple[str, str]] = {}
    for name, integration in sorted(integrations.items()):
        for table, target in zip(integration.tables, integration.targets(settings), strict=True):
            _refuse_index_name(name, *target)
            other, other_table = writers.setdefault(target, (name, table))
            if other != name:
                raise ConfigError(
                    f"Integrations '{other}' and '{name}' both write {target[0]} {target[1]}.",
                    hint="Give one another --index-prefix / --namespace (or other tables); "
                    "one target is written by one integration only.",
                )
            if other_table != table:
                raise ConfigError(
                    f"Integration '{name}' writes {target[0]} {target[1]} from both "
                    f"{other_table} and {table}: their rows would mix in one target.",
                    hint="Sync them in two integrations, each with its own --namespace "
                    "(iceberg) or --index-prefix (opensearch).",
                )


def _refuse_index_name(name: str, kind: str, target: str) -> None:
    """ConfigError for an index name OpenSearch would refuse at the first pass."""
    problem = index_name_problem(target) if kind == "opensearch" else None
    if problem:
        raise ConfigError(
            f"Integration '{name}' would write the opensearch index '{target}', a name "
            f"OpenSearch refuses: {problem}.",
            hint="An index name is the --index-prefix (default: the source's database or "
            "namespace and '-') and the table's name, lowercased; it may not hold a space or "
            '\\ / * ? " < > | , # :, nor start with - _ +. Pick another --index-prefix.',
        )


def validation_sentences(exc: ValidationError, flags: bool = False) -> str:
    """A pydantic error as one plain sentence per field (``flags``: named as CLI options)."""
    sentences = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        named = shown(field, flags and field != "name")
        rule = FIELD_RULES.get(field) if error["type"] != "value_error" else None
        refused = error.get("ctx", {}).get("error")
        if isinstance(refused, FieldError):
            sentences.append(f"{shown(refused.field, flags)} {refused.text}.")
        elif not field or error["type"] == "value_error":
            text = str(error["msg"]).removeprefix("Value error, ")
            sentences.append(text[:1].upper() + text[1:] + ".")
        elif error["type"] == "extra_forbidden":
            sentences.append(f"{named} is not a field of an integration.")
        else:
            said = rule or str(error["msg"]).lower()
            sentences.append(f"{named} {said}; got {error.get('input')!r}.")
    return " ".join(sentences)


def describe(integration: Integration) -> str:
    """``postgres -> iceberg, tables orders, order_items`` and every option given."""
    options = integration.model_dump(exclude_defaults=True,
                                     exclude={"name", "source", "target", "tables"})  # fmt: skip
    given = "".join(f", {field} {_listed(value)}" for field, value in options.items())
    return (
        f"{integration.source} -> {integration.target}, tables {_listed(integration.tables)}{given}"
    )


def differences(one: Integration, other: Integration) -> list[str]:
    """The fields whose values differ between two integrations of one name."""
    left, right = one.model_dump(), other.model_dump()
    return [field for field in left if left[field] != right[field]]


def _listed(value: object) -> str:
    return ", ".join(map(str, value)) if isinstance(value, tuple | list) else str(value)


def validation_hint(exc: ValidationError, default: str) -> str:
    """The hint of the first field check that gave one, else ``default``."""
    for error in exc.errors():
        refused = error.get("ctx", {}).get("error")
        if isinstance(refused, FieldError) and refused.hint:
            return refused.hint
    return default


def slot_prefix(name: str) -> str:
    """The part of slot and publication names shared by every generation of ``name``."""
    return "lakehouse_" + re.sub(r"[^a-z0-9_]", "_", name)


def _config_name() -> str:
    """The config file in effect (found like the home: see lakehouse.home), for messages."""
    return str(config_file_path() or CONFIG_FILE_NAME)


def _parse(section: object, origin: str, declared: bool = False) -> dict[str, Integration]:
    """The integrations of a ``[sync]`` section; ``declared`` (lakehouse.toml): an option
    the route does not use is refused too (stored ones were checked by `sync create`)."""
    if not isinstance(section, dict):
        raise ConfigError(f"[sync] in {origin} must be a table of integrations.")
    integrations = {}
    fields = "See `lakehouse sync create --help` for the fields."
    for name, body in section.items():
        try:
            integrations[name] = integration = Integration(name=name, **body)
        except (ValidationError, TypeError) as exc:
            raise ConfigError(
                f"Integration '{name}' in {origin} is invalid: "
                + (validation_sentences(exc) if isinstance(exc, ValidationError) else str(exc)),
                hint=validation_hint(exc, fields) if isinstance(exc, ValidationError) else fields,
            ) from exc
        if declared and (refusal := unused_option_refusal(integration)):
            raise ConfigError(f"Integration '{name}' in {origin} is invalid: {refusal[0]}",
                              hint=refusal[1])  # fmt: skip
    return integrations


def sample_integrations() -> list[Integration]:
    """The integrations `make up` declares for the shop sample."""
    return [
        Integration(
            name="shop-to-lake", source="postgres", target="iceberg",
            tables=("customers", "products", "orders", "order_items"),
        ),
        Integration(
            name="shop-to-search", source="postgres", target="opensearch",
            tables=("customers", "products", "orders"),
        ),
        Integration(
            name="lake-to-search", source="iceberg", target="opensearch",
            tables=("shop.products",), index_prefix="lake-",
        ),
    ]  # fmt: skip
