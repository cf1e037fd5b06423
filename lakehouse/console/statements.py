"""What kind of SQL statement the Query page runs, and how to say what it did.

Pure text logic over the statement's first words (comments skipped): a query
(``SELECT``, ``WITH``, ``SHOW`` ...) shows rows; any other statement shows what
ran, with the count the engine reports (DuckDB's ``Count``, Trino's ``rows``,
Spark's ``num_affected_rows``) or plainly that it ran when the engine reports nothing more.
A statement that removes or rewrites data or tables (:func:`is_destructive`)
runs only once confirmed.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

QUERY_VERBS = frozenset({"SELECT", "WITH", "VALUES", "SHOW", "DESCRIBE", "DESC", "EXPLAIN",
                         "FROM", "TABLE", "PRAGMA", "SUMMARIZE"})  # fmt: skip
DESTRUCTIVE_VERBS = frozenset({"DROP", "DELETE", "TRUNCATE", "ALTER", "UPDATE", "MERGE"})
# Words an engine names its count of changed rows with.
COUNT_COLUMNS = frozenset({"count", "rows", "num_affected_rows", "num_inserted_rows"})
PAST = {"INSERT": "inserted", "DELETE": "deleted", "UPDATE": "updated", "MERGE": "changed"}
DONE = {"CREATE": "created", "DROP": "dropped", "ALTER": "altered"}
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


def leading_words(sql: str, count: int = 4) -> list[str]:
    """The statement's first ``count`` words, upper-cased, comments skipped."""
    return [word.upper() for word in re.findall(r"[A-Za-z_]+", _COMMENTS.sub(" ", sql))[:count]]


def is_query(sql: str) -> bool:
    """True for a statement that reads rows (SELECT, WITH, SHOW, DESCRIBE ...)."""
    words = leading_words(sql, 1)
    return not words or words[0] in QUERY_VERBS


def is_destructive(sql: str) -> bool:
    """True for DROP, DELETE, TRUNCATE, ALTER, UPDATE, MERGE, ``CREATE OR REPLACE``
    and ``INSERT OVERWRITE``: statements that remove or rewrite what exists."""
    words = leading_words(sql)
    if not words:
        return False
    if words[0] in DESTRUCTIVE_VERBS:
        return True
    return words[:3] == ["CREATE", "OR", "REPLACE"] or words[:2] == ["INSERT", "OVERWRITE"]


def outcome(sql: str, result: pa.Table) -> str:
    """What a statement did, in words: ``3 rows inserted``, ``table created``, or
    ``""`` when the engine reports nothing more (the page then says only that it ran)."""
    words = leading_words(sql)
    verb = words[0] if words else ""
    changed = reported_count(result)
    if changed is not None:
        rows = f"{changed:,} row{'' if changed == 1 else 's'}"
        if verb == "CREATE":
            return f"{_object(words)} created with {rows}"
        return f"{rows} {PAST.get(verb, 'affected')}"
    if verb in DONE:
        return f"{_object(words)} {DONE[verb]}"
    return ""


def reported_count(result: pa.Table) -> int | None:
    """The engine's count of changed rows: one row, one integer column named as a count."""
    import pyarrow as pa

    if result.num_rows != 1 or result.num_columns != 1:
        return None
    if result.column_names[0].lower() not in COUNT_COLUMNS:
        return None
    if not pa.types.is_integer(result.schema.types[0]):
        return None
    value = result.column(0)[0].as_py()
    return int(value) if value is not None else None


def _object(words: list[str]) -> str:
    """``table`` from ``CREATE [OR REPLACE] TABLE``, ``schema``, ``view`` ..."""
    rest = [w for w in words[1:] if w not in ("OR", "REPLACE", "TEMP", "TEMPORARY", "IF")]
    return rest[0].lower() if rest else "object"
