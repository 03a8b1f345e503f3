"""The command-centre wall: ``/wall`` (the page) and ``/api/wall`` (what one refresh shows).

The page is a Folium map built from the same layers as the officials' map (``web/layers.py``:
the choropleth and the checkpoint heat of ``static/app.js``), plus the KPI tiles, the ranking,
the clock and the time of the data. ``static/wall.js`` keeps it alive without reloading: every
``refresh`` seconds it asks ``/api/wall`` for the tiles and the ranking and, when the store
version or "today" moved, the map's own endpoints (``/api/areas/<code>/values`` and
``/checkpoints.geojson``) for new colours and heat, which restyle the existing layers in place.

URL parameters (so each screen of a wall can show its own view): ``metric``, ``area`` (the
city or a district), ``level`` (district/town: the areas coloured), ``tour`` (on/off: cycle
through the city and its districts), ``dwell`` (seconds per stop), ``refresh`` (seconds),
``playback`` (days the map loops through, with fixed classes: ``/api/areas/<code>/daily.json``
and the officials' playback code, ``static/playback.js``), ``step`` (seconds per day) and
``lang``. :func:`geo.wall.wall_options` checks them.

``/wall/device`` turns a wall PC into a *wall device* (``geo/access/wall_devices.py``): the page's
script reads the token from the URL's fragment (never sent in a request line, so never
logged), removes it from the address bar and posts it (with the CSRF token); the answer sets a
device session (``web/auth.py``) and sends the browser to its wall. A device's wall shows only
its area: the city, or its district (its stops, map and ranking are that district's).
"""

from __future__ import annotations

import datetime as dt
import time
from urllib.parse import parse_qsl

import folium
from flask import Blueprint, current_app, jsonify, render_template, request, send_from_directory, url_for
from flask_babel import gettext as _

from geo.access import audit, wall_devices
from geo.atlas.metrics import METRICS
from geo.query import wall

from . import offline_assets, service
from .auth import city_wide, clock, current_device, current_scope, device_message, public, record, start_device_session
from .caching import json_response, revalidated
from .i18n import LANGUAGES, LEVEL_PLURALS, js_labels, metric_name, metric_unit, select_locale
from .layers import MAX_MAP_ZOOM, MIN_ZOOM, choropleth_layer, heat_layer, render_parts
from .params import check_lang, text_arg

bp = Blueprint("wall", __name__)

# The wall's map draws one geometry detail (that of zoom 12) at every zoom, so its layers fetch
# their polygons once and never again: a refresh or a tour step only restyles them.
WALL_GEOMETRY_ZOOM = 12
AREA_STYLE = {"color": "#0a1322", "weight": 1.1, "opacity": 0.95, "fillOpacity": 0.9}
# Cool, bright heat on the dark map (the choropleth runs from yellow to red).
HEAT_GRADIENT = {0.25: "#1e3a8a", 0.5: "#2563eb", 0.75: "#22d3ee", 1: "#a5f3fc"}
OPTION_NAMES = ("metric", "area", "level", "tour", "dwell", "refresh", "playback", "step")


def _view_area() -> str:
    """The ``area`` parameter (default: the top of the caller's jurisdiction), inside it (403)."""
    scope = current_scope()
    return scope.check(text_arg(request.args, "area") or scope.root)


@bp.get("/wall")
@city_wide()
def page():
    """The wall page for the options in the URL. Rendered afresh each time (no 304): the page
    carries this response's CSP nonce, which a revalidated copy would not match."""
    check_lang(request.args)
    options = {name: text_arg(request.args, name) for name in OPTION_NAMES}
    options["area"] = _view_area()
    view = wall.wall_view(service(), root=current_scope().root, **options)
    lang = LANGUAGES[select_locale()][0]
    m, names = build_wall_map(view, lang)
    return render_template("wall.html", view=view, parts=render_parts(m), config_names=names,
                           config=_client_config(view, lang), metric=METRICS[view.options.metric])


@bp.get("/wall-sw.js")
@public
def service_worker():
    """The wall's service worker (static/wall-sw.js), served from the site's root so that it
    may control /wall; never cached as is (a new version must reach the wall PCs)."""
    response = send_from_directory(current_app.static_folder, "wall-sw.js", mimetype="text/javascript", max_age=0)
    response.cache_control.no_cache = True
    return response


@bp.get("/api/wall")
@city_wide()
@revalidated
def board():
    """What one refresh shows for a view (``area``, ``metric``): "today", the tiles and the ranking."""
    check_lang(request.args)
    return json_response(wall.wall_board(service(), _view_area(), text_arg(request.args, "metric")))


@bp.route("/wall/device", methods=["GET", "POST"])
@public
def device():
    """GET: the page that claims the token of the URL's fragment. POST (JSON ``token`` and
    ``query``, CSRF header): exchange the token for a device session; answers ``next``, the
    wall's URL with the wall options of ``query``, or 403 with what to do."""
    if request.method == "GET":
        return render_template("wall_device.html", words=_device_words())
    body = request.get_json(silent=True) or {}
    token = str(body.get("token") or "")[:200]
    try:
        found = wall_devices.claim(service().store, token, request.remote_addr,
                                   now=dt.datetime.fromtimestamp(clock(), dt.timezone.utc))
    except wall_devices.DeviceRefused as err:
        who = err.device.name if err.device else "-"
        record("wall_device_refused", who, err.reason)
        return jsonify(error=device_message(err), reason=err.reason, status=403), 403
    start_device_session(found)
    audit.record(service().store, f"wall:{found.name}", "wall_device_claimed", found.name, "ok",
                 {"area": found.area, "first_use": True}, request.remote_addr)
    options = {k: v for k, v in parse_qsl(str(body.get("query") or "").lstrip("?"))
               if k in OPTION_NAMES + ("lang",) and v}
    return jsonify(next=url_for("wall.page", **options), device=found.name, area=found.area)


def _device_words() -> dict:
    return {
        "connecting": _("Connecting this screen to Grid Atlas…"),
        "noToken": _("This address holds no wall link. Open the whole link an administrator gave you "
                     "(it ends with #token=…)."),
        "offline": _("The server cannot be reached; trying again…"),
    }


def build_wall_map(view: wall.WallView, lang: str) -> tuple[folium.Map, dict]:
    """The wall's Folium map: the choropleth of the city's districts or towns and the heat of
    today's checkpoint checks, with the same layer classes as the officials' map. Returns the
    map and the JavaScript names of the map and of both layers."""
    opts = view.options
    root = view.root
    (south, west), (north, east) = view.stops[0]["bounds"]
    m = folium.Map(location=[(south + north) / 2, (west + east) / 2], zoom_start=9, tiles=None,
                   min_zoom=MIN_ZOOM, max_zoom=MAX_MAP_ZOOM, zoom_control=False, attribution_control=False,
                   prefer_canvas=True, zoomSnap=0.05, dragging=False, scrollWheelZoom=False,
                   doubleClickZoom=False, boxZoom=False, keyboard=False, touchZoom=False)
    period = {"from": view.board["period"]["from"], "to": view.day}
    query = {"metric": opts.metric, **period, "level": opts.level}
    metric = METRICS[opts.metric]
    areas = choropleth_layer({
        "url": url_for("api.children", code=root, lang=lang, **query),
        "summaryUrl": url_for("api.summary", code="__CODE__", lang=lang, **period),
        "pageUrl": url_for("pages.area_map", code="__CODE__"),
        "query": query, "drill": False, "metric": opts.metric, "unit": metric_unit(metric),
        "labels": js_labels(), "lang": lang,
        "zoomBuckets": [], "fullZoom": WALL_GEOMETRY_ZOOM,
        "count": len(service().atlas.layers[opts.level]), "style": AREA_STYLE,
    }, _("Areas by %(metric)s", metric=metric_name(metric)))
    areas.add_to(m)
    heat = heat_layer({
        "url": url_for("api.checkpoints", code=root, lang=lang, **{"from": view.day, "to": view.day}),
        "radius": 16, "blur": 18, "minOpacity": 0.05, "gradient": HEAT_GRADIENT,
    }, _("Checkpoint checks (heat)"))
    heat.add_to(m)
    return offline_assets.localize(m), {"map": m.get_name(), "areas": areas.get_name(), "heat": heat.get_name()}


def _client_config(view: wall.WallView, lang: str) -> dict:
    """Everything wall.js needs: options, tour stops, labels, endpoints and words."""
    opts = view.options
    device = current_device()
    return {
        "lang": lang,
        "refresh": opts.refresh,
        "dwell": opts.dwell,
        "tour": opts.tour,
        "metric": opts.metric,
        "level": opts.level,
        "playback": opts.playback,
        "step": opts.step,
        "device": device.name if device else None,
        "stops": view.stops,
        "start": view.start,
        "labels": view.labels,
        "board": view.board,
        "urls": {
            "board": url_for("wall.board", lang=lang, metric=opts.metric),
            "values": url_for("api.values", code=view.root, lang=lang, metric=opts.metric, level=opts.level),
            "daily": url_for("time_api.daily", code=view.root, lang=lang, metric=opts.metric, level=opts.level),
            "checkpoints": url_for("api.checkpoints", code=view.root, lang=lang),
            "districts": url_for("api.outlines", level="district", zoom=WALL_GEOMETRY_ZOOM),
            "serviceWorker": url_for("wall.service_worker"),
        },
        # When the page was made: a copy shown by the service worker while the server is away
        # says how old its data are.
        "generatedAt": int(time.time() * 1000),
        "words": _words(view),
    }


def _words(view: wall.WallView) -> dict:
    """The wall's words in the language of the request (names of areas stay Chinese)."""
    metric = metric_name(METRICS[view.options.metric])
    return {
        "today": _("New today"),
        "yesterday": _("New yesterday"),
        "vsYesterday": _("vs yesterday"),
        "points": _("points"),
        "of": _("of %(n)s"),
        "online": _("%(online)s of %(total)s online"),
        "noFigures": _("no figures"),
        "dataDay": _("Data to %(day)s"),
        "version": _("version %(v)s"),
        "refreshed": _("refreshed %(time)s"),
        "stale": _("Data updated at %(time)s"),
        "offline": _("Server unreachable"),
        "signIn": _("Sign in again"),
        "connecting": _("Connecting to the server…"),
        "connectingNote": _("The map appears as soon as the server answers."),
        "ended": _("This wall is no longer signed in"),
        "playback": _("Playback %(i)s/%(n)s"),
        "playbackFixed": _("Classes fixed for all %(n)s days %(from)s – %(to)s"),
        "rankCity": _("%(areas)s by %(metric)s", areas=str(LEVEL_PLURALS["district"]), metric=metric),
        "rankDistrict": _("%(areas)s of %(name)s by %(metric)s", areas=str(LEVEL_PLURALS["town"]),
                          name="%(name)s", metric=metric),
        "rankMore": _("%(shown)s of %(n)s shown"),
        "tour": _("Tour %(i)s/%(n)s"),
        "heat": _("Checkpoint checks on %(day)s (heat)"),
        "legendLevel": str(LEVEL_PLURALS[view.options.level]),
    }
