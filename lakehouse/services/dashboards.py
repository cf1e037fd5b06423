"""Business dashboards (the QuickSight role): Apache Superset over the stack's Trino.

Optional: it starts only when named (``lakehouse up --with dashboards``).
Superset pins numpy<2.3, pandas<2.2, pyarrow<19 and SQLAlchemy<2, so it runs
from an environment of its own in the cache (``services/dashboards/requirements.lock``).
Its metadata database is a SQLite file under the home (``<home>/data/dashboards``),
with a SECRET_KEY generated once per home (a 0600 file, never on a command line).

Login: the stack's access key and secret key (``lakehouse env`` prints them as
AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; ``lakehouse`` / ``lakehouse-secret``
by default). The first start migrates the database, runs ``superset init`` and
creates that admin; later starts skip this while the Superset version and the
credentials are unchanged. The migrated, initialised database (roles and permissions,
no user, no connection, nothing encrypted with the secret key) is built once per
Superset environment and configuration into the cache, and a new home starts from a
copy of it: only the admin is created per home. Every start then re-imports the "Customer insights"
dashboard from ``services/dashboards/assets`` (see
:mod:`lakehouse.services.dashboards_provision`), so a change in the repository
reaches the dashboard; its charts read tables created later without a restart.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
from contextlib import closing
from pathlib import Path
from typing import Any

from filelock import FileLock

from lakehouse.config import Settings
from lakehouse.errors import ServiceStartError
from lakehouse.service_env import ServiceEnv
from lakehouse.services.base import Port, Service, ServiceSpec

SUPERSET_ENV = ServiceEnv("dashboards", "6.1.0", "Apache Superset")
# Superset's documented switch for its usage pixel (SCARF_ANALYTICS=false) acts when its
# frontend is built: the PyPI wheel's bundle always draws <img src=".../pixel/...">, a
# request to scarf.sh from every page (offline, a console error). Each start turns that
# URL into an inline blank GIF; the "#" makes the rest of the URL a fragment, ignored.
SCARF_PIXEL = b"https://apachesuperset.gateway.scarf.sh/pixel/"
BLANK_IMAGE = b"data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7#"
SETUP_RECORD = "setup.json"
# One gunicorn worker (each is ~300-400 MB); threads serve the dashboard's parallel
# chart requests. Trino queries over the whole lake can take a while on a laptop.
# No control socket: gunicorn 24+ opens one at ~/.gunicorn/gunicorn.ctl, shared by
# every stack of the user and left stale by a kill; lakehouse never uses it.
WORKER_THREADS, REQUEST_TIMEOUT_S = 4, 300
SETUP_TIMEOUT_S = 900
# Tables of a per-home secret or object: the cached template must hold no row of them.
PER_HOME_TABLES = ("ab_user", "dbs", "ssh_tunnels", "key_value", "slices", "dashboards")

CONFIG_TEMPLATE = """\
# Written by lakehouse at each start (lakehouse/services/dashboards.py): do not edit.
from pathlib import Path

DATA_DIR = {data_dir!r}
SECRET_KEY = Path({secret_file!r}).read_text().strip()
SQLALCHEMY_DATABASE_URI = "sqlite:///" + {database!r}
# One process, no Redis: the rate limiter and caches keep to memory.
RATELIMIT_STORAGE_URI = "memory://"
# Dashboards and charts come from services/dashboards/assets: no example data.
SUPERSET_LOAD_EXAMPLES = False
# No usage pixel to scarf.sh from every page (offline it is a console error too): the
# setting for the server side; the bundle's pixel is blanked by without_telemetry_pixel.
SCARF_ANALYTICS = False
SQLLAB_TIMEOUT = {timeout}
SUPERSET_WEBSERVER_TIMEOUT = {timeout}
"""


class DashboardsService(Service):
    name = "dashboards"
    optional = True

    @property
    def data_dir(self) -> Path:
        return self.settings.home_dir / "data" / "dashboards"

    @property
    def config_file(self) -> Path:
        return self.data_dir / "superset_config.py"

    @property
    def secret_file(self) -> Path:
        return self.data_dir / "secret-key"

    @property
    def url(self) -> str:
        return f"http://{self.settings.client_host}:{self.settings.dashboards_port}"

    def spec(self) -> ServiceSpec:
        s = self.settings
        command = [
            str(SUPERSET_ENV.executable(s, "gunicorn")), "--workers", "1",
            "--worker-class", "gthread", "--threads", str(WORKER_THREADS),
            "--timeout", str(REQUEST_TIMEOUT_S), "--bind", f"{s.bind_host}:{s.dashboards_port}",
            "--access-logfile", "-", "--no-control-socket", "superset.app:create_app()",
        ]  # fmt: skip
        return ServiceSpec(
            name=self.name,
            description="Apache Superset business dashboards over Trino",
            command=tuple(command),
            env=self.superset_env(),
            ports=(Port("dashboards", s.dashboards_port),),
            health_url=f"{self.url}/health",
            url=self.url,
            depends_on=("trino",),
            data_dir=self.data_dir,
        )

    def superset_env(self) -> dict[str, str]:
        """What the server and the ``superset`` CLI need in their environment."""
        return {
            "SUPERSET_CONFIG_PATH": str(self.config_file),
            "SUPERSET_HOME": str(self.data_dir),
            "FLASK_APP": "superset.app:create_app()",
            "PYTHONUNBUFFERED": "1",
        }

    def prepare(self) -> None:
        """Install Superset once, write its config, and set its database up when needed."""
        SUPERSET_ENV.ensure(self.settings)
        without_telemetry_pixel(SUPERSET_ENV.root(self.settings))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._ensure_secret()
        self._write_config()
        wanted = self._setup_record()
        record = self.data_dir / SETUP_RECORD
        done = json.loads(record.read_text()) if record.is_file() else {}
        if done != wanted:
            self._set_up_database(done, wanted)
            record.write_text(json.dumps(wanted))

    def after_ready(self) -> None:
        """Import the Trino connection and the "Customer insights" dashboard (idempotent)."""
        from lakehouse.services.dashboards_provision import provision

        provision(self.settings, self.url)

    @property
    def dashboard_url(self) -> str:
        """The "Customer insights" dashboard's page."""
        from lakehouse.services.dashboards_provision import DASHBOARD_SLUG

        return f"{self.url}/superset/dashboard/{DASHBOARD_SLUG}/"

    def sign_in(self) -> str:
        """The admin's login (the stack's access key and secret key) and the dashboard."""
        s = self.settings
        return (
            f"user {s.access_key}, password {s.secret_key}; Customer insights: {self.dashboard_url}"
        )

    def start_hint(self) -> str:
        return (
            "Read the full log with `lakehouse logs dashboards`; if the port is taken, set "
            "LAKEHOUSE_DASHBOARDS_PORT (dashboards_port in lakehouse.toml)."
        )

    def _ensure_secret(self) -> None:
        if self.secret_file.is_file():
            return
        fd = os.open(self.secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48) + "\n")

    def _write_config(self) -> None:
        self.config_file.write_text(
            CONFIG_TEMPLATE.format(
                data_dir=str(self.data_dir), secret_file=str(self.secret_file),
                database=str(self.data_dir / "superset.db"), timeout=REQUEST_TIMEOUT_S,
            )
        )  # fmt: skip

    def _setup_record(self) -> dict[str, str]:
        """What the database was set up for: a change re-runs the setup."""
        login = f"{self.settings.access_key}\0{self.settings.secret_key}".encode()
        return {
            "superset": SUPERSET_ENV.version,
            "lock": SUPERSET_ENV.root(self.settings).name,
            "admin": hashlib.sha256(login).hexdigest(),
        }

    @property
    def database(self) -> Path:
        return self.data_dir / "superset.db"

    def _set_up_database(self, done: dict[str, str], wanted: dict[str, str]) -> None:
        """Migrate and create roles for a new Superset (a new home copies the cached
        template instead); create the admin, or reset its password when the stack's
        credentials changed. (Each `superset` command takes 5-15 s to start, so only
        the needed ones run.)"""
        user, password = self.settings.access_key, self.settings.secret_key
        steps: list[list[str]] = []
        if {k: done.get(k) for k in ("superset", "lock")} != {
            k: wanted[k] for k in ("superset", "lock")
        }:
            if self.database.exists():  # the user's own objects: migrate them in place
                steps += [["db", "upgrade"], ["init"]]
            else:
                shutil.copyfile(metadata_template(self.settings), self.database)
        if done.get("admin") != wanted["admin"]:
            steps.append(["fab", "create-admin", "--username", user, "--firstname", "Lake",
                          "--lastname", "House", "--email", f"{user}@lakehouse.local",
                          "--password", password])  # fmt: skip
            if done:  # the user may exist with the old password
                steps.append(["fab", "reset-password", "--username", user, "--password", password])
        for step in steps:
            self._superset(step)

    def _superset(self, args: list[str]) -> None:
        run_superset(self.settings, args, self.superset_env(), self.database)


def run_superset(settings: Settings, args: list[str], env: dict[str, str], database: Path) -> None:
    """One ``superset`` CLI command with ``env``; ServiceStartError with its last lines."""
    command = [str(SUPERSET_ENV.executable(settings, "superset")), *args]
    done = subprocess.run(command, env=os.environ | env, capture_output=True, text=True,
                          timeout=SETUP_TIMEOUT_S, check=False)  # fmt: skip
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-10:])
        shown = ["superset", *args[:2]]  # never the password
        raise ServiceStartError(
            "dashboards", "could not set up its metadata database", shown,
            "not started yet", tail,
            hint=f"Its database is {database}; move it away to start afresh (dashboards "
            "are provisioned again), then `lakehouse up --with dashboards`.",
        )  # fmt: skip


def template_path(settings: Settings) -> Path:
    """The cached migrated, initialised metadata database of this Superset environment
    and configuration (it may not exist yet)."""
    root = SUPERSET_ENV.root(settings)
    digest = hashlib.sha256(CONFIG_TEMPLATE.encode()).hexdigest()[:12]
    return root.parent / f"{root.name}-metadata-{digest}.db"


def metadata_template(settings: Settings) -> Path:
    """The template database, built once (``superset db upgrade`` and ``init`` with a
    throwaway secret key) under a file lock; it holds roles, permissions and the schema
    only. Raises ServiceStartError when a step fails (nothing is cached then)."""
    path = template_path(settings)
    if path.is_file():
        return path
    with FileLock(str(path) + ".lock"):
        if path.is_file():
            return path
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".metadata-") as scratch:
            work = Path(scratch)
            (work / "secret-key").write_text(secrets.token_urlsafe(48) + "\n")
            database = work / "superset.db"
            (work / "superset_config.py").write_text(CONFIG_TEMPLATE.format(
                data_dir=str(work), secret_file=str(work / "secret-key"),
                database=str(database), timeout=REQUEST_TIMEOUT_S,
            ))  # fmt: skip
            env = {"SUPERSET_CONFIG_PATH": str(work / "superset_config.py"),
                   "SUPERSET_HOME": str(work), "FLASK_APP": "superset.app:create_app()"}  # fmt: skip
            for step in (["db", "upgrade"], ["init"]):
                run_superset(settings, step, env, database)
            assert_no_per_home_rows(database)
            database.replace(path)  # complete or absent: the same file system
    return path


def assert_no_per_home_rows(database: Path) -> None:
    """Raise ServiceStartError if ``database`` holds a user, a connection, a key-value
    entry or an object (what another home must not inherit)."""
    with closing(sqlite3.connect(database)) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        found = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                 for t in PER_HOME_TABLES if t in tables}  # fmt: skip
    if any(found.values()) or "ab_role" not in tables:
        raise ServiceStartError(
            "dashboards", "built a metadata template that is not empty", ["superset", "init"],
            "not started yet", f"rows per table: {found}",
            hint="Superset's set-up changed: report it; meanwhile nothing was cached.",
        )  # fmt: skip


def without_telemetry_pixel(env_root: Path) -> list[Path]:
    """Point Superset's usage pixel at a blank inline image in the environment's
    frontend bundles (``*.entry.js``, ~6 MB: milliseconds); the files changed."""
    changed = []
    for bundle in env_root.glob("lib/python*/site-packages/superset/static/assets/*.entry.js"):
        code = bundle.read_bytes()
        if SCARF_PIXEL in code:
            draft = bundle.with_name(bundle.name + ".lakehouse-tmp")
            draft.write_bytes(code.replace(SCARF_PIXEL, BLANK_IMAGE))
            draft.replace(bundle)  # another stack may read it at the same time
            changed.append(bundle)
    return changed


# The docker runtime's set-up, run before the server in Superset's own image: the same
# steps as prepare() (no `$` anywhere: compose would interpolate it).
COMPOSE_SETUP = """\
import os, secrets, subprocess, sys
home = os.environ["SUPERSET_HOME"]
key = os.path.join(home, "secret-key")
if not os.path.exists(key):
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, secrets.token_urlsafe(48).encode())
    os.close(fd)
with open(os.environ["SUPERSET_CONFIG_PATH"], "w") as config:
    config.write(CONFIG)
user, password = os.environ["ADMIN_USER"], os.environ["ADMIN_PASSWORD"]
admin = ["fab", "create-admin", "--username", user, "--firstname", "Lake", "--lastname",
         "House", "--email", user + "@lakehouse.local", "--password", password]
for step in (["db", "upgrade"], ["init"], admin):
    subprocess.run(["superset", *step], check=True)
os.execvp(sys.argv[1], sys.argv[1:])
"""


def dashboards_compose(settings: Settings) -> dict[str, Any]:
    """compose.yaml's ``dashboards``: the local spec's gunicorn command in an image built
    from the same lock, on the host's network (Trino at the local runtime's address).

    The Customer insights import is the local runtime's after_ready; on the docker
    runtime it is not run (documented in the README).
    """
    home = "/superset-home"
    local = DashboardsService(settings).spec()
    config = CONFIG_TEMPLATE.format(
        data_dir=home, secret_file=f"{home}/secret-key", database=f"{home}/superset.db",
        timeout=REQUEST_TIMEOUT_S,
    )  # fmt: skip
    health = f"import urllib.request; urllib.request.urlopen({local.health_url!r}, timeout=5)"
    return {"dashboards": {
        "build": {"context": "./services/dashboards"},
        "image": f"lakehouse-dashboards:{SUPERSET_ENV.version}",
        "profiles": ["dashboards"], "network_mode": "host",
        "entrypoint": ["python", "-c", f"CONFIG = {config!r}\n{COMPOSE_SETUP}"],
        "command": ["gunicorn", *local.command[1:]],
        "environment": {"SUPERSET_HOME": home, "SUPERSET_CONFIG_PATH": f"{home}/superset_config.py",
                        "FLASK_APP": local.env["FLASK_APP"], "PYTHONUNBUFFERED": "1",
                        "ADMIN_USER": settings.access_key, "ADMIN_PASSWORD": settings.secret_key},
        "volumes": [f"dashboards-home:{home}"], "depends_on": {"trino": {"condition": "service_healthy"}},
        "deploy": {"resources": {"limits": {"memory": "768m"}}},
        "healthcheck": {"test": ["CMD", "python", "-c", health], "interval": "5s", "timeout": "5s",
                        "retries": 30, "start_period": "120s"},
    }}  # fmt: skip
