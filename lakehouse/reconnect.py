"""A PostgreSQL connection that comes back after the server restarts.

Long-running writers (``lakehouse simulate shop``) keep one connection. When it
breaks they call :meth:`PostgresLink.reconnect`, which retries with a bounded,
growing delay, says once that the connection was lost (and once that it is
back), and gives up after ``give_up_after`` seconds with a reason instead of a
traceback.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from lakehouse.errors import ServiceUnavailableError
from lakehouse.outages import POSTGRES_CONNECT_SECONDS

FIRST_DELAY = 0.2
MAX_DELAY = 5.0
GIVE_UP_AFTER = 120.0


def is_lost(conn: psycopg.Connection[Any], exc: Exception) -> bool:
    """True when ``exc`` means the connection itself is gone (not a failed statement)."""
    return conn.broken or conn.closed or isinstance(exc, psycopg.InterfaceError)


def where(dsn: str) -> str:
    """``postgresql://host:port/db`` of a DSN, without the user or password."""
    parts = conninfo_to_dict(dsn)
    return f"postgresql://{parts.get('host', '')}:{parts.get('port', '')}/{parts.get('dbname', '')}"


class PostgresLink:
    """Owns the connection; ``conn`` is the current one. ``gave_up`` says why it stopped
    trying (None while it has not)."""

    def __init__(
        self,
        dsn: str,
        stop: threading.Event,
        notice: Callable[[str], None],
        give_up_after: float = GIVE_UP_AFTER,
    ) -> None:
        self.dsn, self.stop, self.notice, self.give_up_after = dsn, stop, notice, give_up_after
        self.gave_up: str | None = None
        self.outage_seconds = 0.0
        self.conn = self._open_first()

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, autocommit=True, connect_timeout=POSTGRES_CONNECT_SECONDS)

    def _open_first(self) -> psycopg.Connection[Any]:
        try:
            return self._connect()
        except psycopg.OperationalError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ServiceUnavailableError(
                "postgres", where(self.dsn), "connecting", reason
            ) from exc

    def reconnect(self, lost: Exception, ready: Callable[[psycopg.Connection[Any]], None]) -> bool:
        """Open a new connection and run ``ready`` on it; False when stopped or given up.

        Waits FIRST_DELAY, doubling up to MAX_DELAY, between tries.
        """
        started = time.monotonic()
        self.notice(f"lost the connection to PostgreSQL at {where(self.dsn)} ({_first_line(lost)}); "
                    f"reconnecting for up to {self.give_up_after:.0f} s")  # fmt: skip
        self.close()
        delay, last = FIRST_DELAY, lost
        while not self.stop.wait(delay):
            try:
                self.conn = self._connect()
                ready(self.conn)
            except psycopg.OperationalError as exc:
                last = exc
                if time.monotonic() - started >= self.give_up_after:
                    self.gave_up = (f"PostgreSQL at {where(self.dsn)} did not come back within "
                                    f"{self.give_up_after:.0f} s ({_first_line(last)})")  # fmt: skip
                    break
                delay = min(delay * 2, MAX_DELAY)
                continue
            self.outage_seconds += time.monotonic() - started
            self.notice(f"reconnected to PostgreSQL after {time.monotonic() - started:.1f} s")
            return True
        self.outage_seconds += time.monotonic() - started
        return False

    def close(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self.conn.close()


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
