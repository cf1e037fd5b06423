"""Maven artifacts for the JVM services: pinned, checksummed, cached, fetched once.

Each JVM service has an ``artifacts.lock`` under ``services/<name>/``: one line
per jar, ``group:artifact:version[:classifier][@ext] sha256``. The lock is the one
place coordinates are pinned; ``scripts/lock_artifacts.py`` regenerates it from
the hand-written ``artifacts.in`` with Maven. At run time only plain HTTPS GETs
are needed, from the repository Maven itself would use.
"""

from __future__ import annotations

import hashlib
import sys
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TransferSpeedColumn,
)

from lakehouse.config import MAVEN_CENTRAL, Settings
from lakehouse.errors import ArtifactError

RETRIES = 3
CHUNK = 1 << 16


@dataclass(frozen=True)
class MavenArtifact:
    """One pinned file in a Maven repository."""

    group: str
    artifact: str
    version: str
    sha256: str
    classifier: str | None = None
    ext: str = "jar"

    @property
    def coordinates(self) -> str:
        base = f"{self.group}:{self.artifact}:{self.version}"
        base += f":{self.classifier}" if self.classifier else ""
        return base + (f"@{self.ext}" if self.ext != "jar" else "")

    @property
    def file_name(self) -> str:
        suffix = f"-{self.classifier}" if self.classifier else ""
        return f"{self.artifact}-{self.version}{suffix}.{self.ext}"

    @property
    def repo_path(self) -> str:
        return f"{self.group.replace('.', '/')}/{self.artifact}/{self.version}/{self.file_name}"


def parse_coordinates(text: str, sha256: str) -> MavenArtifact:
    """Parse ``group:artifact:version[:classifier][@ext]``."""
    coords, _, ext = text.partition("@")
    parts = coords.split(":")
    if len(parts) not in (3, 4) or not all(parts):
        raise ArtifactError(
            f"Bad Maven coordinates '{text}'",
            hint="Use group:artifact:version[:classifier][@ext].",
        )
    classifier = parts[3] if len(parts) == 4 else None
    return MavenArtifact(parts[0], parts[1], parts[2], sha256.lower(), classifier, ext or "jar")


def read_lock(path: Path) -> list[MavenArtifact]:
    """The artifacts pinned in a lock file, in file order."""
    artifacts = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 2 or len(fields[1]) != 64:
            raise ArtifactError(
                f"{path}:{number}: expected 'coordinates sha256', got '{raw}'",
                hint="Regenerate the lock with scripts/lock_artifacts.py.",
            )
        artifacts.append(parse_coordinates(fields[0], fields[1]))
    return artifacts


def maven_mirror(settings_xml: Path) -> str | None:
    """The URL of a mirror of Maven Central configured for Maven, if any."""
    if not settings_xml.is_file():
        return None
    try:
        root = ET.parse(settings_xml).getroot()
    except ET.ParseError:
        return None
    for mirror in root.iter():
        if not mirror.tag.endswith("mirror"):
            continue
        fields = {child.tag.split("}")[-1]: (child.text or "").strip() for child in mirror}
        if fields.get("mirrorOf") in ("*", "central", "external:*") and fields.get("url"):
            return fields["url"].rstrip("/")
    return None


def repository_url(settings: Settings) -> str:
    """Setting, else the mirror Maven uses, else Maven Central."""
    if settings.maven_repo:
        return settings.maven_repo.rstrip("/")
    return maven_mirror(Path.home() / ".m2" / "settings.xml") or MAVEN_CENTRAL


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class ArtifactFetcher:
    """Fetches pinned artifacts into ``<cache>/maven`` and verifies their sha256."""

    def __init__(self, settings: Settings) -> None:
        self.root = settings.cache_dir / "maven"
        self.repo = repository_url(settings)

    def local_path(self, artifact: MavenArtifact) -> Path:
        return self.root / artifact.repo_path

    def missing(self, artifacts: Iterable[MavenArtifact]) -> list[MavenArtifact]:
        return [a for a in artifacts if not self.local_path(a).is_file()]

    def fetch_all(self, artifacts: list[MavenArtifact], label: str) -> list[Path]:
        """Local paths of every artifact, downloading the missing ones."""
        todo = self.missing(artifacts)
        if todo:
            with Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                transient=True,
                disable=not sys.stderr.isatty(),
            ) as progress:
                for index, artifact in enumerate(todo, start=1):
                    task = progress.add_task(f"{label} {index}/{len(todo)} {artifact.file_name}")
                    self._fetch_one(artifact, progress, task)
                    progress.remove_task(task)
        return [self.local_path(a) for a in artifacts]

    def _fetch_one(self, artifact: MavenArtifact, progress: Progress, task: object) -> None:
        url = f"{self.repo}/{artifact.repo_path}"
        target = self.local_path(artifact)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        last_error = ""
        for attempt in range(1, RETRIES + 1):
            try:
                self._download(url, partial, progress, task)
                break
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    raise ArtifactError(
                        f"Artifact {artifact.coordinates} is not in {self.repo} (HTTP 404: {url})",
                        hint="Check the coordinates in the service's artifacts.lock, or set LAKEHOUSE_MAVEN_REPO.",
                    ) from exc
                last_error = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                last_error = str(getattr(exc, "reason", exc))
            if attempt < RETRIES:
                time.sleep(0.5 * 2**attempt)
        else:
            raise ArtifactError(
                f"Could not download {artifact.coordinates} from {url} after {RETRIES} attempts: {last_error}",
                hint="Check the network, or point LAKEHOUSE_MAVEN_REPO at a reachable Maven mirror.",
            )
        self._verify(artifact, partial, url)
        partial.replace(target)

    @staticmethod
    def _download(url: str, partial: Path, progress: Progress, task: object) -> None:
        with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            progress.update(task, total=total, completed=0)  # type: ignore[arg-type]
            while chunk := response.read(CHUNK):
                out.write(chunk)
                progress.advance(task, len(chunk))  # type: ignore[arg-type]

    @staticmethod
    def _verify(artifact: MavenArtifact, partial: Path, url: str) -> None:
        actual = sha256_of(partial)
        if actual != artifact.sha256:
            partial.unlink(missing_ok=True)
            raise ArtifactError(
                f"Checksum mismatch for {artifact.coordinates} from {url}: "
                f"expected sha256 {artifact.sha256}, got {actual}",
                hint="The repository served a different file; check LAKEHOUSE_MAVEN_REPO or your proxy.",
            )
