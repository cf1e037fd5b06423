"""Readable names for customer segments, derived from where each centroid stands.

A centroid's *standing* is one z-score per model feature: how many population
standard deviations its (transformed) value lies above the population mean.
The segmentation model scales every feature with a StandardScaler, so its
KMeans centroids are exactly these z-scores. Names come from ordered rules over
the standings ("high" is z >= 0.5, "low" is z <= -0.5), never from segment ids;
two segments that earn the same name are told apart by the feature where they
differ most ("regular customers (more visits)" / "regular customers (fewer visits)").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

HIGH = 0.5
LOW = -0.5

Standing = Mapping[str, float]

# feature -> (its meaning when low, when high), used to tell equal names apart.
QUALIFIERS: dict[str, tuple[str, str]] = {
    "recency_days": ("bought recently", "lapsing"),
    "orders": ("fewer orders", "more orders"),
    "monetary": ("lower spend", "higher spend"),
    "avg_order_value": ("smaller baskets", "bigger baskets"),
    "tenure_days": ("newer", "longer-standing"),
    "sessions": ("fewer visits", "more visits"),
    "conversion_rate": ("lower conversion", "higher conversion"),
}


def _high(z: Standing, feature: str) -> bool:
    return z.get(feature, 0.0) >= HIGH


def _low(z: Standing, feature: str) -> bool:
    return z.get(feature, 0.0) <= LOW


# Ordered: the first rule that holds names the segment. recency_days is "days
# since the last order", so a high standing means long ago.
RULES: tuple[tuple[str, Callable[[Standing], bool]], ...] = (
    ("browsers who rarely buy", lambda z: _low(z, "orders") and _high(z, "sessions")),
    ("new customers", lambda z: _low(z, "tenure_days") and not _high(z, "orders")),
    ("inactive customers", lambda z: _low(z, "orders") and _high(z, "recency_days")),
    ("occasional buyers", lambda z: _low(z, "orders")),
    (
        "loyal high spenders",
        lambda z: _high(z, "orders") and _high(z, "monetary") and not _high(z, "recency_days"),
    ),
    (
        "at risk",
        lambda z: _high(z, "recency_days") and (_high(z, "orders") or _high(z, "monetary")),
    ),
    ("lapsing customers", lambda z: _high(z, "recency_days")),
    ("big-basket buyers", lambda z: _high(z, "avg_order_value")),
    ("frequent buyers", lambda z: _high(z, "orders")),
    ("decisive shoppers", lambda z: _high(z, "conversion_rate")),
)
DEFAULT_NAME = "regular customers"


@dataclass(frozen=True)
class SegmentProfile:
    """One segment: its name, size and standing (z-score per feature)."""

    segment_id: int
    name: str
    size: int
    standing: dict[str, float]
    top_category: str | None = None


def base_name(standing: Standing) -> str:
    """The name the first matching rule gives a centroid (``DEFAULT_NAME`` if none)."""
    return next((name for name, holds in RULES if holds(standing)), DEFAULT_NAME)


def name_segments(standings: Mapping[int, Standing]) -> dict[int, str]:
    """A unique readable name per segment id, from the centroids' standings.

    Segments sharing a base name get qualifiers from the features where they differ
    most (lowest and highest of the group), until every name is unique; a group
    still tied after every feature is numbered by segment order (stable).
    """
    qualifiers: dict[int, list[str]] = {sid: [] for sid in standings}
    names = {sid: base_name(z) for sid, z in standings.items()}
    for _ in QUALIFIERS:
        groups = _duplicates(names, qualifiers)
        if not groups:
            break
        for group in groups:
            _qualify(group, standings, qualifiers)
    labelled = {sid: _label(names[sid], qualifiers[sid]) for sid in standings}
    for group in _duplicates(labelled, {sid: [] for sid in standings}):
        for n, sid in enumerate(sorted(group), start=1):
            labelled[sid] = f"{labelled[sid]} {n}"
    return labelled


def _label(name: str, qualifiers: list[str]) -> str:
    return f"{name} ({', '.join(qualifiers)})" if qualifiers else name


def _duplicates(names: Mapping[int, str], qualifiers: Mapping[int, list[str]]) -> list[list[int]]:
    """Groups (two or more ids) whose labels are equal."""
    by_label: dict[str, list[int]] = {}
    for sid, name in names.items():
        by_label.setdefault(_label(name, qualifiers[sid]), []).append(sid)
    return [sorted(ids) for ids in by_label.values() if len(ids) > 1]


def _qualify(
    group: list[int], standings: Mapping[int, Standing], qualifiers: dict[int, list[str]]
) -> None:
    """Qualify the group's lowest and highest member on its most spread, unused feature."""
    used = {q for sid in group for q in qualifiers[sid]}
    candidates = [f for f in QUALIFIERS if not used & set(QUALIFIERS[f])]

    def spread(feature: str) -> float:
        values = [standings[sid].get(feature, 0.0) for sid in group]
        return max(values) - min(values)

    if not candidates:
        return
    feature = max(candidates, key=lambda f: (spread(f), -list(QUALIFIERS).index(f)))
    if spread(feature) == 0.0:
        return
    ordered = sorted(group, key=lambda sid: (standings[sid].get(feature, 0.0), sid))
    low_word, high_word = QUALIFIERS[feature]
    qualifiers[ordered[0]].append(low_word)
    qualifiers[ordered[-1]].append(high_word)
