"""Time endpoints: every day's values for playback, the change between two periods, and the
server-rendered trend chart. Each route parses its arguments, calls one ``geo.timeseries`` /
``geo.charts`` function and returns its answer.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from geo.export import charts
from geo.query import timeseries

from . import service
from .auth import area_scoped
from .caching import json_response, revalidated
from .i18n import LANGUAGES, select_locale
from .params import date_arg, map_args, text_arg

bp = Blueprint("time_api", __name__, url_prefix="/api")
# The chart's few words, per page language (the chart is an image: no gettext catalogue entry needed).
CHART_WORDS = {
    "zh": {"peak": "峰值", "others": "另有 {n} 个", "own_scale": "各线按自身比例"},
    "en": {"peak": "peak", "others": "and {n} more", "own_scale": "each line on its own scale"},
}


def _two_periods():
    """Periods a and b of a change (each defaults to the week before last / last week)."""
    (a0, a1), (b0, b1) = timeseries.default_change_periods()
    a = date_arg(request.args, "a_from", a0), date_arg(request.args, "a_to", a1)
    b = date_arg(request.args, "b_from", b0), date_arg(request.args, "b_to", b1)
    return a, b


@bp.get("/areas/<code>/daily.json")
@area_scoped()
@revalidated
def daily(code: str):
    """Every day's value for the areas of ``level`` inside ``code`` over ``from``..``to``, with
    classes fixed for the whole period (one request plays the whole period)."""
    a = map_args(request.args)
    return json_response(timeseries.daily_children(service(), code, a.metric, a.start, a.end, a.method, a.k,
                                                   a.level))


@bp.get("/areas/<code>/change.json")
@area_scoped()
@revalidated
def change(code: str):
    """The change from period a (``a_from``..``a_to``) to period b (``b_from``..``b_to``) per
    area: absolute and per cent, classed on ``basis`` (absolute or percent), diverging colours."""
    a = map_args(request.args)
    pa, pb = _two_periods()
    basis = text_arg(request.args, "basis") or "absolute"
    per_side = a.k if text_arg(request.args, "k") else 3  # classes per side of 0
    return json_response(timeseries.change(service(), code, a.metric, pa, pb, basis, a.level, per_side))


@bp.get("/areas/<code>/trend.svg")
@area_scoped()
@revalidated
def trend(code: str):
    """The trend chart of ``metric`` over ``from``..``to``: the area's daily series and its
    children's sparklines, as SVG."""
    a = map_args(request.args)
    series = timeseries.area_series(service(), code, a.metric, a.start, a.end)
    words = CHART_WORDS.get(LANGUAGES[select_locale()][0], CHART_WORDS["en"])
    return Response(charts.trend_svg(series, words), mimetype="image/svg+xml")

