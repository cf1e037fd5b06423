"""What an engine is, and which engines there are.

An engine runs text already written in its own dialect (the translation step,
``lakehouse.engines.translate``, sits in front of every engine) and returns an
Arrow table that follows the result contract (``lakehouse.engines.results``).
Engines are imported lazily: Trino's and Spark's clients cost start-up time
that a DuckDB query should not pay.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol

from lakehouse.errors import ConfigError, QueryError

if TYPE_CHECKING:
    import pyarrow as pa

    from lakehouse.config import Settings


class Engine(Protocol):
    """A SQL engine over the lake."""

    name: str

    def sql(self, text: str, namespace: str | None = None) -> pa.Table:
        """Run ``text`` (the engine's dialect); unqualified names resolve in ``namespace``.

        Returns the result as Arrow, typed from the engine's declared column
        types. Raises ``QueryError`` (engine, query, reason, hint).
        """
        ...

    def close(self) -> None:
        """Release connections; the engine may be used again afterwards."""
        ...


SCRIPT_HINT = (
    "Run one statement per call; `lakehouse query -f FILE` runs a script's statements in turn."
)


def check_one_statement(engine: str, text: str, count: int) -> None:
    """Raise ``QueryError`` unless ``count`` (statements in ``text``) is exactly one.

    One call runs one statement on every engine, so a script can never run
    half-way; ``lakehouse query -f`` is the way to run several in turn.
    """
    if count == 0:
        raise QueryError(engine, text, "no statement to run",
                         hint='Give one SQL statement, e.g. "SELECT 1 AS one".')  # fmt: skip
    if count > 1:
        raise QueryError(engine, text, f"expected one statement, got {count}; nothing was run",
                         hint=SCRIPT_HINT)  # fmt: skip


# engine name -> "module:Class", imported on first use.
REGISTRY: dict[str, str] = {
    "duckdb": "lakehouse.engines.duckdb:DuckDBEngine",
    "trino": "lakehouse.engines.trino:TrinoEngine",
    "spark": "lakehouse.engines.spark:SparkEngine",
}
ENGINE_NAMES = tuple(REGISTRY)


def engine_class(name: str) -> type[Engine]:
    """The class registered as ``name``; ``ConfigError`` for an unknown name."""
    target = REGISTRY.get(name)
    if target is None:
        raise ConfigError(f"Unknown engine '{name}'.", hint=f"Choose from: {', '.join(REGISTRY)}.")
    module, _, attribute = target.partition(":")
    cls: type[Engine] = getattr(importlib.import_module(module), attribute)
    return cls


def create_engine(name: str, settings: Settings) -> Engine:
    """A new engine ``name`` for the lake described by ``settings``."""
    return engine_class(name)(settings)  # type: ignore[call-arg]
