"""Where a lake house lives: found the way git finds ``.git``.

A *project* is a directory holding a ``lakehouse.toml`` file or a ``.lakehouse/``
directory (the state of a stack started there). From the current directory,
each parent is tried in turn; the nearest project wins. Its ``lakehouse.toml``
is the config file and its ``.lakehouse/`` the home, so every command, notebook
and service started anywhere inside the project sees the same stack. Outside
any project the home is the per-user default (``platformdirs`` user data dir,
e.g. ``~/.local/share/lakehouse``).

Precedence of the home: ``--home`` > ``LAKEHOUSE_HOME`` > ``home`` in the
config file (relative to that file) > the project's ``.lakehouse`` > the
per-user default. ``LAKEHOUSE_CONFIG`` names the config file explicitly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CONFIG_FILE_NAME = "lakehouse.toml"
HOME_DIR_NAME = ".lakehouse"


def user_default_home() -> Path:
    """The home used outside any project (per user, e.g. ``~/.local/share/lakehouse``)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("lakehouse"))


@dataclass(frozen=True)
class Project:
    """The result of the search: the project found (or not) and where it looked."""

    root: Path | None
    """Nearest directory holding lakehouse.toml or .lakehouse/; None outside any project."""
    searched: tuple[Path, ...]
    """Every directory tried, nearest first."""

    @property
    def config_file(self) -> Path | None:
        """``LAKEHOUSE_CONFIG`` when set, else the project's lakehouse.toml if it exists."""
        explicit = os.environ.get("LAKEHOUSE_CONFIG")
        if explicit:
            return Path(explicit).expanduser().absolute()
        if self.root is not None and (self.root / CONFIG_FILE_NAME).is_file():
            return self.root / CONFIG_FILE_NAME
        return None

    @property
    def default_home(self) -> Path:
        """The project's .lakehouse, else the per-user default."""
        return self.root / HOME_DIR_NAME if self.root is not None else user_default_home()

    def trail(self) -> str:
        """Where the search looked, for error messages."""
        tried = ", ".join(str(path) for path in self.searched)
        return (
            f"looked for {CONFIG_FILE_NAME} or {HOME_DIR_NAME}/ in {tried}; "
            f"then the per-user default {user_default_home()}"
        )


def find_project(start: Path | None = None) -> Project:
    """Walk up from ``start`` (default: the current directory) to the nearest project."""
    here = (start or Path.cwd()).absolute()
    searched = []
    for directory in (here, *here.parents):
        searched.append(directory)
        if (directory / CONFIG_FILE_NAME).is_file() or (directory / HOME_DIR_NAME).is_dir():
            return Project(directory, tuple(searched))
    return Project(None, tuple(searched))


def home_origin(home: Path, flag_given: bool = False) -> str:
    """How ``home`` was chosen, in words, for "no lake house found" messages.

    Outside any project this lists every directory the search tried.
    """
    if flag_given:
        return "given with --home"
    if os.environ.get("LAKEHOUSE_HOME"):
        return f"from LAKEHOUSE_HOME={os.environ['LAKEHOUSE_HOME']}"
    project = find_project()
    if home != project.default_home:
        return f"set by `home` in {project.config_file}"
    if project.root is not None:
        return f"the home of the project at {project.root}"
    return f"the per-user default, as no project was found: {project.trail()}"
