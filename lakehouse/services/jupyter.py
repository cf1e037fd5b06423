"""JupyterLab for workshops: the optional ``jupyter`` service.

It runs from the project's own environment (``python -m jupyterlab``), so its
kernels run the same interpreter and import ``lakehouse``, pyspark and plotly.
Like every child of the local runtime, the server (and each kernel it starts)
gets the stack's ``LAKEHOUSE_*`` settings, so ``lakehouse.connect()`` in a
notebook finds the running stack.

Sign-in is a token, generated once per home and kept in
``<home>/data/jupyter/token`` (0600). The URL `lakehouse up` and `lakehouse
status` print carries it (``/lab?token=...``), as Jupyter's own start-up line
does; a request without it is refused. The server listens on ``bind_host``
(127.0.0.1 by default) at ``jupyter_port``, opens ``notebooks/`` (see
:func:`notebooks_dir`), and keeps its config, runtime files and IPython profile
under ``<home>/data/jupyter`` rather than in the user's own ``~/.jupyter``.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import sys
import urllib.error
import urllib.request
from pathlib import Path

from lakehouse.errors import ConfigError
from lakehouse.home import find_project
from lakehouse.privacy import make_private_dir, write_private
from lakehouse.services.base import Health, Port, Service, ServiceSpec

TOKEN_BYTES = 24
# Offline and quiet: no update check, no news feed, no extension search on PyPI.
OFFLINE_FLAGS = (
    "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    "--LabApp.news_url=None",
    "--LabApp.extension_manager=readonly",
)

NEWS_SETTING = "lab/user-settings/@jupyterlab/apputils-extension/notification.jupyterlab-settings"


def jupyter_command(
    python: str, host: str, port: int, root: Path | str, as_root: bool
) -> list[str]:
    """``python -m jupyterlab`` on ``host:port`` serving ``root``; no browser is
    opened and a taken port fails the start instead of moving to the next one.
    ``as_root``: Jupyter refuses to run as root (CI, containers) without a flag."""
    return [python, "-m", "jupyterlab", "--no-browser", f"--ServerApp.ip={host}",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={root}", *OFFLINE_FLAGS,
            *(["--ServerApp.allow_root=True"] if as_root else [])]  # fmt: skip


def notebooks_dir(home: Path) -> Path:
    """The folder JupyterLab opens: the project's ``notebooks/`` (the project that
    holds the home, else the one around the current directory), else this
    checkout's ``notebooks/``, else the project's root (or the home's parent)."""
    project_roots = [home.parent, find_project().root]
    for root in project_roots:
        if root is not None and (root / "notebooks").is_dir():
            return root / "notebooks"
    checkout = Path(__file__).resolve().parents[2] / "notebooks"
    if checkout.is_dir():
        return checkout
    return find_project().root or home.parent


class JupyterService(Service):
    name = "jupyter"
    optional = True

    @property
    def data_dir(self) -> Path:
        return self.settings.home_dir / "data" / "jupyter"

    @property
    def token_file(self) -> Path:
        return self.data_dir / "token"

    def token(self) -> str | None:
        """The home's token, or None before the first start created it."""
        try:
            return self.token_file.read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None

    def spec(self) -> ServiceSpec:
        s = self.settings
        base = f"http://{s.client_host}:{s.jupyter_port}"
        token = self.token()
        return ServiceSpec(
            name=self.name,
            description="JupyterLab (notebooks for workshops)",
            command=tuple(
                jupyter_command(
                    sys.executable,
                    s.bind_host,
                    s.jupyter_port,
                    self.notebooks,
                    as_root=os.geteuid() == 0,
                )
            ),
            # The token travels in the environment, not on the command line that
            # `ps` shows every user (and the state file records).
            # Without a token file (never prepared) Jupyter makes a random one: an
            # empty JUPYTER_TOKEN would turn sign-in off.
            env=({"JUPYTER_TOKEN": token} if token else {})
            | {
                "JUPYTER_CONFIG_DIR": str(self.data_dir / "config"),
                "JUPYTER_RUNTIME_DIR": str(self.data_dir / "runtime"),
                "IPYTHONDIR": str(self.data_dir / "ipython"),
                "PYTHONUNBUFFERED": "1",
            },
            ports=(Port("jupyter", s.jupyter_port),),
            health_url=f"{base}/api/status",
            url=f"{base}/lab?token={token}" if token else f"{base}/lab",
            depends_on=("catalog",),
            data_dir=self.data_dir,
            cwd=self.notebooks,
        )

    @property
    def notebooks(self) -> Path:
        return notebooks_dir(self.settings.home_dir)

    def prepare(self) -> None:
        """Check JupyterLab is installed, make the private data folders and the token."""
        if importlib.util.find_spec("jupyterlab") is None:
            raise ConfigError(
                f"JupyterLab is not installed in {sys.prefix}.",
                hint="Reinstall lakehouse (`make install`), or `pip install jupyterlab==4.6.6`.",
            )
        for folder in ("config", "runtime", "ipython"):
            make_private_dir(self.data_dir / folder)
        if self.token() is None:
            write_private(self.token_file, secrets.token_urlsafe(TOKEN_BYTES) + "\n")
        # Without this JupyterLab asks every new student whether to fetch its news
        # feed; a setting the student changes later is kept.
        news = self.data_dir / "config" / NEWS_SETTING
        if not news.is_file():
            make_private_dir(news.parent)
            write_private(news, '{"fetchNews": "false"}\n')

    def health(self) -> Health:
        """Healthy when ``/api/status`` answers 200 to the home's token."""
        url = self.spec().health_url
        request = urllib.request.Request(url, headers={"Authorization": f"token {self.token()}"})
        try:
            with urllib.request.urlopen(request, timeout=2.0) as response:
                return Health(response.status == 200, f"HTTP {response.status} from {url}")
        except urllib.error.HTTPError as exc:
            exc.close()
            return Health(False, f"HTTP {exc.code} from {url}")
        except (urllib.error.URLError, OSError) as exc:
            return Health(False, f"no answer from {url}: {getattr(exc, 'reason', exc)}")

    def sign_in(self) -> str:
        return f"token also in {self.token_file}"

    def start_hint(self) -> str:
        return (
            "Read the full log with `lakehouse logs jupyter`; if the port is taken, set "
            "LAKEHOUSE_JUPYTER_PORT (jupyter_port in lakehouse.toml)."
        )
