"""Finding a JDK, and the message when none fits."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse.errors import JavaNotFoundError
from lakehouse.java import find_jdk, parse_major


def fake_jdk(root: Path, name: str, version: str, javac: bool = True) -> Path:
    home = root / name
    (home / "bin").mkdir(parents=True)
    (home / "release").write_text(f'JAVA_VERSION="{version}"\n')
    (home / "bin" / "java").write_text("")
    if javac:
        (home / "bin" / "javac").write_text("")
    return home


@pytest.mark.parametrize(
    ("text", "major"), [("17.0.15", 17), ("1.8.0_392", 8), ("25", 25), ("x", None)]
)
def test_parse_major(text: str, major: int | None) -> None:
    assert parse_major(text) == major


def test_first_new_enough_jdk_with_javac_wins(tmp_path: Path) -> None:
    old = fake_jdk(tmp_path, "old", "11.0.2")
    jre = fake_jdk(tmp_path, "jre", "21.0.1", javac=False)
    good = fake_jdk(tmp_path, "good", "25.0.1")
    jdk = find_jdk("trino", 17, homes=[old, jre, good])
    assert (jdk.home, jdk.major) == (good, 25)


def test_error_lists_what_was_found_and_how_to_fix(tmp_path: Path) -> None:
    old = fake_jdk(tmp_path, "old", "11.0.2")
    with pytest.raises(JavaNotFoundError) as info:
        find_jdk("catalog", 17, homes=[old, tmp_path / "nothing"])
    text = str(info.value)
    assert "'catalog' needs a JDK 17 or newer" in text
    assert "Java 11, too old" in text and "(no java)" in text
    assert "Hint:" in text and "openjdk-17-jdk" in text


def test_explicit_home_is_never_passed_over(tmp_path: Path) -> None:
    old = fake_jdk(tmp_path, "old", "11.0.2")
    with pytest.raises(JavaNotFoundError, match="too old"):
        find_jdk("catalog", 17, explicit=old)
