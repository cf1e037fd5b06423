"""The lake's own table layer: the catalog client, ingest, and the one keyed rewriter."""
