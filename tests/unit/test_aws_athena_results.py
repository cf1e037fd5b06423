"""Athena's rendering of values, CSV and result pages (lakehouse.aws.athena_results)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse.aws import athena_results as results

BIGINT = {"rawType": "bigint", "arguments": []}
VARCHAR = {"rawType": "varchar", "arguments": [{"kind": "LONG", "value": 2147483647}]}


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.0, "1.0"), (0.1, "0.1"), (1e20, "1.0E20"), (1.5e-5, "1.5E-5"), (1234567.0, "1234567.0"),
     (12345678.9, "1.23456789E7"), (0.001, "0.001"), (-2.5, "-2.5"), (0.0, "0.0"),
     (-0.0, "-0.0"), ("NaN", "NaN"), ("Infinity", "Infinity"), (100.0, "100.0")],
)  # fmt: skip
def test_doubles_are_written_as_java_writes_them(value: float | str, text: str) -> None:
    assert results.java_float(value) == text


def test_real_uses_the_shortest_single_precision_digits() -> None:
    assert results.java_float(0.10000000149011612, single=True) == "0.1"


def test_nested_values_render_as_athena_shows_them() -> None:
    row_type = {"rawType": "row", "arguments": [
        {"kind": "NAMED_TYPE", "value": {"fieldName": {"name": "x"}, "typeSignature": BIGINT}},
        {"kind": "NAMED_TYPE", "value": {"fieldName": {"name": "y"}, "typeSignature": VARCHAR}}]}  # fmt: skip
    array_type = {"rawType": "array", "arguments": [{"kind": "TYPE", "value": row_type}]}
    assert results.render([[1, "a"], [2, None]], array_type) == "[{x=1, y=a}, {x=2, y=null}]"
    map_type = {"rawType": "map", "arguments": [{"kind": "TYPE", "value": VARCHAR},
                                               {"kind": "TYPE", "value": BIGINT}]}  # fmt: skip
    assert results.render({"k": 1, "j": None}, map_type) == "{k=1, j=null}"
    assert results.render(None, BIGINT) is None
    assert results.render(True, {"rawType": "boolean"}) == "true"
    assert results.render("aGk=", {"rawType": "varbinary"}) == "68 69"
    assert results.render("12.50", {"rawType": "decimal"}) == "12.50"


def test_csv_quotes_every_value_and_leaves_null_empty() -> None:
    assert results.csv_line(["a", 'say "hi"', None, ""]) == '"a","say ""hi""",,""\n'


def test_column_info_carries_athena_type_names() -> None:
    decimal = {"name": "p", "type": "decimal(10,2)", "typeSignature": {"rawType": "decimal",
               "arguments": [{"kind": "LONG", "value": 10}, {"kind": "LONG", "value": 2}]}}  # fmt: skip
    info = results.column_info(decimal)
    assert (info["Type"], info["Precision"], info["Scale"]) == ("decimal", 10, 2)
    real = results.column_info({"name": "r", "type": "real", "typeSignature": {"rawType": "real"}})
    assert real["Type"] == "float"
    assert results.column_info({"name": "s", "type": "varchar", "typeSignature": VARCHAR})[
        "CaseSensitive"
    ]


def test_pages_cover_every_row_once(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    rows = [[str(i), None if i % 3 else ""] for i in range(2501)]
    assert results.write_rows(path, rows) == 2501
    seen, offset = [], 0
    while True:
        page, following = results.read_page(path, offset, 1000)
        seen.extend(page)
        if following is None:
            break
        offset = following
    assert seen == rows
    assert results.read_page(path, 0, 2501)[1] is None
    assert results.datum_rows([["1", None]]) == [{"Data": [{"VarCharValue": "1"}, {}]}]


@pytest.mark.parametrize("offset", [5, 7, -3, 10**12])
def test_an_offset_that_is_not_a_row_start_is_refused(tmp_path: Path, offset: int) -> None:
    """A NextToken forged or altered by a client: refused, never a broken row or a 500."""
    path = tmp_path / "rows.jsonl"
    results.write_rows(path, [[str(i), f"v{i}"] for i in range(50)])
    with pytest.raises(ValueError, match="offset"):
        results.read_page(path, offset, 3)
    first, following = results.read_page(path, 0, 3)
    assert following is not None and results.read_page(path, following, 1)[0] == [["3", "v3"]]
    assert first == [["0", "v0"], ["1", "v1"], ["2", "v2"]]
