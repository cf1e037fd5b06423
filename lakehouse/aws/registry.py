"""Operations: a function per (service, operation), registered with :func:`operation`.

A handler takes the :class:`Call` and the request's parameters (already decoded and
checked against botocore's input shape) and returns the output as a dict of the
operation's output shape (Python ``datetime`` for timestamps, ``bytes`` for blobs).
It raises :class:`~lakehouse.aws.errors.AwsError` with AWS's code for a refusal; a
:class:`~lakehouse.errors.LakehouseError` becomes the service's invalid-input error
carrying its message and hint.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakehouse.client import Lakehouse
    from lakehouse.config import Settings

Handler = Callable[["Call", dict[str, Any]], dict[str, Any]]
HANDLERS: dict[tuple[str, str], Handler] = {}
# Modules whose import registers operations (each adds its own).
OPERATION_MODULES = ("lakehouse.aws.athena", "lakehouse.aws.glue", "lakehouse.aws.lakeformation")
# AWS's account id in ARNs and Glue's CatalogId: LocalStack's and moto's default.
ACCOUNT_ID = "000000000000"


@dataclass
class Call:
    """One request: the stack's ``settings``, the ``service`` (signing name) and
    ``operation`` called, the ``principal`` its signature proved, and its ``region``."""

    settings: Settings
    service: str
    operation: str
    principal: str
    region: str
    account_id: str = ACCOUNT_ID
    _lake: Lakehouse | None = field(default=None, repr=False)

    def lake(self) -> Lakehouse:
        """The principal's :class:`~lakehouse.client.Lakehouse` (opened on first use,
        closed by the server when the request ends)."""
        if self._lake is None:
            from lakehouse.client import Lakehouse

            as_principal = self.settings.model_copy(update={"principal": self.principal})
            self._lake = Lakehouse(as_principal)
        return self._lake

    def close(self) -> None:
        if self._lake is not None:
            self._lake.close()
            self._lake = None


def operation(service: str, name: str) -> Callable[[Handler], Handler]:
    """Register the decorated function as ``service``'s operation ``name`` (botocore's
    operation name, e.g. ``operation("athena", "StartQueryExecution")``)."""

    def register(handler: Handler) -> Handler:
        HANDLERS[(service, name)] = handler
        return handler

    return register


_loaded = threading.Lock()


def load_operations() -> dict[tuple[str, str], Handler]:
    """Import every operation module that exists (each registers its handlers)."""
    with _loaded:
        for module in OPERATION_MODULES:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise
    return HANDLERS
