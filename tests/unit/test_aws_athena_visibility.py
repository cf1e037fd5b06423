"""Athena's saved queries as a governed principal sees them (lakehouse.aws): its own only.

A named query's SQL can name tables and hold literals another principal may not
see, as a query execution's can (those are already the caller's own only).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse.aws import athena_workgroups as groups
from lakehouse.aws.errors import AwsError
from lakehouse.aws.registry import Call
from lakehouse.config import Settings


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in [n for n in __import__("os").environ if n.startswith("LAKEHOUSE_")]:
        monkeypatch.delenv(name)
    return Settings(home=tmp_path, governance_enabled=True)


def call(settings: Settings, principal: str, operation: str) -> Call:
    return Call(settings, "athena", operation, principal, "us-east-1")


def test_a_principal_sees_only_its_own_named_queries(settings: Settings) -> None:
    admin = settings.governance_admin
    saved = groups.create_named_query(call(settings, admin, "CreateNamedQuery"), {
        "Name": "vip", "Database": "retail", "QueryString": "SELECT * FROM retail.customers "
        "WHERE email = 'ceo@example.com'"})["NamedQueryId"]  # fmt: skip
    own = groups.create_named_query(call(settings, "alice", "CreateNamedQuery"), {
        "Name": "mine", "Database": "retail", "QueryString": "SELECT 1"})["NamedQueryId"]  # fmt: skip

    listed = groups.list_named_queries(call(settings, "alice", "ListNamedQueries"), {})
    assert listed["NamedQueryIds"] == [own]
    with pytest.raises(AwsError) as hidden:
        groups.get_named_query(call(settings, "alice", "GetNamedQuery"), {"NamedQueryId": saved})
    assert hidden.value.code == "InvalidRequestException" and "ceo@" not in hidden.value.message
    batch = groups.batch_get_named_query(call(settings, "alice", "BatchGetNamedQuery"),
                                         {"NamedQueryIds": [saved, own]})  # fmt: skip
    assert [q["NamedQueryId"] for q in batch["NamedQueries"]] == [own]
    assert [m["NamedQueryId"] for m in batch["UnprocessedNamedQueryIds"]] == [saved]
    # the admin sees everyone's
    every = groups.list_named_queries(call(settings, admin, "ListNamedQueries"), {})
    assert every["NamedQueryIds"] == [saved, own]
    shown = groups.get_named_query(call(settings, admin, "GetNamedQuery"), {"NamedQueryId": own})
    assert shown["NamedQuery"]["Name"] == "mine"
