"""`lakehouse audit`: the governed access decisions (lakehouse_audit.access_log)."""

from __future__ import annotations

import datetime as dt
import json

import click

from lakehouse.cli.common import friendly_errors, settings_of
from lakehouse.config import Settings
from lakehouse.errors import AccessDeniedError, LakehouseError


@click.command()
@click.option("--principal", help="Only this principal's decisions.")
@click.option(
    "--since",
    help="Only decisions at or after this time (ISO 8601, e.g. 2026-11-30T08:00; UTC unless given).",
)
@click.option("--denied", is_flag=True, help="Only the denied ones.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True,
              help="The newest N decisions.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="JSON lines, one decision each.")
@click.pass_context
@friendly_errors
def audit(ctx: click.Context, principal: str | None, since: str | None, denied: bool,
          limit: int, as_json: bool) -> None:  # fmt: skip
    """Governed access decisions, oldest first: time, principal, engine, action,
    resource, columns, filters applied, allowed or denied, query id. Decisions still
    spooled are committed first, so every one recorded so far is shown. A governed
    principal sees its own decisions only."""
    from lakehouse.cli.display import print_table
    from lakehouse.governance.audit import read_log

    settings = settings_of(ctx)
    principal = _readable_principal(settings, principal)
    rows = read_log(settings, principal=principal, since=_moment(since)).to_pylist()
    rows = [r for r in rows if not (denied and r["allowed"])][-limit:]
    if as_json:
        for row in rows:
            click.echo(json.dumps({**row, "time": row["time"].isoformat()}, ensure_ascii=False))
        return
    print_table(
        ["time", "principal", "engine", "action", "resource", "columns", "filters", "allowed", "query id"],
        [(r["time"].isoformat(timespec="milliseconds"), r["principal"], r["engine"], r["action"],
          r["resource"], ", ".join(r["columns"] or ()), "; ".join(r["filters"] or ()),
          "yes" if r["allowed"] else f"DENIED: {r['reason'] or ''}".rstrip(": "), r["query_id"] or "")
         for r in rows],
    )  # fmt: skip


def _readable_principal(settings: Settings, asked: str | None) -> str | None:
    """Whose decisions the acting principal may read: everyone's (or ``asked``'s) for
    the admin; a governed principal only its own, as with the query history (others'
    decisions name tables, columns and filters it may not see). AccessDeniedError
    when a governed principal asks for another's."""
    from lakehouse.client import Lakehouse

    lake = Lakehouse(settings)
    if not lake.governed():
        return asked
    if asked is not None and asked != lake.principal:
        raise AccessDeniedError(lake.principal, "audit", f"{asked}'s decisions",
                                message=f"{lake.principal} may read only its own decisions "
                                f"in the audit log, not {asked}'s.",
                                hint="The governance admin reads everyone's (unset "
                                "LAKEHOUSE_PRINCIPAL); `lakehouse audit` shows yours.")  # fmt: skip
    return lake.principal


def _moment(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise LakehouseError(f"--since {text!r} is not a time.",
                             hint="Use ISO 8601, e.g. 2026-11-30T08:00:00 or 2026-11-30.") from None  # fmt: skip
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
