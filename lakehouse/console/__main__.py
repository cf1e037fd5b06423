"""``python -m lakehouse.console``: serve the console on ``bind_host:console_port``."""

from __future__ import annotations

import sys

from lakehouse.errors import LakehouseError


def main() -> int:
    """Run uvicorn until stopped; a bad setting prints one message and exits 2."""
    import uvicorn

    from lakehouse.config import load_settings
    from lakehouse.console.app import create_app

    try:
        settings = load_settings()
        app = create_app(settings)
    except LakehouseError as exc:
        print(f"lakehouse console: {exc}", file=sys.stderr)
        return 2
    # One process, no reload: the supervisor owns it. Access log off: the pages
    # are polled by nobody, and a log line per static file drowned the errors.
    uvicorn.run(app, host=settings.bind_host, port=settings.console_port,
                log_level="info", access_log=False, server_header=False)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
