"""Read CSV, JSON and Parquet files (local or s3://) into one Arrow table per file.

CSV: the delimiter is detected among ``, ; TAB |`` from the first lines unless
given; an unquoted empty cell and every ``--null`` marker is NULL for every
type, while a quoted empty cell (``""``) is an empty string, as in
PostgreSQL's CSV format. Columns whose type is already known (from the table
or ``--type``) are read as text and parsed by the contract, so ``007`` stays
``007`` in a string column and ``"1,234.50"`` can become a decimal.

JSON: JSON Lines, one top-level array of objects, or a single object.
Timestamps are inferred from text by lakehouse rather than by pyarrow (which
drops the zone), so a zone offset makes a timestamptz.

CSV and JSON text is decoded with ``encoding`` (UTF-8 by default); bytes that
are not valid in it are refused naming the file and line, never loaded as
binary. Numbers are read exactly (see ``exact``): a value with more digits
than a double holds makes its column a decimal, or is refused.

Directories are read recursively; files whose name starts with ``.`` or ``_``
(``_SUCCESS``, ``.crc``) are skipped. The format is ``--format``, else the
source's extension, else the one its files' extensions name. Files whose
extensions name different formats (or another format than ``--format``) are
refused; files without a known extension take the given format. An empty file
(0 bytes, or only blanks) reads as a table without columns or rows.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.fs as pa_fs
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from lakehouse.config import Settings
from lakehouse.errors import IngestError
from lakehouse.lake.casting import TextFormats
from lakehouse.lake.exact import LONG_NUMBER, exact_column
from lakehouse.lake.json_records import records
from lakehouse.lake.names import check_columns
from lakehouse.outages import CONNECT_SECONDS, S3_REQUEST_SECONDS

FORMATS: dict[str, str] = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv", ".json": "json", ".jsonl": "json",
    ".ndjson": "json", ".parquet": "parquet", ".pq": "parquet",
}  # fmt: skip
COMPRESSIONS = (".gz", ".bz2", ".zst", ".lz4")
DELIMITERS = ",;\t|"
SAMPLE_BYTES = 64 * 1024
# Encodings in which a NUL byte is part of ordinary text.
BINARY_SAFE_CODECS = frozenset({"utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le",
                                "utf-32-be", "utf16", "utf32"})  # fmt: skip
TYPE_CONFLICT = re.compile(r"Column\((\S*)\) changed from (\w+) to (\w+)")
# The text a number is written back as: no leading zeros or "+", no bare "." (case-blind
# nan/inf are a double's own spellings).
CANONICAL_INTEGER = r"^(0|-?[1-9][0-9]*)$"
CANONICAL_NUMBER = r"^(-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?|(?i:nan|-?inf(inity)?))$"


@dataclass(frozen=True)
class ReadOptions:
    """How to read the input. ``delimiter`` None: detected; ``nulls``: extra NULL markers."""

    format: str | None = None
    delimiter: str | None = None
    quote: str = '"'
    nulls: tuple[str, ...] = ()
    date_format: str | None = None
    timestamp_format: str | None = None
    text_columns: frozenset[str] = field(default_factory=frozenset)
    encoding: str = "utf-8"

    @property
    def formats(self) -> TextFormats:
        return TextFormats(self.date_format, self.timestamp_format)


def format_suffix(name: str) -> str:
    """The extension that names the format, lower-case: ``.csv`` also for ``x.csv.gz``
    (pyarrow decompresses gzip, bz2, zstd and lz4 files by their extension)."""
    path = Path(name)
    if path.suffix.lower() in COMPRESSIONS:
        path = path.with_suffix("")
    return path.suffix.lower()


def detect_format(source: str, fmt: str | None) -> str:
    """'csv', 'json' or 'parquet', from ``fmt`` or the extension."""
    if fmt:
        if fmt not in set(FORMATS.values()):
            raise IngestError(f"Unknown format '{fmt}'.", hint="Use csv, json or parquet.")
        return fmt
    suffix = format_suffix(source.rstrip("/"))
    if suffix in FORMATS:
        return FORMATS[suffix]
    raise IngestError(
        f"Cannot tell the format of '{source}' from its extension.",
        hint="Pass --format csv|json|parquet.",
    )


def check_options(options: ReadOptions) -> None:
    """IngestError for a delimiter or quote that is not one character."""
    for flag, value in (("--delimiter", options.delimiter), ("--quote", options.quote)):
        if value is not None and len(value) != 1:
            raise IngestError(
                f"{flag} must be one character, got {value!r}.",
                hint=f"E.g. {flag} ';' (or $'\\t' for a tab).",
            )


def _filesystem(source: str, settings: Settings) -> tuple[pa_fs.FileSystem, str]:
    if source.startswith("s3://"):
        fs = pa_fs.S3FileSystem(
            access_key=settings.access_key, secret_key=settings.secret_key,
            endpoint_override=settings.s3_endpoint, region=settings.region, scheme="http",
            connect_timeout=CONNECT_SECONDS, request_timeout=S3_REQUEST_SECONDS,
        )  # fmt: skip
        return fs, source.removeprefix("s3://")
    path = Path(source).expanduser()
    if not path.exists():
        raise IngestError(f"Input {source} does not exist.", hint="Check the path.")
    return pa_fs.LocalFileSystem(), str(path.resolve())


def read_frames(
    source: str, settings: Settings, options: ReadOptions
) -> list[tuple[str, pa.Table]]:
    """(file, table) for every file of ``source``; a read error becomes an IngestError.

    An empty file (no bytes but blanks) is a table without columns or rows.
    """
    check_options(options)
    fs, path = _filesystem(source, settings)
    kind = "?"
    try:
        files = _list_files(fs, path, source)
        labels = [_label(source, path, f) for f in files]
        kind = detect_format(source, options.format or _format_of_files(source, labels))
        check_extensions(labels, kind, options.format)
        frames = [
            (_label(source, path, file), _read_one(fs, file, kind, options)) for file in files
        ]
    except IngestError:
        raise
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, ValueError) as exc:
        raise IngestError(
            f"Cannot read {source} as {kind}: {exc}",
            hint="Fix the file (or pass the right --format); the table was not changed.",
        ) from exc
    return frames


def _format_of_files(source: str, labels: list[str]) -> str | None:
    """The format named by the source's extension, else by its files' (when they name
    one or more; several are refused by ``check_extensions``), else None."""
    if format_suffix(source.rstrip("/")) in FORMATS:
        return None
    named = sorted({FORMATS[format_suffix(f)] for f in labels
                    if format_suffix(f) in FORMATS})  # fmt: skip
    return named[0] if named else None


def _list_files(fs: pa_fs.FileSystem, path: str, source: str) -> list[str]:
    info = fs.get_file_info(path)
    if info.type == pa_fs.FileType.NotFound:
        raise IngestError(f"Input {source} does not exist.", hint="Check the path or S3 URI.")
    if info.type != pa_fs.FileType.Directory:
        return [path]
    listed = fs.get_file_info(pa_fs.FileSelector(path, recursive=True))
    files = sorted(
        f.path
        for f in listed
        if f.type == pa_fs.FileType.File and not f.base_name.startswith((".", "_"))
    )
    if not files:
        raise IngestError(f"No files found under {source}.", hint="Check the path.")
    return files


def check_extensions(files: list[str], kind: str, given: str | None) -> None:
    """IngestError when files' extensions name other formats than ``kind`` or each other."""
    by_format: dict[str, list[str]] = {}
    for file in files:
        named = FORMATS.get(format_suffix(file))
        if named is not None:
            by_format.setdefault(named, []).append(file)
    others = {fmt: names for fmt, names in by_format.items() if fmt != kind}
    if not others:
        return
    listed = "; ".join(f"{fmt}: {', '.join(names[:3])}" for fmt, names in sorted(by_format.items()))
    what = f"--format {given}" if given else f"the format {kind}"
    raise IngestError(
        f"The input's files are of different formats ({listed}), so they cannot all be read "
        f"as {what}.",
        hint="Ingest each format from its own directory (or file); the table was not changed.",
    )


def _label(source: str, root: str, file: str) -> str:
    """The file as the user named it: the source itself, or source/relative path."""
    return source if file == root else f"{source.rstrip('/')}/{file[len(root) :].lstrip('/')}"


def _read_one(fs: pa_fs.FileSystem, path: str, kind: str, options: ReadOptions) -> pa.Table:
    if kind == "parquet":
        if fs.get_file_info(path).size == 0:
            return pa.table({})
        return pq.read_table(path, filesystem=fs)
    with fs.open_input_stream(path) as stream:
        raw = stream.read()
    text = decode(raw, path, options.encoding)
    if not text.strip():
        return pa.table({})
    if kind == "csv":
        return read_csv(text.encode(), path, options)
    return read_json(text.encode(), path)


def decode(raw: bytes, path: str, encoding: str) -> str:
    """The file's text (a UTF-8 byte order mark dropped); IngestError naming the line of
    the first byte that is not valid in ``encoding``, or of a NUL byte (binary data)."""
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    nul = raw.find(b"\x00")
    if nul >= 0 and codec.lower().replace("_", "-") not in BINARY_SAFE_CODECS:
        line = raw[:nul].count(b"\n") + 1
        raise IngestError(
            f"{path} is not text: it holds a NUL byte on line {line} "
            "(binary data, or a compressed or UTF-16 file).",
            hint="Ingest CSV or JSON text, or Parquet with --format parquet; pass --encoding "
            "utf-16 for UTF-16 text. The table was not changed.",
        )
    try:
        return raw.decode(codec)
    except LookupError as exc:
        raise IngestError(
            f"Unknown encoding '{encoding}'.", hint="E.g. --encoding utf-8 or --encoding latin-1."
        ) from exc
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise IngestError(
            f"{path} is not valid {encoding} text: byte {raw[exc.start : exc.start + 1]!r} "
            f"on line {line} ({exc.reason}).",
            hint="Pass the file's encoding, e.g. --encoding latin-1 (or cp1252); "
            "the table was not changed.",
        ) from exc


def sniff_delimiter(sample: str, quote: str) -> str:
    """The delimiter of a CSV sample among , ; TAB |, or ',' when it has one column."""
    lines = "\n".join(sample.splitlines()[:20])
    try:
        return csv.Sniffer().sniff(lines, delimiters=DELIMITERS).delimiter
    except csv.Error:
        header = sample.splitlines()[0] if sample else ""
        counts = {d: header.count(d) for d in DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


def read_csv(raw: bytes, path: str, options: ReadOptions) -> pa.Table:
    """A CSV file's rows; columns in ``options.text_columns`` (lower-case names) as text."""
    sample = raw[:SAMPLE_BYTES].decode("utf-8-sig", errors="replace")
    default = "\t" if path.lower().endswith(".tsv") else None
    delimiter = options.delimiter or default or sniff_delimiter(sample, options.quote)
    header = next(csv.reader(io.StringIO(sample), delimiter=delimiter, quotechar=options.quote), [])
    check_columns(header, path)  # before pyarrow, which keeps two columns of one name
    check_quotes_closed(raw, path, delimiter, options.quote)
    text = {name: pa.string() for name in header if name.lower() in options.text_columns}
    convert = pa_csv.ConvertOptions(
        column_types=text, null_values=["", *options.nulls], strings_can_be_null=True,
        quoted_strings_can_be_null=False, true_values=["true", "True", "TRUE"],
        false_values=["false", "False", "FALSE"],
    )  # fmt: skip
    parse = pa_csv.ParseOptions(delimiter=delimiter, quote_char=options.quote)
    try:
        table = pa_csv.read_csv(io.BytesIO(raw), parse_options=parse, convert_options=convert)
        numbers = [f.name for f in table.schema if _is_number(f.type)]
        if not numbers:
            return table
        convert.column_types = {name: pa.string() for name in numbers}
        convert.include_columns = numbers
        text = pa_csv.read_csv(io.BytesIO(raw), parse_options=parse, convert_options=convert)
        table = _keep_non_canonical_as_text(table, text)
        doubles = [f.name for f in table.schema if pa.types.is_floating(f.type)]
        texts = {name: text.column(name) for name in doubles}
        return _exact(table, path, texts, lambda row: _csv_line(raw, row, delimiter, options))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        how = "given" if options.delimiter else "detected"
        raise IngestError(
            f"Cannot read {path} as CSV with delimiter {delimiter!r} ({how}): "
            f"{str(exc).splitlines()[0]}",
            hint="Pass --delimiter (e.g. --delimiter ';') or --quote if that is not the file's "
            "own, or fix the file; the table was not changed.",
        ) from exc


def check_quotes_closed(raw: bytes, path: str, delimiter: str, quote: str) -> None:
    """IngestError when a quoted field is still open at the end of the file (it would
    swallow every row after it), naming the line its quote opened on. A quote opens a
    field only at its start; a closed quoted field may span lines."""
    if quote.encode() not in raw:
        return
    q, d = re.escape(quote.encode()), re.escape(delimiter.encode())
    field = re.compile(rb"(?:(?<=[" + d + rb"\r\n])|\A)" + q + rb"[^" + q + rb"]*(?:" + q + q
                       + rb"[^" + q + rb"]*)*(" + q + rb"?)")  # fmt: skip
    last = None
    for last in field.finditer(raw):  # noqa: B007 - only the last quoted field can be open
        pass
    if last is None or last.group(1) or last.end() != len(raw):
        return
    line = raw.count(b"\n", 0, last.start()) + 1
    raise IngestError(
        f"{path}: the quoted field opened on line {line} (by {quote!r}) is never closed, so "
        "every line after it would be read as that one value.",
        hint="Close the quote in the file, or pass --quote with the file's own quote "
        "character if it is not '\"'; the table was not changed.",
    )


def _csv_line(raw: bytes, row: int, delimiter: str, options: ReadOptions) -> str:
    """Where data row ``row`` (0-based) starts: 'line N' (quoted fields may span lines)."""
    lines = io.StringIO(raw.decode("utf-8-sig", errors="replace"), newline="")
    reader = csv.reader(lines, delimiter=delimiter, quotechar=options.quote)
    start = 1
    for _ in range(row + 2):  # the header, then the rows before it
        start = reader.line_num + 1
        next(reader, None)
    return f"line {start}"


def _is_number(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind)


def _keep_non_canonical_as_text(table: pa.Table, text: pa.Table) -> pa.Table:
    """``table`` with each inferred number column whose text is not every value's canonical
    spelling (``02134``, ``+1555…``, ``1.``) put back as its text, so no digit is lost."""
    for name in text.column_names:
        kind = table.schema.field(name).type
        pattern = CANONICAL_INTEGER if pa.types.is_integer(kind) else CANONICAL_NUMBER
        values = pc.drop_null(text.column(name))
        if not pc.all(pc.match_substring_regex(values, pattern)).as_py():
            table = table.set_column(table.schema.get_field_index(name), name, text.column(name))
    return table


def read_json(raw: bytes, path: str) -> pa.Table:
    """JSON Lines, a top-level array of objects, or one object, as rows."""
    text = raw.decode("utf-8-sig")
    first = text.lstrip()[:1]
    long_numbers = LONG_NUMBER.search(text) is not None
    parsed = records(text, path, long_numbers)  # refuses repeated keys: pyarrow drops them
    # Before pyarrow, which reads numbers as doubles (refusing 1e400, rounding the rest).
    exact = _exact_json_numbers(parsed, path) if parsed and long_numbers else {}
    if first == "[":
        raw = _records_as_lines(text, path)
    if not raw.strip():
        return pa.table({})
    try:
        table = pa_json.read_json(io.BytesIO(raw))
    except pa.ArrowInvalid as exc:
        conflict = TYPE_CONFLICT.search(str(exc))
        if conflict:
            raise _type_conflict(path, text, conflict) from exc
        if first != "{":
            raise _json_error(path, exc) from exc
        raw = _records_as_lines(f"[{text}]", path)  # one pretty-printed object
        table = pa_json.read_json(io.BytesIO(raw))
    stamps = [f.name for f in table.schema if pa.types.is_timestamp(f.type)]
    if stamps:
        # pyarrow turns "…+02:00" into a zone-less timestamp; the contract infers from text.
        keep = pa.schema(
            [(f.name, pa.string() if f.name in stamps else f.type) for f in table.schema]
        )
        table = pa_json.read_json(
            io.BytesIO(raw), parse_options=pa_json.ParseOptions(explicit_schema=keep)
        )
    for name, column in exact.items():
        if name in table.column_names and pa.types.is_floating(table.schema.field(name).type):
            table = table.set_column(table.schema.get_field_index(name), name, column)
    return table


def _exact_json_numbers(parsed: list[tuple[int, Any]], path: str) -> dict[str, pa.ChunkedArray]:
    """{key: its numbers at their exact type} for each top-level key whose numbers a double
    would change; IngestError (naming the line) for one no decimal(P,S) holds."""
    rows = [(line, r) for line, r in parsed if isinstance(r, dict)]
    keys = {key for _, r in rows for key, value in r.items() if _is_json_number(value)}
    exact: dict[str, pa.ChunkedArray] = {}
    for key in sorted(keys):
        values = [r.get(key) for _, r in rows]
        if not all(v is None or _is_json_number(v) for v in values):
            continue  # mixed JSON types: refused by the type-conflict check
        text = pa.chunked_array([pa.array([_number_text(v) for v in values], pa.string())])
        column = exact_column(key, path, text, text.cast(pa.float64()),
                              lambda row: f"line {rows[row][0]}",
                              "write its values as JSON strings to keep them as text")  # fmt: skip
        if column is not None:
            exact[key] = column
    return exact


def _is_json_number(value: Any) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


def _exact(table: pa.Table, path: str, texts: dict[str, Any], where: Callable[[int], str],
           as_text: str = "--type {column}=string") -> pa.Table:  # fmt: skip
    """``table`` with each column of ``texts`` (its numbers as written) at its exact type;
    ``where(row)`` names the place of a row in the file."""
    for name, text in texts.items():
        exact = exact_column(name, path, text, table.column(name), where, as_text)
        if exact is not None:
            table = table.set_column(table.schema.get_field_index(name), name, exact)
    return table


def _number_text(value: Any) -> str | None:
    return None if value is None or isinstance(value, bool) else str(value)


def _records_as_lines(text: str, path: str) -> bytes:
    try:
        records = json.loads(text)
    except ValueError as exc:
        raise _json_error(path, exc) from exc
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise IngestError(
            f"{path} holds JSON that is not a list of objects.",
            hint="Write JSON Lines (one object per line), an array of objects, or one object.",
        )
    return "\n".join(json.dumps(r) for r in records).encode()


def _type_conflict(path: str, text: str, found: re.Match[str]) -> IngestError:
    """One column holding values of two JSON types: named with the line of the first
    value of the second type (pyarrow's row counts from its block, not the file)."""
    column, before, after = (
        found.group(1).strip("/").replace("/", "."),
        found.group(2),
        found.group(3),
    )
    top = column.split(".")[0]
    where = ""
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            record = json.loads(line)
        except ValueError:
            break  # not JSON Lines: pyarrow's message is all there is
        value = record.get(top) if isinstance(record, dict) else None
        if top == column and value is not None and _json_kind(value) == after:
            where = f" (line {number}: {json.dumps(value)})"
            break
    return IngestError(
        f"Column {column} in {path} holds JSON {before} values and {after} values{where}; "
        "a column has one type.",
        hint=f"Write every {column} value as one JSON type (e.g. quote the numbers to load "
        "them as text); the table was not changed.",
    )


def _json_kind(value: Any) -> str:
    kinds = ((bool, "boolean"), (int | float, "number"), (str, "string"), (list, "array"),
             (dict, "object"))  # fmt: skip
    return next((name for kind, name in kinds if isinstance(value, kind)), "null")


def _json_error(path: str, exc: Exception) -> IngestError:
    return IngestError(
        f"Cannot read {path} as JSON: {str(exc).splitlines()[0]}",
        hint="Write JSON Lines (one object per line), an array of objects, or one object; "
        "the table was not changed.",
    )


def text_columns(names: Collection[str]) -> frozenset[str]:
    """Lower-cased names, as ``ReadOptions.text_columns`` wants them."""
    return frozenset(n.lower() for n in names)
