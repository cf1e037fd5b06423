"""The sample's time span, its seasonal calendar and seasonal timestamps (microseconds, naive UTC)."""

from __future__ import annotations

from datetime import date

import numpy as np

from sample_data.records import FloatArray, IntArray, Rng
from sample_data.vocabulary import (
    _HOUR_W,
    _MONTH_W,
    _PROMO_DAYS,
    _WEEKDAY_W,
)

_US_PER_S = 1_000_000
_US_PER_HOUR = 3600 * _US_PER_S
_US_PER_DAY = 24 * _US_PER_HOUR
_EPOCH = date(1970, 1, 1)
_DAY0 = (date(2024, 1, 1) - _EPOCH).days
_N_DAYS = (date(2026, 1, 1) - date(2024, 1, 1)).days
_START_US = _DAY0 * _US_PER_DAY
_END_US = (_DAY0 + _N_DAYS) * _US_PER_DAY
_MARGIN_US = 3 * _US_PER_HOUR  # longer than the longest possible session
_SIGNUP_DAYS = ((date(2020, 1, 1) - _EPOCH).days, (date(2025, 12, 1) - _EPOCH).days)
_PRODUCT_DAYS = ((date(2022, 1, 1) - _EPOCH).days, _DAY0)


def _calendar_cdf() -> FloatArray:
    """CDF over the days of 2024-2025: month seasonality, weekdays, promo days, growth."""
    day_numbers = np.arange(_DAY0, _DAY0 + _N_DAYS)
    month = day_numbers.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12
    w = _MONTH_W[month] * _WEEKDAY_W[(day_numbers + 3) % 7]
    w = w * (1.0 + 0.1 * np.arange(_N_DAYS) / _N_DAYS)
    for day, factor in _PROMO_DAYS.items():
        w[(day - date(2024, 1, 1)).days] *= factor
    cdf: FloatArray = np.cumsum(w) / w.sum()
    cdf[-1] = 1.0
    return cdf


def _mass_before(cdf: FloatArray, us: IntArray) -> FloatArray:
    """Share of the calendar's activity lying before the day of each timestamp."""
    day = np.clip(us // _US_PER_DAY - _DAY0, 0, _N_DAYS)
    mass: FloatArray = np.where(day > 0, cdf[np.maximum(day - 1, 0)], 0.0)
    return mass


def _sample_times(rng: Rng, cdf: FloatArray, floor_us: IntArray) -> IntArray:
    """Seasonal timestamps >= 3 h after ``floor_us``, at least 3 h inside 2024-2025."""
    n = len(floor_us)
    lo = _mass_before(cdf, floor_us)
    day = np.searchsorted(cdf, lo + rng.random(n) * (1.0 - lo), side="right")
    hour = np.searchsorted(np.cumsum(_HOUR_W) / _HOUR_W.sum(), rng.random(n), side="right")
    ts = (_DAY0 + np.minimum(day, _N_DAYS - 1)) * _US_PER_DAY + np.minimum(hour, 23) * _US_PER_HOUR
    ts = ts + rng.integers(0, _US_PER_HOUR, n)
    lower = np.maximum(floor_us, _START_US) + _MARGIN_US
    jitter = rng.integers(0, _US_PER_HOUR, n)  # clamped times must not pile up on one instant
    ts = np.where(ts < lower, lower + jitter, ts)
    return np.where(ts > _END_US - _MARGIN_US, _END_US - _MARGIN_US - jitter, ts)
