"""Which integration options apply to which route, and names a target would refuse.

Each check here stands for a value once accepted and then ignored or replaced:
an ``index_prefix`` on an Iceberg target (the tables went to the default
namespace), a ``namespace`` on an OpenSearch target, a key of no columns (it
meant "the primary key"), two tables of one integration written to one target
(their rows mixed), an index name OpenSearch refuses (the integration failed at
its first pass). Each is refused before anything is stored or asked of a server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakehouse.sync.integrations import Integration

# Option -> (the side that uses it, the kind of that side that does, what it is).
USED_BY: dict[str, tuple[str, str, str]] = {
    "database": ("source", "postgres", "the PostgreSQL database a postgres source reads"),
    "batch_rows": ("source", "postgres", "how many changes a postgres source reads at once"),
    "namespace": ("target", "iceberg", "the Iceberg namespace an iceberg target writes"),
    "index_prefix": ("target", "opensearch", "the start of an opensearch target's index names"),
}
# What does the unused option's job on the route given ({option} names another option).
INSTEAD = {
    "database": "an iceberg source's tables are named namespace.table in {tables}",
    "batch_rows": "an iceberg source is read one snapshot at a time",
    "namespace": "an opensearch target's index names start with what {index_prefix} "
    "says (default: the source's database or namespace and '-')",
    "index_prefix": "an iceberg target's namespace is what {namespace} says (default: the "
    "source's database)",
}
# OpenSearch refuses index names holding these, starting with one of INDEX_FIRST_REFUSED,
# '.' or '..', or longer than INDEX_NAME_BYTES (its MetadataCreateIndexService rules).
INDEX_CHARACTERS_REFUSED = frozenset('\\/*?"<>|,# :')
INDEX_FIRST_REFUSED = "-_+"
INDEX_NAME_BYTES = 255


class FieldError(ValueError):
    """An integration model's refusal of one field: ``text`` follows the field's name,
    shown as the CLI option (``--index-prefix``) or the lakehouse.toml key."""

    def __init__(self, field: str, text: str, hint: str | None = None) -> None:
        self.field = field
        self.text = text
        self.hint = hint
        super().__init__(f"{field} {text}")


def shown(field: str, flags: bool) -> str:
    """A field as the user wrote it: ``--index-prefix`` (``flags``) or ``index_prefix``."""
    return "--" + field.replace("_", "-") if flags else field


def unused_options(integration: Integration) -> list[str]:
    """The options given that the integration's source or target does not use."""
    return [
        field
        for field, (side, kind, _) in USED_BY.items()
        if getattr(integration, field) is not None and getattr(integration, side) != kind
    ]


def unused_option_refusal(integration: Integration, flags: bool = False) -> tuple[str, str] | None:
    """(message, hint) naming every option given that the route does not use, or None."""
    unused = unused_options(integration)
    if not unused:
        return None
    sentences = []
    for field in unused:
        side, _, what = USED_BY[field]
        sentences.append(f"{shown(field, flags)} does not apply to an "
                         f"{getattr(integration, side)} {side}: it is {what}.")  # fmt: skip
    names = {f: shown(f, flags) for f in ("tables", "index_prefix", "namespace")}
    instead = "; ".join(INSTEAD[field].format(**names) for field in unused)
    them = "it" if len(unused) == 1 else "them"
    return " ".join(sentences), f"Leave {them} out: {instead}."


def index_name_problem(name: str) -> str | None:
    """Why OpenSearch would refuse ``name`` as an index name, or None."""
    if name in ("", ".", ".."):
        return "it is empty or a dot"
    if name[0] in INDEX_FIRST_REFUSED:
        return f"it starts with {name[0]!r}"
    if refused := sorted(INDEX_CHARACTERS_REFUSED & set(name)):
        return "it holds " + " ".join("a space" if c == " " else repr(c) for c in refused)
    if len(name.encode()) > INDEX_NAME_BYTES:
        return f"it is longer than {INDEX_NAME_BYTES} bytes"
    return None


def names_in_list(items: tuple[str, ...], field: str, what: str, once: bool = True) -> None:
    """FieldError for a blank item or (``once``) one listed twice (``what``: 'column')."""
    if any(not item.strip() for item in items):
        raise FieldError(field, f"holds an empty {what} name",
                         hint=f"Name each {what}, comma-separated, with no empty item.")  # fmt: skip
    if once and (twice := sorted({item for item in items if items.count(item) > 1})):
        raise FieldError(field, f"names {', '.join(twice)} more than once",
                         hint=f"Name each {what} once.")  # fmt: skip


def check_namespace(namespace: str | None) -> None:
    """FieldError for a namespace that is empty or has an empty level ('a..b', '.a')."""
    if namespace is not None and not all(level.strip() for level in namespace.split(".")):
        raise FieldError("namespace", f"must be one or more names joined by '.', none of them "
                         f"empty; got {namespace!r}",
                         hint="Leave it out for the default: the source's database.")  # fmt: skip
