"""AWS APIs answered by the lake house: Athena (on Trino), Glue (on the Iceberg REST
catalog) and Lake Formation (on the governance policy), so AWS code runs unchanged.

The ``aws`` service (``python -m lakehouse.aws``) serves them on ``aws_port``. Requests
and responses follow botocore's own service models (:mod:`lakehouse.aws.models`); an
operation is a function registered with :func:`lakehouse.aws.registry.operation`.
"""
