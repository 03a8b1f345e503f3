"""The map in a real Chromium, with every request to another host blocked (see conftest.py)."""

import re

import pytest

from geo.atlas.areas import Atlas
from tests.stores import location
from web import create_app

pytestmark = pytest.mark.browser

YINZHOU, YUNLONG, JIACUN = "330212", "330212108", "330212108001"
GRID = JIACUN + "003"
EVIL = "<img src=x onerror=alert(1)>"
LOADED = ("window.GridAtlas && GridAtlas.status.choropleth > 0 && GridAtlas.status.outlines > 0"
          " && GridAtlas.map && !GridAtlas.map._animatingZoom")


@pytest.fixture(scope="module")
def app(demo_settings):
    return create_app({"SETTINGS": {**location(demo_settings), "secret_key": "test"}, "TESTING": True})


def _wait(page, expression, timeout_ms=60_000):
    """Poll a JavaScript expression until it is true. (page.wait_for_function compiles its
    predicate with eval, which the app's Content-Security-Policy rightly forbids.)"""
    waited = 0
    while not page.evaluate(expression):
        if waited >= timeout_ms:
            raise AssertionError(f"timed out waiting for {expression}")
        page.wait_for_timeout(100)
        waited += 100


def _open(page, url):
    page.goto(url)
    _wait(page, LOADED)
    page.wait_for_timeout(300)  # let the canvas renderers finish their frame


def _screen_point(page, lon, lat):
    """Page coordinates of a (lon, lat) on the current map."""
    return page.evaluate(
        """([lon, lat]) => {
            const m = GridAtlas.map, p = m.latLngToContainerPoint([lat, lon]);
            const box = m.getContainer().getBoundingClientRect();
            return [box.left + p.x, box.top + p.y];
        }""", [lon, lat])


def _inside(atlas, code):
    p = atlas.geometry_of(code).representative_point()
    return p.x, p.y


def _clean(page):
    assert page.console_errors == []
    assert page.failed_requests == []
    assert page.blocked_requests == []


def test_city_page_loads_and_draws_its_districts(page, live_server, app, atlas):
    base = live_server(app)
    _open(page, base + "/")
    assert page.title().startswith("宁波市")
    drawn = page.evaluate(
        """() => {
            let n = 0;
            GridAtlas.map.eachLayer(l => { if (l.feature && l.options.pane === 'ga-areas' && l._parts && l._parts.length) n++; });
            return n;
        }""")
    assert drawn == 10
    colours = {f["properties"]["code"]: f["properties"]["color"] for f in page.evaluate(
        "() => fetch('/api/areas/330200/children.geojson').then(r => r.json())")["features"]}
    # Each district's own pixels carry its class colour (the canvas holds the choropleth only).
    for code, colour in colours.items():
        lon, lat = _inside(atlas, code)
        rgba = page.evaluate(
            """([lon, lat]) => {
                const m = GridAtlas.map, r = m._ga.areas, s = window.devicePixelRatio || 1;
                const p = m.latLngToLayerPoint([lat, lon]).subtract(r._bounds.min);
                return Array.from(r._ctx.getImageData(Math.round(p.x * s), Math.round(p.y * s), 1, 1).data);
            }""", [lon, lat])
        expected = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
        assert rgba[3] > 150, code
        assert all(abs(a - b) <= 4 for a, b in zip(rgba[:3], expected)), (code, rgba, colour)
    assert page.locator(".ga-legend").inner_text().startswith("走访排查")
    _clean(page)


def test_clicking_a_district_opens_its_page(page, live_server, app, atlas):
    base = live_server(app)
    _open(page, base + "/?metric=risk_code&from=2020-02-01&to=2020-02-29")
    x, y = _screen_point(page, *_inside(atlas, YINZHOU))
    page.mouse.click(x, y)
    page.wait_for_url(re.compile(rf"/map/{YINZHOU}\?"))
    assert page.url.endswith(f"/map/{YINZHOU}?metric=risk_code&from=2020-02-01&to=2020-02-29")
    _wait(page, LOADED)
    assert page.locator("h1").inner_text() == "鄞州区"
    assert page.locator(".ga-crumbs").inner_text().replace("\n", "") == "宁波市 › 鄞州区"
    _clean(page)


def test_search_finds_yunlong(page, live_server, app):
    base = live_server(app)
    _open(page, base + "/")
    page.fill("#ga-q", "云龙")
    hit = page.locator(".ga-suggest a", has_text="云龙镇")
    hit.wait_for()
    assert "鄞州区" in hit.inner_text()
    hit.click()
    page.wait_for_url(re.compile(rf"/map/{YUNLONG}\?"))
    _wait(page, LOADED)
    assert page.locator("h1").inner_text() == "云龙镇"
    assert page.locator(".ga-crumbs").inner_text().replace("\n", "") == "宁波市 › 鄞州区 › 云龙镇"
    _clean(page)


@pytest.mark.parametrize("path", ["/?level=grid", f"/map/{YUNLONG}", f"/map/{GRID}", f"/map/{YINZHOU}?lang=en"])
def test_pages_draw_with_every_other_host_blocked(page, live_server, app, path):
    base = live_server(app)
    _open(page, base + path)
    if "level=grid" in path:
        assert page.evaluate("GridAtlas.status.choropleth") == 10205
    _clean(page)


def test_tooltip_and_popup_of_a_village(page, live_server, app, atlas):
    base = live_server(app)
    _open(page, base + f"/map/{YUNLONG}")
    x, y = _screen_point(page, *_inside(atlas, JIACUN))
    page.mouse.move(x, y)
    page.mouse.move(x + 1, y + 1)
    tip = page.locator(".ga-tooltip")
    tip.wait_for()
    value = page.evaluate(f"() => fetch('/api/areas/{YUNLONG}/values').then(r => r.json())")
    visits = next(v["value"] for v in value["values"] if v["code"] == JIACUN)
    assert "甲村" in tip.inner_text() and f"{visits:,}" in tip.inner_text()
    page.mouse.click(x, y, button="right")
    popup = page.locator(".ga-popup .ga-pop")
    popup.wait_for()
    text = popup.inner_text()
    for name in ("走访排查", "居家观察服务", "居家隔离", "红码/黄码人员", "新入甬人员", "矛盾纠纷涉稳信息", "群众诉求", "卡口核查",
                 "网格长", "网格员"):
        assert name in text
    link = popup.locator("a.ga-pop-open")
    assert link.get_attribute("href").startswith(f"/map/{JIACUN}?metric=visits")
    link.click()
    page.wait_for_url(re.compile(rf"/map/{JIACUN}\?"))
    _clean(page)


def test_checkpoints_turn_into_markers_at_high_zoom(page, live_server, app):
    base = live_server(app)
    _open(page, base + "/")
    _wait(page, "GridAtlas.status.heat > 0")
    assert page.evaluate("GridAtlas.status.checkpoints") == 0  # no markers at city zoom
    _open(page, base + f"/map/{YUNLONG}")
    assert page.evaluate("GridAtlas.map.getZoom()") >= 13
    _wait(page, "GridAtlas.status.checkpoints > 0")
    _wait(page, "document.querySelectorAll("
                "'.leaflet-ga-points-pane path.leaflet-interactive, .marker-cluster').length > 0")
    _clean(page)


def test_names_from_files_are_escaped_on_the_map(page, live_server, demo_settings, atlas):
    app = create_app({"SETTINGS": {**location(demo_settings), "secret_key": "test"}, "TESTING": True})
    layers = {k: v.copy() for k, v in atlas.layers.items()}
    town = layers["town"]
    town.loc[town["code"] == YUNLONG, "name"] = EVIL + "云龙镇"
    service = app.extensions["gridatlas"]
    service.atlas  # load it, so that the service takes the areas file as seen
    service._atlas = Atlas(layers, atlas.checkpoints)
    base = live_server(app)
    _open(page, base + f"/map/{YINZHOU}")
    x, y = _screen_point(page, *_inside(atlas, YUNLONG))
    page.mouse.move(x, y)
    page.mouse.move(x + 1, y + 1)
    tip = page.locator(".ga-tooltip")
    tip.wait_for()
    assert EVIL + "云龙镇" in tip.inner_text()
    page.mouse.click(x, y, button="right")
    page.locator(".ga-popup .ga-pop-name").wait_for()
    assert page.locator(".ga-popup .ga-pop-name").inner_text() == EVIL + "云龙镇"
    page.fill("#ga-q", "onerror")
    page.locator(".ga-suggest a").first.wait_for()
    assert EVIL in page.locator(".ga-suggest a").first.inner_text()
    assert page.locator(".ga-tooltip img, .ga-popup img, .ga-suggest img").count() == 0
    _clean(page)  # an unescaped <img src=x> would have requested /map/x and failed


# ---- Thousands of areas: one canvas, packed geometry (static/app.js GridAtlas.AreaCanvas) ----

AREA_CANVAS = "(() => { let c = null; GridAtlas.choroplethLayer.eachLayer(l => { c = l; }); return c; })()"


def _canvas_colour(page, lon, lat):
    """RGBA of the choropleth's canvas (the areas only, without the base map) at (lon, lat)."""
    return page.evaluate(
        """([lon, lat]) => {
            const m = GridAtlas.map, c = AREA_CANVAS, s = window.devicePixelRatio || 1;
            const p = m.latLngToLayerPoint([lat, lon]).subtract(c._bounds.min);
            return Array.from(c._ctx.getImageData(Math.round(p.x * s), Math.round(p.y * s), 1, 1).data);
        }""".replace("AREA_CANVAS", AREA_CANVAS), [lon, lat])


def _same_colour(rgba, colour):
    expected = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    return rgba[3] > 150 and all(abs(a - b) <= 4 for a, b in zip(rgba[:3], expected))


def _big_grids(atlas, within="", n=8):
    grids = atlas.grids[atlas.grids["code"].str.startswith(within)]
    return list(grids.assign(area=grids.to_crs(3857).area).nlargest(n, "area")["code"])


def test_all_grids_of_the_city_are_drawn_on_one_canvas_in_their_class_colours(page, live_server, app, atlas):
    base = live_server(app)
    _open(page, base + "/?level=grid")
    assert page.evaluate("GridAtlas.status.choropleth") == 10205
    # One layer for all of them, not a Leaflet polygon per grid.
    assert page.evaluate("() => { let n = 0; GridAtlas.map.eachLayer(l => { if (l.feature) n++; }); return n; }") == 0
    assert page.evaluate(f"{AREA_CANVAS}._count") == 10205
    rows = {r["code"]: r for r in page.evaluate(
        "() => fetch('/api/areas/330200/values?level=grid').then(r => r.json())")["values"]}
    for code in _big_grids(atlas):
        assert _same_colour(_canvas_colour(page, *_inside(atlas, code)), rows[code]["color"]), code
    _clean(page)


def test_a_grid_of_the_city_view_answers_hover_right_click_and_click(page, live_server, app, atlas):
    base = live_server(app)
    _open(page, base + "/?level=grid&metric=risk_code")
    code = _big_grids(atlas)[0]
    grid = atlas.get(code)
    value = next(r["value"] for r in page.evaluate(
        "() => fetch('/api/areas/330200/values?level=grid&metric=risk_code').then(r => r.json())")["values"]
        if r["code"] == code)
    x, y = _screen_point(page, *_inside(atlas, code))
    page.mouse.move(x, y)
    page.mouse.move(x + 1, y + 1)
    tip = page.locator(".ga-tooltip")
    tip.wait_for()
    assert grid["name"] in tip.inner_text() and f"{value:,}" in tip.inner_text()
    page.mouse.click(x, y, button="right")
    page.locator(".ga-popup .ga-pop-name").wait_for()
    assert page.locator(".ga-popup .ga-pop-name").inner_text() == grid["name"]
    assert "网格长" in page.locator(".ga-popup .ga-pop").inner_text()
    page.evaluate("() => { GridAtlas.map.closePopup(); }")
    _wait(page, "!GridAtlas.map._panAnim || !GridAtlas.map._panAnim._inProgress")
    page.wait_for_timeout(300)
    x, y = _screen_point(page, *_inside(atlas, code))  # the popup may have panned the map
    page.mouse.click(x, y)
    page.wait_for_url(re.compile(rf"/map/{code}\?"))
    assert "metric=risk_code" in page.url
    _wait(page, LOADED)
    assert page.locator("h1").inner_text() == grid["name"]
    _clean(page)


def test_playback_repaints_the_grids_of_the_one_canvas_day_by_day(page, live_server, app, atlas):
    base = live_server(app)
    _open(page, base + f"/map/{YINZHOU}?level=grid&lang=en")
    n = page.evaluate("GridAtlas.status.choropleth")
    assert n == len(atlas.grids[atlas.grids["code"].str.startswith(YINZHOU)]) >= 1000
    page.click("#ga-time .ga-time-mode[data-mode=play]")
    _wait(page, "document.getElementById('ga-time').getAttribute('data-day') === '2020-01-24'")
    page.evaluate("document.getElementById('ga-time').setAttribute('data-interval', '60')")
    page.click("#ga-time .ga-play-button")
    _wait(page, "document.getElementById('ga-time').getAttribute('data-day') >= '2020-02-10'")
    page.click("#ga-time .ga-play-button")  # pause
    page.wait_for_timeout(200)
    daily = page.evaluate("() => GridAtlas.playback.data")
    i = daily["days"].index(page.evaluate("document.getElementById('ga-time').getAttribute('data-day')"))
    expected = {a["code"]: daily["legend"]["colors"][daily["classes"][i][j]] for j, a in enumerate(daily["areas"])}
    fills = page.evaluate("""() => { const out = {};
        GridAtlas.choroplethLayer.eachLayer(g => g.eachLayer(f => { out[f.feature.properties.code] = f.options.fillColor; }));
        return out; }""")
    assert fills == expected
    # The canvas shows that day, not the period's totals.
    for code in _big_grids(atlas, YINZHOU, 5):
        assert _same_colour(_canvas_colour(page, *_inside(atlas, code)), expected[code]), code
    assert page.evaluate("GridAtlas.status.choropleth") == n  # restyled, not rebuilt
    _clean(page)
