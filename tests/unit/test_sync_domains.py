"""Domains map as their base types: the pure resolution and the decoder's hook."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lakehouse.sync.pgoutput import Column, PgOutputDecoder
from lakehouse.sync.pgtypes import (
    INT4,
    NUMERIC,
    TEXT,
    BadValue,
    Domain,
    arrow_type,
    converter,
    refused_reason,
    with_base_types,
)
from lakehouse.sync.typedocs import DOMAIN_CASES
from tests.unit.test_pgoutput import INSERT, decode

POSITIVE_INT, MONEY2, PRICE = 16390, 16391, 16392  # OIDs a database gave its domains
NUMERIC_12_2 = ((12 << 16) | 2) + 4


def test_a_domain_column_takes_its_base_type_and_typmod_and_others_stay() -> None:
    columns = (Column("id", INT4, -1, True), Column("qty", POSITIVE_INT, -1, False),
               Column("price", PRICE, -1, False), Column("note", TEXT, -1, False))  # fmt: skip
    # As the source resolves them: a domain over a domain already down to its base.
    domains = {POSITIVE_INT: Domain("positive_int", INT4, -1),
               MONEY2: Domain("money2", NUMERIC, NUMERIC_12_2),
               PRICE: Domain("price", NUMERIC, NUMERIC_12_2)}  # fmt: skip
    resolved = with_base_types(columns, domains)
    assert resolved == (columns[0], Column("qty", INT4, -1, False, domain="positive_int"),
                        Column("price", NUMERIC, NUMERIC_12_2, False, domain="price"),
                        columns[3])  # fmt: skip
    assert [str(arrow_type(c.type_oid, c.type_modifier)) for c in resolved[1:3]] == [
        "int32", "decimal128(12, 2)"]  # fmt: skip
    assert with_base_types(columns, {}) == columns


def test_the_decoder_resolves_column_types_once_per_relation_message() -> None:
    calls: list[tuple[Column, ...]] = []

    def as_base_types(columns: tuple[Column, ...]) -> tuple[Column, ...]:
        calls.append(columns)
        return tuple(replace(c, type_oid=INT4) if c.name == "note" else c for c in columns)

    (transaction,) = decode(*INSERT, decoder=PgOutputDecoder(column_types=as_base_types))
    assert len(calls) == 1 and len(transaction.changes) == 2  # one Relation, two inserts
    for change in transaction.changes:
        note = next(c for c in change.relation.columns if c.name == "note")
        assert note.type_oid == INT4
    (plain,) = decode(*INSERT)
    assert next(c for c in plain.changes[0].relation.columns if c.name == "note").type_oid == TEXT


def test_the_documented_domains_cover_the_base_types_the_issue_names() -> None:
    created = " ".join(case.created for case in DOMAIN_CASES)
    for base in ("AS integer", "AS numeric(12,2)", "AS date", "AS text[]", "AS money2"):
        assert base in created  # money2: a domain over a domain


def test_a_refused_value_of_a_domain_names_the_column_its_domain_and_its_base_type() -> None:
    (column,) = with_base_types([Column("paid", MONEY2, -1, False)],
                                {MONEY2: Domain("money2", NUMERIC, NUMERIC_12_2)})  # fmt: skip
    with pytest.raises(BadValue) as refused:
        converter(column.type_oid, column.type_modifier)("NaN")
    reason = refused_reason(column, str(refused.value))
    assert reason.startswith(
        "column paid (domain money2): cannot convert numeric(12,2) value 'NaN'"
    )
    assert refused_reason(Column("n", NUMERIC, -1, False), "x") == "column n: x"
