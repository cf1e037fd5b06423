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
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from enum import StrEnum
from itertools import accumulate
from typing import Any

import psycopg

from lakehouse.reconnect import GIVE_UP_AFTER, PostgresLink, is_lost
from sample_data import shop


class ChangeKind(StrEnum):
    """One simulated operation; its method on ShopPlanner is named after the value."""

    NEW_ORDER = "new_order"
    ADVANCE_ORDER = "advance_order"
    UPDATE_CUSTOMER = "update_customer"
    REPRICE_PRODUCT = "reprice_product"
    NEW_CUSTOMER = "new_customer"
    DELETE_ORDER = "delete_order"
    DELETE_CUSTOMER = "delete_customer"


# Relative frequency of each operation (not of rows: a new order writes 2-5 rows).
# Gives roughly 50% inserts, 35-40% updates and 10-15% deletes among row changes.
CHANGE_MIX: dict[ChangeKind, float] = {
    ChangeKind.NEW_ORDER: 0.25,
    ChangeKind.ADVANCE_ORDER: 0.45,
    ChangeKind.UPDATE_CUSTOMER: 0.12,
    ChangeKind.REPRICE_PRODUCT: 0.06,
    ChangeKind.NEW_CUSTOMER: 0.04,
    ChangeKind.DELETE_ORDER: 0.05,
    ChangeKind.DELETE_CUSTOMER: 0.03,
}
# Which stage an ADVANCE_ORDER picks; returns stay rare although completed orders abound.
_STAGE_WEIGHTS = {"placed": 4.0, "paid": 3.0, "shipped": 3.0, "completed": 0.2}
_TRACKED_STATUSES = (*shop.ORDER_TRANSITIONS, "cancelled")
_ID_TABLES = ("customers", "orders", "order_items")
_MAX_ORDER_LINES = 4
_DRAW_ATTEMPTS = 8
_MAX_TRANSACTION_ROWS = 2_000
_ID_BLOCK = 256


class _Pool:
    """A set of ids with O(1) add, discard and uniform random choice (stable order)."""

    def __init__(self, ids: Iterable[int] = ()) -> None:
        self._ids: list[int] = []
        self._position: dict[int, int] = {}
        for item in ids:
            self.add(item)

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, item: int) -> None:
        if item not in self._position:
            self._position[item] = len(self._ids)
            self._ids.append(item)

    def discard(self, item: int) -> None:
        position = self._position.pop(item, None)
        if position is None:
            return
        last = self._ids.pop()
        if position < len(self._ids):
            self._ids[position] = last
            self._position[last] = position

    def choice(self, rng: random.Random) -> int:
        return self._ids[rng.randrange(len(self._ids))]


@dataclass
class _Customer:
    first_name: str
    last_name: str
    email: str
    country: str


@dataclass
class ShopState:
    """The simulator's model of the rows it may change; prices are in cents."""

    customers: dict[int, _Customer]
    customer_ids: _Pool
    orderless: _Pool
    prices: dict[int, int]
    product_ids: list[int]
    orders: dict[str, _Pool]  # status -> ids, for the statuses in _TRACKED_STATUSES
    item_counts: dict[int, int]  # order id -> lines, for every tracked order
    new_ids: dict[str, deque[int]] = field(
        default_factory=lambda: {table: deque() for table in _ID_TABLES}
    )

    @classmethod
    def from_rows(
        cls,
        customers: Iterable[tuple[int, str, str, str, str]],
        orderless: Iterable[int],
        prices: Iterable[tuple[int, int]],
        orders: Iterable[tuple[int, str, int]],
    ) -> ShopState:
        """From (id, first, last, email, country), ids, (id, cents), (id, status, lines)."""
        people = {row[0]: _Customer(*row[1:]) for row in customers}
        price_by_id = dict(prices)
        by_status = {status: _Pool() for status in _TRACKED_STATUSES}
        item_counts: dict[int, int] = {}
        for order_id, status, lines in orders:
            if status in by_status:
                by_status[status].add(order_id)
                item_counts[order_id] = lines
        customer_ids, product_ids = _Pool(people), list(price_by_id)
        pools = customer_ids, _Pool(orderless), price_by_id, product_ids, by_status, item_counts
        return cls(people, *pools)


class TickPlan:
    """One transaction's changes, as parameter rows in each statement's column order."""

    def __init__(self) -> None:
        self.kinds: list[ChangeKind] = []
        self.rows = 0
        self.new_customers: list[tuple[int, str, str, str, str, str, str]] = []
        self.new_orders: list[tuple[int, int, str, int, Decimal]] = []
        self.new_items: list[tuple[int, int, int, int, int, Decimal, Decimal, Decimal]] = []
        self.status_changes: list[tuple[str, int, str]] = []  # new, order id, old
        self.email_changes: list[tuple[str, int, str]] = []  # new, customer id, new
        self.address_changes: list[tuple[str, str, int, str]] = []
        self.price_changes: list[tuple[Decimal, int, Decimal]] = []
        self.deleted_orders: list[tuple[int]] = []
        self.deleted_customers: list[tuple[int]] = []


def _money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


class ShopPlanner:
    """Turns a row budget into a :class:`TickPlan`, updating the model as if it committed.

    Pure (no I/O): the same state and seed give the same plans for the same budgets.
    Rows created or moved in a tick become eligible again only in the next tick, so one
    transaction never inserts and then updates, or cancels and then deletes, the same row.
    """

    def __init__(self, state: ShopState, rng: random.Random) -> None:
        self.state = state
        self.rng = rng
        self._pending: list[tuple[_Pool, int]] = []
        self._kinds = list(CHANGE_MIX)
        self._cum_weights = list(accumulate(CHANGE_MIX.values()))
        # Each kind is planned by the method named after it, e.g. _new_order.
        self._handlers: dict[ChangeKind, Callable[[TickPlan, int], int]] = {
            kind: getattr(self, f"_{kind.value}") for kind in ChangeKind
        }

    def draw_kind(self) -> ChangeKind:
        return self.rng.choices(self._kinds, cum_weights=self._cum_weights)[0]

    def plan(self, budget: int, limit: int) -> TickPlan:
        """Changes of about ``budget`` rows, never more than ``limit`` (>= budget).

        One operation may overshoot ``budget`` (a new order writes up to five rows); the
        pacing loop absorbs that in later ticks. Returns fewer rows only when no operation
        fits (an empty shop with no reserved ids).
        """
        for pool, item in self._pending:
            pool.add(item)
        self._pending.clear()
        plan = TickPlan()
        while plan.rows < budget:
            kind, rows = self._one_change(plan, limit - plan.rows)
            if not rows:
                break
            plan.kinds.append(kind)
            plan.rows += rows
        return plan

    def _one_change(self, plan: TickPlan, room: int) -> tuple[ChangeKind, int]:
        """A drawn operation that fits in ``room`` rows, falling back to always-possible ones.

        Handlers return the rows they planned, or 0 without touching the model.
        """
        drawn = (self.draw_kind() for _ in range(_DRAW_ATTEMPTS))
        for kind in (*drawn, ChangeKind.UPDATE_CUSTOMER, ChangeKind.NEW_CUSTOMER):
            rows = self._handlers[kind](plan, room)
            if rows:
                return kind, rows
        return ChangeKind.NEW_CUSTOMER, 0

    def _new_order(self, plan: TickPlan, room: int) -> int:
        s, rng = self.state, self.rng
        lines = min(rng.randint(1, _MAX_ORDER_LINES), room - 1, len(s.product_ids))
        if lines < 1 or not s.customer_ids or not s.new_ids["orders"]:
            return 0
        if len(s.new_ids["order_items"]) < lines:
            return 0
        order_id, customer_id = s.new_ids["orders"].popleft(), s.customer_ids.choice(rng)
        total = 0
        for line, product_id in enumerate(rng.sample(s.product_ids, lines), start=1):
            item_id, price = s.new_ids["order_items"].popleft(), s.prices[product_id]
            quantity = rng.choices((1, 2, 3), (0.7, 0.2, 0.1))[0]
            discount = price * quantity * rng.choices((0, 10), (0.85, 0.15))[0] // 100
            amount = price * quantity - discount
            total += amount
            money = _money(price), _money(discount), _money(amount)
            plan.new_items.append((item_id, order_id, line, product_id, quantity, *money))
        channel = rng.choices(shop.CHANNELS, shop.CHANNEL_WEIGHTS)[0]
        plan.new_orders.append((order_id, customer_id, channel, lines, _money(total)))
        s.orderless.discard(customer_id)
        s.item_counts[order_id] = lines
        self._pending.append((s.orders["placed"], order_id))
        return 1 + lines

    def _advance_order(self, plan: TickPlan, room: int) -> int:
        s, rng = self.state, self.rng
        stages = [stage for stage in _STAGE_WEIGHTS if s.orders[stage]]
        if not stages:
            return 0
        stage = rng.choices(stages, [_STAGE_WEIGHTS[stage] for stage in stages])[0]
        order_id = s.orders[stage].choice(rng)
        status = rng.choices(*shop.ORDER_TRANSITIONS[stage])[0]
        s.orders[stage].discard(order_id)
        if status in s.orders:
            self._pending.append((s.orders[status], order_id))
        else:
            del s.item_counts[order_id]
        plan.status_changes.append((status, order_id, stage))
        return 1

    def _update_customer(self, plan: TickPlan, room: int) -> int:
        s, rng = self.state, self.rng
        if not s.customer_ids:
            return 0
        customer_id = s.customer_ids.choice(rng)
        customer = s.customers[customer_id]
        if rng.random() < 0.5:
            email = customer.email
            while email == customer.email:
                tag, domain = rng.randrange(100, 1000), rng.choice(shop.EMAIL_DOMAINS)
                local = f"{customer.first_name}.{customer.last_name}{customer_id}.{tag}"
                email = f"{local}@{domain}".lower()
            customer.email = email
            plan.email_changes.append((email, customer_id, email))
        else:
            country = rng.choice([code for code in shop.COUNTRY_CITIES if code != customer.country])
            customer.country = country
            city = rng.choice(shop.COUNTRY_CITIES[country])
            plan.address_changes.append((country, city, customer_id, country))
        return 1

    def _reprice_product(self, plan: TickPlan, room: int) -> int:
        s, rng = self.state, self.rng
        if not s.product_ids:
            return 0
        product_id = rng.choice(s.product_ids)
        old = s.prices[product_id]
        new = max(99, round(old * rng.uniform(0.85, 1.15) / 100) * 100 - 1)  # keep x.99 prices
        if new == old:
            new = old + 100
        s.prices[product_id] = new
        plan.price_changes.append((_money(new), product_id, _money(new)))
        return 1

    def _new_customer(self, plan: TickPlan, room: int) -> int:
        s, rng = self.state, self.rng
        if not s.new_ids["customers"]:
            return 0
        customer_id = s.new_ids["customers"].popleft()
        first, last = rng.choice(shop.FIRST_NAMES), rng.choice(shop.LAST_NAMES)
        email = f"{first}.{last}{customer_id}@{rng.choice(shop.EMAIL_DOMAINS)}".lower()
        country = rng.choice(list(shop.COUNTRY_CITIES))
        city, segment = (
            rng.choice(shop.COUNTRY_CITIES[country]),
            rng.choices(shop.SEGMENTS, shop.SEGMENT_WEIGHTS)[0],
        )
        plan.new_customers.append((customer_id, first, last, email, country, city, segment))
        s.customers[customer_id] = _Customer(first, last, email, country)
        self._pending += [(s.customer_ids, customer_id), (s.orderless, customer_id)]
        return 1

    def _delete_order(self, plan: TickPlan, room: int) -> int:
        s = self.state
        cancelled = s.orders["cancelled"]
        if not cancelled:
            return 0
        order_id = cancelled.choice(self.rng)
        rows = 1 + s.item_counts[order_id]
        if rows > room:
            return 0
        cancelled.discard(order_id)
        del s.item_counts[order_id]
        plan.deleted_orders.append((order_id,))
        return rows

    def _delete_customer(self, plan: TickPlan, room: int) -> int:
        s = self.state
        if not s.orderless:
            return 0
        customer_id = s.orderless.choice(self.rng)
        s.orderless.discard(customer_id)
        s.customer_ids.discard(customer_id)
        del s.customers[customer_id]
        plan.deleted_customers.append((customer_id,))
        return 1


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
