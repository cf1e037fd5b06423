"""Synthetic traffic for the ``shop`` database, so workshops and tests can watch the CDC sync.

:class:`ShopSimulator` commits one transaction per tick with inserts (new orders with
their lines, sign-ups), updates (order status transitions, customer e-mail and address
changes, product re-pricing) and deletes (cancelled orders with their lines, customers
who never ordered), paced to a target rate of row changes per second.

Run one simulator per database at a time. It loads the rows it may touch once, at start,
and keeps that model up to date itself, so its choices depend only on the seed and the
starting data (and on tick timing). Every statement re-checks its precondition in SQL, so
a row changed by someone else makes that change a no-op (not counted), never a wrong
write. New ids come from the tables' identity sequences, so other inserters never collide.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import psycopg

from lakehouse.reconnect import GIVE_UP_AFTER, PostgresLink, is_lost
from lakehouse.shop_planner import (
    _ID_BLOCK,
    _MAX_ORDER_LINES,
    _MAX_TRANSACTION_ROWS,
    _TRACKED_STATUSES,
    ShopPlanner,
    ShopState,
    TickPlan,
)
from sample_data import shop

_INSERT_CUSTOMERS = """
INSERT INTO public.customers (customer_id, first_name, last_name, email, country, city, segment)
SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
                     %s::text[])"""
_INSERT_ORDERS = """
INSERT INTO public.orders (order_id, customer_id, channel, item_count, total_amount)
SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::int[], %s::numeric[])"""
_INSERT_ITEMS = """
INSERT INTO public.order_items (order_item_id, order_id, line_number, product_id, quantity,
                                unit_price, discount, line_amount)
SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::int[], %s::bigint[], %s::int[],
                     %s::numeric[], %s::numeric[], %s::numeric[])"""
# Updates run one row per statement (pipelined by executemany) so two changes to one row in
# a tick apply in order; the WHERE clauses make a stale change a no-op, never a wrong write.
_ADVANCE_ORDER = "UPDATE public.orders SET status = %s WHERE order_id = %s AND status = %s"
_CHANGE_EMAIL = "UPDATE public.customers SET email = %s WHERE customer_id = %s AND email <> %s"
_MOVE_CUSTOMER = (
    "UPDATE public.customers SET country = %s, city = %s WHERE customer_id = %s AND country <> %s"
)
_REPRICE = "UPDATE public.products SET price = %s WHERE product_id = %s AND price <> %s"
# Lines are deleted explicitly (ON DELETE CASCADE would do it) so their rows are counted.
_DELETE_ITEMS = """
DELETE FROM public.order_items i USING public.orders o
WHERE i.order_id = o.order_id AND o.order_id = ANY(%s::bigint[]) AND o.status = 'cancelled'"""
_DELETE_ORDERS = (
    "DELETE FROM public.orders WHERE order_id = ANY(%s::bigint[]) AND status = 'cancelled'"
)
_DELETE_CUSTOMERS = """
DELETE FROM public.customers c WHERE c.customer_id = ANY(%s::bigint[])
AND NOT EXISTS (SELECT 1 FROM public.orders o WHERE o.customer_id = c.customer_id)"""
_NEXT_IDS = "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)"


def load_state(conn: psycopg.Connection[Any]) -> ShopState:
    """The current shop, as the simulator's model (ordered by id, for determinism)."""
    customers = conn.execute(
        "SELECT customer_id, first_name, last_name, email, country"
        " FROM public.customers ORDER BY customer_id"
    ).fetchall()
    orderless = conn.execute(
        "SELECT customer_id FROM public.customers c WHERE NOT EXISTS"
        " (SELECT 1 FROM public.orders o WHERE o.customer_id = c.customer_id) ORDER BY 1"
    ).fetchall()
    prices = conn.execute(
        "SELECT product_id, (price * 100)::bigint FROM public.products ORDER BY product_id"
    ).fetchall()
    orders = conn.execute(
        "SELECT order_id, status, item_count FROM public.orders"
        " WHERE status = ANY(%s) ORDER BY order_id",
        (list(_TRACKED_STATUSES),),
    ).fetchall()
    return ShopState.from_rows(customers, (row[0] for row in orderless), prices, orders)


def _reserve_ids(conn: psycopg.Connection[Any], state: ShopState, needed: int) -> None:
    """Keep at least ``needed`` identity values per table in hand (gaps on exit are normal)."""
    for table, queue in state.new_ids.items():
        if len(queue) < needed:
            count = max(needed, _ID_BLOCK)
            rows = conn.execute(_NEXT_IDS, (f"public.{table}", shop.SHOP_KEYS[table], count))
            queue.extend(row[0] for row in rows)


def _bulk(cursor: psycopg.Cursor[Any], statement: str, rows: Sequence[tuple[Any, ...]]) -> int:
    """One statement over ``unnest`` of the rows' columns; returns the rows it changed."""
    if not rows:
        return 0
    cursor.execute(statement, [list(column) for column in zip(*rows, strict=True)])
    return cursor.rowcount


def _each(cursor: psycopg.Cursor[Any], statement: str, rows: Sequence[tuple[Any, ...]]) -> int:
    if not rows:
        return 0
    cursor.executemany(statement, rows)
    return cursor.rowcount


def _execute(conn: psycopg.Connection[Any], plan: TickPlan) -> tuple[int, int, int]:
    """Commit the plan in one transaction; returns the rows inserted, updated and deleted."""
    with conn.transaction(), conn.cursor() as cursor:
        inserts = (
            _bulk(cursor, _INSERT_CUSTOMERS, plan.new_customers)
            + _bulk(cursor, _INSERT_ORDERS, plan.new_orders)
            + _bulk(cursor, _INSERT_ITEMS, plan.new_items)
        )
        updates = (
            _each(cursor, _ADVANCE_ORDER, plan.status_changes)
            + _each(cursor, _CHANGE_EMAIL, plan.email_changes)
            + _each(cursor, _MOVE_CUSTOMER, plan.address_changes)
            + _each(cursor, _REPRICE, plan.price_changes)
        )
        deletes = (
            _bulk(cursor, _DELETE_ITEMS, plan.deleted_orders)
            + _bulk(cursor, _DELETE_ORDERS, plan.deleted_orders)
            + _bulk(cursor, _DELETE_CUSTOMERS, plan.deleted_customers)
        )
    return inserts, updates, deletes


@dataclass(frozen=True)
class SimulationStats:
    """What a run committed. ``elapsed`` is wall-clock seconds; ``achieved_rate`` is
    ``changes / elapsed``, lower than asked for when the database could not keep up."""

    changes: int
    inserts: int
    updates: int
    deletes: int
    transactions: int
    elapsed: float
    achieved_rate: float
    gave_up: str | None = None


@dataclass
class _Tally:
    inserts: int = 0
    updates: int = 0
    deletes: int = 0
    transactions: int = 0

    @property
    def changes(self) -> int:
        return self.inserts + self.updates + self.deletes

    def add(self, inserts: int, updates: int, deletes: int) -> None:
        self.inserts += inserts
        self.updates += updates
        self.deletes += deletes
        self.transactions += 1

    def stats(self, elapsed: float, gave_up: str | None = None) -> SimulationStats:
        rate = self.changes / elapsed if elapsed > 0 else 0.0
        return SimulationStats(
            changes=self.changes, elapsed=elapsed, achieved_rate=rate, gave_up=gave_up,
            **asdict(self),
        )  # fmt: skip


class ShopSimulator:
    """Writes realistic shop traffic at ``rate`` row changes per second.

    Ticks are scheduled on absolute monotonic deadlines ``tick`` seconds apart, each
    committing the changes due by then (about ``rate * tick``), so pacing never drifts.
    A run that falls behind works off the backlog without sleeping, at most
    2,000 rows per transaction. The same ``seed`` and starting data give the same
    changes, apart from how timing splits them into transactions.

    When PostgreSQL goes away (a restart), the run reconnects with a growing delay for
    up to ``give_up_after`` seconds, reloads its model from the database and goes on at
    the same rate; a transaction cut off by the loss is not counted (it may or may not
    have committed). When it gives up, the stats say why (``gave_up``).
    """

    def __init__(
        self, dsn: str, rate: float, seed: int | None = None, tick: float = 0.05,
        give_up_after: float = GIVE_UP_AFTER,
    ):  # fmt: skip
        if not rate > 0:
            raise ValueError(f"rate must be positive, got {rate!r}")
        if not tick > 0:
            raise ValueError(f"tick must be positive, got {tick!r}")
        self.dsn = dsn
        self.rate = rate
        self.seed = seed
        self.tick = tick
        self.give_up_after = give_up_after

    def run(
        self,
        duration: float | None = None,
        max_changes: int | None = None,
        stop: threading.Event | None = None,
        notice: Callable[[str], None] | None = None,
    ) -> SimulationStats:
        """Simulate until ``duration`` seconds pass, ``max_changes`` rows changed (never
        exceeded) or ``stop`` is set, whichever comes first; without any, until ``stop``.

        ``notice`` hears about a lost and regained connection. Raises
        ServiceUnavailableError when PostgreSQL does not answer at the start.
        """
        stop = stop or threading.Event()
        link = PostgresLink(self.dsn, stop, notice or (lambda _: None), self.give_up_after)
        try:
            planner = ShopPlanner(load_state(link.conn), random.Random(self.seed))
            cap = max_changes if max_changes is not None else math.inf
            return self._pace(link, planner, duration, cap, stop)
        finally:
            link.close()

    @staticmethod
    def _resume(link: PostgresLink, planner: ShopPlanner, lost: Exception) -> ShopPlanner | None:
        """A planner over the reloaded shop once reconnected (same random stream); None
        when stopped or given up."""
        fresh: list[ShopPlanner] = []
        ready = lambda conn: fresh.append(ShopPlanner(load_state(conn), planner.rng))  # noqa: E731
        return fresh[-1] if link.reconnect(lost, ready) else None

    def _pace(
        self,
        link: PostgresLink,
        planner: ShopPlanner,
        duration: float | None,
        cap: float,
        stop: threading.Event,
    ) -> SimulationStats:
        tally = _Tally()
        start = time.monotonic()
        end = start + duration if duration is not None else math.inf
        while True:
            now = min(time.monotonic(), end)
            active = now - start - link.outage_seconds  # no backlog burst after an outage
            due = min(math.floor(self.rate * active), cap) - tally.changes
            room = int(min(_MAX_TRANSACTION_ROWS, cap - tally.changes))
            if due > 0 and room > 0:
                budget = int(min(due, room))
                try:
                    # A plan ends at most one new order (4 lines) past its budget.
                    _reserve_ids(link.conn, planner.state, budget + _MAX_ORDER_LINES)
                    plan = planner.plan(budget, room)
                    if plan.rows:
                        tally.add(*_execute(link.conn, plan))
                except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                    if not is_lost(link.conn, exc):
                        raise
                    resumed = self._resume(link, planner, exc)
                    if resumed is None:
                        break
                    planner = resumed
                    continue
            if stop.is_set() or now >= end or tally.changes >= cap:
                break
            if due <= room:  # caught up: wait for the next deadline
                elapsed = time.monotonic() - start
                deadline = start + (math.floor(elapsed / self.tick) + 1) * self.tick
                stop.wait(max(0.0, min(deadline, end) - time.monotonic()))
        return tally.stats(time.monotonic() - start, link.gave_up)


def simulate_shop(
    dsn: str, rate: float, duration: float, seed: int | None = None
) -> SimulationStats:
    """Run a :class:`ShopSimulator` for ``duration`` seconds at ``rate`` changes per second."""
    return ShopSimulator(dsn, rate, seed).run(duration=duration)
