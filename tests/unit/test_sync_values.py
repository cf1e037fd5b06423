"""No value silently changed: exact float32 reading and verify's canonical forms (pure logic)."""

from __future__ import annotations

from decimal import Decimal, localcontext
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from lakehouse.sync.pgtypes import FLOAT4, FLOAT8, NUMERIC, BadValue, convert, float32_text
from lakehouse.sync.typedocs import ANY_OTHER_TYPE, CASES, markdown_table
from lakehouse.sync.verify import compare, source_form, value_form

NUMERIC_38_9 = ((38 << 16) | 9) + 4


def test_a_real_is_read_as_its_nearest_float32_even_where_a_double_would_round_twice() -> None:
    lower = np.float32(1.0)
    upper = np.nextafter(lower, np.float32(2.0))
    with localcontext(prec=60):
        midpoint = (Decimal(float(lower)) + Decimal(float(upper))) / 2
        just_above = midpoint + Decimal("1e-30")  # nearest float32: upper
    text = str(just_above)
    assert np.float32(float(text)) == lower  # through a double: the midpoint, then ties-to-even
    assert convert(text, FLOAT4, -1) == float(upper)


def test_float32_text_is_the_shortest_text_postgres_prints() -> None:
    for text in ("1.1", "0.1", "3.4028235e+38", "1e-45", "-0"):
        value = convert(text, FLOAT4, -1)
        assert isinstance(value, float)
        assert Decimal(float32_text(value)) == Decimal(text)
    assert float32_text(float("-inf")) == "-Infinity"


def test_verify_sees_a_real_holding_1_1_as_equal_to_its_float32_only() -> None:
    source = source_form("1.1", FLOAT4, -1)
    stored = convert("1.1", FLOAT4, -1)
    assert value_form(stored, pa.float32()) == source
    # A double 1.1 that was never narrowed is another value (the old verify said equal).
    assert value_form(1.1, pa.float32()) != source


def test_verify_compares_decimals_exactly_with_the_source_text() -> None:
    kind = pa.decimal128(38, 9)
    assert value_form(Decimal("1.500000000"), kind) == source_form("1.5", NUMERIC, NUMERIC_38_9)
    # A value rounded on its way (as decimal(38,9) did to an unconstrained numeric) differs.
    rounded = value_form(Decimal("1.234567890"), kind)
    assert rounded != source_form("1.234567890123456789", NUMERIC, NUMERIC_38_9)
    # OpenSearch JSON: a number read back as a double is compared as written.
    assert value_form(2.5, kind) == source_form("2.50", NUMERIC, NUMERIC_38_9)
    assert value_form(1234567890.0123457, kind) != source_form(
        "1234567890.0123456789", NUMERIC, NUMERIC_38_9
    )


def test_verify_keeps_the_sign_of_minus_zero_and_names_nan() -> None:
    assert source_form("-0", FLOAT8, -1) == value_form(-0.0, pa.float64())
    assert source_form("-0", FLOAT8, -1) != value_form(0.0, pa.float64())
    assert source_form("NaN", FLOAT4, -1) == value_form(float("nan"), pa.float32())


def test_a_report_names_the_first_differing_keys_and_their_columns() -> None:
    source = {"1": ("1", "a", "x"), "2": ("2", "b", "y")}
    found = {"1": ("1", "a", "x"), "2": ("2", "B", "y")}
    report = compare("t", "ns.t", source, found, columns=["id", "name", "tag"])
    assert report.different == ["2"]
    assert report.differing_columns == {"2": ["name"]}


def test_the_type_table_in_the_docs_is_the_one_the_code_generates() -> None:
    page = (Path(__file__).parents[2] / "docs" / "zero-etl-types.md").read_text()
    assert markdown_table() in page, "run `python -m lakehouse.sync.typedocs` into the page"
    assert "docs/zero-etl-types.md" in (Path(__file__).parents[2] / "README.md").read_text()


def test_every_kept_value_of_the_table_converts_and_every_refused_one_is_refused() -> None:
    for case in CASES:
        if case.type_oid == ANY_OTHER_TYPE:
            continue
        for literal in case.kept:
            convert(literal.strip("'"), case.type_oid, case.type_modifier)
        for literal in case.refused:
            with pytest.raises(BadValue):
                convert(literal.strip("'"), case.type_oid, case.type_modifier)
