"""Durations (``7d``, ``36h``, ``90m``) and sizes (``128MB``) as maintenance takes them."""

from __future__ import annotations

import re
from datetime import timedelta

from lakehouse.errors import ConfigError

_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_BYTES = {"": 1, "B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}  # fmt: skip
# Beyond these a value is a typo, and would overflow datetime arithmetic (a cut-off
# before year 1) or Trino's data sizes.
MAX_DURATION_SECONDS = 100 * 365 * 86400
MAX_SIZE = 2**40


def parse_duration(value: str | float | timedelta, what: str = "duration") -> timedelta:
    """``value`` as a timedelta: ``'7d'``, ``'36h'``, ``'90m'``, ``'30s'``, ``'2w'``,
    ``'1.5h'``, a number of seconds, or a timedelta. Raises ConfigError (with a hint)
    for anything else, a negative duration or one over 100 years."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", str(value).lower())
        if match is None:
            raise ConfigError(
                f"{what} '{value}' is not a duration.",
                hint="Write a number and a unit: 90m, 36h, 7d, 2w (or 30s).",
            )
        seconds = float(match.group(1)) * _SECONDS[match.group(2)]
    if seconds != seconds:  # NaN
        raise ConfigError(f"{what} '{value}' is not a duration.", hint="Use e.g. 7d.")
    if seconds < 0:
        raise ConfigError(f"{what} '{value}' is negative.", hint="Use 0 or more, e.g. 7d.")
    if seconds > MAX_DURATION_SECONDS:
        raise ConfigError(f"{what} '{value}' is over 100 years.", hint="Use e.g. 7d or 52w.")
    return timedelta(seconds=seconds)


def parse_size(value: str | int, what: str = "size") -> int:
    """Bytes in ``'128MB'``, ``'1GB'``, ``'512KB'`` (binary units, as Trino's) or an
    int. Raises ConfigError (with a hint) for anything else or a size below 1 KB or
    above 1 TB."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]I?B|B)?\s*", str(value).upper())
        if match is None:
            raise ConfigError(f"{what} '{value}' is not a size.",
                              hint="Write a number and a unit: 64MB, 128MB, 1GB.")  # fmt: skip
        exact = float(match.group(1)) * _BYTES[match.group(2) or ""]
        size = int(min(exact, MAX_SIZE + 1))  # int(inf) would raise
    if size < 1024:
        raise ConfigError(f"{what} '{value}' is under 1 KB.", hint="Use e.g. 128MB.")
    if size > MAX_SIZE:
        raise ConfigError(f"{what} '{value}' is over 1 TB.", hint="Use e.g. 128MB or 1GB.")
    return size


def human_bytes(size: int) -> str:
    """``1536`` -> ``'1.5 KB'``: for reports."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def human_duration(seconds: float) -> str:
    """``93600`` -> ``'1d 2h'``; ``90`` -> ``'1m 30s'``: for reports and hints."""
    whole = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if whole >= size:
            parts.append(f"{whole // size}{unit}")
            whole %= size
    return " ".join(parts[:2]) or "0s"
