"""Folium maps must load every script and stylesheet from our own server.

The unit tests check the rendered HTML and the whitelist; the browser test
opens a map with every Folium feature we use in Chromium, with all traffic to
other hosts blocked, and checks that each layer is really drawn.
"""

from __future__ import annotations

import re

import branca.colormap
import folium
import pytest
from flask import Flask, Response
from folium import plugins
from folium.elements import JSCSSMixin

from web import offline_assets
from web.offline_assets import (
    PLAIN_MARKER_CALLBACK,
    RESOURCES,
    VENDOR_FILES,
    UnknownCdnResource,
    UnsupportedOffline,
    localize,
    register_vendor_static,
)

CENTER = (29.87, 121.55)  # central Ningbo
MVT_LAYER = "grids"
LINK = re.compile(r'<(?:script|link)\b[^>]*\b(?:src|href)="([^"]*)"')  # scripts and stylesheets


def _grid_geojson() -> dict:
    """Four square grids in a 2 x 2 block, each with a visits count."""
    features = []
    for i, (row, col) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        lat, lon = CENTER[0] + row * 0.01, CENTER[1] + col * 0.01
        ring = [[lon, lat], [lon + 0.01, lat], [lon + 0.01, lat + 0.01], [lon, lat + 0.01], [lon, lat]]
        features.append(
            {
                "type": "Feature",
                "properties": {"code": f"33021210800100{i}", "visits": 10 * i},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        )
    return {"type": "FeatureCollection", "features": features}


def build_map() -> folium.Map:
    """A localized map with every Folium feature Grid Atlas uses."""
    # Without a tile layer the map needs its own maxZoom (MarkerCluster throws otherwise).
    m = folium.Map(location=CENTER, zoom_start=13, tiles=None, maxZoom=18)
    colormap = branca.colormap.LinearColormap(["#ffffcc", "#e31a1c"], vmin=0, vmax=30, caption="visits")
    folium.GeoJson(
        _grid_geojson(),
        name="grids",
        style_function=lambda f: {"fillColor": colormap(f["properties"]["visits"]), "fillOpacity": 0.6},
        tooltip=folium.GeoJsonTooltip(["code"]),
        popup=folium.GeoJsonPopup(["code", "visits"]),
    ).add_to(m)
    colormap.add_to(m)
    heat = [[CENTER[0] + 0.002 * (i % 7), CENTER[1] - 0.03 + 0.002 * (i // 7), i % 5 + 1] for i in range(49)]
    plugins.HeatMap(heat, name="heat").add_to(m)
    cluster = plugins.MarkerCluster(name="checkpoints").add_to(m)
    for i in range(20):  # tight enough to form a single cluster
        folium.Marker([CENTER[0] - 0.02 + 0.0002 * i, CENTER[1]], popup=f"checkpoint {i}").add_to(cluster)
    fast = [[CENTER[0] - 0.02 + 0.0002 * i, CENTER[1] + 0.03] for i in range(30)]
    plugins.FastMarkerCluster(fast, callback=PLAIN_MARKER_CALLBACK, name="fast").add_to(m)
    plugins.VectorGridProtobuf(
        "/tiles/{z}/{x}/{y}.pbf",
        "vector grids",
        {"vectorTileLayerStyles": {MVT_LAYER: {"fill": True, "weight": 1, "color": "#3366cc"}}},
    ).add_to(m)
    folium.LayerControl().add_to(m)
    m.fit_bounds([[CENTER[0] - 0.025, CENTER[1] - 0.035], [CENTER[0] + 0.025, CENTER[1] + 0.035]])
    return localize(m)


def make_app(tile_requests: list | None = None) -> Flask:
    """Serve build_map() at / plus the vendor files and a vector tile source."""
    app = Flask(__name__)
    register_vendor_static(app)

    @app.get("/")
    def index():
        return build_map().get_root().render()

    @app.get("/tiles/<int:z>/<int:x>/<int:y>.pbf")
    def tile(z, x, y):
        if tile_requests is not None:
            tile_requests.append((z, x, y))
        return Response(mvt_square_tile(), mimetype="application/x-protobuf")

    @app.get("/favicon.ico")
    def favicon():  # Chromium always asks; a 404 would be a console error
        return Response(status=204)

    return app


# --- a minimal Mapbox Vector Tile: one layer with one square polygon --------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _message(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _uint(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def mvt_square_tile(extent: int = 4096) -> bytes:
    """A tile whose layer MVT_LAYER holds one clockwise square in the middle."""
    zigzag = lambda v: (v << 1) ^ (v >> 31)  # noqa: E731
    a, b = extent // 4, extent // 2
    # MoveTo(1), LineTo(3) with relative moves, ClosePath: see the MVT spec 4.3.
    commands = [9, zigzag(a), zigzag(a), 26, zigzag(b), 0, 0, zigzag(b), zigzag(-b), 0, 15]
    feature = _uint(3, 3) + _message(4, b"".join(map(_varint, commands)))  # type 3 = POLYGON
    layer = _uint(15, 2) + _message(1, MVT_LAYER.encode()) + _message(2, feature) + _uint(5, extent)
    return _message(3, layer)


# --- unit tests --------------------------------------------------------------


def test_localized_map_links_only_local_vendor_files():
    html = build_map().get_root().render()

    assert re.findall(r"(?:https?:)?//[\w.-]+", html) == []
    links = LINK.findall(html)
    assert len(links) >= 8
    for url in links:
        assert url.startswith("/static/vendor/"), url
        assert url.split("?")[0].removeprefix("/static/vendor/") in VENDOR_FILES, url
    # Every feature's library is there, once.
    for name in ("leaflet", "leaflet_css", "jquery", "markerclusterjs", "leaflet-heat.js", "vectorGrid", "d3"):
        assert sum(url.startswith(f"/static/vendor/{RESOURCES[name]}?v=") for url in links) == 1, name


def test_localize_is_idempotent_and_keeps_folium_defaults():
    once = LINK.findall(build_map().get_root().render())
    twice = LINK.findall(localize(build_map()).get_root().render())
    assert once == twice
    # The rewrite lives on instances: folium's class-level defaults stay, for maps we do not localize.
    assert folium.Map.default_js[0][1].startswith("https://")
    assert "https://" in folium.Map(tiles=None).get_root().render()


def test_unknown_cdn_resource_fails_loudly():
    class NewPlugin(JSCSSMixin):
        default_js = [("brand-new-lib", "https://cdn.example.org/new.js")]

    m = folium.Map(tiles=None)
    NewPlugin().add_to(m)
    with pytest.raises(UnknownCdnResource, match="brand-new-lib"):
        localize(m)

    # Added after localize(): caught when the header renders.
    m = localize(folium.Map(tiles=None))
    NewPlugin().add_to(m)
    with pytest.raises(UnknownCdnResource, match="brand-new-lib"):
        m.get_root().render()


def test_awesome_markers_are_refused():
    m = folium.Map(tiles=None)
    folium.Marker(CENTER, icon=folium.Icon()).add_to(m)
    with pytest.raises(UnsupportedOffline, match="folium.Icon"):
        localize(m)

    m = folium.Map(tiles=None)
    plugins.FastMarkerCluster([CENTER]).add_to(m)
    with pytest.raises(UnsupportedOffline, match="PLAIN_MARKER_CALLBACK"):
        localize(m)


def test_every_resource_has_an_installed_file():
    assert {path for path in RESOURCES.values() if path} <= VENDOR_FILES.keys()
    assert offline_assets.missing_vendor_files() == [], (
        "run `make web/assets/node_modules/.installed` (npm ci in web/assets)"
    )


def test_vendor_static_serves_only_whitelisted_files(tmp_path):
    # An app static folder adds Flask's own /static/<path> rule; ours must still win.
    (tmp_path / "app.css").write_text("body {}")
    app = Flask(__name__, static_folder=str(tmp_path), static_url_path="/static")
    register_vendor_static(app)
    client = app.test_client()

    response = client.get("/static/vendor/leaflet/leaflet.js?v=1.9.4")
    assert response.status_code == 200
    assert "javascript" in response.mimetype
    assert response.cache_control.max_age == 365 * 24 * 3600
    assert response.cache_control.public and response.cache_control.immutable
    response.close()
    assert client.get("/static/vendor/leaflet/images/marker-icon.png").mimetype == "image/png"
    assert client.get("/static/app.css").status_code == 200

    for path in (
        "leaflet/",
        "leaflet",
        "leaflet/package.json",
        "leaflet/dist/leaflet.js",
        "leaflet/../leaflet/leaflet.js",
        "..%2f..%2foffline_assets.py",
        "%2e%2e/%2e%2e/offline_assets.py",
        "jquery/jquery.js",
    ):
        assert client.get(f"/static/vendor/{path}").status_code == 404, path


# --- browser test ------------------------------------------------------------


def test_map_draws_offline_in_chromium(page, live_server):
    tile_requests: list = []
    base_url = live_server(make_app(tile_requests))

    page.goto(base_url + "/", wait_until="networkidle")
    page.wait_for_selector(".leaflet-tile-pane svg path", state="attached")

    assert page.blocked_requests == []
    assert page.failed_requests == []
    assert page.console_errors == []

    # GeoJSON grids are SVG paths in the overlay pane, styled from the colormap.
    assert page.locator(".leaflet-overlay-pane svg path.leaflet-interactive").count() == 4
    assert page.locator("svg#legend rect").count() > 0  # branca legend drawn by d3
    assert page.locator(".leaflet-overlay-pane canvas.leaflet-heatmap-layer").count() == 1
    # Both cluster groups collapse into one cluster each, styled by MarkerCluster.Default.css.
    counts = sorted(page.locator(".leaflet-marker-pane .marker-cluster").all_inner_texts())
    assert counts == ["20", "30"]
    cluster_bg = page.eval_on_selector(
        ".marker-cluster div", "el => getComputedStyle(el).backgroundColor"
    )
    assert cluster_bg not in ("", "rgba(0, 0, 0, 0)")
    # VectorGrid fetched our protobuf tiles and drew their polygons.
    assert tile_requests
    assert page.locator(".leaflet-tile-pane svg path").count() >= 1

    # Tooltip and popup work: hover and click the top-right grid.
    path = page.locator(".leaflet-overlay-pane svg path.leaflet-interactive").nth(3)
    path.hover(force=True)
    assert "330212108001003" in page.locator(".leaflet-tooltip").inner_text()
    path.click(force=True)
    assert "visits" in page.locator(".leaflet-popup-content").inner_text()

    assert page.console_errors == []
    assert page.blocked_requests == []
