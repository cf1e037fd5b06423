"""Pure logic of outage reporting, the CLI's last-resort guard and bad-input messages."""

from __future__ import annotations

import socket
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from lakehouse.cli.common import friendly_errors, printable
from lakehouse.config import load_settings
from lakehouse.errors import IngestError, QueryError, ServiceUnavailableError
from lakehouse.lake.names import check_columns, shown
from lakehouse.lake.readers import ReadOptions, read_frames
from lakehouse.outages import is_io_error, outage_of, reported_outages


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_io_errors_are_found_through_wrapping_errors() -> None:
    try:
        try:
            raise ConnectionRefusedError("refused")
        except OSError as inner:
            raise IngestError("Cannot append") from inner
    except IngestError as outer:
        assert is_io_error(outer)
    assert not is_io_error(QueryError("duckdb", "SELECT x", "no column x"))
    assert not is_io_error(ValueError("bad"))


def test_a_down_service_is_named_and_an_up_one_is_not_blamed() -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        up_port = listening.getsockname()[1]
        settings = load_settings(catalog_port=up_port, s3_port=closed_port())
        failure = OSError("connection reset")
        outage = outage_of(settings, failure, "reading", ["catalog", "s3"])
        assert isinstance(outage, ServiceUnavailableError) and outage.service == "s3"
        assert outage_of(settings, failure, "reading", ["catalog"]) is None
        with (
            pytest.raises(ServiceUnavailableError, match="s3 service"),
            reported_outages(settings, "reading", ["catalog", "s3"]),
        ):
            pass


def test_messages_escape_control_bytes_and_cut_long_values() -> None:
    assert printable("a\x1b[31mb\x00\nc") == "a\\x1b[31mb\\x00\nc"
    assert shown("\x07" + "x" * 200).startswith("\\x07") and len(shown("y" * 200)) == 60


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["a", "b", "a"], "'a' and 'a'"),
        (["x\x1b[31m"], "control characters"),
        (["a", " "], "without a name"),
    ],
)
def test_bad_column_names_are_one_ingest_error(names: list[str], message: str) -> None:
    with pytest.raises(IngestError, match=message) as info:
        check_columns(names, "f.csv")
    assert "\x1b" not in str(info.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"a,b,a\n1,2,3\n", "'a' and 'a'"),  # was a KeyError traceback
        (b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x1b[2J", "not text"),
    ],
)
@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_bad_csv_files_are_refused_without_echoing_bytes(
    tmp_path: Path, content: bytes, message: str, encoding: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(IngestError, match=message) as info:
        read_frames(str(path), load_settings(), ReadOptions(encoding=encoding))
    assert "\x1b" not in str(info.value) and "\x00" not in str(info.value)


def test_an_unexpected_exception_is_one_line_naming_the_log(tmp_path: Path) -> None:
    @click.group()
    @click.option("--home")
    @click.option("--verbose", is_flag=True)
    def main(home: str | None, verbose: bool) -> None:
        pass

    @main.command()
    @friendly_errors
    def broken() -> None:
        raise KeyError("\x1b[2Jsecret")

    result = CliRunner().invoke(main, ["--home", str(tmp_path), "broken"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "\x1b" not in result.output
    assert "unexpected KeyError" in result.output and "bug in lakehouse" in result.output
    log = tmp_path / "logs" / "cli-errors.log"
    assert "Traceback" in log.read_text()


def test_a_dropped_connection_to_a_service_that_answers_again_is_named() -> None:
    import requests

    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        settings = load_settings(catalog_port=port)
        request = requests.Request("GET", f"http://127.0.0.1:{port}/v1/config").prepare()
        dropped = requests.ConnectionError("Connection reset by peer", request=request)
        outage = outage_of(settings, dropped, "listing tables", ["catalog"])
    assert isinstance(outage, ServiceUnavailableError) and outage.service == "catalog"
    assert "Connection reset by peer" in str(outage)


def test_a_long_quoted_value_is_cut_in_the_cli_message() -> None:
    shown_line = printable("value: " + "y" * 50000 + "\nHint: fix it")
    first, hint = shown_line.split("\n")
    assert len(first) < 2100 and "more characters" in first and hint == "Hint: fix it"


def test_a_message_of_ours_is_not_cut() -> None:
    # "No lake house found" lists every directory searched: a few hundred characters.
    searched = ", ".join(
        f"/tmp/pytest-of-root/pytest-1/test_x/{'y/' * depth}" for depth in range(8)
    )
    assert printable(f"No lake house found; looked in {searched}").endswith(searched)


def test_compressed_csv_is_read_and_a_corrupt_one_is_one_ingest_error(tmp_path: Path) -> None:
    import gzip

    good, bad = tmp_path / "good.csv.gz", tmp_path / "bad.csv.gz"
    good.write_bytes(gzip.compress(b"a,b\n1,2\n3,4\n"))
    bad.write_bytes(gzip.compress(b"a,b\n1,2\n" * 100)[:25])
    [(_, table)] = read_frames(str(good), load_settings(), ReadOptions())
    assert table.num_rows == 2 and table.column_names == ["a", "b"]
    with pytest.raises(IngestError, match="Cannot read") as info:
        read_frames(str(bad), load_settings(), ReadOptions())
    assert "Hint:" in str(info.value)


def test_an_answer_from_a_service_that_is_up_is_never_called_an_outage() -> None:
    # pyiceberg raises NoSuchTableError while handling requests' HTTPError (an
    # OSError): a missing table must stay a missing table, not "catalog down".
    import requests
    from pyiceberg.exceptions import NoSuchTableError

    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        settings = load_settings(catalog_port=port, s3_port=port)
        request = requests.Request("GET", f"http://127.0.0.1:{port}/v1/ns/t").prepare()
        answer = requests.Response()
        answer.status_code, answer.request = 404, request
        try:
            try:
                raise requests.HTTPError("404 Not Found", request=request, response=answer)
            except requests.HTTPError:
                raise NoSuchTableError("Table ns.t does not exist.")  # noqa: B904
        except NoSuchTableError as missing:
            assert not is_io_error(missing)
            assert outage_of(settings, missing, "loading ns.t", ["catalog", "s3"]) is None
