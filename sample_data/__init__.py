"""Deterministic synthetic sample data for the lake house (retail orders + web clickstream).

``generate(scale, seed)`` returns one pyarrow Table per name in ``TABLES``; see
:mod:`sample_data.retail` for the schemas and the guarantees the data satisfies.
"""

from sample_data.retail import TABLES, generate

__all__ = ["TABLES", "generate"]
