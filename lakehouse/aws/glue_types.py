"""Column types between Iceberg and Glue: Glue (and Athena) name types as Hive does
(``bigint``, ``string``, ``decimal(10,2)``, ``array<struct<a:int>>``).

Iceberg to Glue follows Iceberg's own Glue catalog (``IcebergToGlueConverter``):
``timestamptz`` shows as ``timestamp``, ``uuid`` and ``time`` as ``string``,
``fixed`` as ``binary``; the exact Iceberg type stays in the column's
``iceberg.field.type`` parameter, so nothing is hidden. Glue to Iceberg only widens:
``tinyint`` and ``smallint`` become ``int``, ``char(n)`` and ``varchar(n)``
``string``; a type Iceberg cannot hold is refused.
"""

from __future__ import annotations

import re

from pyiceberg.types import (
    BinaryType,
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    FixedType,
    FloatType,
    IcebergType,
    IntegerType,
    ListType,
    LongType,
    MapType,
    NestedField,
    StringType,
    StructType,
    TimestampType,
    TimestamptzType,
    TimeType,
    UUIDType,
)

from lakehouse.aws.errors import AwsError

PRIMITIVE_NAMES: dict[type[IcebergType], str] = {
    BooleanType: "boolean", IntegerType: "int", LongType: "bigint", FloatType: "float",
    DoubleType: "double", DateType: "date", TimeType: "string", TimestampType: "timestamp",
    TimestamptzType: "timestamp", StringType: "string", UUIDType: "string",
    BinaryType: "binary", FixedType: "binary",
}  # fmt: skip
# Glue/Hive primitive names and the Iceberg type each becomes.
GLUE_PRIMITIVES: dict[str, IcebergType] = {
    "boolean": BooleanType(), "tinyint": IntegerType(), "smallint": IntegerType(),
    "int": IntegerType(), "integer": IntegerType(), "bigint": LongType(),
    "float": FloatType(), "real": FloatType(), "double": DoubleType(), "date": DateType(),
    "timestamp": TimestampType(), "string": StringType(), "binary": BinaryType(),
}  # fmt: skip
TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*|`[^`]+`|\d+|[<>(),:])")


def glue_type(kind: IcebergType) -> str:
    """The Glue/Hive type name of an Iceberg type (``decimal(10,2)``, ``map<string,int>``)."""
    if isinstance(kind, DecimalType):
        return f"decimal({kind.precision},{kind.scale})"
    if isinstance(kind, ListType):
        return f"array<{glue_type(kind.element_type)}>"
    if isinstance(kind, MapType):
        return f"map<{glue_type(kind.key_type)},{glue_type(kind.value_type)}>"
    if isinstance(kind, StructType):
        return (
            "struct<" + ",".join(f"{f.name}:{glue_type(f.field_type)}" for f in kind.fields) + ">"
        )
    return PRIMITIVE_NAMES[type(kind)]


def iceberg_type(text: str, column: str = "") -> IcebergType:
    """The Iceberg type of a Glue type name (nested fields optional).

    Nested field ids are placeholders (pyiceberg assigns fresh ids when a table is
    created or a column added). Raises AwsError (InvalidInputException) naming the
    column for a type Iceberg cannot hold or a malformed name."""
    tokens = _tokens(text, column)
    parser = _Parser(tokens, text, column)
    kind = parser.type()
    if parser.position != len(tokens):
        raise _bad(text, column, f"unexpected '{tokens[parser.position]}'")
    return kind


def _tokens(text: str, column: str) -> list[str]:
    tokens, position = [], 0
    while position < len(text):
        found = TOKEN.match(text, position)
        if not found:
            if text[position:].strip() == "":
                break
            raise _bad(text, column, f"unexpected '{text[position:].strip()[:10]}'")
        tokens.append(found.group(1))
        position = found.end()
    return tokens


def _bad(text: str, column: str, why: str) -> AwsError:
    where = f" of column {column}" if column else ""
    return AwsError(
        "InvalidInputException",
        f"Type '{text}'{where} is not a Glue type Iceberg can hold ({why}). Use boolean, "
        "tinyint, smallint, int, bigint, float, double, decimal(p,s), date, timestamp, "
        "string, char(n), varchar(n), binary, array<t>, map<k,v> or struct<name:t,...>.",
    )


class _Parser:
    """A recursive-descent reader of one Glue type name (Hive's type grammar)."""

    def __init__(self, tokens: list[str], text: str, column: str) -> None:
        self.tokens, self.text, self.column = tokens, text, column
        self.position = 0
        self.next_id = 1

    def _take(self, expected: str | None = None) -> str:
        if self.position >= len(self.tokens):
            raise _bad(self.text, self.column, "it ends too early")
        token = self.tokens[self.position]
        if expected is not None and token != expected:
            raise _bad(self.text, self.column, f"expected '{expected}', found '{token}'")
        self.position += 1
        return token

    def _peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def type(self) -> IcebergType:
        name = self._take().lower()
        if name == "array":
            self._take("<")
            element = self.type()
            self._take(">")
            return ListType(self._id(), element, element_required=False)
        if name == "map":
            self._take("<")
            key = self.type()
            self._take(",")
            value = self.type()
            self._take(">")
            return MapType(self._id(), key, self._id(), value, value_required=False)
        if name == "struct":
            return self._struct()
        return self._primitive(name)

    def _struct(self) -> StructType:
        self._take("<")
        fields = []
        while True:
            name = self._take().strip("`")
            self._take(":")
            fields.append(NestedField(self._id(), name, self.type(), required=False))
            if self._take() == ">":
                return StructType(*fields)
            self.position -= 1
            self._take(",")

    def _primitive(self, name: str) -> IcebergType:
        if name in ("decimal", "numeric"):
            if self._peek() != "(":
                return DecimalType(10, 0)  # Hive's default
            self._take("(")
            precision = self._number()
            scale = 0
            token = self._take()
            if token == ",":
                scale = self._number()
                self._take(")")
            elif token != ")":
                raise _bad(self.text, self.column, f"expected ',' or ')', found '{token}'")
            if not 0 < precision <= 38 or not 0 <= scale <= precision:
                raise _bad(self.text, self.column, "precision 1..38, scale 0..precision")
            return DecimalType(precision, scale)
        if name in ("char", "varchar"):
            self._take("(")
            self._number()
            self._take(")")
            return StringType()
        if name not in GLUE_PRIMITIVES:
            raise _bad(self.text, self.column, f"unknown type '{name}'")
        return GLUE_PRIMITIVES[name]

    def _number(self) -> int:
        token = self._take()
        if not token.isdigit():
            raise _bad(self.text, self.column, f"expected a number, found '{token}'")
        return int(token)


# Glue/Hive primitive names as Trino's Hive connector spells them.
TRINO_OF_GLUE = {"string": "varchar", "int": "integer", "float": "real",
                 "binary": "varbinary", "timestamp": "timestamp(3)"}  # fmt: skip
GLUE_OF_TRINO = {"varchar": "string", "integer": "int", "real": "float",
                 "varbinary": "binary", "timestamp": "timestamp"}  # fmt: skip
CONTAINERS = {"array": "array", "map": "map", "struct": "row"}
TRINO_TOKEN = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*|"(?:[^"]|"")*"|\d+|[(),])')


def trino_type(text: str, column: str = "") -> str:
    """Trino's (Hive connector's) spelling of a Glue type: ``array<struct<a:int>>``
    becomes ``array(row("a" integer))``. Raises AwsError for a malformed name."""
    iceberg_type(text, column)  # the grammar check, with Glue's message
    tokens, out, stack = _tokens(text, column), [], []
    position, expect_name = 0, False
    while position < len(tokens):
        token, low = tokens[position], tokens[position].lower()
        following = tokens[position + 1] if position + 1 < len(tokens) else ""
        if expect_name:
            out.append('"' + token.strip("`").replace('"', '""') + '" ')
            position, expect_name = position + 2, False  # the name and its ':'
        elif low in CONTAINERS and following == "<":
            out.append(CONTAINERS[low] + "(")
            stack.append(low)
            position, expect_name = position + 2, low == "struct"
        elif token == ">":
            out.append(")")
            stack.pop()
            position += 1
        elif token == ",":
            out.append(", ")
            position, expect_name = position + 1, bool(stack) and stack[-1] == "struct"
        elif following == "(":  # decimal(p,s), char(n), varchar(n): as written
            end = tokens.index(")", position)
            out.append(
                low + "(" + ",".join(t for t in tokens[position + 2 : end] if t != ",") + ")"
            )
            position = end + 1
        else:
            out.append(TRINO_OF_GLUE.get(low, low))
            position += 1
    return "".join(out)


def glue_type_of_trino(text: str) -> str:
    """Glue's spelling of a type Trino reports (``row("a b" integer)`` becomes
    ``struct<a b:int>``, ``timestamp(3)`` ``timestamp``)."""
    tokens = [m.group(1) for m in TRINO_TOKEN.finditer(text)]
    out, stack = [], []
    position, expect_name = 0, False
    while position < len(tokens):
        token, low = tokens[position], tokens[position].lower()
        following = tokens[position + 1] if position + 1 < len(tokens) else ""
        if expect_name:
            out.append(token.strip('"').replace('""', '"') + ":")
            position, expect_name = position + 1, False
        elif low in ("array", "map", "row") and following == "(":
            out.append({"array": "array", "map": "map", "row": "struct"}[low] + "<")
            stack.append(low)
            position, expect_name = position + 2, low == "row"
        elif token == ")":
            out.append(">")
            stack.pop()
            position += 1
        elif token == ",":
            out.append(",")
            position, expect_name = position + 1, bool(stack) and stack[-1] == "row"
        elif following == "(":
            end = tokens.index(")", position)
            inner = ",".join(t for t in tokens[position + 2 : end] if t != ",")
            out.append("timestamp" if low == "timestamp" else f"{low}({inner})")
            position = end + 1
        else:
            out.append(GLUE_OF_TRINO.get(low, low))
            position += 1
    return "".join(out)
