"""The command-centre wall: headline figures with today's change, and the ranking of areas.

The wall shows one *view* at a time: the whole city (its districts ranked) or one district
(its towns ranked). Everything comes from live data through the same service as the web map
(:class:`geo.service.AtlasService`, :mod:`geo.counts`), so the wall and the map always agree.

"Today" is the latest day that has data (not the wall clock): the demo's data end on
2020-03-31, and a later import moves "today" on by itself. Today's change of a count is what
was recorded on that day; of the active checkpoints and the online rate, the difference from
the day before.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import shapely
import shapely.ops

from geo.atlas.hierarchy import CITY_CODE, child_level
from geo.atlas.metrics import METRICS, PERIOD_END, PERIOD_START, POINT_METRICS, day_index, get_metric
from geo.atlas.online import online_by_day
from geo.errors import BadParameter, DataNotReady
from geo.query.mapdata import metric_dict
from geo.store import counts as count_store

# The levels the wall's map can colour (the tour's views are the city and its districts).
WALL_LEVELS = ("district", "town")
REFRESH_RANGE = (0.25, 3600.0)  # seconds between refreshes (short ones are for measurements)
DWELL_RANGE = (2.0, 3600.0)  # seconds per stop of the tour
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
# Rows of a ranking the wall has room for; the rest are counted, not listed.
RANKING_ROWS = 12
# Playback: the map loops through the last N days (N from 2 to the whole period).
PLAYBACK_DAYS = 14  # ?playback=on
PLAYBACK_RANGE = (2, (PERIOD_END - PERIOD_START).days + 1)
STEP_RANGE = (0.2, 60.0)  # seconds per day of the playback


@dataclass(frozen=True)
class Kpi:
    """One headline tile: what it counts and how it is named."""

    key: str
    name_zh: str
    name_en: str
    unit_zh: str
    unit_en: str
    kind: str  # "count" (total so far, + today), "active" (today, ± yesterday) or "rate" (%, ± points)


KPIS: tuple[Kpi, ...] = (
    *(Kpi(m.key, m.name_zh, m.name_en, m.unit_zh, m.unit_en, "count") for m in (METRICS[k] for k in POINT_METRICS)),
    Kpi("active_checkpoints", "活跃卡口", "Active checkpoints", "个", "checkpoints", "active"),
    Kpi("online_rate", "网格员在线率", "Grid workers online", "%", "%", "rate"),
)


# ---------------------------------------------------------------------------------------------
# Options of a wall screen (all of them in its URL)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WallOptions:
    """What one wall screen shows and how it lives: view, metric, map level, tour and refresh."""

    metric: str
    area: str  # the view: the city or a district (where a tour starts)
    level: str  # "district" or "town": the areas coloured on the map
    tour: bool
    dwell: float  # seconds per stop of the tour
    refresh: float  # seconds between refreshes
    playback: int = 0  # days the map loops through (0: off, the map shows the totals to today)
    step: float = 1.5  # seconds per day of the playback

    def query(self) -> dict:
        """The URL parameters that give these options back."""
        return {"metric": self.metric, "area": self.area, "level": self.level, "tour": "1" if self.tour else "0",
                "dwell": _short(self.dwell), "refresh": _short(self.refresh), "playback": str(self.playback),
                "step": _short(self.step)}


def _short(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _seconds(text, name: str, default: float, bounds: tuple[float, float]) -> float:
    if text is None or str(text).strip() == "":
        return float(default)
    try:
        value = float(str(text).strip())
    except ValueError:
        raise BadParameter(f"{name} {text!r} is not a number of seconds") from None
    lo, hi = bounds
    if not math.isfinite(value) or not lo <= value <= hi:
        raise BadParameter(f"{name} {text!r} must be a number of seconds from {_short(lo)} to {_short(hi)}")
    return value


def _flag(text, name: str) -> bool:
    if text is None or str(text).strip() == "":
        return False
    word = str(text).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise BadParameter(f"{name} {text!r} is not on or off; allowed: {', '.join(TRUE_WORDS + FALSE_WORDS)}")


def _playback(text, default: int) -> int:
    """Days of the playback: a number of days, on (:data:`PLAYBACK_DAYS`) or off (0)."""
    if text is None or str(text).strip() == "":
        text = str(default)
    word = str(text).strip().lower()
    if word in FALSE_WORDS:
        return 0
    if word in TRUE_WORDS:
        return PLAYBACK_DAYS
    lo, hi = PLAYBACK_RANGE
    if not word.isdigit() or not lo <= int(word) <= hi:
        raise BadParameter(f"playback {text!r} must be a number of days from {lo} to {hi}, on or off")
    return int(word)


def playback_period(day: dt.date, days: int) -> tuple[dt.date, dt.date]:
    """The days a playback of ``days`` days loops through: the last ``days`` up to ``day``
    (fewer at the start of the data period)."""
    return max(PERIOD_START, day - dt.timedelta(days=days - 1)), day


def check_view(atlas, code: str | None) -> dict:
    """The area of a wall view: the city (default) or one of its districts, else BadParameter
    (an unknown code is AreaNotFound)."""
    area = atlas.get(code or CITY_CODE)
    if area["level"] not in ("city", "district"):
        raise BadParameter(f"area {code!r} is a {area['level']}; the wall shows the city or one district")
    return area


def wall_options(service, metric: str | None = None, area: str | None = None, level: str | None = None,
                 tour: str | None = None, dwell: str | None = None, refresh: str | None = None,
                 playback: str | None = None, step: str | None = None, *, root: str = CITY_CODE) -> WallOptions:
    """Check the wall's URL parameters (text as given, None = not given) and fill the defaults.

    Defaults: metric ``visits``, the view ``root`` (the city; a district for a district's wall
    device), refresh, dwell, playback days and step from the settings (``wall_refresh_seconds``,
    ``wall_tour_seconds``, ``wall_playback_days``, ``wall_playback_step_seconds``), no tour, and
    the map coloured by district for a fixed city view, by town when touring or showing a
    district. (Whether the caller may see ``area`` is the web layer's check.)
    """
    settings = service.settings
    metric = (metric or "").strip() or "visits"
    get_metric(metric)
    view = check_view(service.atlas, (area or "").strip() or root)
    touring = _flag(tour, "tour")
    level = (level or "").strip() or ("district" if view["level"] == "city" and not touring else "town")
    if level not in WALL_LEVELS:
        raise BadParameter(f"unknown level {level!r}; allowed: {', '.join(WALL_LEVELS)}")
    if level == "district" and root != CITY_CODE:
        raise BadParameter(f"level 'district' shows the whole city; the wall of {root} shows its towns (level town)")
    return WallOptions(
        metric=metric, area=view["code"], level=level, tour=touring,
        dwell=_seconds(dwell, "dwell", settings.wall_tour_seconds, DWELL_RANGE),
        refresh=_seconds(refresh, "refresh", settings.wall_refresh_seconds, REFRESH_RANGE),
        playback=_playback(playback, settings.wall_playback_days),
        step=_seconds(step, "step", settings.wall_playback_step_seconds, STEP_RANGE),
    )


# ---------------------------------------------------------------------------------------------
# Live figures
# ---------------------------------------------------------------------------------------------

def data_day(service) -> dt.date:
    """The latest day with any count in the store: the wall's "today".

    Raises DataNotReady when the store holds no counts at all.
    """
    cube = service.cube()
    days = np.flatnonzero(cube.values.any(axis=(0, 1)))
    if not len(days):
        raise DataNotReady("the store holds no counts yet; run `python -m geo demo` or import records")
    return PERIOD_START + dt.timedelta(days=int(days[-1]))


def active_checkpoints(store, days: list[dt.date]) -> dict[dt.date, set[str]]:
    """The checkpoints that checked anyone on each of ``days`` (codes), from the store's daily
    checks per checkpoint (held in memory until the store's version moves)."""
    codes, daily = count_store.checkpoint_daily(store)
    return {d: set(codes[daily[:, day_index(d)] > 0]) for d in days}


def _checkpoints_inside(atlas, code: str) -> np.ndarray:
    cps = atlas.checkpoints
    if code == CITY_CODE:
        return cps["code"].to_numpy()
    return cps["code"].to_numpy()[cps["grid_code"].str.startswith(code).to_numpy()]


def kpis(service, code: str, day: dt.date) -> list[dict]:
    """The headline tiles of area ``code`` on ``day``, in the order of :data:`KPIS`.

    Each tile has its names and unit, ``kind``, ``value`` and ``today``:

    * counts: ``value`` is the total from the start of the period to ``day``, ``today`` the
      day's count and ``yesterday`` the count of the day before;
    * active checkpoints: ``value`` is how many checkpoints inside the area checked anyone on
      ``day`` (of ``of`` checkpoints), ``today`` the change from the day before;
    * online rate: ``value`` is the percentage of the area's grid workers online on ``day``
      (``online`` of ``of``), ``today`` the change in percentage points. Figures are kept per
      district: ``value`` is None where there are none.

    Every tile also has ``trend``: its daily figure over the last 7 days up to ``day`` (the
    day's count, active checkpoints, or online rate), oldest first.
    """
    area = service.atlas.get(code)
    before = day - dt.timedelta(days=1) if day > PERIOD_START else None
    out = []
    for kpi in KPIS:
        tile = {"key": kpi.key, "name_zh": kpi.name_zh, "name_en": kpi.name_en, "unit_zh": kpi.unit_zh,
                "unit_en": kpi.unit_en, "kind": kpi.kind}
        if kpi.kind == "count":
            series = service.daily_series(area["code"], kpi.key, PERIOD_START, day).to_numpy()
            tile.update(value=int(series.sum()), today=int(series[-1]),
                        yesterday=int(series[-2]) if len(series) > 1 else None)
            tile["trend"] = [int(v) for v in series[-TREND_DAYS:]]  # the 7-day line under the tile
        elif kpi.kind == "active":
            codes = _checkpoints_inside(service.atlas, area["code"])
            week = _trend_days(day)  # holds day and the day before: one query for both
            active = active_checkpoints(service.store, week)
            now = sum(c in active[day] for c in codes)
            then = sum(c in active[before] for c in codes) if before else None
            tile.update(value=now, today=None if then is None else now - then, of=int(len(codes)),
                        trend=[int(sum(c in active[d] for c in codes)) for d in week])
        else:
            figures = online_by_day(service.store, area["code"], [d for d in (day, before) if d])
            rate = _rate(figures.get(day))
            earlier = _rate(figures.get(before)) if before else None
            tile.update(value=rate, today=None if rate is None or earlier is None else round(rate - earlier, 1),
                        online=figures[day][0] if day in figures else None,
                        of=figures[day][1] if day in figures else None)
            week = _trend_days(day)
            rates = online_by_day(service.store, area["code"], week)
            tile["trend"] = [_rate(rates.get(d)) for d in week]
        out.append(tile)
    return out


TREND_DAYS = 7


def _trend_days(day: dt.date) -> list[dt.date]:
    """The last TREND_DAYS days up to ``day`` (fewer at the start of the period)."""
    first = max(PERIOD_START, day - dt.timedelta(days=TREND_DAYS - 1))
    return [first + dt.timedelta(days=i) for i in range((day - first).days + 1)]


def _rate(figures: tuple[int, int] | None) -> float | None:
    if not figures:
        return None
    online, total = figures
    return round(100.0 * online / total, 1)


def ranking(service, code: str, metric: str, day: dt.date, rows: int = RANKING_ROWS) -> dict:
    """The children of area ``code`` (districts of the city, towns of a district) ranked by
    ``metric`` from the start of the period to ``day``, highest first (ties by code).

    Returns ``level``, ``count`` (all children), ``max`` and the first ``rows`` of them as
    ``rows``: rank, code, name, value (the total) and today (the day's count).
    """
    get_metric(metric)
    area = service.atlas.get(code)
    totals = service.child_values(area["code"], metric, PERIOD_START, day)
    today = service.child_values(area["code"], metric, day, day).set_index("code")["value"]
    totals["today"] = today.reindex(totals["code"]).fillna(0).astype(np.int64).to_numpy()
    ordered = totals.sort_values(["value", "code"], ascending=[False, True]).reset_index(drop=True)
    top = ordered.head(rows)
    return {
        "level": child_level(area["level"]) or "grid",
        "count": int(len(ordered)),
        "max": int(ordered["value"].max()) if len(ordered) else 0,
        "rows": [{"rank": i + 1, "code": c, "name": n, "value": int(v), "today": int(t)}
                 for i, (c, n, v, t) in enumerate(top[["code", "name", "value", "today"]]
                                                   .itertuples(index=False, name=None))],
    }


def wall_board(service, area: str | None, metric: str | None) -> dict:
    """Everything one refresh of the wall shows for a view, except the map's colours (which come
    from the map's own endpoint): the area, the metric, "today", the store version, the tiles
    and the ranking. ``area`` defaults to the city and ``metric`` to ``visits``."""
    metric = (metric or "").strip() or "visits"
    m = get_metric(metric)
    view = check_view(service.atlas, (area or "").strip() or None)
    day = data_day(service)
    return {
        "area": {"code": view["code"], "name": view["name"], "level": view["level"]},
        "metric": metric_dict(m),
        "day": day.isoformat(),
        "period": {"from": PERIOD_START.isoformat(), "to": day.isoformat()},
        "version": service.store.version(),
        "kpis": kpis(service, view["code"], day),
        "ranking": ranking(service, view["code"], metric, day),
    }


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------

@dataclass
class WallView:
    """What the wall page needs: its options, the tour's stops, the names on the map and the first board."""

    options: WallOptions
    root: str  # the city, or the district a district's wall device is bound to
    stops: list[dict]  # the root, then (for the city) each district: code, name, level, bounds (Leaflet)
    start: int  # index in stops of the first view
    labels: list[dict]  # where to write the names of the districts and towns: code, name, level, lat, lon
    board: dict
    ranking_rows: int = RANKING_ROWS

    @property
    def day(self) -> str:
        """"Today" (the latest day with data) as an ISO date."""
        return self.board["day"]


# Parts of an area smaller than this share of it (far-off islets) do not widen its view.
MINOR_PART = 0.001


def view_bounds(atlas, code: str) -> list[list[float]]:
    """Leaflet bounds [[south, west], [north, east]] that frame area ``code`` on the wall: its
    main parts, without the islets that would shrink the whole area to a corner of the screen."""
    geometry = atlas.geometry_of(code)
    parts = list(getattr(geometry, "geoms", [geometry]))
    main = [p for p in parts if p.area >= MINOR_PART * geometry.area] or parts
    west, south, east, north = shapely.GeometryCollection(main).bounds
    return [[round(south, 5), round(west, 5)], [round(north, 5), round(east, 5)]]


def label_points(atlas) -> list[dict]:
    """A point inside each district and town (for its name on the map): code, name, level,
    lat, lon; districts first, then towns, each from the largest (whose name wins where two
    would overlap). Computed once per loaded atlas."""
    cache = atlas.__dict__.setdefault("_wall_cache", {})
    if "labels" not in cache:
        out = []
        for level in ("district", "town"):
            layer = atlas.layers[level]
            # Areas in degrees²: only their order matters.
            layer = layer.iloc[np.argsort(-shapely.area(layer.geometry.to_numpy()), kind="stable")]
            points = layer.geometry.map(_label_point)
            out += [{"code": c, "name": n, "level": level, "lat": round(p.y, 5), "lon": round(p.x, 5)}
                    for c, n, p in zip(layer["code"], layer["name"], points)]
        cache["labels"] = out
    return cache["labels"]


def _label_point(geometry):
    """The pole of inaccessibility of the largest part: well inside, even for odd shapes."""
    parts = getattr(geometry, "geoms", [geometry])
    part = max(parts, key=lambda g: g.area).simplify(0.002)
    return shapely.ops.polylabel(part, tolerance=0.002)


def wall_view(service, root: str = CITY_CODE, **params) -> WallView:
    """The wall page for the URL parameters ``params`` (see :func:`wall_options`). ``root`` is
    what the wall may show: the city (its tour visits every district) or one district."""
    atlas = service.atlas
    top = check_view(atlas, root)
    options = wall_options(service, root=top["code"], **params)
    stops = [{"code": top["code"], "name": top["name"], "level": top["level"]}]
    if top["level"] == "city":
        districts = atlas.layers["district"]
        stops += [{"code": c, "name": n, "level": "district"} for c, n in zip(districts["code"], districts["name"])]
    for stop in stops:
        stop["bounds"] = view_bounds(atlas, stop["code"])
    starts = [i for i, s in enumerate(stops) if s["code"] == options.area]
    if not starts:
        raise BadParameter(f"area {options.area!r} is not a view of the wall of {top['code']}")
    labels = [a for a in label_points(atlas) if top["level"] == "city" or a["code"].startswith(top["code"])]
    return WallView(options=options, root=top["code"], stops=stops, start=starts[0], labels=labels,
                    board=wall_board(service, options.area, options.metric))
