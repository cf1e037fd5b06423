"""Every error lakehouse raises on purpose.

Each one renders as a single readable message: what went wrong, what was tried,
and a ``Hint:`` line saying what to do next. The CLI prints ``str(error)`` and
exits non-zero; ``--verbose`` adds the traceback.
"""

from __future__ import annotations

from collections.abc import Sequence


class LakehouseError(Exception):
    """Root of lakehouse's errors; ``hint`` says how to fix it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return f"{self.message}\nHint: {self.hint}" if self.hint else self.message


class ConfigError(LakehouseError):
    """A setting is missing or invalid."""


class PortInUseError(LakehouseError):
    """A port a service needs is taken by another process."""


class JavaNotFoundError(LakehouseError):
    """No suitable JDK was found for a JVM service."""


class ArtifactError(LakehouseError):
    """A Maven artifact could not be fetched or failed its checksum."""


class ServiceStartError(LakehouseError):
    """A service did not become healthy.

    Carries the service, its command, the last health answer and its log tail.
    """

    def __init__(
        self,
        service: str,
        problem: str,
        command: Sequence[str],
        last_health: str,
        log_tail: str,
        hint: str,
    ) -> None:
        self.service = service
        self.command = list(command)
        self.last_health = last_health
        self.log_tail = log_tail
        tail = "\n".join("    " + line for line in log_tail.splitlines()) or "    (log is empty)"
        message = (
            f"Service '{service}' {problem}.\n"
            f"  command: {' '.join(self.command)}\n"
            f"  last health check: {last_health}\n"
            f"  log tail:\n{tail}"
        )
        super().__init__(message, hint)


class ServiceNotRunningError(LakehouseError):
    """A command needs a service that is not up."""


class TableNotFoundError(LakehouseError):
    """A table named by the user does not exist."""


class SnapshotNotFoundError(LakehouseError):
    """A table exists but has no snapshot with the id, or at the time, asked for."""


class MLError(LakehouseError):
    """Training, registering or serving a model failed (lakehouse.ml)."""


class ModelNotFoundError(MLError):
    """No registered model (or no version of it) has the name asked for."""


class IngestError(LakehouseError):
    """Input could not be ingested; the table was left unchanged."""


class CrawlError(LakehouseError):
    """A crawl could not start (no such bucket, nothing under the prefix, a bad crawler)."""


class QueryError(LakehouseError):
    """An engine rejected a query; names the engine and the query."""

    def __init__(self, engine: str, sql: str, reason: str, hint: str | None = None) -> None:
        self.engine = engine
        self.sql = sql
        self.reason = reason
        short_sql = " ".join(sql.split())
        if len(short_sql) > 300:
            short_sql = short_sql[:297] + "..."
        super().__init__(f"{engine} could not run the query: {reason}\n  query: {short_sql}", hint)


class SyncError(LakehouseError):
    """A sync pass failed for a reason that may pass (a server restarting): retried."""


class SyncStoppedError(SyncError):
    """A change the target cannot apply (e.g. an incompatible column type change):
    the integration stops until someone fixes it; retrying would fail the same way."""


class SyncWaitingError(SyncError):
    """The source is not there yet (a table to be created): `sync run` fails, `--follow` waits."""


class ServiceUnavailableError(ServiceNotRunningError):
    """A service the call needs did not answer: names it, its URL and what was tried."""

    def __init__(self, service: str, url: str, tried: str, reason: str) -> None:
        self.service = service
        self.url = url
        self.tried = tried
        self.reason = reason
        super().__init__(
            f"The {service} service at {url} is not answering, so {tried} failed ({reason}).",
            hint=f"Start it with `lakehouse up` (see `lakehouse status`, and "
            f"`lakehouse logs {service}` for why it stopped), then try again.",
        )


class PolicyError(LakehouseError):
    """A governance policy change is invalid (unknown principal, bad expression…);
    nothing was stored."""


def _grant_target(resource: str) -> str:
    """``resource`` as `lakehouse grant` names it (TABLE ns.t, NAMESPACE ns)."""
    if " " in resource:
        return resource
    return f"TABLE {resource}" if "." in resource else f"NAMESPACE {resource}"


class AccessDeniedError(LakehouseError):
    """The governance policy does not allow the principal this access; names the
    principal, the permission and the resource. Nothing was read or changed.

    ``message`` replaces the default sentence ("… has no PERMISSION permission on
    RESOURCE") when the caller can say it better, e.g. for one column."""

    def __init__(
        self,
        principal: str,
        permission: str,
        resource: str,
        hint: str | None = None,
        *,
        message: str | None = None,
    ) -> None:
        self.principal = principal
        self.permission = permission
        self.resource = resource
        super().__init__(
            "Access denied: "
            + (message or f"{principal} has no {permission} permission on {resource}."),
            hint
            or f"An admin can grant it: `lakehouse grant {permission} ON "
            f"{_grant_target(resource)} TO {principal}`.",
        )
