"""Time in every view: day-by-day values for playback, daily series for trend charts, and the
change between two periods.

* :func:`daily_children` answers "the value of metric M on each day D1..D2 for every area of a
  level inside area A" in one call, so the map plays a whole period from one request. Its
  classes are computed once over every area-day value of the period, so a colour means the
  same count on every day of the playback.
* :func:`area_series` is the daily series of an area with its children's series (the trend
  chart and its sparklines, see :mod:`geo.charts`).
* :func:`change` compares two periods per area: the absolute difference and the per cent
  change (None where the first period is 0), classed with a diverging palette whose classes
  are symmetric around 0 (blue = fewer, red = more, grey = no change).

Everything reads the same in-memory count cube as :func:`geo.counts.child_values`, so the
numbers agree with the map, the wall and the exports.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from geo.atlas.hierarchy import CODE_LENGTHS
from geo.atlas.metrics import PERIOD_END, PERIOD_START, get_metric
from geo.errors import BadParameter
from geo.query.classify import DEFAULT_K, DEFAULT_METHOD, NO_DATA_COLOR, classify
from geo.query.counts import _grid_slice
from geo.query.mapdata import display_level, metric_dict

# ColorBrewer RdBu (reversed: blue = fewer, red = more), by classes per side; the middle
# colour is "no change".
DIVERGING = {
    1: (["#4393c3"], "#f7f7f7", ["#d6604d"]),
    2: (["#2166ac", "#92c5de"], "#f7f7f7", ["#f4a582", "#b2182b"]),
    3: (["#2166ac", "#67a9cf", "#d1e5f0"], "#f7f7f7", ["#fddbc7", "#ef8a62", "#b2182b"]),
}
CHANGE_BASES = ("absolute", "percent")
DEFAULT_CHANGE_DAYS = 7


def _check_period(start: dt.date, end: dt.date, what: str = "period") -> tuple[dt.date, dt.date]:
    if start > end:
        raise BadParameter(f"{what}: start {start} is after end {end}")
    if start < PERIOD_START or end > PERIOD_END:
        raise BadParameter(f"{what} {start}..{end} is outside the data period {PERIOD_START}..{PERIOD_END}")
    return start, end


def _area_dict(area) -> dict:
    return {"code": area["code"], "name": area["name"], "level": area["level"]}


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def area_daily_matrix(service, code: str, metric: str, start: dt.date, end: dt.date,
                      level: str | None = None) -> tuple[pd.DataFrame, np.ndarray, str]:
    """Daily values of the areas of ``level`` (default: the children) inside ``code``.

    Returns (areas: code, level, name in code order; values: int64 [area, day]; level).
    A grid shows itself.
    """
    atlas = service.atlas
    area = atlas.get(code)
    get_metric(metric)
    _check_period(start, end)
    level = display_level(area["level"], level)
    sl = _grid_slice(atlas, code)
    daily = service.cube().grid_daily(metric, start, end)[sl]
    layer = atlas.layers[level]
    codes = layer["code"].to_numpy(dtype=str)
    if area["level"] == "city":
        lo, hi = 0, len(codes)
    elif area["level"] == "grid":
        lo, hi = np.searchsorted(codes, code), np.searchsorted(codes, code, side="right")
    else:
        lo, hi = np.searchsorted(codes, code), np.searchsorted(codes, code + "\uffff")
    areas = layer.iloc[lo:hi][["code", "level", "name"]].reset_index(drop=True)
    keys = pd.Series(atlas.grid_codes[sl]).str.slice(0, CODE_LENGTHS[level]).to_numpy()
    sums = pd.DataFrame(daily).groupby(keys).sum()
    values = sums.reindex(areas["code"]).fillna(0).to_numpy(dtype=np.int64)
    return areas, values.reshape(len(areas), len(_days(start, end))), level


def daily_children(service, code: str, metric: str, start: dt.date | None = None, end: dt.date | None = None,
                   method: str = DEFAULT_METHOD, k: int = DEFAULT_K, level: str | None = None) -> dict:
    """Every day's value of every area of ``level`` inside ``code``, with classes fixed for the period.

    Returns ``area``, ``metric``, ``period``, ``level``, ``days`` (ISO dates), ``areas`` (code,
    name per area), ``values`` and ``classes`` ([day][area], in the order of ``areas``),
    ``totals`` (the area's total per day) and ``legend`` (the classes, computed once over all
    area-day values so colours compare across days; ``fixed`` is true).
    """
    start, end = start or PERIOD_START, end or PERIOD_END
    areas, values, level = area_daily_matrix(service, code, metric, start, end, level)
    classes = classify(values.ravel(), method, k)
    cls = classes.classify(values.ravel()).reshape(values.shape) if values.size else values
    legend = classes.to_dict()
    legend.update(fixed=True, period={"from": start.isoformat(), "to": end.isoformat()})
    return {
        "area": _area_dict(service.atlas.get(code)),
        "metric": metric_dict(get_metric(metric)),
        "period": {"from": start.isoformat(), "to": end.isoformat()},
        "level": level,
        "days": [d.isoformat() for d in _days(start, end)],
        "areas": [{"code": c, "name": n} for c, n in areas[["code", "name"]].itertuples(index=False, name=None)],
        "values": values.T.tolist(),
        "classes": np.asarray(cls).T.tolist(),
        "totals": values.sum(axis=0).tolist(),
        "legend": legend,
    }


def area_series(service, code: str, metric: str, start: dt.date | None = None, end: dt.date | None = None) -> dict:
    """The daily series of area ``code`` and of each of its children (a grid has none).

    Returns ``area``, ``metric``, ``period``, ``days`` (ISO dates), ``values`` (the area's
    daily totals) and ``children`` (code, name, values, total; in code order).
    """
    start, end = start or PERIOD_START, end or PERIOD_END
    area = service.atlas.get(code)
    areas, values, _ = area_daily_matrix(service, code, metric, start, end)
    children = [] if area["level"] == "grid" else [
        {"code": c, "name": n, "values": row.tolist(), "total": int(row.sum())}
        for (c, n), row in zip(areas[["code", "name"]].itertuples(index=False, name=None), values)
    ]
    return {
        "area": _area_dict(area),
        "metric": metric_dict(get_metric(metric)),
        "period": {"from": start.isoformat(), "to": end.isoformat()},
        "days": [d.isoformat() for d in _days(start, end)],
        "values": values.sum(axis=0).tolist(),
        "children": children,
    }


@dataclass(frozen=True)
class DivergingClasses:
    """Classes symmetric around 0: ``steps`` are the upper limits of |value| per class on each
    side (the last is the largest |value|); 0 is a class of its own."""

    steps: tuple[float, ...]
    whole: bool
    method: str = "diverging"
    # How a legend names the classes (zh, en); change() fills in the compared period.
    names: tuple[str, str] = ("变化（对称分级）", "Change (classes symmetric around 0)")
    suffix: str = ""  # "%" for a change in per cent

    @property
    def bounds(self) -> tuple[int, ...]:
        """One entry per class (the exporter's legend counts them)."""
        return tuple(range(len(self.colors)))

    @property
    def colors(self) -> list[str]:
        """Colours from the most negative class to the most positive."""
        if not self.steps:
            return [DIVERGING[1][1]]
        neg, zero, pos = DIVERGING[len(self.steps)]
        return [*neg, zero, *pos]

    def classify(self, values) -> np.ndarray:
        """Class index of each value: 0 = most negative, len(steps) = no change."""
        v = np.asarray(values, dtype=float)
        n = len(self.steps)
        if n == 0:
            return np.zeros(len(v), dtype=int)
        side = np.minimum(np.searchsorted(np.asarray(self.steps), np.abs(v), side="left"), n - 1)
        return np.where(v > 0, n + 1 + side, np.where(v < 0, n - 1 - side, n)).astype(int)

    def color_of(self, values) -> list[str]:
        """Fill colour of each value."""
        colors = self.colors
        return [colors[i] for i in self.classify(values)]

    def labels(self, suffix: str | None = None) -> list[str]:
        """Limits of each class, most negative first, e.g. "-120 – -41", "0", "41 – 120"."""
        suffix = self.suffix if suffix is None else suffix
        def fmt(x: float) -> str:
            if x == 0:
                return "0" + suffix
            return (f"{int(round(x)):,}" if self.whole else f"{x:,.1f}") + suffix

        step = 1 if self.whole else 0
        sides = [(step if i == 0 else self.steps[i - 1] + step, hi) for i, hi in enumerate(self.steps)]
        neg = [f"-{fmt(hi)}" if lo == hi else f"-{fmt(hi)} – -{fmt(lo)}".replace("-0" + suffix, "0" + suffix)
               for lo, hi in reversed(sides)]
        pos = [fmt(hi) if lo == hi else f"{fmt(lo)} – {fmt(hi)}" for lo, hi in sides]
        return [*neg, fmt(0), *pos]

    def to_dict(self, suffix: str = "") -> dict:
        """JSON form for legends: steps, colours and labels, most negative class first."""
        return {"method": "diverging", "steps": list(self.steps), "colors": self.colors,
                "labels": self.labels(suffix), "zero_class": len(self.steps)}


def diverging_classes(values, per_side: int = 3) -> DivergingClasses:
    """Symmetric classes for changes: quantiles of the non-zero |values| give the same limits
    below and above 0, so a blue and a red of equal depth mean changes of equal size."""
    if not 1 <= int(per_side) <= 3:
        raise BadParameter(f"classes per side {per_side!r} must be between 1 and 3")
    v = np.asarray([x for x in values if x is not None], dtype=float)
    v = v[~np.isnan(v)]
    whole = bool(np.all(v == np.floor(v)))
    mags = np.abs(v[v != 0])
    if len(mags) == 0:
        return DivergingClasses((), whole)
    steps = np.quantile(mags, np.linspace(0, 1, per_side + 1)[1:], method="higher")
    steps = np.floor(steps) if whole else np.round(steps, 1)
    steps[-1] = mags.max()
    return DivergingClasses(tuple(float(s) for s in np.unique(steps)), whole)


def default_change_periods() -> tuple[tuple[dt.date, dt.date], tuple[dt.date, dt.date]]:
    """The week before last and last week of the data: "where did it change last week?"."""
    b_end = PERIOD_END
    b_start = b_end - dt.timedelta(days=DEFAULT_CHANGE_DAYS - 1)
    a_end = b_start - dt.timedelta(days=1)
    return (a_end - dt.timedelta(days=DEFAULT_CHANGE_DAYS - 1), a_end), (b_start, b_end)


def change(service, code: str, metric: str, a: tuple[dt.date, dt.date] | None = None,
           b: tuple[dt.date, dt.date] | None = None, basis: str = "absolute",
           level: str | None = None, per_side: int = 3) -> dict:
    """The change of ``metric`` from period ``a`` to period ``b`` for each area of ``level``
    inside ``code`` (default: the children; the week before last and last week).

    Each row has ``a`` and ``b`` (the period values), ``diff`` (b - a) and ``pct`` (per cent
    change, None where a is 0). When the periods differ in length, ``a`` and ``b`` are daily
    means (``per_day`` is true), so a longer period does not look like a rise. ``basis``
    ("absolute" or "percent") picks what is classed; rows without a value (pct None) get no
    class and the no-data colour.
    """
    if basis not in CHANGE_BASES:
        raise BadParameter(f"unknown change basis {basis!r}; allowed: {', '.join(CHANGE_BASES)}")
    da, db = default_change_periods()
    a, b = a or da, b or db
    _check_period(*a, what="period a")
    _check_period(*b, what="period b")
    areas, va, level = area_daily_matrix(service, code, metric, a[0], a[1], level)
    _, vb, _ = area_daily_matrix(service, code, metric, b[0], b[1], level)
    na, nb = va.shape[1], vb.shape[1]
    per_day = na != nb
    sa, sb = va.sum(axis=1).astype(float), vb.sum(axis=1).astype(float)
    if per_day:
        sa, sb = sa / na, sb / nb
    diff = sb - sa
    pct = [None if x == 0 else round(100.0 * float(y - x) / float(x), 1) for x, y in zip(sa, sb)]
    basis_values = list(diff) if basis == "absolute" else pct
    classes = diverging_classes(basis_values, per_side)
    rows = []
    for (c, n, lv), x, y, d, p, bv in zip(areas[["code", "name", "level"]].itertuples(index=False, name=None),
                                          sa, sb, diff, pct, basis_values):
        cl = None if bv is None else int(classes.classify([bv])[0])
        rows.append({"code": c, "name": n, "level": lv, "a": _num(x), "b": _num(y), "diff": _num(d), "pct": p,
                     "value": _num(d) if basis == "absolute" else p, "class": cl,
                     "color": NO_DATA_COLOR if cl is None else classes.colors[cl]})
    total_a, total_b = float(sa.sum()), float(sb.sum())
    return {
        "area": _area_dict(service.atlas.get(code)),
        "metric": metric_dict(get_metric(metric)),
        "level": level,
        "a": {"from": a[0].isoformat(), "to": a[1].isoformat(), "days": na},
        "b": {"from": b[0].isoformat(), "to": b[1].isoformat(), "days": nb},
        "per_day": per_day,
        "basis": basis,
        "legend": classes.to_dict("%" if basis == "percent" else ""),
        "total": {"a": _num(total_a), "b": _num(total_b), "diff": _num(total_b - total_a),
                  "pct": None if total_a == 0 else round(100.0 * (total_b - total_a) / total_a, 1)},
        "values": rows,
    }


def _num(x: float):
    """A whole number as int, else rounded to 2 places (daily means)."""
    return int(x) if float(x).is_integer() else round(float(x), 2)
