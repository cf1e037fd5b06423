"""Automatic maintenance: per-namespace or per-table policies, S3 Tables style.

Declared in ``lakehouse.toml``; a table's own entry wins over its namespace's,
key by key::

    [maintenance.retail]                 # every table of the namespace
    target_file_size = "128MB"           # compaction (optimize) on, to this size
    min_snapshots_to_keep = 5            # snapshot management on: keep at least 5,
    max_snapshot_age = "5d"              #   expire those older than 5 days
    orphan_age = "3d"                    # unreferenced-file removal on, this old
    every = "1h"                         # how often each job runs (default 1h)

    [maintenance."retail.orders"]
    compaction = false                   # a job is switched off with false

A job runs when its last run (``<home>/maintenance/runs.json``) is older than
``every``; the scheduler service (``lakehouse.scheduler``) asks every tick.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakehouse.errors import ConfigError
from lakehouse.lake.maintenance_units import parse_duration, parse_size

if TYPE_CHECKING:
    from lakehouse.client import Lakehouse
    from lakehouse.config import Settings
    from lakehouse.lake.maintenance import MaintenanceReport

SECTION = "maintenance"
KEYS = ("target_file_size", "min_snapshots_to_keep", "max_snapshot_age", "orphan_age", "every",
        "compaction", "snapshot_management", "orphan_removal")  # fmt: skip
DEFAULT_EVERY_S = 3600.0
DEFAULT_MAX_SNAPSHOT_AGE = "5d"  # S3 Tables' maxSnapshotAgeHours default (120 h)
JOBS = ("optimize", "expire-snapshots", "remove-orphan-files")


@dataclass(frozen=True)
class Policy:
    """What maintenance a table gets; a job is on when its figures are set and its
    switch is not false. ``scope`` names the entry it came from."""

    scope: str
    target_file_size: int | None = None
    min_snapshots_to_keep: int | None = None
    max_snapshot_age_s: float | None = None
    orphan_age_s: float | None = None
    every_s: float = DEFAULT_EVERY_S

    def jobs(self) -> list[str]:
        """The jobs this policy turns on, in the order they run."""
        on = [self.target_file_size is not None,
              self.min_snapshots_to_keep is not None or self.max_snapshot_age_s is not None,
              self.orphan_age_s is not None]  # fmt: skip
        return [job for job, wanted in zip(JOBS, on, strict=True) if wanted]


def declared() -> dict[str, dict[str, Any]]:
    """The ``[maintenance]`` entries of the config file, scope -> raw keys, checked."""
    from lakehouse.config import config_file_path, read_config_file

    entries = read_config_file(SECTION)
    where = f"[{SECTION}] in {config_file_path()}"
    for scope, keys in entries.items():
        if not isinstance(keys, dict):
            raise ConfigError(f'{where}: "{scope}" must be a table of settings.',
                              hint=f'Write [maintenance."{scope}"] and its keys below it.')  # fmt: skip
        unknown = sorted(set(keys) - set(KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} for {scope}.",
                              hint=f"Known keys: {', '.join(KEYS)}.")  # fmt: skip
        if scope.count(".") > 1 or not scope.strip("."):
            raise ConfigError(f'{where}: "{scope}" is neither a namespace nor namespace.table.',
                              hint='Use e.g. [maintenance.retail] or [maintenance."retail.orders"].')  # fmt: skip
        parse_policy(scope, keys)  # every value checked before anything runs
    return entries


def parse_policy(scope: str, keys: dict[str, Any]) -> Policy:
    """One entry's keys as a Policy (ConfigError naming the key, with a hint)."""

    def switched_off(switch: str) -> bool:
        value = keys.get(switch, True)
        if not isinstance(value, bool):
            raise ConfigError(f"[maintenance.{scope}] {switch} = {value!r} is not true/false.",
                              hint=f"Write {switch} = false to switch the job off.")  # fmt: skip
        return not value

    def duration(key: str) -> float | None:
        value = keys.get(key)
        return None if value is None else parse_duration(value, f"{scope}: {key}").total_seconds()

    for switch in ("compaction", "snapshot_management", "orphan_removal"):
        switched_off(switch)  # each switch checked, whether its job is configured or not
    size = keys.get("target_file_size")
    keep = keys.get("min_snapshots_to_keep")
    if keep is not None and (not isinstance(keep, int) or isinstance(keep, bool) or keep < 1):
        raise ConfigError(f"[maintenance.{scope}] min_snapshots_to_keep = {keep!r} is not 1 or more.",
                          hint="The current snapshot is always kept: use 1 or more.")  # fmt: skip
    age = duration("max_snapshot_age")
    snapshots_on = (keep is not None or age is not None) and not switched_off("snapshot_management")
    every = duration("every")
    return Policy(
        scope=scope,
        target_file_size=(None if size is None or switched_off("compaction")
                          else parse_size(size, f"{scope}: target_file_size")),
        min_snapshots_to_keep=(keep or 1) if snapshots_on else None,
        max_snapshot_age_s=(age if age is not None else parse_duration(DEFAULT_MAX_SNAPSHOT_AGE)
                            .total_seconds()) if snapshots_on else None,
        orphan_age_s=None if switched_off("orphan_removal") else duration("orphan_age"),
        every_s=DEFAULT_EVERY_S if every is None else every,
    )  # fmt: skip


def policy_for(table: str, entries: dict[str, dict[str, Any]]) -> Policy | None:
    """``table``'s policy: its namespace's keys, overridden by its own; None if neither."""
    namespace = table.rsplit(".", 1)[0]
    if namespace not in entries and table not in entries:
        return None
    merged = {**entries.get(namespace, {}), **entries.get(table, {})}
    return parse_policy(table if table in entries else namespace, merged)


def runs_path(settings: Settings) -> Path:
    return settings.home_dir / "maintenance" / "runs.json"


def last_runs(settings: Settings) -> dict[str, dict[str, dict[str, Any]]]:
    """table -> job -> its last run (``finished_at`` epoch seconds, ``ok``, ``summary``)."""
    try:
        data = json.loads(runs_path(settings).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record_run(settings: Settings, table: str, job: str, ok: bool, summary: str,
               report: MaintenanceReport | None = None) -> None:  # fmt: skip
    """Keep ``job``'s last run on ``table`` (written whole, then renamed: never torn)."""
    runs = last_runs(settings)
    runs.setdefault(table, {})[job] = {
        "finished_at": time.time(), "ok": ok, "summary": summary,
        "report": report.as_dict() if report is not None else None,
    }  # fmt: skip
    path = runs_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(runs, indent=1, default=str))
    partial.replace(path)


def due_jobs(settings: Settings, tables: list[str], now: float) -> list[tuple[str, str, Policy]]:
    """(table, job, policy) for each job whose last run is older than its ``every``."""
    entries = declared()
    runs = last_runs(settings)
    due = []
    for table in tables:
        policy = policy_for(table, entries)
        for job in policy.jobs() if policy else []:
            last = runs.get(table, {}).get(job, {}).get("finished_at", 0.0)
            if policy is not None and now - float(last) >= policy.every_s:
                due.append((table, job, policy))
    return due


def governed_tables(lake: Lakehouse) -> list[str]:
    """The lake's tables some policy covers."""
    entries = declared()
    if not entries:
        return []
    namespaces = {scope.rsplit(".", 1)[0] if "." in scope else scope for scope in entries}
    found = []
    for namespace in sorted(namespaces):
        try:
            names = lake.tables(namespace)
        except Exception:  # a namespace declared but not (yet) created: nothing to do
            continue
        found += [name for name in names if policy_for(name, entries) is not None]
    return found


def run_job(lake: Lakehouse, table: str, job: str, policy: Policy) -> MaintenanceReport:
    """Run one policy job on ``table`` through the library (what the CLI runs)."""
    from datetime import timedelta

    if job == "optimize":
        return lake.optimize(table, target_file_size=policy.target_file_size)
    if job == "expire-snapshots":
        return lake.expire_snapshots(
            table, older_than=timedelta(seconds=policy.max_snapshot_age_s or 0),
            retain_last=policy.min_snapshots_to_keep or 1,
        )  # fmt: skip
    # A policy's orphan age below the floor is raised to it: a policy never deletes younger.
    floor = lake.settings.maintenance_orphan_floor_seconds
    return lake.remove_orphan_files(table, timedelta(seconds=max(policy.orphan_age_s or 0, floor)))


@dataclass(frozen=True)
class LastRun:
    """One recorded run, as `lakehouse status`, `lakehouse maintenance` and the
    console's Overview show it."""

    table: str
    job: str
    finished_at: float
    ok: bool
    summary: str

    @property
    def ago(self) -> str:
        from lakehouse.lake.maintenance_units import human_duration

        return f"{human_duration(max(0.0, time.time() - self.finished_at))} ago"


def recorded_runs(settings: Settings) -> list[LastRun]:
    """The last run of every job on every table, newest first."""
    runs = [LastRun(table, job, float(run.get("finished_at", 0)), bool(run.get("ok")),
                    str(run.get("summary", "")))
            for table, jobs in last_runs(settings).items() for job, run in jobs.items()]  # fmt: skip
    return sorted(runs, key=lambda run: -run.finished_at)
