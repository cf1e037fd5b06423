"""`sync create` and lakehouse.toml integrations refused in plain words: one sentence per
field and a Hint, never pydantic's own text."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from lakehouse.cli import main
from lakehouse.sync.integrations import Integration, validation_sentences


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (("bad name!",), "name must start with a lowercase letter"),
        (("ok", "--batch-seconds", "-1"), "--batch-seconds must be more than 0 and at most"),
        # Infinity was stored (as non-standard JSON) and the follower failed on it
        # with "OverflowError: timestamp out of range for platform time_t".
        (("ok", "--batch-seconds", "inf"), "at most 86,400; got inf."),
        (("ok", "--batch-seconds", "1e308"), "at most 86,400; got 1e+308."),
        # "shop." reached the catalog: "unexpected BadRequestError ... a bug in lakehouse".
        (
            ("ok", "--source", "iceberg", "--target", "opensearch", "--tables", "shop."),
            "must be namespace-qualified",
        ),
        (("ok", "--index-prefix", "BAD/"), "--index-prefix must be lowercase"),
        (("ok", "--source", "iceberg", "--target", "iceberg"), "iceberg -> iceberg is not supp"),
    ],
)
def test_create_names_the_field_in_one_sentence_with_a_hint(
    tmp_path: Path, arguments: tuple[str, ...], said: str
) -> None:
    name, *options = arguments
    source_target = [] if "--source" in options else ["--source", "postgres", "--target",
                                                      "opensearch"]  # fmt: skip
    result = CliRunner().invoke(main, ["--home", str(tmp_path), "sync", "create", name,
                                       "--tables", "a.t", *source_target, *options])  # fmt: skip
    assert result.exit_code == 1, result.output
    assert said in result.output
    assert "Hint:" in result.output
    for pydantic_text in ("validation error", "errors.pydantic.dev", "type=", "input_value"):
        assert pydantic_text not in result.output
    assert not (tmp_path / "sync" / "integrations.json").exists()


def test_every_refused_field_gets_its_own_sentence() -> None:
    with pytest.raises(ValidationError) as caught:
        Integration(name="Bad", source="postgres", target="opensearch", tables=(),
                    batch_rows=0)  # fmt: skip
    text = validation_sentences(caught.value)
    assert text.count(".") >= 3 and "name must start" in text
    assert "tables must name at least one table" in text and "batch_rows must be at least 1" in text
