"""The translation step: one DuckDB-dialect text, written for each engine."""

from __future__ import annotations

import duckdb
import pytest

from lakehouse.engines.translate import parse, referenced_tables, translate
from lakehouse.errors import QueryError


def test_double_quoted_identifiers_reach_spark_as_backticks() -> None:
    sql = translate('SELECT "Customer ID" FROM ns.t', "spark").sql
    assert "`Customer ID`" in sql and "'Customer ID'" not in sql


def test_trailing_semicolon_is_accepted() -> None:
    assert ";" not in translate("SELECT 1 AS one;", "trino").sql


def test_group_by_alias_is_expanded_for_trino() -> None:
    sql = translate("SELECT upper(y) AS k, count(*) AS n FROM ns.t GROUP BY k", "trino").sql
    assert "GROUP BY UPPER(y)" in sql


def test_group_by_a_name_that_is_also_a_column_stays_a_column() -> None:
    # DuckDB binds GROUP BY name to the table column first.
    sql = translate("SELECT upper(name) AS name FROM ns.t GROUP BY name", "trino").sql
    assert sql.endswith("GROUP BY name")


@pytest.mark.parametrize(
    "expression",
    ["count(*)", "1+1", "sum(x)", "count(DISTINCT y)", "x > 1", "upper(y)", "CAST(1 + 1 AS VARCHAR)",
     "extract(year FROM d)", "coalesce(y, 'b')", "max(d) OVER ()"],
)  # fmt: skip
def test_unnamed_projections_get_duckdbs_header(expression: str) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT 1 AS x, 'a' AS y, DATE '2024-01-01' AS d")
    expected = con.sql(f"SELECT {expression} FROM t").columns[0]
    for engine in ("trino", "spark"):
        sql = translate(f"SELECT {expression} FROM ns.t", engine).sql
        assert f'AS "{expected}"' in sql or f"AS `{expected}`" in sql, (engine, sql)


def test_column_references_keep_their_written_case() -> None:
    assert 'AS "CustomerID"' in translate('SELECT "CustomerID" FROM ns.t', "trino").sql


def test_map_literals_become_key_and_value_arrays() -> None:
    assert "MAP(ARRAY['k'], ARRAY[1])" in translate("SELECT MAP {'k': 1} AS m", "trino").sql
    assert (
        "MAP_FROM_ARRAYS(ARRAY('k'), ARRAY(1))"
        in translate("SELECT MAP {'k': 1} AS m", "spark").sql
    )


def test_nulls_order_is_made_explicit_where_spark_differs() -> None:
    assert "NULLS LAST" in translate("SELECT x FROM ns.t ORDER BY x", "spark").sql


def test_snapshots_are_pinned_in_each_dialect() -> None:
    pins = {"ns.t": 42}
    assert "AT (VERSION => 42)" in translate("SELECT * FROM ns.t", "duckdb", pins).sql
    assert "FOR VERSION AS OF 42" in translate("SELECT * FROM ns.t", "trino", pins).sql
    assert "VERSION AS OF 42" in translate("SELECT * FROM ns.t", "spark", pins).sql


def test_referenced_tables_ignore_ctes() -> None:
    tree = parse("WITH c AS (SELECT * FROM a.x) SELECT * FROM c JOIN b.y ON true")
    assert referenced_tables(tree) == ("a.x", "b.y")


def test_backticks_are_refused_with_a_hint_about_double_quotes() -> None:
    with pytest.raises(QueryError) as info:
        translate("SELECT `a` FROM ns.t", "spark")
    assert 'double quotes ("Customer ID")' in str(info.value)


def test_several_statements_are_refused() -> None:
    with pytest.raises(QueryError, match="expected one statement, got 2"):
        translate("SELECT 1; SELECT 2", "trino")


@pytest.mark.parametrize(
    "text", ["SELECT 1 AS a; -- c", "SELECT 1 AS a -- c\n;\n/* done */ ", "SELECT 1 AS a"]
)
def test_comments_after_the_last_semicolon_are_not_a_statement(text: str) -> None:
    for engine in ("trino", "spark"):
        assert translate(text, engine).sql.startswith("SELECT 1")


@pytest.mark.parametrize("text", ["", ";", "  \n", "-- only a comment", "; ;"])
def test_a_text_without_a_statement_is_refused(text: str) -> None:
    for engine in ("trino", "spark"):
        with pytest.raises(QueryError, match="no statement to run") as info:
            translate(text, engine)
        assert info.value.hint


def test_a_script_is_refused_with_a_hint_to_run_it_as_a_file() -> None:
    with pytest.raises(QueryError, match="got 3; nothing was run") as info:
        translate("SELECT 1 AS a; DROP TABLE ns.victim; SELECT 2 AS b", "spark")
    assert "query -f" in str(info.value.hint)


def test_a_statement_sqlglot_cannot_parse_is_refused_not_passed() -> None:
    with pytest.raises(QueryError, match="cannot be translated") as info:
        translate("CALL lake.system.rewrite_data_files('ns.t')", "spark")
    assert "native=True" in str(info.value)


def test_days_of_week_are_spelled_per_engine() -> None:
    sql = "SELECT isodow(d) AS a, dayofweek(d) AS b FROM ns.t"
    assert translate(sql, "spark").sql.startswith(
        "SELECT CAST(EXTRACT(DAYOFWEEK_ISO FROM d) AS BIGINT) AS a, CAST(DAYOFWEEK(d) - 1 AS BIGINT) AS b"
    )
    assert translate(sql, "trino").sql.startswith(
        "SELECT DAY_OF_WEEK(d) AS a, (DAY_OF_WEEK(d) % 7) AS b"
    )


MIXED = {
    "ns.t": {
        "Customer ID": "INTEGER",
        "Code": "VARCHAR",
        "amount": "DECIMAL(12,2)",
        "big": "BIGINT",
    }
}


def test_trino_star_is_spelled_with_the_tables_own_names() -> None:
    sql = translate("SELECT * EXCLUDE (big) FROM ns.t", "trino", schema=MIXED).sql
    assert sql.startswith(
        'SELECT "t"."Customer ID" AS "Customer ID", "t"."Code" AS "Code", "t"."amount" AS "amount" FROM'
    )
    # A star over a subquery is left alone (Trino keeps the subquery's aliases).
    assert translate("SELECT * FROM (SELECT 1 AS x) s", "trino", schema=MIXED).sql.startswith(
        "SELECT * FROM"
    )


def test_avg_of_a_decimal_is_a_double_sum_over_count_with_its_window() -> None:
    sql = translate(
        'SELECT avg(amount) OVER (PARTITION BY "Code") FROM ns.t', "trino", schema=MIXED
    ).sql
    assert (
        'CAST(SUM(amount) OVER (PARTITION BY "Code") AS DOUBLE) / COUNT(amount) OVER (PARTITION BY "Code")'
        in sql
    )


def test_sum_of_integers_is_a_wide_decimal_and_integer_division_is_exact() -> None:
    sql = translate("SELECT sum(big), big // 2, big % 0 FROM ns.t", "trino", schema=MIXED).sql
    assert "SUM(CAST(big AS DECIMAL(38, 0)))" in sql
    assert "CAST((big / NULLIF(2, 0)) AS BIGINT)" in sql and "DOUBLE" not in sql
    assert "big % NULLIF(0, 0)" in sql


def test_integer_division_of_an_unknown_type_is_refused() -> None:
    with pytest.raises(QueryError, match="known to be integer"):
        translate("SELECT x // 2 FROM (SELECT big AS x FROM ns.t) s", "spark", schema=MIXED)


def test_spark_collects_lists_with_their_nulls_in_order() -> None:
    sql = translate("SELECT list(x ORDER BY x DESC) AS l FROM ns.t", "spark").sql
    assert "COLLECT_LIST(NAMED_STRUCT('n0', NOT x IS NULL, 'k0', x, 'v', x))" in sql
    assert "SORT_ARRAY(" in sql and ", FALSE)" in sql and "SIZE(" in sql
    distinct = translate("SELECT array_agg(DISTINCT g) AS l FROM ns.t", "spark").sql
    assert "ARRAY_DISTINCT(TRANSFORM(COLLECT_LIST(NAMED_STRUCT('v', g))" in distinct
    assert (
        "ARRAY_AGG(x ORDER BY x)"
        in translate("SELECT list(x ORDER BY x) AS l FROM ns.t", "trino").sql
    )


def test_spark_list_ordered_in_mixed_directions_is_refused() -> None:
    with pytest.raises(QueryError, match="different directions") as info:
        translate("SELECT list(x ORDER BY g, x DESC) AS l FROM ns.t", "spark")
    assert "native" in str(info.value.hint)


def test_casts_to_integers_round_like_duckdb() -> None:
    schema = {"ns.t": {"f": "DOUBLE", "m": "DECIMAL(12, 2)", "i": "INTEGER"}}
    sql = "SELECT CAST(m AS INTEGER) AS a, TRY_CAST(f AS BIGINT) AS b, i::INT AS c, CAST(1.5 AS INT) AS d FROM ns.t"
    spark = translate(sql, "spark", schema=schema).sql
    assert "CAST(ROUND(m) AS INT)" in spark and "TRY_CAST(BROUND(f) AS BIGINT)" in spark
    assert "CAST(i AS INT)" in spark and "CAST(ROUND(1.5) AS INT)" in spark
    trino = translate(sql, "trino", schema=schema).sql
    assert "CAST(m AS INTEGER)" in trino and "2 * ROUND(" in trino  # doubles: half to even


def test_a_cast_to_integer_of_an_unknown_type_is_refused() -> None:
    with pytest.raises(QueryError, match="type is not known") as info:
        translate("SELECT CAST(y AS INT) AS i FROM (SELECT 1.5 AS y) s", "spark")
    assert "CAST(CAST(x AS DOUBLE) AS INTEGER)" in str(info.value.hint)


def test_names_beyond_plain_ascii_are_quoted_for_trino_and_spark() -> None:
    text = "SELECT ünï, t.straße, größe + 1 AS g FROM ns.cols AS t WHERE größe > 1"
    assert (
        't."straße"' in translate(text, "trino").sql
        and '"größe" > 1' in translate(text, "trino").sql
    )
    spark = translate(text, "spark").sql
    assert spark.startswith("SELECT `ünï` AS `ünï`, t.`straße`") and "`größe` > 1" in spark
    assert "SELECT plain_1 AS" in translate("SELECT plain_1 FROM ns.t", "spark").sql


# --- Only functions known to be faithful reach Trino and Spark (lakehouse.engines.functions) ---

REFUSED_ON_BOTH = [
    "SELECT reverse('ab')",
    "SELECT list_distinct([1, 1, NULL])",
    "SELECT ln(0)",
    "SELECT dayname(DATE '2024-01-01')",
    "SELECT monthname(DATE '2024-01-01')",
    "SELECT strftime(DATE '2024-01-05', '%j')",
    "SELECT strptime('2024', '%Y')",
    "SELECT median(1)",
    "SELECT quantile_cont(1, 0.5)",
    "SELECT make_date(2024, 1, 2)",
    "SELECT regexp_replace('aaa', 'a', 'b')",
    "SELECT regexp_replace('aaa', '(a)', '\\1', 'g')",
    "SELECT date_diff('week', DATE '2024-01-01', DATE '2024-02-01')",
    "SELECT some_function_nobody_checked(1)",
    "SELECT a.* FROM ns.a a JOIN ns.b b USING (k)",
    "SELECT * FROM ns.a NATURAL JOIN ns.b",
]


@pytest.mark.parametrize("engine", ["trino", "spark"])
@pytest.mark.parametrize("sql", REFUSED_ON_BOTH)
def test_an_unverified_function_is_refused_with_a_hint(sql: str, engine: str) -> None:
    with pytest.raises(QueryError) as caught:
        translate(sql, engine)
    assert engine in caught.value.reason
    assert caught.value.hint


@pytest.mark.parametrize("sql", REFUSED_ON_BOTH)
def test_duckdb_is_never_restricted(sql: str) -> None:
    assert translate(sql, "duckdb").sql == sql


def test_the_refusal_names_the_function_and_the_engine() -> None:
    with pytest.raises(QueryError) as caught:
        translate("SELECT 1 + ln(2) AS x", "trino")
    assert "'ln' cannot be translated for trino" in caught.value.reason
    assert "--native" in (caught.value.hint or "")


@pytest.mark.parametrize("engine", ["trino", "spark"])
def test_faithful_functions_pass_through(engine: str) -> None:
    sql = "SELECT lower(a), coalesce(b, 1), abs(c), count(DISTINCT d), date_trunc('month', e) FROM ns.t"
    written = translate(sql, engine).sql.upper()
    for name in ("LOWER(", "COALESCE(", "ABS(", "COUNT(DISTINCT", "DATE_TRUNC("):
        assert name in written


def test_greatest_and_least_skip_nulls_on_trino() -> None:
    written = translate("SELECT greatest(a, NULL, 3) AS g FROM ns.t", "trino").sql
    assert written == 'SELECT GREATEST(COALESCE(a, NULL, 3), COALESCE(NULL, a, 3), COALESCE(3, a, NULL)) AS g FROM ns.t'  # fmt: skip
    assert "GREATEST(a, NULL, 3)" in translate("SELECT greatest(a, NULL, 3) AS g FROM ns.t", "spark").sql  # fmt: skip


def test_count_star_is_count_of_star_with_duckdbs_header() -> None:
    assert translate("SELECT count_star()", "trino").sql == 'SELECT COUNT(*) AS "count_star()"'


def test_regexp_replace_with_g_replaces_every_match() -> None:
    for engine in ("trino", "spark"):
        written = translate("SELECT regexp_replace(s, 'a', 'b', 'g') AS r FROM ns.t", engine).sql
        assert "REGEXP_REPLACE(s, 'a', 'b')" in written


def test_date_diff_counts_boundaries_on_spark() -> None:
    written = translate("SELECT date_diff('month', a, b) AS d FROM ns.t", "spark").sql
    assert "DATE_TRUNC('MONTH', a)" in written and "DATE_TRUNC('MONTH', b)" in written


def test_group_by_all_is_spelled_out_for_trino() -> None:
    written = translate("SELECT a, b + 1 AS c, sum(d) AS s FROM ns.t GROUP BY ALL", "trino").sql
    assert written.endswith("GROUP BY a, b + 1")


@pytest.mark.parametrize("engine", ["trino", "spark"])
def test_order_by_all_becomes_positions_with_its_direction(engine: str) -> None:
    written = translate("SELECT a, b AS c FROM ns.t ORDER BY ALL DESC NULLS FIRST", engine).sql
    assert written.endswith("ORDER BY 1 DESC NULLS FIRST, 2 DESC NULLS FIRST")
    with pytest.raises(QueryError, match="ORDER BY ALL over a"):
        translate("SELECT * FROM ns.t ORDER BY ALL", engine)


# --- A value becomes text only where its type is written alike everywhere ---

TEXT_SCHEMA = {
    "ns.p": {"i": "INTEGER", "b": "BIGINT", "m": "DECIMAL(12, 2)", "s": "VARCHAR", "d": "DATE",
             "o": "BOOLEAN", "f": "DOUBLE", "r": "FLOAT", "ts": "TIMESTAMP", "tz": "TIMESTAMPTZ"},
}  # fmt: skip


@pytest.mark.parametrize(
    "expression",
    ["CAST(i AS VARCHAR)", "b::TEXT", "CAST(m AS VARCHAR)", "CAST(s AS VARCHAR)", "d::VARCHAR",
     "CAST(o AS VARCHAR)", "CAST(CAST(f AS DECIMAL(18, 3)) AS VARCHAR)", "CAST(length(s) + 1 AS VARCHAR)",
     "i || 'x'", "concat(s, d, m)", "upper(s) || s", "CAST(1.50 AS VARCHAR)", "CAST(NULL AS VARCHAR)",
     "CAST(ts AS DATE)", "CAST(f AS DOUBLE)"],
)  # fmt: skip
@pytest.mark.parametrize("engine", ["trino", "spark"])
def test_text_of_a_type_written_alike_is_translated(expression: str, engine: str) -> None:
    translate(f"SELECT {expression} AS x FROM ns.p", engine, schema=TEXT_SCHEMA)


@pytest.mark.parametrize(
    "expression",
    ["CAST(f AS VARCHAR)", "TRY_CAST(r AS VARCHAR)", "CAST(ts AS VARCHAR)", "tz::TEXT",
     "f || 'x'", "concat(s, ts)", "CAST(1e3 AS VARCHAR)", "CAST(f + 1 AS VARCHAR)",
     "CAST(avg(i) AS VARCHAR)", "CAST(q AS VARCHAR)"],
)  # fmt: skip
@pytest.mark.parametrize("engine", ["trino", "spark"])
def test_text_of_a_float_timestamp_or_unknown_is_refused(expression: str, engine: str) -> None:
    # Before: Trino wrote 1.5 as '1.5E0', NaN as 'NaN', timestamps padded with '.000000'.
    with pytest.raises(QueryError, match="becomes text") as caught:
        translate(f"SELECT {expression} AS x FROM ns.p", engine, schema=TEXT_SCHEMA)
    assert "DECIMAL" in (caught.value.hint or "")
    assert translate(f"SELECT {expression} AS x FROM ns.p", "duckdb", schema=TEXT_SCHEMA)


@pytest.mark.parametrize(
    ("expression", "allowed"),
    [("substring(s, 1, 2)", True), ("substring(s, 3)", True), ("substring(s, 2, 0)", True),
     ("substring(s, 0, 2)", False), ("substring(s, -2, 2)", False), ("substring(s, 2, -1)", False),
     ("substring(s, i, 2)", False), ("left(s, 2)", True), ("right(s, 0)", True),
     ("left(s, -2)", False), ("right(s, i)", False)],
)  # fmt: skip
@pytest.mark.parametrize("engine", ["trino", "spark"])
def test_substring_positions_must_count_alike(expression: str, allowed: bool, engine: str) -> None:
    # Before: substring('hello', 0, 2) was 'h' on DuckDB, '' on Trino, 'he' on Spark.
    sql = f"SELECT {expression} AS x FROM ns.p"
    if allowed:
        translate(sql, engine, schema=TEXT_SCHEMA)
    else:
        with pytest.raises(QueryError, match="cannot be translated"):
            translate(sql, engine, schema=TEXT_SCHEMA)


def test_strftime_reads_a_literal_percent_as_one_directive() -> None:
    # '%%' is refused (Spark wrote '%%'), and '%%j' is read as '%%' then 'j', not '%j'.
    for fmt in ("%Y %% %d", "%%%j"):
        with pytest.raises(QueryError, match=r"'strftime' cannot be translated.*directives %%"):
            translate(f"SELECT strftime(ts, '{fmt}') AS t FROM ns.t", "spark")
    translate("SELECT strftime(ts, '%Y-%m-%d %H:%M:%S') AS t FROM ns.t", "trino")
