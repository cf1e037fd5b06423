"""The shop simulator's model and planner: which changes one tick makes (pure logic).

:class:`ShopPlanner` draws a :class:`TickPlan` (inserts, updates, deletes) from a
:class:`ShopState` and a seeded random generator; :mod:`lakehouse.simulate` runs
the plans against PostgreSQL.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from itertools import accumulate

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
