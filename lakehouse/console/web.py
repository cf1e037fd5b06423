"""What every page module uses: templates, rendering, the settings and the lake.

A page module under ``pages/`` defines ``router = APIRouter()``; its handlers
call library functions through :func:`lake_of` and answer with :func:`render`.
A :class:`~lakehouse.errors.LakehouseError` they raise becomes the error page
(``failures.py``), so handlers do not catch it themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

if TYPE_CHECKING:
    from lakehouse.client import Lakehouse
    from lakehouse.config import Settings

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"

# The navigation bar: (label, path), in order. A page module serves its path.
NAV = (
    ("Overview", "/"),
    ("Catalog", "/catalog"),
    ("Query", "/query"),
    ("Zero-ETL", "/zero-etl"),
    ("Models", "/models"),
)


def with_query(request: Request, **changes: object) -> str:
    """This page's path and query with ``changes`` applied (None removes a parameter)."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = str(value)
    query = urlencode(params)
    path = raw_path(request)
    return f"{path}?{query}" if query else path


def raw_path(request: Request) -> str:
    """The path as sent, still percent-encoded: a name holding ``/`` stays one
    segment (``%2F``), as the page's own links have it (``url.path`` is decoded)."""
    raw: bytes = request.scope.get("raw_path") or request.url.path.encode()
    return raw.decode("latin-1")


def path_segment(name: object) -> str:
    """``name`` as one URL path segment: every reserved character, ``/`` too, escaped."""
    return quote(str(name), safe="")


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.globals["nav"] = NAV
templates.env.globals["with_query"] = with_query
templates.env.filters["segment"] = path_segment
templates.env.globals["raw_path"] = raw_path


def count_text(value: int | None, sign: str = "", hidden: bool = False) -> str:
    """``1,234`` (with ``sign`` in front), or ``unknown`` when the source does not say
    (``hidden`` when the policy hides it: lakehouse.governance.table_view)."""
    if value is None:
        return "hidden" if hidden else "unknown"
    return f"{sign}{value:,}"


def size_text(value: int | None, sign: str = "", hidden: bool = False) -> str:
    """``1.0 KiB`` (with ``sign`` in front), or ``unknown`` when the source does not say
    (``hidden`` when the policy hides it)."""
    from jinja2.filters import do_filesizeformat

    if value is None:
        return "hidden" if hidden else "unknown"
    return f"{sign}{do_filesizeformat(value, True)}"


templates.env.filters["count"] = count_text
templates.env.filters["size"] = size_text


def command(settings: Settings, args: str) -> str:
    """``lakehouse ARGS`` as a user types it to reach this console's lake house.

    ``--home H`` is included unless H is the home a plain ``lakehouse`` run in
    the project would find (the config file's ``home``, else the project's
    ``.lakehouse``); under the docker runtime the home is the container's, so it
    is not named.
    """
    import shlex

    if settings.runtime == "docker":
        return f"lakehouse {args}"
    if settings.home_dir == _plain_home():
        return f"lakehouse {args}"
    return f"lakehouse --home {shlex.quote(str(settings.home_dir))} {args}"


def _plain_home() -> Path | None:
    from lakehouse.config import read_config_file
    from lakehouse.errors import LakehouseError
    from lakehouse.home import find_project

    try:
        configured = read_config_file().get("home")
    except LakehouseError:  # a broken config file: name the home, to be safe
        return None
    if configured:
        return Path(str(configured)).expanduser().absolute()
    return find_project().default_home


def start_command(settings: Settings, service: str | None = None, optional: bool = False) -> str:
    """The command that starts ``service`` (the whole lake when None): every start
    command the console shows comes from here (``--with`` for an optional service)."""
    up = "up --runtime docker" if settings.runtime == "docker" else "up"
    if service is None:
        return command(settings, up)
    return command(settings, f"{up} {'--with' if optional else '--services'} {service}")


def hint_for(settings: Settings, error: Any) -> str | None:
    """``error``'s hint, with the commands it names for this console's home.

    A service that is not answering gets the exact start command (the library's
    own hint cannot know which home the console serves).
    """
    from lakehouse.errors import ServiceUnavailableError

    if isinstance(error, ServiceUnavailableError):
        name = error.service
        return (f"Start it with `{start_command(settings, name, _is_optional(settings, name))}` "
                f"(see `{command(settings, 'status')}`, and `{command(settings, 'logs ' + name)}` "
                "for why it stopped), then try again.")  # fmt: skip
    hint: str | None = getattr(error, "hint", None)
    return hint


def _is_optional(settings: Settings, service: str) -> bool:
    from lakehouse.services import all_services

    return any(svc.name == service and svc.optional for svc in all_services(settings))


def _page_hint(request: Request, error: Any) -> str | None:
    return hint_for(settings_of(request), error)


def _page_start_command(request: Request, service: str | None = None) -> str:
    settings = settings_of(request)
    return start_command(settings, service, _is_optional(settings, service or ""))


def _page_command(request: Request, args: str) -> str:
    return command(settings_of(request), args)


def _page_acting(request: Request) -> Any:
    """Who the console acts as, for every page's header; None when it cannot tell."""
    from lakehouse.console.governed import acting_of

    try:
        return acting_of(request)
    except Exception:  # the header must never break a page (an error page included)
        return None


templates.env.globals["hint_for"] = _page_hint
templates.env.globals["acting"] = _page_acting
templates.env.globals["start_command"] = _page_start_command
templates.env.globals["command"] = _page_command


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    """The template rendered with ``context`` (plus ``request`` and the nav)."""
    return templates.TemplateResponse(request, template, context or {}, status_code=status_code)


def settings_of(request: Request) -> Settings:
    """The settings the console was started with."""
    settings: Settings = request.app.state.settings
    return settings


def lake_of(request: Request) -> Lakehouse:
    """The console's one library connection (``lakehouse.connect`` of its settings).

    Shared by every request: the catalog client is opened on first use and kept.
    Engines that are not thread-safe (DuckDB) must be used under ``lake_lock(request)``.
    """
    lake: Lakehouse = request.app.state.lake
    return lake


def lake_lock(request: Request) -> Any:
    """A lock for what one request at a time may use on the shared connection."""
    return request.app.state.lake_lock
