"""`lakehouse query` records what it ran; `lakehouse queries` lists it (real CLI, real stack)."""

from __future__ import annotations

import json
import uuid

import pytest

from lakehouse import Settings
from tests.integration.conftest import run_cli

pytestmark = [pytest.mark.integration]


def test_the_cli_records_each_statement_and_its_errors(stack: Settings) -> None:
    token = uuid.uuid4().hex[:8]  # other tests share the stack's history
    good, bad = f"SELECT 41 + 1 AS answer_{token}", f"SELEC 1 AS bad_{token}"
    run_cli("query", good)
    failed = run_cli("query", bad, check=False)
    assert failed.returncode == 1 and "Hint:" in failed.stderr
    listed = json.loads(run_cli("queries", "--json", "--limit", "500").stdout)
    mine = [(q["text"], q["engine"], q["rows"]) for q in listed if token in q["text"]]
    assert mine == [(bad, "duckdb", None), (good, "duckdb", 1)]  # newest first
    error = next(q for q in listed if q["text"] == bad)
    assert error["error"].startswith("duckdb could not run the query") and error["hint"]
    assert bad in run_cli("queries", "--limit", "5").stdout
