"""Requests from other sites are refused: a page elsewhere must not drive the console.

Two checks, both before any handler runs:

* the ``Host`` header must name this machine (``127.0.0.1``, ``localhost``,
  ``::1`` or the configured bind host), which defeats DNS rebinding: a foreign
  name that resolves to 127.0.0.1 gets no page at all;
* a state-changing request (POST, PUT, PATCH, DELETE) must come from the
  console's own origin: its ``Origin`` (or, without one, its ``Referer``) must
  be the address (scheme, host and port) the request was sent to. A request with neither is refused,
  since browsers send ``Origin`` with every POST; scripts use the CLI or library.

When the console is bound to all interfaces (``bind_host = 0.0.0.0``) any host
name is accepted, but the origin check stays.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
ALL_INTERFACES = frozenset({"0.0.0.0", "::"})


def host_name(host_header: str) -> str:
    """``127.0.0.1`` from ``127.0.0.1:8070``, ``::1`` from ``[::1]:8070``."""
    return urlsplit(f"//{host_header}").hostname or ""


def refusal(
    method: str, headers: Mapping[str, str], bind_host: str, scheme: str = "http"
) -> str | None:
    """Why this request must be refused, or None when it may go on.

    ``headers`` are the request's, with lower-case names; ``scheme`` is the one
    the request came in by (``http`` for the console's own server). An origin
    must match scheme, host and port: ``https://`` on the same host:port is
    another origin.
    """
    host = headers.get("host", "")
    if bind_host not in ALL_INTERFACES and host_name(host) not in LOOPBACK_NAMES | {bind_host}:
        return f"The console does not answer to the host name '{host_name(host) or host}'."
    if method.upper() not in UNSAFE_METHODS:
        return None
    origin = headers.get("origin") or _origin_of(headers.get("referer", ""))
    if not origin or origin == "null":
        return f"A {method.upper()} without an Origin or Referer header was refused."
    parts = urlsplit(origin)
    if parts.netloc != host or parts.scheme.lower() != scheme.lower():
        return f"A {method.upper()} from the page at {origin} was refused: it is another site."
    return None


def _origin_of(referer: str) -> str:
    parts = urlsplit(referer)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


REFUSAL_HINT = (
    "The console accepts changes only from its own pages, opened at its own address "
    "(e.g. http://127.0.0.1:8070). From a script, use the lakehouse CLI or library."
)
