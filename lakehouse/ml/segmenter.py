"""The registered segmentation model: the fitted pipeline and its segments' names, as a pyfunc.

One ``predict`` serves the batch transform (``ml.customer_segments``) and the live
endpoint: for each feature row (the columns of
:data:`lakehouse.ml.segments.MODEL_FEATURES`, a missing value as NULL/NaN) it
answers the segment id, the segment's readable name and the distance to the
segment's centroid in the model's scaled space.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lakehouse.ml.segments import MODEL_FEATURES, assign
from lakehouse.ml.tracking import logged_warnings

with logged_warnings("importing mlflow.pyfunc"):
    # MLflow's own agent schemas warn about Any type hints on import: nothing of ours.
    from mlflow.pyfunc import PythonModel

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline


class CustomerSegmenter(PythonModel):
    """The registered model. ``predict`` takes a frame with the model's feature columns
    (other columns are ignored) and returns one row per input row, in order:
    segment_id (int32), segment_name (str), distance (float64, >= 0)."""

    def __init__(self, pipeline: Pipeline, names: Mapping[int, str]) -> None:
        self.pipeline, self.names = pipeline, dict(names)

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        # A DataFrame type hint: MLflow validates nothing itself, the checks are below.
        frame = pd.DataFrame(model_input)
        missing = [name for name in MODEL_FEATURES if name not in frame.columns]
        if missing:
            raise ValueError(f"the input lacks the feature column(s) {', '.join(missing)}")
        features = frame[list(MODEL_FEATURES)].astype(np.float64)
        labels, distances = assign(self.pipeline, features)
        return pd.DataFrame(
            {
                "segment_id": labels.astype(np.int32),
                "segment_name": [self.names[int(label)] for label in labels],
                "distance": distances.astype(np.float64),
            },
            index=frame.index,
        )
