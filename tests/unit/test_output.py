"""Text formats of results: every type written, one text per value."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from decimal import Decimal

import pyarrow as pa

from lakehouse.engines import output
from lakehouse.engines.results import conform

ROW = pa.table({
    "l": pa.array([["a", None]]),
    "s": pa.array([{"a": 1, "b": None}]),
    "m": pa.array([[("k", 1)]], pa.map_(pa.string(), pa.int32())),
    "d": pa.array([Decimal("12345678901234567890.0123456789")], pa.decimal128(38, 10)),
    "ts": pa.array([datetime(2024, 1, 1, 0, 0, 0, 1)], pa.timestamp("us", "UTC")),
    "day": pa.array([date(1900, 1, 1)]),
    "b": pa.array([b"\x00\xff"]),
    "txt": ["Zürich ✓"],
    "flag": [True],
    "iv": pa.array([(1, 2, 3_500_000_000)], pa.month_day_nano_interval()),
    "nan": [float("nan")],
})  # fmt: skip


def test_csv_writes_every_type_nested_values_as_json() -> None:
    header, row = list(csv.reader(io.StringIO(output.to_csv(ROW))))
    values = dict(zip(header, row, strict=True))
    assert json.loads(values["l"]) == ["a", None]
    assert json.loads(values["s"]) == {"a": 1, "b": None}
    assert json.loads(values["m"]) == {"k": 1}
    assert values["d"] == "12345678901234567890.0123456789"
    assert values["ts"] == "2024-01-01 00:00:00.000001+00:00"
    assert values["day"] == "1900-01-01" and values["b"] == "AP8="
    assert values["txt"] == "Zürich ✓" and values["iv"] == "1 months 2 days 3.5 seconds"


def test_json_keeps_utf8_and_exact_decimal_numbers() -> None:
    text = output.to_json(ROW)
    assert "Zürich ✓" in text
    assert '"d": 12345678901234567890.0123456789' in text
    parsed = json.loads(text, parse_float=Decimal)[0]
    assert parsed["d"] == Decimal("12345678901234567890.0123456789")
    assert parsed["flag"] is True and parsed["nan"] == "NaN" and parsed["m"] == {"k": 1}


def test_table_cells_are_sql_literals() -> None:
    cells = dict(zip(ROW.column_names, output.table_rows(ROW)[0], strict=True))
    assert cells["l"] == "['a', NULL]" and cells["s"] == "{'a': 1, 'b': NULL}"
    assert cells["m"] == "MAP {'k': 1}" and cells["flag"] == "true"
    assert cells["b"] == "\\x00\\xff" and cells["txt"] == "Zürich ✓"


def test_the_same_instant_prints_the_same_from_every_engines_types() -> None:
    # DuckDB says Etc/UTC, Spark UTC, Trino is built as UTC: one text after conform.
    instant = datetime(2024, 1, 1, 12, 0)
    texts = {
        output.to_csv(conform(pa.table({"t": pa.array([instant], pa.timestamp("us", tz))})))
        for tz in ("UTC", "Etc/UTC")
    }
    assert texts == {'"t"\n"2024-01-01 12:00:00+00:00"\n'}


def test_conform_spells_lists_uuids_and_durations_one_way() -> None:
    spark_like = pa.table({
        "l": pa.array([["a"]], pa.list_(pa.field("element", pa.string()))),
        "iv": pa.array([1_000_000], pa.duration("us")),
        "big": pa.array(["x"], pa.large_string()),
    })  # fmt: skip
    conformed = conform(spark_like)
    assert str(conformed.schema.field("l").type) == "list<item: string>"
    assert conformed.schema.field("iv").type == pa.month_day_nano_interval()
    assert (
        conformed.column("iv")[0].as_py()
        == pa.scalar((0, 0, 1_000_000_000), pa.month_day_nano_interval()).as_py()
    )
    assert conformed.schema.field("big").type == pa.string()


def test_conform_makes_top_level_fields_nullable() -> None:
    spark_count = pa.table(
        {"n": pa.array([3], pa.int64())},
        schema=pa.schema([pa.field("n", pa.int64(), nullable=False)]),
    )
    assert conform(spark_count).schema.field("n").nullable


# Repeated column names (``SELECT o.id, c.id``): rows are built by position.
REPEATED = pa.Table.from_arrays(
    [pa.array([1]), pa.array([2]), pa.array(["x"]), pa.array([3])], names=["a", "a", "a_1", "a"]
)


def test_json_keeps_every_value_of_repeated_names() -> None:
    assert json.loads(output.to_json(REPEATED)) == [{"a": 1, "a_2": 2, "a_1": "x", "a_3": 3}]


def test_json_keys_rename_repeats_deterministically() -> None:
    assert output.json_keys(["a", "a"]) == ["a", "a_1"]
    assert output.json_keys(["id", "name", "id", "id"]) == ["id", "name", "id_1", "id_2"]
    assert output.json_keys(["x", "y"]) == ["x", "y"]


def test_table_and_csv_show_every_repeated_column() -> None:
    assert output.table_rows(REPEATED) == [["1", "2", "x", "3"]]
    assert list(csv.reader(io.StringIO(output.to_csv(REPEATED)))) == [
        ["a", "a", "a_1", "a"],
        ["1", "2", "x", "3"],
    ]


def test_a_join_of_two_same_named_keys_keeps_both() -> None:
    joined = pa.Table.from_arrays(
        [pa.array([196, None]), pa.array([196, 7])], names=["customer_id", "customer_id"]
    )
    assert output.table_rows(joined) == [["196", "196"], ["NULL", "7"]]
    assert json.loads(output.to_json(joined))[1] == {"customer_id": None, "customer_id_1": 7}


def _rendered(table: pa.Table) -> str:
    from rich.console import Console

    from lakehouse.cli.display import folding_table

    console = Console(width=200, record=True, file=io.StringIO())  # markup on, as by default
    console.print(folding_table(table.column_names, output.table_rows(table)))
    return console.export_text()


def test_table_output_prints_markup_as_text() -> None:
    text = _rendered(pa.table({"v": ["[red]x[/red]"], "w": ["[bold]"], "z": ["[/]"]}))
    assert "[red]x[/red]" in text and "[bold]" in text and "[/]" in text


def test_table_headers_and_emoji_codes_are_text_too() -> None:
    text = _rendered(pa.table({"[/b]": [":smile:"], "[link=x]h": ["\\[esc]"]}))
    assert "[/b]" in text and ":smile:" in text and "[link=x]h" in text and "\\[esc]" in text


def test_table_output_shows_both_repeated_columns() -> None:
    header = _rendered(REPEATED).splitlines()[1]
    assert header.split() == ["┃", "a", "┃", "a", "┃", "a_1", "┃", "a", "┃"]


def test_cli_consoles_never_read_markup() -> None:
    from lakehouse.cli.common import err, out

    for console in (out, err):
        with console.capture() as captured:
            console.print("[bold]t[/] [/] :smile:")
        assert captured.get().strip() == "[bold]t[/] [/] :smile:"


def test_a_script_result_is_one_json_object_with_columns_even_without_rows() -> None:
    two = pa.table([pa.array([1]), pa.array(["Zürich"])], names=["a", "a"])
    assert json.loads(output.to_json_result("SELECT 1 AS a, 'Zürich' AS a", two)) == {
        "statement": "SELECT 1 AS a, 'Zürich' AS a",
        "columns": ["a", "a_1"],
        "rows": [{"a": 1, "a_1": "Zürich"}],
    }
    empty = output.to_json_result(
        'SELECT "x" FROM t WHERE false', pa.table({"x": pa.array([], pa.int64())})
    )
    assert json.loads(empty) == {
        "statement": 'SELECT "x" FROM t WHERE false',
        "columns": ["x"],
        "rows": [],
    }
    both = "[" + ",".join(output.to_json_result(f"SELECT {n}", two) for n in (1, 2)) + "]"
    assert [r["statement"] for r in json.loads(both)] == ["SELECT 1", "SELECT 2"]
