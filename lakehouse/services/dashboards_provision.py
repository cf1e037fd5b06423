"""Provisioning Superset as code: the Trino connection and the "Customer insights" dashboard.

The assets are YAML files in Superset's own export format under
``services/dashboards/assets`` (``databases/``, ``datasets/``, ``charts/``,
``dashboards/``, ``metadata.yaml``). Each start zips them and imports the bundle
through Superset's assets import API: objects are matched by their UUIDs and
overwritten, so importing again updates them and never duplicates them.

Datasets are SQL over the lake's Iceberg tables, run by Trino when a chart is
viewed. A dataset always keeps its real query, whether its tables exist yet or
not: a chart over a table not in the lake yet (the ML tables before ``lakehouse
ml train``, ``shop.*`` before the Zero-ETL sync has copied them) shows Trino's
own error naming the table, and reads it as soon as it exists, with no restart
(provisioning never bakes a table's absence into the dashboard).
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

import requests
import yaml

from lakehouse.config import Settings
from lakehouse.errors import LakehouseError
from lakehouse.services import service_files_dir

BUNDLE_ROOT = "customer_insights"
DASHBOARD_SLUG = "customer-insights"
TRINO_USER = "lakehouse"
TIMEOUT_S = 60


class DashboardsError(LakehouseError):
    """Superset refused a request (login, import, a query) or could not be reached."""


def assets_dir() -> Path:
    return service_files_dir() / "dashboards" / "assets"


def load_assets() -> dict[str, dict[str, Any]]:
    """Every asset file, by its path inside the bundle (``charts/Top_products.yaml``)."""
    root = assets_dir()
    return {
        path.relative_to(root).as_posix(): yaml.safe_load(path.read_text())
        for path in sorted(root.rglob("*.yaml"))
    }


def referenced_tables(sql: str) -> set[str]:
    """``namespace.table`` names a query reads (its CTEs left out)."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="trino")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    return {
        f"{table.db}.{table.name}"
        for table in tree.find_all(exp.Table)
        if table.db and table.name not in ctes
    }


def render_bundle(settings: Settings) -> bytes:
    """The import zip: the assets with the stack's Trino filled in."""
    assets = load_assets()
    for path, asset in assets.items():
        if path.startswith("databases/"):
            asset["sqlalchemy_uri"] = trino_uri(settings)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path, asset in assets.items():
            bundle.writestr(f"{BUNDLE_ROOT}/{path}", yaml.safe_dump(asset, sort_keys=False))
    return buffer.getvalue()


def trino_uri(settings: Settings) -> str:
    """Superset's SQLAlchemy URI of the stack's Trino and its Iceberg catalog."""
    return (
        f"trino://{TRINO_USER}@{settings.client_host}:{settings.trino_port}/{settings.catalog_name}"
    )


def provision(settings: Settings, url: str) -> None:
    """Import the connection and the dashboard into the Superset at ``url`` (idempotent).

    Raises DashboardsError, with nothing imported, when Superset cannot reach Trino.
    """
    client = SupersetClient(url, settings.access_key, settings.secret_key)
    check_trino(client, settings)
    client.import_assets(render_bundle(settings))


def check_trino(client: SupersetClient, settings: Settings) -> None:
    """Raise DashboardsError saying why Superset cannot query the stack's Trino."""
    uri = trino_uri(settings)
    try:
        client.post(
            "/api/v1/database/test_connection/",
            {"database_name": "lakehouse-check", "sqlalchemy_uri": uri,
             "configuration_method": "sqlalchemy_form"},
        )  # fmt: skip
    except DashboardsError as exc:
        reason = re.search(r"\[Errno \d+\] [^\"')]+|Connection refused|timed out", exc.message)
        raise DashboardsError(
            f"Superset cannot reach Trino at {uri}: "
            f"{reason.group(0) if reason else exc.message[:300]}. Nothing was imported.",
            hint="Check Trino with `lakehouse status`; start it with `lakehouse up --services "
            "trino`, then `lakehouse up --with dashboards` again.",
        ) from None


def refusal_reason(answer: requests.Response) -> str:
    """Superset's own words from an error answer (its JSON ``message`` or ``errors``)."""
    try:
        body = answer.json()
    except ValueError:
        return "(an HTML error page)" if "<html" in answer.text[:200] else answer.text[:300]
    if isinstance(body, dict):
        errors = body.get("errors") or []
        parts = [str(e.get("message", e)) for e in errors if isinstance(e, dict)]
        if body.get("message"):
            parts.insert(0, str(body["message"]))
        return "; ".join(parts) or str(body)[:300]
    return str(body)[:300]


class SupersetClient:
    """Superset's REST API as the admin: a session cookie, a JWT and the CSRF token."""

    def __init__(self, url: str, username: str, password: str) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        login = self._call(
            "POST", "/api/v1/security/login",
            json={"username": username, "password": password, "provider": "db", "refresh": False},
        )  # fmt: skip
        self.session.headers["Authorization"] = f"Bearer {login['access_token']}"
        token = self._call("GET", "/api/v1/security/csrf_token/")["result"]
        self.session.headers["X-CSRFToken"] = token
        self.session.headers["Referer"] = self.url

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            answer = self.session.request(method, self.url + path, timeout=TIMEOUT_S, **kwargs)
        except requests.RequestException as exc:
            raise DashboardsError(
                f"Superset at {self.url} did not answer {method} {path}: {exc}",
                hint="Is it running? `lakehouse status`; start it with "
                "`lakehouse up --with dashboards`.",
            ) from None
        if not answer.ok:
            raise DashboardsError(
                f"Superset refused {method} {path}: HTTP {answer.status_code}: "
                f"{refusal_reason(answer)}",
                hint="Read `lakehouse logs dashboards` for Superset's side.",
            )
        body: dict[str, Any] = answer.json()
        return body

    def import_assets(self, bundle: bytes) -> None:
        """Import an assets bundle: every object with the same UUID is overwritten.

        (The dashboard import endpoint would keep existing charts, datasets and
        databases as they were, so a change in the repository would not arrive.)
        """
        self._call(
            "POST", "/api/v1/assets/import/",
            files={"bundle": ("bundle.zip", bundle, "application/zip")},
        )  # fmt: skip

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        """A GET of the API (``/api/v1/...``), its JSON answer."""
        return self._call("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", path, json=body)
