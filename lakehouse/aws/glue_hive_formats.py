"""Storage formats of Glue's Hive-style tables, between Glue's StorageDescriptor
(SerDe, input and output format classes, SerDe parameters) and the table properties
of Trino's Hive connector (``format``, ``textfile_field_separator``, ...)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lakehouse.aws.errors import AwsError

TEXT_INPUT = "org.apache.hadoop.mapred.TextInputFormat"
TEXT_OUTPUT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"


@dataclass(frozen=True)
class Format:
    """One storage format: Trino's name, Glue's classification and Hive's classes."""

    trino: str
    classification: str
    serde: str
    input_format: str
    output_format: str


FORMATS = (
    Format("PARQUET", "parquet", "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
           "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
           "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"),
    Format("TEXTFILE", "csv", "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
           TEXT_INPUT, TEXT_OUTPUT),
    Format("CSV", "csv", "org.apache.hadoop.hive.serde2.OpenCSVSerde", TEXT_INPUT, TEXT_OUTPUT),
    Format("JSON", "json", "org.apache.hive.hcatalog.data.JsonSerDe", TEXT_INPUT, TEXT_OUTPUT),
    Format("OPENX_JSON", "json", "org.openx.data.jsonserde.JsonSerDe", TEXT_INPUT, TEXT_OUTPUT),
    Format("ORC", "orc", "org.apache.hadoop.hive.ql.io.orc.OrcSerde",
           "org.apache.hadoop.hive.ql.io.orc.OrcInputFormat",
           "org.apache.hadoop.hive.ql.io.orc.OrcOutputFormat"),
)  # fmt: skip
# SerDe parameters and the Trino table properties they become, per Trino format.
SERDE_PROPERTIES = {
    "TEXTFILE": {"field.delim": "textfile_field_separator",
                 "escape.delim": "textfile_field_separator_escape"},
    "CSV": {"separatorChar": "csv_separator", "quoteChar": "csv_quote",
            "escapeChar": "csv_escape"},
}  # fmt: skip
SKIP_HEADER = "skip.header.line.count"


def format_of(table_input: dict[str, Any]) -> Format:
    """The format a TableInput declares: by its SerDe, else its input format, else its
    ``classification`` parameter. InvalidInputException when none is known."""
    descriptor = table_input.get("StorageDescriptor") or {}
    serde = (descriptor.get("SerdeInfo") or {}).get("SerializationLibrary")
    for fmt in FORMATS:
        if serde and serde == fmt.serde:
            return fmt
    input_format = descriptor.get("InputFormat")
    classification = (table_input.get("Parameters") or {}).get("classification", "").lower()
    for fmt in FORMATS:
        if input_format == fmt.input_format and fmt.input_format != TEXT_INPUT:
            return fmt
    for fmt in FORMATS:
        if classification and classification == fmt.classification:
            return fmt
    raise AwsError(
        "InvalidInputException",
        f"The table's storage format is not one lakehouse reads (SerDe {serde or 'none'}, "
        f"InputFormat {input_format or 'none'}, classification {classification or 'none'}). "
        "Use Parquet, ORC, CSV (LazySimpleSerDe or OpenCSVSerde) or JSON.",
    )


def trino_properties(fmt: Format, table_input: dict[str, Any]) -> dict[str, Any]:
    """Trino's table properties for the format and its SerDe/table parameters."""
    descriptor = table_input.get("StorageDescriptor") or {}
    serde_parameters = (descriptor.get("SerdeInfo") or {}).get("Parameters") or {}
    found: dict[str, Any] = {"format": fmt.trino}
    for name, prop in SERDE_PROPERTIES.get(fmt.trino, {}).items():
        if serde_parameters.get(name):
            found[prop] = serde_parameters[name]
    skip = (table_input.get("Parameters") or {}).get(SKIP_HEADER)
    if skip and fmt.trino in ("TEXTFILE", "CSV"):
        found["skip_header_line_count"] = int(skip)
    return found


def storage_of(fmt_name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """Glue's SerdeInfo, InputFormat and OutputFormat for a table of Trino's format
    ``fmt_name`` whose metastore parameters (SerDe ones included) are ``parameters``."""
    fmt = next((f for f in FORMATS if f.trino == fmt_name.upper()), None)
    if fmt is None:
        return {"SerdeInfo": {}}
    serde_parameters = {name: str(parameters[name])
                        for name in SERDE_PROPERTIES.get(fmt.trino, {}) if name in parameters}  # fmt: skip
    return {
        "InputFormat": fmt.input_format, "OutputFormat": fmt.output_format,
        "SerdeInfo": {"SerializationLibrary": fmt.serde, "Parameters": serde_parameters},
    }  # fmt: skip
