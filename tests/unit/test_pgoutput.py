"""The pgoutput decoder, against message bytes captured from a real PostgreSQL 18.

Captured with pg_logical_slot_peek_binary_changes(slot, NULL, NULL,
'proto_version', '1', 'publication_names', pub) in a session with TimeZone=UTC,
from these tables:

    create type mood as enum ('sad', 'happy');
    create table items (id int primary key, name text, amount numeric(10,2),
                        note text, created timestamptz);    -- note: storage external
    create table full_items (id bigint, label varchar(20), feeling mood);
    alter table full_items replica identity full;

Each list is one transaction, in the order they were peeked; the comment above it
gives the xid and the `lsn` column the peek returned for each message.
"""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, datetime

import pytest

from lakehouse.sync.pgoutput import (
    UNCHANGED,
    Change,
    Column,
    PgOutputDecoder,
    PgOutputError,
    Relation,
    Transaction,
    format_lsn,
    parse_lsn,
)

# xid 809; peek lsn column: B@0/CEC7B88, R@0/CEC7B88, I@0/CEC7B88, I@0/CEC87C0, C@0/CEC8890
INSERT = [
    bytes.fromhex("42000000000cec88600003044299986b2100000329"),
    bytes.fromhex(
        "52000041197075626c6963006974656d73006400050169640000000017ffffffff006e616d6500000000"
        "19ffffffff00616d6f756e7400000006a4000a0006006e6f74650000000019ffffffff00637265617465"
        "6400000004a0ffffffff"
    ),
    bytes.fromhex(
        "49000041194e000574000000013174000000036f6e65740000000531322e35306e740000001d32303236"
        "2d31312d32372031353a33323a35352e3237383233312b3030"
    ),
    # Its 2500-byte note is stored out of line (TOAST), which later updates leave alone.
    bytes.fromhex("49000041194e00057400000001326e74000000052d332e313074000009c4")
    + b"x" * 2500
    + bytes.fromhex("7400000016323032352d31322d33312031383a33303a30302b3030"),
    bytes.fromhex("4300000000000cec8860000000000cec88900003044299986b21"),
]
# xid 810; peek lsn column: B@0/CEC88C8, U@0/CEC88C8, C@0/CEC8970
UPDATE_TOAST = [
    bytes.fromhex("42000000000cec89400003044299986e8f0000032a"),
    bytes.fromhex(
        "55000041194e0005740000000132740000000374776f74000000052d332e313075740000001632303235"
        "2d31322d33312031383a33303a30302b3030"
    ),
    bytes.fromhex("4300000000000cec8940000000000cec89700003044299986e8f"),
]
# xid 811; peek lsn column: B@0/CEC89A8, U@0/CEC89A8, C@0/CEC8A98
UPDATE_KEY = [
    bytes.fromhex("42000000000cec8a68000304429998702f0000032b"),
    bytes.fromhex(
        "55000041194b00057400000001326e6e6e6e4e000574000000023230740000000374776f74000000052d"
        "332e3130757400000016323032352d31322d33312031383a33303a30302b3030"
    ),
    bytes.fromhex("4300000000000cec8a68000000000cec8a98000304429998702f"),
]
# xid 812; peek lsn column: B@0/CEC8A98, D@0/CEC8A98, C@0/CEC8B08
DELETE_KEY = [
    bytes.fromhex("42000000000cec8ad800030442999871620000032c"),
    bytes.fromhex("44000041194b00057400000001316e6e6e6e"),
    bytes.fromhex("4300000000000cec8ad8000000000cec8b080003044299987162"),
]
# xid 814; peek lsn column: B@0/CEC8E68, R@0/CEC8E68, I@0/CEC8E68, C@0/CEC8F28
ADD_COLUMN = [
    bytes.fromhex("42000000000cec8ef800030442999874b00000032e"),
    bytes.fromhex(
        "52000041197075626c6963006974656d73006400060169640000000017ffffffff006e616d6500000000"
        "19ffffffff00616d6f756e7400000006a4000a0006006e6f74650000000019ffffffff00637265617465"
        "6400000004a0ffffffff007174790000000014ffffffff"
    ),
    bytes.fromhex("49000041194e0006740000000133740000000574687265656e6e6e740000000137"),
    bytes.fromhex("4300000000000cec8ef8000000000cec8f2800030442999874b0"),
]
# xid 815; peek lsn column: B@0/CEC8F28, Y@0/CEC8F28, R@0/CEC8F28, I@0/CEC8F28,
# U@0/CEC8F78, D@0/CEC8FE8, C@0/CEC9068
FULL_IDENTITY = [
    bytes.fromhex("42000000000cec903800030442999877780000032f"),
    bytes.fromhex("59000041147075626c6963006d6f6f6400"),
    bytes.fromhex(
        "52000041217075626c69630066756c6c5f6974656d73006600030169640000000014ffffffff016c6162"
        "656c000000041300000018016665656c696e670000004114ffffffff"
    ),
    bytes.fromhex("49000041214e000374000000013574000000046669766574000000056861707079"),
    bytes.fromhex(
        "55000041214f0003740000000135740000000466697665740000000568617070794e0003740000000135"
        "74000000044649564574000000056861707079"
    ),
    bytes.fromhex("44000041214f000374000000013574000000044649564574000000056861707079"),
    bytes.fromhex("4300000000000cec9038000000000cec90680003044299987778"),
]
# xid 816; peek lsn column: B@0/CEC9E38, R@0/CEC9E38, Y@0/CEC9E38, R@0/CEC9E38,
# T@0/CEC9E38, C@0/CECA028
TRUNCATE = [
    bytes.fromhex("42000000000cec9e680003044299987a5000000330"),
    bytes.fromhex(
        "52000041197075626c6963006974656d73006400060169640000000017ffffffff006e616d6500000000"
        "19ffffffff00616d6f756e7400000006a4000a0006006e6f74650000000019ffffffff00637265617465"
        "6400000004a0ffffffff007174790000000014ffffffff"
    ),
    bytes.fromhex("59000041147075626c6963006d6f6f6400"),
    bytes.fromhex(
        "52000041217075626c69630066756c6c5f6974656d73006600030169640000000014ffffffff016c6162"
        "656c000000041300000018016665656c696e670000004114ffffffff"
    ),
    bytes.fromhex("5400000002000000411900004121"),
    bytes.fromhex("4300000000000cec9e68000000000ceca0280003044299987a50"),
]
# xid 818; peek lsn column: B@0/CECA2E8, O@0/CECA2E8, R@0/CECA2E8, I@0/CECA2E8, C@0/CECA410
ORIGIN = [
    bytes.fromhex("42000000000ceca3c80003044299987f4600000332"),
    bytes.fromhex("4f0000000000abcdef70726f62655f6f726967696e00"),
    bytes.fromhex(
        "52000041197075626c6963006974656d73006400060169640000000017ffffffff006e616d6500000000"
        "19ffffffff00616d6f756e7400000006a4000a0006006e6f74650000000019ffffffff00637265617465"
        "6400000004a0ffffffff007174790000000014ffffffff"
    ),
    bytes.fromhex("49000041194e000674000000033230306e6e6e6e6e"),
    bytes.fromhex("4300000000000ceca3c8000000000ceca4100003044299987f46"),
]
# xid 829, peeked with 'messages' 'true': B, R, I, M (pg_logical_emit_message), C
WITH_LOGICAL_MESSAGE = [
    bytes.fromhex("420000000012276ae8000304429a6ac75a0000033d"),
    ADD_COLUMN[1],
    bytes.fromhex("49000041194e000674000000033330306e6e6e6e6e"),
    bytes.fromhex("4d010000000012276ae86c616b65686f757365000000000568656c6c6f"),
    bytes.fromhex("43000000000012276ae80000000012276b18000304429a6ac75a"),
]

ITEMS_OID, FULL_ITEMS_OID, MOOD_OID = 16665, 16673, 16660
NUMERIC_10_2 = 0x000A0006  # (10 << 16 | 2) + 4
VARCHAR_20 = 24


def decode(*messages: bytes, decoder: PgOutputDecoder | None = None) -> list[Transaction]:
    """Feed messages; return the transactions completed, checking only Commit completes one."""
    decoder = decoder or PgOutputDecoder()
    completed = []
    for message in messages:
        result = decoder.feed(message)
        assert (result is not None) == (message[:1] == b"C")
        if result is not None:
            completed.append(result)
    return completed


def only_transaction(*batches: list[bytes]) -> Transaction:
    """Decode whole batches in one decoder and return the last transaction."""
    decoder = PgOutputDecoder()
    transactions = [decode(*batch, decoder=decoder) for batch in batches]
    return transactions[-1][0]


def test_lsn_text_round_trips() -> None:
    assert parse_lsn("0/1726C98") == 0x1726C98
    assert parse_lsn("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert parse_lsn("FFFFFFFF/FFFFFFFF") == 2**64 - 1
    assert format_lsn(0x1726C98) == "0/1726C98"
    assert format_lsn((0x16 << 32) | 0xB374D848) == "16/B374D848"
    assert format_lsn(0) == "0/0"


@pytest.mark.parametrize("text", ["", "1726C98", "0/", "/1", "G/1", "0/123456789", "0/1/2"])
def test_parse_lsn_rejects_malformed_text(text: str) -> None:
    with pytest.raises(ValueError, match="not a PostgreSQL LSN"):
        parse_lsn(text)


@pytest.mark.parametrize("value", [-1, 2**64])
def test_format_lsn_rejects_out_of_range(value: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        format_lsn(value)


def test_insert_transaction_has_lsns_commit_time_and_rows() -> None:
    [transaction] = decode(*INSERT)
    assert transaction.xid == 809
    assert transaction.begin_lsn == transaction.commit_lsn == parse_lsn("0/CEC8860")
    # The peek's `lsn` column of the Commit row is the end LSN, too.
    assert transaction.end_lsn == parse_lsn("0/CEC8890")
    # The server's clock_timestamp() read 15:37:01.386876 before and .38811 after.
    assert transaction.commit_time == datetime(2026, 11, 27, 15, 37, 1, 387553, tzinfo=UTC)
    assert transaction.commit_time.utcoffset() is not None
    assert [change.kind for change in transaction.changes] == ["insert", "insert"]
    first, second = transaction.changes
    assert first.old is None
    assert first.new == {
        "id": "1",
        "name": "one",
        "amount": "12.50",
        "note": None,
        "created": "2026-11-27 15:32:55.278231+00",
    }
    assert second.new == {
        "id": "2",
        "name": None,
        "amount": "-3.10",
        "note": "x" * 2500,
        "created": "2025-12-31 18:30:00+00",  # inserted as 2026-01-01 00:00:00+05:30
    }


def test_relation_message_describes_columns_and_key() -> None:
    [transaction] = decode(*INSERT)
    relation = transaction.changes[0].relation
    assert relation == Relation(
        oid=ITEMS_OID,
        namespace="public",
        name="items",
        replica_identity="d",
        columns=(
            Column("id", 23, -1, is_key=True),
            Column("name", 25, -1, is_key=False),
            Column("amount", 1700, NUMERIC_10_2, is_key=False),
            Column("note", 25, -1, is_key=False),
            Column("created", 1184, -1, is_key=False),
        ),
    )
    assert [c for c in relation.columns if c.is_key] == [Column("id", 23, -1, is_key=True)]


def test_update_without_key_change_marks_untouched_toast_unchanged() -> None:
    transaction = only_transaction(INSERT, UPDATE_TOAST)
    assert transaction.xid == 810
    [change] = transaction.changes
    assert change.kind == "update"
    assert change.old is None
    assert change.new == {
        "id": "2",
        "name": "two",
        "amount": "-3.10",
        "note": UNCHANGED,
        "created": "2025-12-31 18:30:00+00",
    }


def test_update_of_the_key_sends_only_the_old_key() -> None:
    [change] = only_transaction(INSERT, UPDATE_KEY).changes
    assert change.kind == "update"
    assert change.old == {"id": "2"}
    assert change.new is not None
    assert change.new["id"] == "20"
    assert change.new["note"] is UNCHANGED


def test_delete_sends_the_old_key() -> None:
    [change] = only_transaction(INSERT, DELETE_KEY).changes
    assert change == Change("delete", change.relation, new=None, old={"id": "1"})
    assert change.relation.name == "items"


def test_relation_redefined_after_add_column_applies_to_later_changes() -> None:
    decoder = PgOutputDecoder()
    [before] = decode(*INSERT, decoder=decoder)
    [after] = decode(*ADD_COLUMN, decoder=decoder)
    [change] = after.changes
    assert [column.name for column in change.relation.columns][-1] == "qty"
    assert change.relation.columns[-1] == Column("qty", 20, -1, is_key=False)
    assert change.new == {
        "id": "3",
        "name": "three",
        "amount": None,
        "note": None,
        "created": None,
        "qty": "7",
    }
    # Changes decoded earlier keep the definition they were sent with.
    assert len(before.changes[0].relation.columns) == 5
    assert decoder.relations[ITEMS_OID] is change.relation


def test_replica_identity_full_sends_whole_old_rows_and_type_messages_are_skipped() -> None:
    [transaction] = decode(*FULL_IDENTITY)
    assert [change.kind for change in transaction.changes] == ["insert", "update", "delete"]
    insert, update, delete = transaction.changes
    relation = insert.relation
    assert (relation.name, relation.replica_identity) == ("full_items", "f")
    assert relation.columns == (
        Column("id", 20, -1, is_key=True),
        Column("label", 1043, VARCHAR_20, is_key=True),
        Column("feeling", MOOD_OID, -1, is_key=True),
    )
    assert insert.new == {"id": "5", "label": "five", "feeling": "happy"}
    assert update.old == {"id": "5", "label": "five", "feeling": "happy"}
    assert update.new == {"id": "5", "label": "FIVE", "feeling": "happy"}
    assert delete.old == {"id": "5", "label": "FIVE", "feeling": "happy"}
    assert delete.new is None


def test_truncate_yields_one_change_per_table() -> None:
    transaction = only_transaction(INSERT, TRUNCATE)
    assert transaction.xid == 816
    assert [change.kind for change in transaction.changes] == ["truncate", "truncate"]
    assert [change.relation.oid for change in transaction.changes] == [ITEMS_OID, FULL_ITEMS_OID]
    assert all(change.new is None and change.old is None for change in transaction.changes)


def test_origin_and_logical_messages_are_skipped() -> None:
    [with_origin] = decode(*ORIGIN)
    assert [change.new for change in with_origin.changes] == [
        {"id": "200", "name": None, "amount": None, "note": None, "created": None, "qty": None}
    ]
    [with_message] = decode(*WITH_LOGICAL_MESSAGE)
    assert with_message.xid == 829
    assert [change.kind for change in with_message.changes] == ["insert"]


def test_one_decoder_reads_the_whole_peek() -> None:
    batches = [INSERT, UPDATE_TOAST, UPDATE_KEY, DELETE_KEY, ADD_COLUMN, FULL_IDENTITY, TRUNCATE]
    transactions = decode(*[message for batch in [*batches, ORIGIN] for message in batch])
    assert [t.xid for t in transactions] == [809, 810, 811, 812, 814, 815, 816, 818]
    assert [len(t.changes) for t in transactions] == [2, 1, 1, 1, 1, 3, 2, 1]
    end_lsns = [t.end_lsn for t in transactions]
    assert end_lsns == sorted(end_lsns)
    assert format_lsn(transactions[-1].end_lsn) == "0/CECA410"


def test_unchanged_is_a_singleton_that_survives_copying() -> None:
    assert repr(UNCHANGED) == "UNCHANGED"
    assert pickle.loads(pickle.dumps(UNCHANGED)) is UNCHANGED
    assert copy.deepcopy({"note": UNCHANGED})["note"] is UNCHANGED


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (b"", "empty pgoutput message"),
        (b"Zgarbage", "unknown pgoutput message type 'Z'"),
        (b"S\x00\x00\x00\x01", "unknown pgoutput message type 'S'"),  # v2 stream start
        (INSERT[0][:-2], "truncated pgoutput 'B' message"),
        (INSERT[0] + b"\x00", "1 unexpected trailing bytes"),
        (INSERT[1][:12], "unterminated string"),
        (INSERT[1][:-3], "truncated pgoutput 'R' message"),
    ],
)
def test_malformed_messages_raise_value_error(message: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        PgOutputDecoder().feed(message)


def test_change_before_its_relation_message_is_an_error() -> None:
    decoder = PgOutputDecoder()
    decoder.feed(INSERT[0])
    with pytest.raises(PgOutputError, match=f"relation OID {ITEMS_OID} before its Relation"):
        decoder.feed(INSERT[2])


def test_change_outside_a_transaction_is_an_error() -> None:
    decoder = PgOutputDecoder()
    decoder.feed(INSERT[1])
    with pytest.raises(PgOutputError, match="'I' message outside a transaction"):
        decoder.feed(INSERT[2])
    with pytest.raises(PgOutputError, match="'C' message outside a transaction"):
        decoder.feed(INSERT[-1])


def test_binary_tuple_data_is_refused() -> None:
    binary_insert = ORIGIN[3].replace(b"N\x00\x06t", b"N\x00\x06b")
    decoder = PgOutputDecoder()
    decode(ORIGIN[0], ORIGIN[2], decoder=decoder)
    with pytest.raises(PgOutputError, match="column kind 'b'"):
        decoder.feed(binary_insert)


def test_tuple_with_wrong_column_count_is_an_error() -> None:
    decoder = PgOutputDecoder()
    decode(*INSERT, decoder=decoder)  # items has 5 columns here; the insert below has 6
    decoder.feed(ADD_COLUMN[0])
    with pytest.raises(PgOutputError, match="has 6 columns but its Relation message lists 5"):
        decoder.feed(ADD_COLUMN[2])


def test_begin_while_open_needs_reset_and_commit_must_match_begin() -> None:
    decoder = PgOutputDecoder()
    decoder.feed(INSERT[0])
    assert decoder.in_transaction
    with pytest.raises(PgOutputError, match="xid 809 is still open"):
        decoder.feed(UPDATE_TOAST[0])
    with pytest.raises(PgOutputError, match="does not match the Begin of xid 809"):
        decoder.feed(UPDATE_TOAST[-1])
    decoder.reset()
    assert not decoder.in_transaction
    assert [t.xid for t in decode(*INSERT, decoder=decoder)] == [809]


@pytest.mark.parametrize("cut", [-5, -29, 11, 12])
def test_truncated_tuple_data_is_an_error(cut: int) -> None:
    decoder = PgOutputDecoder()
    decode(INSERT[0], INSERT[1], decoder=decoder)
    with pytest.raises(PgOutputError, match="truncated pgoutput 'I' message"):
        decoder.feed(INSERT[2][:cut])
