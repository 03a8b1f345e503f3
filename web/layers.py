"""Folium layers of Grid Atlas. Each one draws from a JSON endpoint, so pages stay small.

Every layer is a ``folium.map.Layer`` (it shows in the layer control) whose script calls a
factory in ``static/app.js`` with a JSON options object: ``GridAtlas.<factory>(map, options)``.
The factory returns the Leaflet layer at once and fills it when the data arrive. The wall
reuses these classes with its own options (e.g. ``drill=False``).

``build_map`` assembles the map of one area page; ``render_parts`` splits the rendered Folium
figure into head, body and script for our own page template.
"""

from __future__ import annotations

from dataclasses import dataclass

import folium
from flask import url_for
from folium.elements import JSCSSMixin
from folium.map import Layer
from folium.template import Template
from markupsafe import Markup

from geo.query.mapdata import MAX_ZOOM, ZOOM_DETAIL, MapView
from geo.settings import Settings

from . import offline_assets
from .caching import static_url

MIN_ZOOM = 7
MAX_MAP_ZOOM = 18
# Checkpoints turn into clustered markers from this zoom on (a town fills the screen).
CLUSTER_MIN_ZOOM = 13
# From this many areas on, the choropleth loads packed geometry onto one canvas (static/app.js,
# GridAtlas.AreaCanvas) instead of GeoJSON turned into a Leaflet polygon per area.
PACKED_FROM = 1000
FIT_PADDING = 40
FIT_MAX_ZOOM = 17
ZOOM_SNAP = 0.5


class AppLayer(JSCSSMixin, Layer):
    """A layer made by ``GridAtlas.<factory>(map, options)`` from static/app.js."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = GridAtlas.{{ this.factory }}(
                {{ this._parent.get_name() }}, {{ this.options|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, factory: str, options: dict, name: str, *, overlay: bool = True,
                 control: bool = True, show: bool = True, js: tuple = (), css: tuple = ()):
        super().__init__(name=name, overlay=overlay, control=control, show=show)
        self._name = "GridAtlasLayer"
        self.factory = factory
        self.options = options
        # Instance lists (not the class's): local URLs that localize() keeps as they are.
        self.default_js = [(f"vendor:{p}", offline_assets.vendor_url(p)) for p in js]
        self.default_js.append(("gridatlas_app", static_url("app.js")))
        self.default_css = [(f"vendor:{p}", offline_assets.vendor_url(p)) for p in css]


def outlines_layer(options: dict, name: str) -> AppLayer:
    """The base map: district and town outlines (and the current area's outline)."""
    return AppLayer("outlines", options, name, overlay=True, control=False)


def choropleth_layer(options: dict, name: str) -> AppLayer:
    """Areas coloured by class, with tooltips, drill-down clicks and summary popups."""
    return AppLayer("choropleth", options, name)


def heat_layer(options: dict, name: str) -> AppLayer:
    """Checkpoint checks as a heat map (weights at checkpoint locations)."""
    return AppLayer("heat", options, name, js=("folium/leaflet_heat.min.js",))


# The cluster plugin, loaded by the page only when the markers first show (zoom 13 and up).
CLUSTER_ASSETS = ("leaflet.markercluster/MarkerCluster.css", "leaflet.markercluster/MarkerCluster.Default.css",
                  "leaflet.markercluster/leaflet.markercluster.js")


def checkpoint_layer(options: dict, name: str) -> AppLayer:
    """Checkpoints as clustered circle markers, shown from ``options['minZoom']`` on. The
    cluster plugin's files are not in the page: the layer loads them when it first shows."""
    options = dict(options, assets=[offline_assets.vendor_url(p) for p in CLUSTER_ASSETS])
    return AppLayer("checkpoints", options, name)


@dataclass
class PageState:
    """What the layers need to know about the page beyond the view: its URL state and words."""

    query: dict  # metric, from, to (+ method, k, level) as in the page URL
    lang: str  # "zh" or "en"
    unit: str
    metric_name: str
    labels: dict
    layer_names: dict


def _api(endpoint: str, **params) -> str:
    return url_for(endpoint, **{k: v for k, v in params.items() if v is not None})


def build_map(view: MapView, state: PageState, settings: Settings) -> folium.Map:
    """The Folium map of an area page: outlines, choropleth, heat and checkpoints."""
    code = view.area["code"]
    crs = view.crs if view.crs != "wgs84" else None
    period = {"from": state.query["from"], "to": state.query["to"]}
    (south, west), (north, east) = view.bounds
    m = folium.Map(location=[(south + north) / 2, (west + east) / 2], zoom_start=10, tiles=None,
                   minZoom=MIN_ZOOM, maxZoom=MAX_MAP_ZOOM, control_scale=True, zoom_control=True,
                   prefer_canvas=True, zoomSnap=ZOOM_SNAP, zoomDelta=0.5, wheelPxPerZoomLevel=90)
    # Leaflet alone: nothing on this map uses jQuery (folium adds it for its own popups), and
    # every blocking script delays the map.
    m.default_js = [(name, url) for name, url in m.default_js if name != "jquery"]
    # The area's view before any layer is added and without animation: each layer then loads
    # the geometry of the final zoom once, and nothing is drawn twice (before and after a zoom).
    # Room around the area so its neighbours show; a lone grid should not fill the screen.
    fit = folium.FitBounds(view.bounds, padding=(FIT_PADDING, FIT_PADDING), max_zoom=FIT_MAX_ZOOM)
    fit.options["animate"] = False
    fit.add_to(m)
    if settings.tile_url:
        folium.TileLayer(settings.tile_url, attr=settings.tile_attribution or "intranet",
                         name=state.layer_names["tiles"], max_zoom=MAX_MAP_ZOOM, overlay=False,
                         control=False).add_to(m)
    buckets = list(ZOOM_DETAIL)
    full = MAX_ZOOM
    outlines_layer({
        "districts": _api("api.outlines", level="district", crs=crs),
        "towns": _api("api.outlines", level="town", crs=crs),
        "area": _api("api.area_outline", code=code, crs=crs) if view.area["level"] != "city" else None,
        "siblings": _api("api.outlines", level="grid", within=view.area["parent"], crs=crs)
        if view.area["level"] == "grid" else None,
        "zoomBuckets": buckets, "fullZoom": full, "tiles": bool(settings.tile_url), "early": True,
    }, state.layer_names["outlines"]).add_to(m)
    level_query = dict(state.query, level=view.level)
    count = int(len(view.values.frame))
    packed = count >= PACKED_FROM
    children_url = _api("api.children", code=code, crs=crs, lang=state.lang, **level_query)
    choropleth_layer({
        "url": children_url, "packed": packed, "early": True,
        "summaryUrl": _api("api.summary", code="__CODE__", lang=state.lang, **period),
        "pageUrl": _api("pages.area_map", code="__CODE__"),
        "query": list(state.query.items()),  # pairs: JSON objects lose the URL's order
        "drill": view.area["level"] != "grid",
        "metric": state.query["metric"],
        "unit": state.unit,
        "labels": state.labels,
        "lang": state.lang,
        "zoomBuckets": buckets, "fullZoom": full,
        "count": count,
    }, state.layer_names["choropleth"]).add_to(m)
    points_url = _api("api.checkpoints", code=code, crs=crs, lang=state.lang, **period)
    heat_layer({"url": points_url, "radius": 14, "blur": 16, "minOpacity": 0.03},
               state.layer_names["heat"]).add_to(m)
    checkpoint_layer({"url": points_url, "minZoom": CLUSTER_MIN_ZOOM, "labels": state.labels,
                      "pageUrl": _api("pages.area_map", code="__CODE__"), "query": list(state.query.items())},
                     state.layer_names["checkpoints"]).add_to(m)
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    m.early_requests = {  # see early_requests()
        "urls": [[children_url, {"format": "packed"} if packed else {}],
                 [_api("api.outlines", level="town", crs=crs), {}],
                 [_api("api.outlines", level="district", crs=crs), {}]],
        "bounds": view.bounds, "padding": FIT_PADDING, "maxZoom": FIT_MAX_ZOOM, "zoomSnap": ZOOM_SNAP,
        "zoomBuckets": buckets, "fullZoom": full,
    }
    return offline_assets.localize(m)


def early_requests(m: folium.Map) -> dict | None:
    """What the page's first inline script needs to start the map's geometry requests at once,
    while Leaflet and our scripts still load: the URLs (with their extra parameters; the zoom is
    added in the browser), the area's bounds and how the map fits them, and the zoom buckets.
    The script guesses the zoom from the window (a little high: the map is narrower than the
    window), and the layers take the answers over when that geometry is fine enough."""
    return getattr(m, "early_requests", None)


@dataclass
class MapParts:
    """A rendered Folium figure split for a page template."""

    header: Markup
    html: Markup
    script: Markup
    early: dict | None = None  # early_requests(m)


def render_parts(m: folium.Map) -> MapParts:
    """Render ``m`` and return its head links/styles, its map <div>, its script and its early
    requests."""
    figure = m.get_root()
    figure.render()  # renders every element, which fills the header, html and script parts
    return MapParts(Markup(figure.header.render()), Markup(figure.html.render()),
                    Markup(figure.script.render()), early_requests(m))
