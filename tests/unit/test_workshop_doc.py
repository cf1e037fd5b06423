"""The workshop walkthrough stays runnable: every `lakehouse` command it shows exists,
with the options it gives (the README test's idea reversed: the doc against the CLI)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from lakehouse.cli import main

ROOT = Path(__file__).parents[2]
WORKSHOP = ROOT / "docs" / "workshop.md"
# `lakehouse` (or .venv/bin/lakehouse) followed by its arguments, up to the end of
# the code span, a pipe, a command separator or a closing $( ... ).
COMMAND = re.compile(r"(?:\.venv/bin/)?\blakehouse((?:[ \t]+[^\s`|;&)\"]+)+)")


def code_text(markdown: str) -> list[str]:
    """Lines of fenced sh blocks and inline code spans; comments after `#` dropped."""
    texts = []
    for block in re.findall(r"```sh\n(.*?)```", markdown, flags=re.S):
        texts += [line.split("  #")[0] for line in block.splitlines()]
    prose = re.sub(r"```.*?```", "", markdown, flags=re.S)
    # An inline span may wrap onto the next line of the paragraph.
    texts += [span.replace("\n", " ") for span in re.findall(r"`([^`]+)`", prose)]
    return texts


def commands(markdown: str) -> list[list[str]]:
    """Each `lakehouse ...` invocation's arguments."""
    found = []
    for text in code_text(markdown):
        for match in COMMAND.finditer(text):
            found.append(shlex.split(match.group(1), posix=True))
    return found


def problem(args: list[str]) -> str | None:
    """Why ``lakehouse ARGS`` would not parse (an unknown command or option), else None."""
    command: click.Command = main
    words = list(args)
    while words and isinstance(command, click.Group):
        word = words.pop(0)
        if word.startswith("-"):
            continue  # global options (--home PATH's value is not a command either)
        if word not in command.commands:
            return f"no command {word!r} in `lakehouse {' '.join(args)}`"
        command = command.commands[word]
    known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    unknown = [w.split("=")[0] for w in words if w.startswith("--")]
    unknown = [flag for flag in unknown if flag not in known]
    return f"unknown option(s) {unknown} in `lakehouse {' '.join(args)}`" if unknown else None


def test_the_walkthrough_shows_commands() -> None:
    shown = commands(WORKSHOP.read_text())
    named = {tuple(args[:2]) for args in shown}
    for step in (("up", "--with"), ("ingest",), ("query",), ("sync", "status"), ("ml", "train")):
        assert any(name[: len(step)] == step for name in named), step


def test_every_command_in_the_walkthrough_exists() -> None:
    problems = [p for args in commands(WORKSHOP.read_text()) if (p := problem(args))]
    assert not problems, problems


@pytest.mark.parametrize(
    ("line", "wrong"),
    [("lakehouse sync stauts", "stauts"), ("lakehouse up --wiht jupyter", "--wiht")],
)
def test_a_wrong_command_is_caught(line: str, wrong: str) -> None:
    found = commands(f"```sh\n{line}\n```\n")
    assert len(found) == 1
    assert wrong in (problem(found[0]) or "")


def test_make_variables_the_walkthrough_uses_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for variable in set(re.findall(r"make \w+ ([A-Z]+)=", WORKSHOP.read_text())):
        assert f"$({variable})" in makefile, variable
