"""The MLflow tracking server and model registry (the SageMaker role).

Its backend store is a SQLite file under the home (``<home>/data/mlflow``):
one server process writes it, it needs no other service, and the registry
lives and is backed up with the rest of the home. Artifacts (the models) go to
the ``mlflow`` bucket on the lake's S3; the server proxies them
(``mlflow-artifacts:/``), so clients need only the tracking URI.
"""

from __future__ import annotations

from pathlib import Path

from lakehouse.service_env import ServiceEnv
from lakehouse.services.base import Port, Service, ServiceSpec

ARTIFACT_BUCKET = "mlflow"
# The server's own environment in the cache (full mlflow pins pyarrow<26, below the
# project's); services/mlflow/requirements.lock pins every package.
SERVER_ENV = ServiceEnv("mlflow", "3.17.2", "the MLflow server")


def server_command(python: str, host: str, port: int, store: str, bucket: str) -> list[str]:
    """``mlflow server`` with one worker, artifacts proxied to ``s3://bucket/``."""
    return [python, "-m", "mlflow", "server", "--host", host, "--port", str(port),
            "--backend-store-uri", store, "--artifacts-destination", f"s3://{bucket}/",
            "--serve-artifacts", "--workers", "1"]  # fmt: skip


class MlflowService(Service):
    name = "mlflow"

    @property
    def data_dir(self) -> Path:
        return self.settings.home_dir / "data" / "mlflow"

    def spec(self) -> ServiceSpec:
        s = self.settings
        store = f"sqlite:///{self.data_dir / 'mlflow.db'}"
        return ServiceSpec(
            name=self.name,
            description="MLflow tracking server and model registry",
            command=tuple(
                server_command(
                    str(SERVER_ENV.python(s)), s.bind_host, s.mlflow_port, store, ARTIFACT_BUCKET
                )
            ),
            env={
                "MLFLOW_S3_ENDPOINT_URL": s.s3_endpoint,
                "AWS_ACCESS_KEY_ID": s.access_key,
                "AWS_SECRET_ACCESS_KEY": s.secret_key,
                "AWS_DEFAULT_REGION": s.region,
                "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
                "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
                "PYTHONUNBUFFERED": "1",
                # Its job runner (GenAI scorers, prompt optimisation) forks seven
                # consumers, about 500 MB; tracking and the registry do not use it.
                "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            },
            ports=(Port("mlflow", s.mlflow_port),),
            health_url=f"{s.mlflow_uri}/health",
            url=s.mlflow_uri,
            depends_on=("s3",),
            data_dir=self.data_dir,
        )

    def prepare(self) -> None:
        SERVER_ENV.ensure(self.settings)
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def after_ready(self) -> None:
        """Create the artifact bucket (before any client can log a model)."""
        from lakehouse.services.s3 import S3Service

        client = S3Service(self.settings).client()
        if not client.bucket_exists(ARTIFACT_BUCKET):
            client.make_bucket(ARTIFACT_BUCKET)

    def start_hint(self) -> str:
        return (
            "Read the full log with `lakehouse logs mlflow`; if the port is taken, set "
            "LAKEHOUSE_MLFLOW_PORT (mlflow_port in lakehouse.toml)."
        )
