"""The dashboards' provisioning bundle and service spec (pure logic, no Superset)."""

from __future__ import annotations

import io
import sqlite3
import zipfile
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import yaml

from lakehouse import service_env
from lakehouse.config import Settings
from lakehouse.errors import ServiceStartError
from lakehouse.services import build_services, dashboards
from lakehouse.services.dashboards import SUPERSET_ENV, DashboardsService
from lakehouse.services.dashboards_provision import (
    BUNDLE_ROOT,
    load_assets,
    referenced_tables,
    render_bundle,
)

EVERY_TABLE = {
    "shop.orders", "shop.order_items", "shop.products", "shop.customers", "web.clickstream",
    "ml.customer_segments", "ml.product_recommendations",
}  # fmt: skip


def unzip(bundle: bytes) -> dict[str, dict[str, Any]]:
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        return {
            name.removeprefix(f"{BUNDLE_ROOT}/"): yaml.safe_load(archive.read(name))
            for name in archive.namelist()
        }


def test_every_dataset_reads_only_lake_tables_and_every_chart_has_a_dataset() -> None:
    assets = load_assets()
    datasets = {a["uuid"]: a for p, a in assets.items() if p.startswith("datasets/")}
    charts = [a for p, a in assets.items() if p.startswith("charts/")]
    assert len(charts) >= 8 and all(chart["dataset_uuid"] in datasets for chart in charts)
    read = set().union(*(referenced_tables(d["sql"]) for d in datasets.values()))
    assert read == EVERY_TABLE
    dashboard = assets["dashboards/Customer_insights.yaml"]
    placed = {v["meta"]["uuid"] for v in dashboard["position"].values() if isinstance(v, dict)
              and v.get("type") == "CHART"}  # fmt: skip
    assert placed == {chart["uuid"] for chart in charts}


def test_referenced_tables_leaves_ctes_out() -> None:
    sql = "WITH f AS (SELECT * FROM shop.orders) SELECT * FROM f JOIN ml.x ON true"
    assert referenced_tables(sql) == {"shop.orders", "ml.x"}


def test_the_bundle_points_at_the_stacks_trino(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, trino_port=18123, catalog_name="lake")
    bundle = unzip(render_bundle(settings))
    assert bundle["databases/Lakehouse.yaml"]["sqlalchemy_uri"] == (
        "trino://lakehouse@127.0.0.1:18123/lake"
    )
    assert bundle == {
        **load_assets(),
        "databases/Lakehouse.yaml": bundle["databases/Lakehouse.yaml"],
    }


def test_every_dataset_keeps_its_real_query_and_ml_charts_say_where_tables_come_from(
    tmp_path: Path,
) -> None:
    """Provisioning never looks at which tables exist, so it cannot freeze an absence."""
    bundle = unzip(render_bundle(Settings(home=tmp_path)))
    assets = load_assets()
    for path, asset in bundle.items():
        if path.startswith("datasets/"):
            assert asset["sql"] == assets[path]["sql"], path
        if path.startswith("charts/"):
            assert "not in the lake" not in asset["slice_name"], path
    note = bundle["charts/Revenue_by_segment.yaml"]["description"]
    assert "ml.customer_segments" in note and "lakehouse ml train" in note


def test_the_service_is_optional_bound_to_loopback_with_one_worker(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, dashboards_port=18088)
    spec = DashboardsService(settings).spec()
    assert DashboardsService.optional
    assert "dashboards" not in [svc.name for svc in build_services(settings)]
    assert [svc.name for svc in build_services(settings, ["dashboards"])][-1] == "dashboards"
    command = list(spec.command)
    assert command[command.index("--workers") + 1] == "1"
    assert "--no-control-socket" in command  # not the shared ~/.gunicorn/gunicorn.ctl
    assert command[command.index("--bind") + 1] == "127.0.0.1:18088"
    assert spec.health_url == "http://127.0.0.1:18088/health"
    assert spec.data_dir == tmp_path / "data" / "dashboards"
    assert str(SUPERSET_ENV.root(settings)) in command[0]
    assert not any(settings.secret_key in part for part in command)  # the password stays out


def test_the_superset_lock_pins_everything() -> None:
    lines = [
        line
        for line in SUPERSET_ENV.requirements_lock().read_text().splitlines()
        if line and not line.startswith("#")
    ]
    pins = dict(line.split("==", 1) for line in lines)
    assert len(pins) == len(lines)
    assert pins["apache-superset"] == SUPERSET_ENV.version and "trino" in pins


def test_setup_runs_only_the_superset_commands_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []
    monkeypatch.setattr(DashboardsService, "_superset", lambda self, args: ran.append(args[-1]
                        if args[0] != "fab" else args[1]))  # fmt: skip
    monkeypatch.setattr(service_env.ServiceEnv, "ensure", lambda self, settings: Path("python"))
    template = tmp_path / "template.db"
    template.write_bytes(b"migrated and initialised")
    monkeypatch.setattr(dashboards, "metadata_template", lambda settings: template)
    service = DashboardsService(Settings(home=tmp_path / "home"))
    service.prepare()
    assert ran == ["create-admin"]  # a new home: the cached template instead of upgrade, init
    assert service.database.read_bytes() == template.read_bytes()
    assert oct(service.secret_file.stat().st_mode & 0o777) == "0o600"
    secret = service.secret_file.read_text()
    ran.clear()
    service.prepare()  # a second start: nothing to do
    assert ran == [] and service.secret_file.read_text() == secret
    changed = DashboardsService(Settings(home=tmp_path / "home", secret_key="changed"))
    changed.prepare()
    assert ran == ["create-admin", "reset-password"]  # the login follows the stack's keys
    assert "changed" not in service.config_file.read_text()
    ran.clear()
    record = service.data_dir / "setup.json"
    record.write_text(record.read_text().replace(SUPERSET_ENV.version, "6.0.0"))
    changed.prepare()  # a Superset upgrade migrates the home's own database in place
    assert ran == ["upgrade", "init"]
    assert service.database.read_bytes() == template.read_bytes()  # not replaced


def fake_superset(rows: dict[str, int]) -> Callable[..., None]:
    """A stand-in for the superset CLI: `db upgrade` makes the tables, `init` adds rows."""

    def run(settings: Settings, args: list[str], env: dict[str, str], database: Path) -> None:
        assert Path(env["SUPERSET_CONFIG_PATH"]).parent == database.parent
        with closing(sqlite3.connect(database)) as conn, conn:
            if args == ["db", "upgrade"]:
                for table in ("ab_role", "ab_user", "dbs"):
                    conn.execute(f"CREATE TABLE {table} (id INTEGER)")
                return
            for table, count in rows.items():
                conn.executemany(f"INSERT INTO {table} VALUES (?)", [(i,) for i in range(count)])

    return run


def test_the_metadata_template_is_built_once_and_holds_no_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(home=tmp_path / "home", cache=tmp_path / "cache")
    SUPERSET_ENV.root(settings).parent.mkdir(parents=True)
    monkeypatch.setattr(dashboards, "run_superset", fake_superset({"ab_user": 1}))
    with pytest.raises(ServiceStartError, match="not empty") as leaked:
        dashboards.metadata_template(settings)
    assert "ab_user" in leaked.value.message and leaked.value.hint
    assert not dashboards.template_path(settings).exists()
    assert [p.name for p in SUPERSET_ENV.root(settings).parent.iterdir()
            if not p.name.endswith(".lock")] == []  # no scratch directory left  # fmt: skip
    monkeypatch.setattr(dashboards, "run_superset", fake_superset({"ab_role": 5}))
    built = dashboards.metadata_template(settings)
    assert built == dashboards.template_path(settings) and built.is_file()
    monkeypatch.setattr(dashboards, "run_superset", fake_superset({"ab_role": 1}))
    assert dashboards.metadata_template(settings) == built  # cached: not built again
    with closing(sqlite3.connect(built)) as conn:
        assert conn.execute("SELECT count(*) FROM ab_role").fetchone() == (5,)


def test_the_web_page_line_says_how_to_sign_in_and_where_the_dashboard_is(tmp_path: Path) -> None:
    from lakehouse.runtimes import ServiceStatus
    from lakehouse.services.pages import web_pages

    settings = Settings(home=tmp_path, dashboards_port=18088, access_key="ak", secret_key="sk")
    running = ServiceStatus(name="dashboards", url="", healthy=True, detail="", pid=1,
                            memory_mb=None, started=True)  # fmt: skip
    page = next(p for p in web_pages(settings, [running]) if p.service == "dashboards")
    assert page.running and page.url == "http://127.0.0.1:18088"
    assert page.sign_in == (
        "user ak, password sk; "
        "Customer insights: http://127.0.0.1:18088/superset/dashboard/customer-insights/"
    )


def test_the_bundles_telemetry_pixel_becomes_a_blank_inline_image(tmp_path: Path) -> None:
    from lakehouse.services.dashboards import without_telemetry_pixel

    assets = tmp_path / "lib/python3.11/site-packages/superset/static/assets"
    assets.mkdir(parents=True)
    pixel = "let l=`https://apachesuperset.gateway.scarf.sh/pixel/0d34/${e}`;"
    (assets / "8085.abc.entry.js").write_text(pixel)
    (assets / "1.def.entry.js").write_text("no pixel here")
    assert [p.name for p in without_telemetry_pixel(tmp_path)] == ["8085.abc.entry.js"]
    patched = (assets / "8085.abc.entry.js").read_text()
    assert "scarf" not in patched and patched.startswith("let l=`data:image/gif;base64,")
    assert "#0d34/${e}`" in patched  # the rest of the URL is a fragment
    assert without_telemetry_pixel(tmp_path) == []  # once only
    assert sorted(p.name for p in assets.iterdir()) == ["1.def.entry.js", "8085.abc.entry.js"]
