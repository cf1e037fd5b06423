"""Machine learning on the lake (the SageMaker role): ``lake.ml``.

Training runs are tracked on the stack's MLflow server (lakehouse.ml.tracking),
models are registered there with a version, and ``serve`` starts MLflow's model
server for one version as a supervised endpoint (lakehouse.ml.serving). The
modules import scikit-learn and MLflow lazily: ``import lakehouse`` stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from lakehouse.client import Lakehouse
    from lakehouse.ml.serving import Endpoint, ModelSummary

# The namespace every ML output table goes to.
ML_NAMESPACE = "ml"


def output_types(table: pa.Table) -> dict[str, pa.DataType]:
    """The text columns of an output ``table``, each declared text for ``lake.ingest``.

    Ingest tries every date and timestamp format on the text columns of a new
    table (11.7 s for the 200,000 rows of ml.product_recommendations, measured);
    model output is typed already, and a name that looks like a date stays text.
    Declared as large_string: what an existing table's text columns read as.
    """
    import pyarrow as pa

    text = (pa.string(), pa.large_string())
    return {field.name: pa.large_string() for field in table.schema if field.type in text}


class MachineLearning:
    """Training, registry and endpoints of one lake house (``lake.ml``)."""

    def __init__(self, lake: Lakehouse) -> None:
        self.lake = lake

    def train_segments(self, **options: Any) -> Any:
        """Customer segmentation; see :func:`lakehouse.ml.segments.train_segments`."""
        return import_module("lakehouse.ml.segments").train_segments(self.lake, **options)

    def train_recommendations(self, **options: Any) -> Any:
        """Product recommendations; see :func:`lakehouse.ml.recommend.train_recommendations`."""
        module = import_module("lakehouse.ml.recommend")
        return module.train_recommendations(self.lake, **options)

    def serve(self, name: str, version: int | None = None, port: int | None = None) -> Endpoint:
        """Start (or find running) the endpoint of model ``name`` (latest version by default).

        Raises ModelNotFoundError for an unknown name or version.
        """
        from lakehouse.ml.serving import serve

        return serve(self.lake.settings, name, version, port)

    def stop(self, name: str | None = None) -> list[str]:
        """Stop the endpoint of ``name`` (every endpoint when None); returns what stopped."""
        from lakehouse.ml.serving import stop_endpoints

        return stop_endpoints(self.lake.settings, name)

    def endpoints(self) -> list[Endpoint]:
        """The running endpoints."""
        from lakehouse.ml.serving import running_endpoints

        return running_endpoints(self.lake.settings)

    def models(self) -> list[ModelSummary]:
        """Every registered model with its latest version."""
        from lakehouse.ml.serving import registered_models

        return registered_models(self.lake.settings)


__all__ = ["ML_NAMESPACE", "MachineLearning", "output_types"]
