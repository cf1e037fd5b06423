"""Putting crawled files into Iceberg tables.

A new table is created with the dataset's columns plus one identity partition
field per Hive-style key. Parquet files are registered where they lie (a data
file entry per object, no byte copied), with the partition values from their
paths: Hive-style keys are usually not columns of the file, and Iceberg
readers (Spark, Trino, pyiceberg) take an identity partition's value from the
manifest for a column a data file lacks. CSV and JSON rows go through ingest
(its typing contract and commit), with the partition values added as columns.
Every commit's snapshot summary carries the record's batch id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.catalog import Catalog
from pyiceberg.io.pyarrow import (
    _check_pyarrow_schema_compatible,
    _ConvertToIcebergWithoutIDs,
    compute_statistics_plan,
    data_file_statistics_from_parquet_metadata,
    parquet_path_to_id_mapping,
    visit_pyarrow,
)
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import assign_fresh_schema_ids
from pyiceberg.table import Table, TableProperties
from pyiceberg.transforms import IdentityTransform
from pyiceberg.typedef import Record

from lakehouse.crawl.record import BATCH_PROPERTY

EPOCH = date(1970, 1, 1)
PARTITION_FIELD_ID = 1000  # Iceberg's first partition field id
GC_ENABLED = "gc.enabled"


@dataclass(frozen=True)
class ParquetFile:
    """A Parquet object to register: its URI, size, footer and typed partition values."""

    uri: str
    size: int
    metadata: pq.FileMetaData
    partition: tuple[object, ...]


def create_table(catalog: Catalog, name: str, columns: pa.Schema,
                 keys: dict[str, pa.DataType]) -> Table:  # fmt: skip
    """An empty table of ``columns`` plus ``keys``, identity-partitioned by ``keys``.

    The name mapping is set from the start, so files written without Iceberg's
    field ids (every landed Parquet file) are read by column name."""
    catalog.create_namespace_if_not_exists(name.split(".")[0])
    fields = [f for f in columns if f.name not in keys]
    fields += [pa.field(key, kind) for key, kind in keys.items()]
    schema = assign_fresh_schema_ids(
        visit_pyarrow(pa.schema(fields), _ConvertToIcebergWithoutIDs())
    )
    spec = PartitionSpec(*[
        PartitionField(source_id=schema.find_field(key).field_id, field_id=PARTITION_FIELD_ID + i,
                       transform=IdentityTransform(), name=key)
        for i, key in enumerate(keys)
    ])  # fmt: skip
    tx = catalog.create_table_transaction(name, schema=schema, partition_spec=spec)
    mapping = tx.table_metadata.schema().name_mapping.model_dump_json()
    tx.set_properties({TableProperties.DEFAULT_NAME_MAPPING: mapping})
    tx.commit_transaction()
    return catalog.load_table(name)  # the transaction's table is a staged one


def evolve(table: Table, columns: pa.Schema) -> None:
    """Add ``columns``' new fields (and allowed widenings) to the table, and keep its
    name mapping in step (one commit)."""
    with table.transaction() as tx:
        with tx.update_schema() as update:
            update.union_by_name(columns)
        mapping = tx.table_metadata.schema().name_mapping.model_dump_json()
        tx.set_properties({TableProperties.DEFAULT_NAME_MAPPING: mapping})


def check_parquet(table: Table, metadata: pq.FileMetaData) -> None:
    """ValueError (pyiceberg's words) when the file's columns do not fit the table."""
    _check_pyarrow_schema_compatible(
        table.schema(), metadata.schema.to_arrow_schema(),
        format_version=table.metadata.format_version,
    )  # fmt: skip


def _partition_record(values: tuple[object, ...]) -> Record:
    """Iceberg's partition tuple: a date as days since 1970-01-01."""
    return Record(*[(v - EPOCH).days if isinstance(v, date) else v for v in values])


def _data_file(table: Table, file: ParquetFile) -> DataFile:
    metadata = table.metadata
    schema = metadata.schema()
    statistics = data_file_statistics_from_parquet_metadata(
        parquet_metadata=file.metadata,
        stats_columns=compute_statistics_plan(schema, metadata.properties),
        parquet_column_mapping=parquet_path_to_id_mapping(schema),
    )
    return DataFile.from_args(
        content=DataFileContent.DATA, file_path=file.uri, file_format=FileFormat.PARQUET,
        partition=_partition_record(file.partition), file_size_in_bytes=file.size,
        sort_order_id=None, spec_id=metadata.default_spec_id, equality_ids=None,
        key_metadata=None, **statistics.to_serialized_dict(),
    )  # fmt: skip


def add_parquet(table: Table, files: list[ParquetFile], batch: str) -> None:
    """Register ``files`` in one snapshot whose summary names ``batch``; nothing is copied."""
    with table.transaction() as tx:
        if table.properties.get(GC_ENABLED) != "false":
            # The files are not the table's to delete (Iceberg's flag for tables made by
            # add_files or Spark's snapshot procedure: engines' expiry and orphan removal
            # refuse to run); the lake's own expiry keeps to the table's location.
            tx.set_properties({GC_ENABLED: "false"})
        update = tx.update_snapshot(snapshot_properties={BATCH_PROPERTY: batch})
        with update.fast_append() as append:
            for file in files:
                append.append_data_file(_data_file(table, file))


def remove_data_files(table: Table, uris: list[str], batch: str) -> list[str]:
    """Drop the data files at ``uris`` from the table in one snapshot; the ones it held."""
    wanted = set(uris)
    found = [task.file for task in table.scan().plan_files() if task.file.file_path in wanted]
    if not found:
        return []
    with table.transaction() as tx:
        update = tx.update_snapshot(snapshot_properties={BATCH_PROPERTY: batch})
        with update.overwrite() as overwrite:
            for data_file in found:
                overwrite.delete_data_file(data_file)
    return [data_file.file_path for data_file in found]


def landed(table: Table, batch: str) -> bool:
    """Whether a snapshot of the table's history carries ``batch`` in its summary."""
    for snapshot in table.snapshots():
        if snapshot.summary is not None and snapshot.summary[BATCH_PROPERTY] == batch:
            return True
    return False
