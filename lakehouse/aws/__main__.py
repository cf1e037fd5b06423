"""``python -m lakehouse.aws``: serve the Athena, Glue and Lake Formation APIs on
``bind_host:aws_port``."""

from __future__ import annotations

import sys

from lakehouse.errors import LakehouseError


def main() -> int:
    """Run uvicorn until stopped; a bad setting prints one message and exits 2."""
    import uvicorn

    from lakehouse.aws.app import create_app
    from lakehouse.config import load_settings

    try:
        settings = load_settings()
        app = create_app(settings)
    except LakehouseError as exc:
        print(f"lakehouse aws: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=settings.bind_host, port=settings.aws_port,
                log_level="info", access_log=True, server_header=False)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
