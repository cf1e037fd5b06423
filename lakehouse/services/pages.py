"""The web pages a person opens: the console, the dashboards and JupyterLab.

One place computes, from the service specs, each page's URL, how to sign in,
and the command that starts it when it is not running; `lakehouse up` and
`lakehouse status` print it, and a web page can show the same list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lakehouse.config import Settings

if TYPE_CHECKING:
    from lakehouse.runtimes import ServiceStatus

# (service, what a person calls the page), in the order they are listed.
WEB_PAGES = (("console", "console"), ("dashboards", "dashboards"), ("jupyter", "JupyterLab"))


@dataclass(frozen=True)
class WebPage:
    """One web page of the stack."""

    service: str
    label: str
    url: str
    """The service spec's URL (JupyterLab's carries its token)."""
    sign_in: str
    """The service's own words on signing in; empty when the URL is enough."""
    running: bool
    """Its service answered its health check in the status given."""
    start_command: str
    """What starts it (``lakehouse up --with NAME`` for an optional service)."""


def start_command(optional: bool, service: str) -> str:
    """``lakehouse up --with NAME`` for an optional service, else ``--services NAME``."""
    return f"lakehouse up {'--with' if optional else '--services'} {service}"


def web_pages(settings: Settings, statuses: list[ServiceStatus]) -> list[WebPage]:
    """The stack's web pages, with whether each runs according to ``statuses``
    (from ``get_runtime(settings).status()``). A page whose service this version
    of lakehouse does not have is left out."""
    from lakehouse.services import all_services

    known = {svc.name: svc for svc in all_services(settings)}
    healthy = {row.name for row in statuses if row.healthy}
    pages = []
    for name, label in WEB_PAGES:
        svc = known.get(name)
        if svc is None:
            continue
        pages.append(WebPage(name, label, svc.spec().url, svc.sign_in(), name in healthy,
                             start_command(svc.optional, name)))  # fmt: skip
    return pages
