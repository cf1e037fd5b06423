"""The sample data in the lake, `up --services`, and the notebooks run end to end."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from lakehouse import Lakehouse, Settings
from lakehouse.runtimes.local import LocalRuntime
from lakehouse.sample import load_sample
from sample_data import TABLES, generate
from tests.integration.conftest import SAMPLE_SCALE as SCALE
from tests.integration.conftest import run_cli

pytestmark = pytest.mark.integration
NOTEBOOKS = sorted((Path(__file__).parents[2] / "notebooks").glob("*.ipynb"))
# Services a notebook needs besides those every notebook run gets (marked below).
NOTEBOOK_SERVICES = {
    "03_customer_insights": ("mlflow", "trino"),
    "05_crawl_and_maintain": ("trino",),  # optimize runs on Trino
}
NOTEBOOK_PARAMS = [
    pytest.param(
        path,
        id=path.stem,
        marks=[
            getattr(pytest.mark, f"lakehouse_{s}") for s in NOTEBOOK_SERVICES.get(path.stem, ())
        ],
    )
    for path in NOTEBOOKS
]


def test_sample_tables_hold_exactly_the_generated_rows(
    stack: Settings, sample: dict[str, int]
) -> None:
    expected = generate(scale=SCALE)
    with Lakehouse(stack) as lake:
        for name in TABLES:
            count = lake.sql(f"SELECT count(*) AS n FROM {name}").column("n")[0].as_py()
            assert count == expected[name].num_rows, name
        orphans = lake.sql(
            "SELECT count(*) AS n FROM web.clickstream w LEFT JOIN retail.orders o USING (order_id) "
            "WHERE w.event_type = 'purchase' AND o.order_id IS NULL"
        )
        assert orphans.column("n")[0].as_py() == 0


def test_loading_again_leaves_existing_tables_alone(
    stack: Settings, sample: dict[str, int]
) -> None:
    with Lakehouse(stack) as lake:
        before = lake.table("retail.orders").current_snapshot()
        again = load_sample(lake, scale=SCALE)
        assert not any(load.loaded for load in again)
        assert lake.table("retail.orders").current_snapshot() == before


def test_cli_first_query_from_the_readme(sample: dict[str, int]) -> None:
    out = run_cli("query", "SELECT count(*) FROM retail.orders", "--format", "csv").stdout
    assert out.splitlines()[1] == str(sample["retail.orders"])


def test_up_with_a_service_subset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lakehouse.runtimes.local import isolated_stack_env

    for key, value in isolated_stack_env(tmp_path / "subset").items():
        monkeypatch.setenv(key, value)
    try:
        result = run_cli("up", "--services", "s3")
        assert "loaded" not in result.stderr
        rows = {row.name: row for row in LocalRuntime(Settings()).status()}
        assert rows["s3"].healthy and rows["catalog"].pid is None
        # Services that were never started do not make `status` fail.
        assert run_cli("status", check=False).returncode == 0
    finally:
        run_cli("down")


@pytest.mark.slow
@pytest.mark.lakehouse_postgres
@pytest.mark.lakehouse_opensearch
@pytest.mark.parametrize("notebook", NOTEBOOK_PARAMS)
def test_notebook_runs(stack: Settings, sample: dict[str, int], notebook: Path) -> None:
    book = nbformat.read(notebook, as_version=4)
    # The Zero-ETL notebook runs as on the stack `make up` starts: the sync service
    # follows its integrations while the notebook drives them.
    with_sync = "zero_etl" in notebook.stem
    runtime = LocalRuntime(stack)
    if with_sync:
        runtime.up(["sync"])
    try:
        execute(book, notebook.parent)
    finally:
        if with_sync:
            runtime.stop("sync")


def execute(book: nbformat.NotebookNode, folder: Path) -> None:
    """Run every cell in a fresh kernel; raises CellExecutionError at the first cell that
    errors, and fails on an error output even from a cell tagged to allow one."""
    NotebookClient(
        book,
        timeout=300,
        kernel_name="python3",
        allow_errors=False,
        resources={"metadata": {"path": str(folder)}},
    ).execute()
    errors = [
        o for cell in book.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"
    ]
    assert not errors, errors


@pytest.mark.parametrize("tags", [[], ["raises-exception"]], ids=["plain", "tagged"])
def test_a_cell_that_errors_fails_the_notebook_run(tmp_path: Path, tags: list[str]) -> None:
    from nbclient.exceptions import CellExecutionError

    book = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("1 / 0", metadata={"tags": tags}),
            nbformat.v4.new_code_cell("print('after')"),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )
    with pytest.raises((CellExecutionError, AssertionError), match="ZeroDivisionError"):
        execute(book, tmp_path)


def test_the_notebooks_folder_is_not_empty() -> None:
    assert NOTEBOOKS, "notebooks/ has no notebook for the tests to run"
