"""The eight metrics: keys, Chinese and English names, units and the seed's totals."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from geo.errors import BadParameter

PERIOD_START = dt.date(2020, 1, 24)
PERIOD_END = dt.date(2020, 3, 31)
N_DAYS = (PERIOD_END - PERIOD_START).days + 1


@dataclass(frozen=True)
class Metric:
    """One metric: how it is named and counted."""

    key: str
    name_zh: str
    name_en: str
    unit_zh: str
    unit_en: str
    seed_total: int | None  # city-wide total for the whole period; None where the seed gives none


METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        Metric("visits", "走访排查", "Household visits", "户次", "household visits", 12_130_000),
        Metric("home_observation", "居家观察服务", "Home observation", "户", "households", 460_000),
        Metric("home_quarantine", "居家隔离", "Home quarantine", "人", "persons", 998_000),
        Metric("risk_code", "红码/黄码人员", "Red/yellow-code persons", "人", "persons", 104_000),
        Metric("new_arrivals", "新入甬人员", "New arrivals", "人", "persons", 152_000),
        Metric("disputes", "矛盾纠纷涉稳信息", "Disputes", "条", "records", 27_000),
        Metric("appeals", "群众诉求", "Appeals", "条", "records", 477_000),
        Metric("checkpoint_checks", "卡口核查", "Checkpoint checks", "人次", "persons checked", None),
    )
}

# Metrics that arrive as one point per record; checkpoint checks arrive as a count per
# checkpoint per day instead.
POINT_METRICS = tuple(k for k in METRICS if k != "checkpoint_checks")


def get_metric(key: str) -> Metric:
    """Return the metric ``key`` or raise BadParameter listing the allowed keys."""
    try:
        return METRICS[key]
    except (KeyError, TypeError):
        raise BadParameter(
            f"unknown metric {key!r}; allowed: {', '.join(METRICS)}"
        ) from None


def day_index(day: dt.date) -> int:
    """Return the 0-based index of ``day`` in the demo period."""
    return (day - PERIOD_START).days


def parse_date(text: str, *, name: str = "date") -> dt.date:
    """Parse an ISO date (YYYY-MM-DD) or raise BadParameter naming the parameter."""
    try:
        return dt.date.fromisoformat(str(text))
    except ValueError:
        raise BadParameter(f"{name} {text!r} is not an ISO date (YYYY-MM-DD)") from None


def check_period(start: dt.date, end: dt.date) -> None:
    """Raise BadParameter unless PERIOD_START <= start <= end <= PERIOD_END."""
    if start > end:
        raise BadParameter(f"from {start} is after to {end}")
    if start < PERIOD_START or end > PERIOD_END:
        raise BadParameter(
            f"period {start}..{end} is outside the data period {PERIOD_START}..{PERIOD_END}"
        )
