"""Ingest typing against the real lake: daily loads, explicit types, CSV/JSON options, names.

Every case of issue 10 section 1 is here, read back through DuckDB; failures go
through the CLI in a subprocess and must leave the table's snapshot unchanged.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from lakehouse import Lakehouse
from lakehouse.errors import IngestError
from tests.integration.conftest import run_cli

pytestmark = pytest.mark.integration


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


def rows(lake: Lakehouse, table: str, order: str = "id") -> list[dict[str, object]]:
    return lake.sql(f"SELECT * FROM {table} ORDER BY {order}").to_pylist()


def types(lake: Lakehouse, table: str) -> dict[str, str]:
    return {f.name: str(f.field_type) for f in lake.table(table).schema().fields}


def snapshot(lake: Lakehouse, table: str) -> int | None:
    current = lake.table(table).current_snapshot()
    return current.snapshot_id if current else None


def refused(*args: str) -> str:
    """The CLI's stderr for an ingest that must fail cleanly."""
    result = run_cli("ingest", *args, check=False)
    assert result.returncode == 1, result.stderr
    assert "Hint:" in result.stderr and "Traceback" not in result.stderr, result.stderr
    return result.stderr


def test_empty_columns_take_the_table_type(lake: Lakehouse, namespace: str, tmp_path: Path) -> None:
    table = f"{namespace}.daily"
    lake.ingest(write(tmp_path / "1.csv", "id,qty,note\n1,5,a\n"), table)
    lake.ingest(write(tmp_path / "2.csv", "id,qty,note\n2,,\n3,,\n"), table)
    (tmp_path / "3.jsonl").write_text('{"id": 4, "qty": null, "note": null}\n')
    lake.ingest(str(tmp_path / "3.jsonl"), table, mode="upsert", key=["id"])
    assert types(lake, table) == {"id": "long", "qty": "long", "note": "string"}
    assert [r["qty"] for r in rows(lake, table)] == [5, None, None, None]


def test_header_only_file_needs_types(lake: Lakehouse, namespace: str, tmp_path: Path) -> None:
    table = f"{namespace}.empty_export"
    header = write(tmp_path / "empty.csv", "id,name\n")
    message = refused(header, "--table", table)
    assert "no rows" in message and "--type id=TYPE" in message
    assert not lake.catalog.table_exists(table)
    run_cli("ingest", header, "--table", table, "--type", "id=long", "--type", "name=string")
    lake.ingest(write(tmp_path / "real.csv", "id,name\n1,ann\n"), table)
    assert types(lake, table) == {"id": "long", "name": "string"}
    assert rows(lake, table) == [{"id": 1, "name": "ann"}]


def test_narrower_input_is_cast_and_wider_is_promoted(
    lake: Lakehouse, namespace: str, tmp_path: Path
) -> None:
    table = f"{namespace}.amounts"
    lake.ingest(write(tmp_path / "1.csv", "id,amount,n\n1,4.5,1\n"), table, types={"n": "int"})
    lake.ingest(write(tmp_path / "2.csv", "id,amount,n\n2,45,3000000000\n"), table)
    assert types(lake, table) == {"id": "long", "amount": "double", "n": "long"}
    assert [(r["amount"], r["n"]) for r in rows(lake, table)] == [(4.5, 1), (45.0, 3000000000)]


def test_unsafe_changes_are_refused_naming_column_and_types(
    lake: Lakehouse, namespace: str, tmp_path: Path
) -> None:
    table = f"{namespace}.strict"
    lake.ingest(write(tmp_path / "1.csv", "id,qty,day\n1,5,2024-01-01\n"), table)
    before = snapshot(lake, table)
    cases = {
        "id,qty\n2,1.5\n": ("qty", "long", "1.5"),
        "id,qty\n2,many\n": ("qty", "long", "many"),
        "id,qty\n2,99999999999999999999\n": ("qty", "long", "99999999999999999999"),
        "id,day\n2,2024-01-01 10:30:00\n": ("day", "date", "10:30"),
    }
    for number, (content, (column, kind, value)) in enumerate(cases.items()):
        message = refused(write(tmp_path / f"bad{number}.csv", content), "--table", table)
        assert column in message and kind in message and value in message, message
    assert snapshot(lake, table) == before
    assert rows(lake, table) == [{"id": 1, "qty": 5, "day": dt.date(2024, 1, 1)}]


def test_money_dates_and_explicit_types(lake: Lakehouse, namespace: str, tmp_path: Path) -> None:
    table = f"{namespace}.money"
    source = write(
        tmp_path / "m.csv",
        'id,amount,price,day\n1,"1,234.50",1234.50,03/15/2024\n2,€99.90,2,12/01/2023\n',
    )
    schema = write(tmp_path / "schema.json", json.dumps({"price": "decimal(12,2)", "other": "int"}))
    run_cli("ingest", source, "--table", table, "--type", "amount=decimal(10,2)",
            "--schema", schema, "--date-format", "%m/%d/%Y")  # fmt: skip
    assert types(lake, table)["amount"] == "decimal(10, 2)"
    assert types(lake, table)["price"] == "decimal(12, 2)"
    assert rows(lake, table) == [
        {
            "id": 1,
            "amount": Decimal("1234.50"),
            "price": Decimal("1234.50"),
            "day": dt.date(2024, 3, 15),
        },
        {
            "id": 2,
            "amount": Decimal("99.90"),
            "price": Decimal("2.00"),
            "day": dt.date(2023, 12, 1),
        },
    ]
    # The next day's file needs no flags: the table's types parse it.
    lake.ingest(write(tmp_path / "n.csv", 'id,amount,price,day\n3,"$2,000",5,2024-02-29\n'), table)
    assert rows(lake, table)[-1]["amount"] == Decimal("2000.00")
    message = refused(write(tmp_path / "r.csv", "id,amount\n4,1.555\n"), "--table", table)
    assert "amount" in message and "decimal(10,2)" in message and "1.555" in message


def test_money_inferred_as_text_is_said_aloud(
    lake: Lakehouse, namespace: str, tmp_path: Path
) -> None:
    source = write(tmp_path / "m.csv", 'id,amount,day\n1,"1,234.50",03/15/2024\n')
    result = run_cli("ingest", source, "--table", f"{namespace}.text_money")
    assert "--type amount=decimal" in result.stderr and "--date-format" in result.stderr


def test_directory_conflict_names_both_files(
    lake: Lakehouse, namespace: str, tmp_path: Path
) -> None:
    folder = tmp_path / "parts"
    write(folder / "a.csv", "id,v\n1,2\n")
    write(folder / "b.csv", "id,v\n2,x\n")
    message = refused(str(folder), "--table", f"{namespace}.parts", "--format", "csv")
    assert "a.csv" in message and "b.csv" in message and "column v" in message
    assert "Unable to merge" not in message
    assert not lake.catalog.table_exists(f"{namespace}.parts")
    write(folder / "b.csv", "id,v\n2,2.5\n")
    write(folder / "c.csv", "id,v\n3,\n")
    write(folder / "_SUCCESS", "")
    lake.ingest(str(folder), f"{namespace}.parts", format="csv")
    assert [r["v"] for r in rows(lake, f"{namespace}.parts")] == [2.0, 2.5, None]


def test_case_colliding_columns_are_refused_and_case_is_matched(
    lake: Lakehouse, namespace: str, tmp_path: Path
) -> None:
    message = refused(
        write(tmp_path / "c.csv", "Code,code\n1,2\n"), "--table", f"{namespace}.codes"
    )
    assert "'Code' and 'code'" in message
    assert not lake.catalog.table_exists(f"{namespace}.codes")
    table = f"{namespace}.people"
    lake.ingest(write(tmp_path / "p1.csv", "id,Customer Name\n1,ann\n"), table)
    lake.ingest(write(tmp_path / "p2.csv", "ID,customer name\n2,bob\n"), table)
    assert types(lake, table) == {"id": "long", "Customer Name": "string"}
    assert [r["Customer Name"] for r in rows(lake, table)] == ["ann", "bob"]


def test_table_names_are_normalised_or_refused(
    lake: Lakehouse, namespace: str, tmp_path: Path
) -> None:
    source = write(tmp_path / "a.csv", "id\n1\n")
    result = run_cli("ingest", source, "--table", f"{namespace.upper()}.Customers_Upper")
    assert f"{namespace}.customers_upper" in result.stderr
    assert rows(lake, f"{namespace}.customers_upper") == [{"id": 1}]
    # The name as the user typed it finds the table again, as the engines resolve it.
    described = run_cli("describe", f"{namespace.upper()}.Customers_Upper", "--json")
    assert json.loads(described.stdout)["name"] == f"{namespace}.customers_upper"
    assert lake.history(f"{namespace.upper()}.Customers_Upper")
    message = refused(source, "--table", f"{namespace}.bad-name")
    assert f"--table {namespace}.bad_name" in message
    assert lake.tables(namespace) == [f"{namespace}.customers_upper"]


def test_json_array_single_object_and_nested(
    lake: Lakehouse, namespace: str, tmp_path: Path
) -> None:
    table = f"{namespace}.events"
    records = [{"id": 1, "at": "2024-01-01T10:00:00+02:00", "meta": {"src": "web"}},
               {"id": 2, "at": "2024-01-02T00:00:00Z", "meta": {"src": "app"}}]  # fmt: skip
    (tmp_path / "array.json").write_text(json.dumps(records, indent=2))
    lake.ingest(str(tmp_path / "array.json"), table)
    (tmp_path / "one.json").write_text(json.dumps({"id": 3, "meta": {"src": "api"}}, indent=2))
    lake.ingest(str(tmp_path / "one.json"), table)
    assert types(lake, table)["at"] == "timestamptz"
    got = lake.sql(f"SELECT id, meta.src AS src FROM {table} ORDER BY id").to_pylist()
    assert got == [{"id": 1, "src": "web"}, {"id": 2, "src": "app"}, {"id": 3, "src": "api"}]
    first = lake.table(table).scan().to_arrow().sort_by("id").column("at")[0].as_py()
    assert first == dt.datetime(2024, 1, 1, 8, tzinfo=dt.UTC)


def test_csv_delimiters_nulls_and_quotes(lake: Lakehouse, namespace: str, tmp_path: Path) -> None:
    table = f"{namespace}.semi"
    lake.ingest(write(tmp_path / "s.csv", "\ufeffid;amount;note\n1;2,5;NA\n2;3;\"\"\n"), table,
                nulls=["NA"])  # fmt: skip
    assert rows(lake, table) == [{"id": 1, "amount": "2,5", "note": None},
                                 {"id": 2, "amount": "3", "note": ""}]  # fmt: skip
    message = refused(write(tmp_path / "bad.csv", "a,b\n1,2,3\n"), "--table", f"{namespace}.bad")
    assert "--delimiter" in message
    tsv = write(tmp_path / "t.tsv", 'id\tname\n1\t"a\tb"\n2\t\n')
    lake.ingest(tsv, f"{namespace}.tsv")
    assert rows(lake, f"{namespace}.tsv") == [{"id": 1, "name": "a\tb"}, {"id": 2, "name": None}]


def test_contradictory_and_bad_options_change_nothing(
    lake: Lakehouse, namespace: str, tmp_path: Path
) -> None:
    table = f"{namespace}.opts"
    source = write(tmp_path / "a.csv", "id,name\n1,ann\n")
    lake.ingest(source, table)
    before = snapshot(lake, table)
    assert "--mode upsert" in refused(source, "--table", table, "--key", "id")
    assert "--mode upsert" in refused(
        source, "--table", table, "--mode", "overwrite", "--key", "id"
    )
    assert "nope" in refused(source, "--table", table, "--type", "nope=int")
    assert "Unknown type" in refused(source, "--table", table, "--type", "id=money")
    assert "one character" in refused(source, "--table", table, "--delimiter", ";;")
    assert snapshot(lake, table) == before
    with pytest.raises(IngestError, match="--mode upsert"):
        lake.ingest(source, table, key=["id"])


@pytest.mark.lakehouse_trino
def test_normalised_names_are_readable_on_trino(
    lake: Lakehouse, namespace: str, tmp_path: Path
) -> None:
    source = write(tmp_path / "a.csv", "id,Customer Name\n1,ann\n")
    lake.ingest(source, f"{namespace.upper()}.Customers_Upper")
    got = lake.sql(
        f'SELECT id, "customer name" AS n FROM {namespace}.customers_upper', engine="trino"
    )
    assert got.to_pylist() == [{"id": 1, "n": "ann"}]


# --- issue 10 §3: values the tester saw changed, now exact or refused -------------------


def test_big_integers_and_long_decimals_keep_every_digit(
    lake: Lakehouse, namespace: str, tmp_path: Path
) -> None:
    table = f"{namespace}.bigints"
    text = "id,big\n1,9223372036854775807\n2,9223372036854775808\n3,9007199254740993\n"
    lake.ingest(write(tmp_path / "b.csv", text), table)
    assert types(lake, table)["big"] == "decimal(38, 0)"
    assert [r["big"] for r in rows(lake, table)] == [
        Decimal(9223372036854775807),
        Decimal(9223372036854775808),
        Decimal(9007199254740993),
    ]
    dec = f"{namespace}.longdec"
    lake.ingest(write(tmp_path / "d.csv", "id,x\n1,12345678901234567890.12\n"), dec)
    assert [r["x"] for r in rows(lake, dec)] == [Decimal("12345678901234567890.12")]


def test_json_number_into_a_long_column_is_exact(
    lake: Lakehouse, namespace: str, tmp_path: Path
) -> None:
    table = f"{namespace}.jlong"
    lake.ingest(write(tmp_path / "a.csv", "id,big\n1,5\n"), table)
    lake.ingest(write(tmp_path / "j.json", '{"id":7,"big":9007199254740993.0}\n'), table)
    assert [r["big"] for r in rows(lake, table)] == [5, 9007199254740993]
    before = snapshot(lake, table)
    refused(write(tmp_path / "k.json", '{"id":8,"big":9007199254740993.5}\n'), "--table", table)
    assert snapshot(lake, table) == before


@pytest.mark.parametrize("value", ["1 2", "1,2,3,4", "12-3"])
def test_blank_or_bad_grouping_in_a_number_is_refused(
    lake: Lakehouse, namespace: str, tmp_path: Path, value: str
) -> None:
    table = f"{namespace}.blank"
    lake.ingest(write(tmp_path / "a.csv", "id,x\n1,5\n"), table)
    before = snapshot(lake, table)
    stderr = refused(write(tmp_path / "b.csv", f'id,x\n30,"{value}"\n'), "--table", table)
    assert "Column x" in stderr and repr(value) in stderr
    assert snapshot(lake, table) == before


def test_csv_whole_decimals_into_a_long_column_like_json(
    lake: Lakehouse, namespace: str, tmp_path: Path
) -> None:
    table = f"{namespace}.whole"
    lake.ingest(write(tmp_path / "a.csv", "id,x\n1,5\n"), table)
    lake.ingest(write(tmp_path / "b.csv", "id,x\n2,2.0\n3,1e3\n"), table)
    lake.ingest(write(tmp_path / "c.json", '{"id":4,"x":2.0}\n'), table)
    assert [r["x"] for r in rows(lake, table)] == [5, 2, 1000, 2]
    stderr = refused(write(tmp_path / "d.csv", "id,x\n5,2.0\n6,2.5\n"), "--table", table)
    assert "'2.5' is not a long" in stderr and "(value '2.5')" in stderr


def test_directory_mixing_formats_is_refused(
    lake: Lakehouse, namespace: str, tmp_path: Path
) -> None:
    write(tmp_path / "mix" / "a.csv", "id,x\n1,2\n")
    write(tmp_path / "mix" / "b.json", '{"id": 2, "x": 3}\n')
    stderr = refused(str(tmp_path / "mix"), "--table", f"{namespace}.mix", "--format", "csv")
    assert "a.csv" in stderr and "b.json" in stderr
    assert not lake.catalog.table_exists(f"{namespace}.mix")


def test_non_utf8_csv_is_refused_or_decoded(
    lake: Lakehouse, namespace: str, tmp_path: Path
) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"id,name\n1,caf\xe9\n2,ok\n")
    table = f"{namespace}.enc"
    stderr = refused(str(latin), "--table", table)
    assert "line 2" in stderr and "--encoding" in stderr
    assert not lake.catalog.table_exists(table)
    lake.ingest(write(tmp_path / "a.csv", "id,name\n0,x\n"), table)
    refused(str(latin), "--table", table)  # not the delimiter's fault
    run_cli("ingest", str(latin), "--table", table, "--encoding", "latin-1")
    assert types(lake, table)["name"] == "string"
    assert [r["name"] for r in rows(lake, table)] == ["x", "café", "ok"]


def test_every_level_of_nested_nulls_is_kept(lake: Lakehouse, namespace: str) -> None:
    import pyarrow as pa

    item = pa.struct([("k", pa.string())])
    data = pa.table({
        "id": [1, 2, 3],
        "ls": pa.array([[{"k": "a"}], None, []], pa.list_(item)),
        "li": pa.array([[1, None], None, []], pa.list_(pa.int64())),
        "st": pa.array([{"k": None}, None, {"k": "b"}], item),
        "mp": pa.array([[("a", {"k": "x"})], None, []], pa.map_(pa.string(), item)),
        "deep": pa.array([{"l": None}, {"l": [{"k": None}, None]}, None],
                         pa.struct([("l", pa.list_(item))])),
    })  # fmt: skip
    table = f"{namespace}.nested_nulls"
    lake.ingest(data, table)
    lake.ingest(data.slice(1), table)  # a slice: offsets that do not start at 0
    stored = lake.table(table).scan().to_arrow().sort_by("id")
    expected = pa.concat_tables([data, data.slice(1)]).sort_by("id")
    for name in ("ls", "li", "st", "deep"):
        assert stored.column(name).to_pylist() == expected.column(name).to_pylist(), name
    assert [m if m is None else dict(m) for m in stored.column("mp").to_pylist()] == [
        m if m is None else dict(m) for m in expected.column("mp").to_pylist()
    ]
    nulls = lake.sql(f"SELECT count(*) AS n FROM {table} WHERE ls IS NULL").to_pylist()
    assert nulls == [{"n": 2}]


def test_table_settings_pyiceberg_cannot_write_are_one_clear_error(
    lake: Lakehouse, namespace: str
) -> None:
    import pyarrow as pa
    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField

    table = f"{namespace}.lzo"
    lake.catalog.create_namespace_if_not_exists(namespace)
    lake.catalog.create_table(table, Schema(NestedField(1, "id", LongType())),
                              properties={"write.parquet.compression-codec": "lzo"})  # fmt: skip
    with pytest.raises(IngestError, match=r"Cannot append into .*LZO") as caught:
        lake.ingest(pa.table({"id": [1]}), table)
    assert "write.* properties" in str(caught.value.hint)
    assert snapshot(lake, table) is None


def test_days_partitioned_table_takes_appends_and_upserts(lake: Lakehouse, namespace: str) -> None:
    import pyarrow as pa
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.transforms import DayTransform
    from pyiceberg.types import DateType, LongType, NestedField

    table = f"{namespace}.by_day"
    lake.catalog.create_namespace_if_not_exists(namespace)
    schema = Schema(NestedField(1, "id", LongType()), NestedField(2, "d", DateType()))
    spec = PartitionSpec(PartitionField(2, 1000, DayTransform(), "d_day"))
    lake.catalog.create_table(table, schema, partition_spec=spec)
    lake.ingest(pa.table({"id": [1, 2], "d": [dt.date(2024, 1, 1), dt.date(2024, 1, 2)]}), table)
    lake.ingest(pa.table({"id": [2], "d": [dt.date(2024, 1, 5)]}), table, "upsert", ["ID"])
    assert rows(lake, table) == [
        {"id": 1, "d": dt.date(2024, 1, 1)},
        {"id": 2, "d": dt.date(2024, 1, 5)},
    ]
    lake.ingest(pa.table({"id": [3], "d": [dt.date(2024, 2, 1)]}), table, "overwrite")
    assert rows(lake, table) == [{"id": 3, "d": dt.date(2024, 2, 1)}]


# --- issue 10 §1 (F1b) ----------------------------------------------------------------------


def test_leading_zeros_and_plus_signs_are_kept_as_text(
    lake: Lakehouse, namespace: str, tmp_path: Path
) -> None:
    table = f"{namespace}.zips"
    source = write(tmp_path / "zips.csv", "id,zip,phone,code\n1,02134,+15551234567,007\n")
    result = run_cli("ingest", source, "--table", table)
    assert "--type zip=long" in result.stdout + result.stderr
    assert types(lake, table) == {"id": "long", "zip": "string", "phone": "string",
                                  "code": "string"}  # fmt: skip
    assert rows(lake, table) == [{"id": 1, "zip": "02134", "phone": "+15551234567",
                                  "code": "007"}]  # fmt: skip
    asked = f"{namespace}.zips_long"
    run_cli("ingest", source, "--table", asked, "--type", "zip=long")
    assert types(lake, asked)["zip"] == "long"
    assert rows(lake, asked)[0]["zip"] == 2134


def test_new_nested_fields_evolve_the_table(
    lake: Lakehouse, namespace: str, tmp_path: Path
) -> None:
    table = f"{namespace}.ev"
    first = {"id": 1, "meta": {"src": "a", "n": 1}, "items": [{"sku": "p"}]}
    lake.ingest(write(tmp_path / "1.jsonl", json.dumps(first) + "\n"), table)
    second = {"id": 5, "meta": {"src": "x", "n": 3, "new": True, "deep": {"k": 2}},
              "items": [{"sku": "q", "qty": 4}]}  # fmt: skip
    lake.ingest(write(tmp_path / "2.jsonl", json.dumps(second) + "\n"), table)
    got = rows(lake, table)
    assert got[1]["meta"] == {"src": "x", "n": 3, "new": True, "deep": {"k": 2}}
    assert got[1]["items"] == [{"sku": "q", "qty": 4}]
    assert got[0]["meta"] == {"src": "a", "n": 1, "new": None, "deep": None}
    before = snapshot(lake, table)
    case = {"id": 6, "meta": {"SRC": "y", "n": 1}, "items": []}
    stderr = refused(write(tmp_path / "3.jsonl", json.dumps(case) + "\n"), "--table", table)
    assert "meta.SRC" in stderr and snapshot(lake, table) == before


def test_empty_files_load_nothing_and_never_create(
    lake: Lakehouse, namespace: str, tmp_path: Path
) -> None:
    table = f"{namespace}.daily_empty"
    empty = write(tmp_path / "empty.csv", "")
    stderr = refused(empty, "--table", table)
    assert "empty" in stderr and "delimiter" not in stderr
    assert not lake.catalog.table_exists(table)
    lake.ingest(write(tmp_path / "1.csv", "id,v\n1,a\n"), table)
    before = snapshot(lake, table)
    for mode in ("append", "overwrite"):
        result = run_cli("ingest", empty, "--table", table, "--mode", mode)
        assert "was not changed" in result.stderr
    (tmp_path / "blank.jsonl").write_text("\n  \n")
    result = run_cli("ingest", str(tmp_path / "blank.jsonl"), "--table", table)
    assert snapshot(lake, table) == before and rows(lake, table) == [{"id": 1, "v": "a"}]
    folder = tmp_path / "day"
    write(folder / "a.csv", "id,v\n2,b\n")
    write(folder / "b.csv", "")
    result = run_cli("ingest", str(folder), "--table", table)
    assert "skipped 1 empty file" in result.stderr and "b.csv" in result.stderr
    assert [r["id"] for r in rows(lake, table)] == [1, 2]


def test_directory_format_comes_from_its_files(
    lake: Lakehouse, namespace: str, tmp_path: Path
) -> None:
    folder = tmp_path / "dir1"
    write(folder / "a.csv", "id,v\n1,a\n")
    write(folder / "sub" / "b.csv", "id,v\n2,b\n")
    run_cli("ingest", str(folder), "--table", f"{namespace}.dir1")
    assert [r["id"] for r in rows(lake, f"{namespace}.dir1")] == [1, 2]
    bucket = lake.settings.warehouse_bucket
    lake.s3.fput_object(bucket, f"landing/{namespace}/jl/x.jsonl", write(
        tmp_path / "x.jsonl", '{"id": 3, "v": "c"}\n'))  # fmt: skip
    run_cli("ingest", f"s3://{bucket}/landing/{namespace}/jl/", "--table", f"{namespace}.jl")
    assert rows(lake, f"{namespace}.jl") == [{"id": 3, "v": "c"}]


def test_type_flag_must_agree_with_the_table(
    lake: Lakehouse, namespace: str, tmp_path: Path
) -> None:
    table = f"{namespace}.orders_typed"
    lake.ingest(write(tmp_path / "1.csv", "order_id,amount,qty\n1,$12.00,5\n"), table,
                types={"qty": "int"})  # fmt: skip
    before = snapshot(lake, table)
    second = write(tmp_path / "2.csv", 'order_id,amount,qty\n2,"$13,000.00",6\n')
    stderr = refused(second, "--table", table, "--type", "amount=decimal(12,2)")
    assert "amount" in stderr and "string" in stderr and "decimal(12,2)" in stderr
    stderr = refused(second, "--table", table, "--type", "order_id=string")
    assert "order_id" in stderr and "long" in stderr
    assert snapshot(lake, table) == before
    run_cli("ingest", second, "--table", table, "--type", "qty=long")
    assert types(lake, table)["qty"] == "long"
    assert [r["qty"] for r in rows(lake, table, "order_id")] == [5, 6]


# --- issue 11 F6: no value changed silently ---------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "said"),
    [
        ("big.json", '{"id": 2, "x": 1e400}\n', "Column x"),
        ("tiny.csv", "id,x\n2,1e-400\n", "Column x"),
        ("twice.json", '{"id": 2, "x": 1.5, "x": 2.5}\n', "names the key 'x' twice"),
        ("open.csv", 'id,x\n2,1.5\n3,"4.5\n5,6.5\n', "opened on line 3"),
    ],
)
def test_values_ingest_would_change_are_refused_and_change_nothing(
    lake: Lakehouse, namespace: str, tmp_path: Path, name: str, text: str, said: str
) -> None:
    table = f"{namespace}.unchanged"
    if not lake.catalog.table_exists(table):
        lake.ingest(write(tmp_path / "a.csv", "id,x\n1,0.5\n"), table)
    before = snapshot(lake, table)
    stderr = refused(write(tmp_path / name, text), "--table", table)
    assert said in stderr and name in stderr
    assert snapshot(lake, table) == before


def test_exponent_numbers_a_double_would_round_are_exact(
    lake: Lakehouse, namespace: str, tmp_path: Path
) -> None:
    table = f"{namespace}.exponents"
    lake.ingest(write(tmp_path / "e.json", '{"id": 1, "x": 1.2345678901234567e5}\n'), table)
    assert [r["x"] for r in rows(lake, table)] == [Decimal("123456.78901234567")]
