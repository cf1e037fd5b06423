"""Chart choice from column types (lakehouse.console.chart_choice): pure logic."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from lakehouse.console.chart_choice import MAX_BARS, MAX_POINTS, MAX_SERIES, choose_chart


def test_text_and_number_is_a_bar():
    result = pa.table({"status": ["paid", "shipped"], "orders": [3, 5]})
    choice = choose_chart(result)
    assert (choice.kind, choice.x, choice.y) == ("bar", "status", ("orders",))
    assert not choice.capped and choice.rows_drawn == 2


@pytest.mark.parametrize(
    "values, t",
    [
        ([dt.date(2024, 1, 1), dt.date(2024, 2, 1)], pa.date32()),
        ([dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2)], pa.timestamp("us")),
        ([dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2)], pa.timestamp("us", tz="UTC")),
        ([dt.time(1), dt.time(2)], pa.time64("us")),
    ],
)
def test_temporal_and_number_is_a_line(values, t):
    result = pa.table({"month": pa.array(values, t), "revenue": [1.5, 2.5]})
    choice = choose_chart(result)
    assert (choice.kind, choice.x, choice.y) == ("line", "month", ("revenue",))


def test_time_wins_over_a_category_and_every_number_is_a_series():
    result = pa.table(
        {"day": [dt.date(2024, 1, 1)] * 2, "region": ["a", "b"], "n": [1, 2], "v": [0.1, 0.2]}
    )
    assert (choose_chart(result).kind, choose_chart(result).y) == ("line", ("n", "v"))


def test_two_numbers_are_a_scatter():
    result = pa.table({"price": [1.0, 2.0, 3.0], "quantity": [3, 2, 1]})
    choice = choose_chart(result)
    assert (choice.kind, choice.x, choice.y) == ("scatter", "price", ("quantity",))


def test_decimals_are_numbers():
    prices = pa.array([Decimal("1.10"), Decimal("2.20")], pa.decimal128(12, 2))
    result = pa.table({"category": ["x", "y"], "price": prices})
    assert choose_chart(result).y == ("price",)


def test_integer_keys_are_categories_not_numbers():
    result = pa.table({"customer_id": [7, 8], "revenue": [10.0, 20.0]})
    choice = choose_chart(result)
    assert (choice.kind, choice.x, choice.y) == ("bar", "customer_id", ("revenue",))


def test_booleans_are_categories():
    result = pa.table({"returning": [True, False], "customers": [4, 6]})
    assert (choose_chart(result).kind, choose_chart(result).x) == ("bar", "returning")


@pytest.mark.parametrize(
    "result, reason",
    [
        (pa.table({"n": pa.array([], pa.int64())}), "no rows"),
        (pa.table({"count_star()": [42]}), "single value"),
        (pa.table({"name": ["a", "b"], "city": ["x", "y"]}), "No numeric column"),
        (pa.table({"amount": [1.0, 2.0, 3.0]}), "Only one numeric column (amount)"),
    ],
)
def test_nothing_to_draw_says_why(result, reason):
    choice = choose_chart(result)
    assert choice.kind == "none" and reason in choice.reason and choice.x is None


def test_all_null_columns_are_passed_over():
    result = pa.table(
        {
            "nothing": pa.array([None, None], pa.null()),
            "empty_label": pa.array([None, None], pa.string()),
            "empty_number": pa.array([None, None], pa.float64()),
            "label": ["a", "b"],
            "n": [1, None],
        }
    )
    choice = choose_chart(result)
    assert (choice.kind, choice.x, choice.y) == ("bar", "label", ("n",))


def test_a_result_of_only_nulls_has_no_chart():
    result = pa.table({"a": pa.array([None], pa.int64()), "b": pa.array([None], pa.string())})
    assert choose_chart(result).kind == "none"


def test_series_are_capped():
    columns = {"label": ["a"]} | {f"v{i}": [i] for i in range(MAX_SERIES + 3)}
    assert len(choose_chart(pa.table(columns)).y) == MAX_SERIES


def test_many_bars_are_capped_and_say_so():
    rows = MAX_BARS * 4
    result = pa.table({"product": [f"p{i}" for i in range(rows)], "sold": list(range(rows))})
    choice = choose_chart(result)
    assert choice.capped and choice.rows_drawn == MAX_BARS and choice.rows == rows
    assert f"the first {MAX_BARS:,} of {rows:,} rows" in choice.reason


def test_big_line_results_are_capped():
    rows = MAX_POINTS + 1
    base = dt.datetime(2024, 1, 1)
    result = pa.table(
        {"at": [base + dt.timedelta(seconds=i) for i in range(rows)], "v": [1.0] * rows}
    )
    choice = choose_chart(result)
    assert (choice.kind, choice.rows_drawn, choice.capped) == ("line", MAX_POINTS, True)


def test_nested_and_binary_columns_are_not_drawn():
    result = pa.table({"tags": [["a"], ["b"]], "blob": [b"x", b"y"], "n": [1, 2], "m": [3.0, 4.0]})
    choice = choose_chart(result)
    assert (choice.kind, choice.x, choice.y) == ("scatter", "n", ("m",))
