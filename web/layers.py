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

from geo.mapdata import MAX_ZOOM, ZOOM_DETAIL, MapView
from geo.settings import Settings

from . import offline_assets
from .caching import static_url

MIN_ZOOM = 7
MAX_MAP_ZOOM = 18
# Checkpoints turn into clustered markers from this zoom on (a town fills the screen).
CLUSTER_MIN_ZOOM = 13


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


def checkpoint_layer(options: dict, name: str) -> AppLayer:
    """Checkpoints as clustered circle markers, shown from ``options['minZoom']`` on."""
    return AppLayer(
        "checkpoints", options, name,
        js=("leaflet.markercluster/leaflet.markercluster.js",),
        css=("leaflet.markercluster/MarkerCluster.css", "leaflet.markercluster/MarkerCluster.Default.css"),
    )


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
                   prefer_canvas=True, zoomSnap=0.5, zoomDelta=0.5, wheelPxPerZoomLevel=90)
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
        "zoomBuckets": buckets, "fullZoom": full, "tiles": bool(settings.tile_url),
    }, state.layer_names["outlines"]).add_to(m)
    level_query = dict(state.query, level=view.level)
    choropleth_layer({
        "url": _api("api.children", code=code, crs=crs, lang=state.lang, **level_query),
        "summaryUrl": _api("api.summary", code="__CODE__", lang=state.lang, **period),
        "pageUrl": _api("pages.area_map", code="__CODE__"),
        "query": list(state.query.items()),  # pairs: JSON objects lose the URL's order
        "drill": view.area["level"] != "grid",
        "metric": state.query["metric"],
        "unit": state.unit,
        "labels": state.labels,
        "lang": state.lang,
        "zoomBuckets": buckets, "fullZoom": full,
        "count": int(len(view.values.frame)),
    }, state.layer_names["choropleth"]).add_to(m)
    points_url = _api("api.checkpoints", code=code, crs=crs, lang=state.lang, **period)
    heat_layer({"url": points_url, "radius": 14, "blur": 16, "minOpacity": 0.03},
               state.layer_names["heat"]).add_to(m)
    checkpoint_layer({"url": points_url, "minZoom": CLUSTER_MIN_ZOOM, "labels": state.labels,
                      "pageUrl": _api("pages.area_map", code="__CODE__"), "query": list(state.query.items())},
                     state.layer_names["checkpoints"]).add_to(m)
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    # Room around the area so its neighbours show; a lone grid should not fill the screen.
    m.fit_bounds(view.bounds, padding=(40, 40), max_zoom=17)
    return offline_assets.localize(m)


@dataclass
class MapParts:
    """A rendered Folium figure split for a page template."""

    header: Markup
    html: Markup
    script: Markup


def render_parts(m: folium.Map) -> MapParts:
    """Render ``m`` and return its head links/styles, its map <div> and its script."""
    figure = m.get_root()
    figure.render()  # renders every element, which fills the header, html and script parts
    return MapParts(Markup(figure.header.render()), Markup(figure.html.render()),
                    Markup(figure.script.render()))
