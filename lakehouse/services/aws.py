"""The ``aws`` service (``python -m lakehouse.aws``): Athena, Glue and Lake Formation's
APIs on ``bind_host:aws_port`` (4566, the port LocalStack users know)."""

from __future__ import annotations

import sys

from lakehouse.services.base import Port, Service, ServiceSpec


class AwsService(Service):
    name = "aws"

    def spec(self) -> ServiceSpec:
        s = self.settings
        url = f"http://{s.client_host}:{s.aws_port}"
        return ServiceSpec(
            name=self.name,
            description="AWS APIs: Athena on Trino, Glue on the Iceberg catalog, Lake Formation",
            command=(sys.executable, "-m", "lakehouse.aws"),
            env={"LAKEHOUSE_HOME": str(s.home_dir), "PYTHONUNBUFFERED": "1"},
            ports=(Port("aws", s.aws_port),),
            health_url=f"{url}/_lakehouse/health",
            url=url,
            depends_on=("s3", "catalog", "trino"),
        )

    def start_hint(self) -> str:
        return (
            "Read the full log with `lakehouse logs aws`; if the port is taken (LocalStack "
            "uses 4566 too), set LAKEHOUSE_AWS_PORT (aws_port in lakehouse.toml)."
        )
