"""One lake, several engines: the same SQL text gives the same answer everywhere."""

from __future__ import annotations

import math
from decimal import Decimal

import pyarrow as pa
import pytest

from lakehouse import Lakehouse
from sample_data.queries import QUERIES, query_for

pytestmark = [pytest.mark.integration, pytest.mark.lakehouse_trino, pytest.mark.lakehouse_spark]
ENGINES = ("duckdb", "trino", "spark")


def normalised(result: pa.Table) -> list[tuple[object, ...]]:
    """Rows as tuples, order-normalised; numbers as floats for tolerant comparison."""
    rows = [
        tuple(float(v) if isinstance(v, Decimal | float) else v for v in row.values())
        for row in result.to_pylist()
    ]
    return sorted(rows, key=repr)


def same_rows(left: list[tuple[object, ...]], right: list[tuple[object, ...]]) -> bool:
    """Exact equality, except floating point compared with a relative tolerance of 1e-9."""
    if len(left) != len(right):
        return False
    for a_row, b_row in zip(left, right, strict=True):
        for a, b in zip(a_row, b_row, strict=True):
            if isinstance(a, float) and isinstance(b, float):
                if not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9):
                    return False
            elif a != b:
                return False
    return True


def test_the_suite_is_large_enough() -> None:
    assert len(QUERIES) >= 12


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_same_answer_on_every_engine(lake: Lakehouse, sample: dict[str, int], name: str) -> None:
    answers = {
        engine: normalised(lake.sql(query_for(name, engine), engine=engine)) for engine in ENGINES
    }
    reference = answers["duckdb"]
    assert reference, f"{name} returned no rows: the comparison would prove nothing"
    for engine, rows in answers.items():
        assert same_rows(rows, reference), (
            f"{name}: {engine} differs from duckdb: {rows[:3]} vs {reference[:3]}"
        )


def test_comparison_detects_a_difference() -> None:
    assert not same_rows([(1, 2.0)], [(1, 2.1)])
    assert not same_rows([(1, "a")], [(1, "b")])
    assert same_rows([(1, 0.1 + 0.2)], [(1, 0.3)])
