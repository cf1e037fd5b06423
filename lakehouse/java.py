"""Finding a JDK for the JVM services, with a clear error when none fits."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lakehouse.errors import JavaNotFoundError

JVM_ROOT = Path("/usr/lib/jvm")


@dataclass(frozen=True)
class Jdk:
    home: Path
    major: int

    @property
    def java(self) -> Path:
        return self.home / "bin" / "java"

    @property
    def javac(self) -> Path:
        return self.home / "bin" / "javac"


def parse_major(version: str) -> int | None:
    """Major version from '17.0.15', '1.8.0_392' or '25'."""
    match = re.match(r"(\d+)(?:\.(\d+))?", version.strip().strip('"'))
    if not match:
        return None
    first = int(match.group(1))
    return int(match.group(2) or 0) if first == 1 else first


def jdk_version(home: Path) -> int | None:
    """The JDK's major version, from its ``release`` file or ``java -version``."""
    release = home / "release"
    if release.is_file():
        found = re.search(r'^JAVA_VERSION="([^"]+)"', release.read_text(), re.MULTILINE)
        if found:
            return parse_major(found.group(1))
    java = home / "bin" / "java"
    if not java.is_file():
        return None
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r'version "([^"]+)"', out.stderr)
    return parse_major(found.group(1)) if found else None


def candidate_homes(explicit: Path | None, env_var: str | None = None) -> list[Path]:
    """Where to look, in order of preference; duplicates removed.

    An explicitly configured home is the only candidate: a setting the user
    made must not be silently passed over for some other JDK.
    """
    if explicit:
        return [explicit]
    homes: list[Path] = []
    for name in (env_var, "JAVA_HOME"):
        if name and os.environ.get(name):
            homes.append(Path(os.environ[name]))
    on_path = shutil.which("java")
    if on_path:
        homes.append(Path(on_path).resolve().parent.parent)
    if JVM_ROOT.is_dir():
        homes.extend(sorted(p for p in JVM_ROOT.iterdir() if p.is_dir() and not p.is_symlink()))
    unique: list[Path] = []
    for home in homes:
        if home.resolve() not in [u.resolve() for u in unique]:
            unique.append(home)
    return unique


def find_jdk(
    service: str,
    min_major: int,
    explicit: Path | None = None,
    env_var: str | None = None,
    homes: Iterable[Path] | None = None,
    max_major: int | None = None,
) -> Jdk:
    """The first JDK (with javac) in [min_major, max_major]; else a JavaNotFoundError."""
    seen: list[str] = []
    for home in homes if homes is not None else candidate_homes(explicit, env_var):
        major = jdk_version(home)
        if major is None:
            seen.append(f"{home} (no java)")
            continue
        jdk = Jdk(home, major)
        if major < min_major:
            seen.append(f"{home} (Java {major}, too old)")
        elif max_major is not None and major > max_major:
            seen.append(f"{home} (Java {major}, too new)")
        elif not jdk.javac.is_file():
            seen.append(f"{home} (Java {major}, a JRE without javac)")
        else:
            return jdk
    where = "; ".join(seen) if seen else "no Java installation at all"
    setting = env_var or "LAKEHOUSE_JAVA_HOME"
    wanted = f"{min_major} to {max_major}" if max_major else f"{min_major} or newer"
    raise JavaNotFoundError(
        f"Service '{service}' needs a JDK {wanted}; found: {where}.",
        hint=(
            f"Install one (Debian/Ubuntu: `apt install openjdk-{max(min_major, 17)}-jdk-headless`, "
            f"or Temurin from adoptium.net) and set {setting} or JAVA_HOME to it."
        ),
    )
