"""The wall in a real browser (Debian Chromium) at 3840×2160 and 1920×1080.

It must fill the screen without overflowing, show a change in the store after the next refresh
without reloading, and show the stale badge while the server is down, then recover by itself.
"""

import datetime as dt
import re
import threading

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from geo.access import wall_devices
from geo.atlas.metrics import PERIOD_END
from geo.ingest.imports import ingest_file
from tests.stores import copy_settings, location
from web import create_app

pytestmark = pytest.mark.browser

SIZES = [(3840, 2160), (1920, 1080)]
YINZHOU, YUNLONG = "330212", "330212108"
LOADED = "() => window.GridAtlasWall && GridAtlasWall.state.ok >= 1 && GridAtlasWall.state.mapUpdates >= 1" \
         " && GridAtlas.status.choropleth > 0 && GridAtlas.status.heat > 0"


@pytest.fixture(scope="module")
def wall_settings(demo_settings, tmp_path_factory):
    """Settings on a copy of the demo data (the tests change its counts)."""
    data = tmp_path_factory.mktemp("wall") / "data"
    return copy_settings(demo_settings, data, secret_key="test")


@pytest.fixture(scope="module")
def app(wall_settings):
    return create_app({"SETTINGS": {**location(wall_settings), "secret_key": "test"}, "TESTING": True})


class OneShotHandler(WSGIRequestHandler):
    """One request per connection, so that a stopped server is really gone for the browser."""

    protocol_version = "HTTP/1.0"


class StoppableServer:
    """The app on 127.0.0.1 on a fixed port, which can be stopped and started again."""

    def __init__(self, app):
        self.app, self.port, self.server = app, 0, None

    def start(self) -> str:
        self.server = make_server("127.0.0.1", self.port, self.app, threaded=True, request_handler=OneShotHandler)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.server = None


def _open(page, url, size):
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.goto(url)
    page.wait_for_function(LOADED, timeout=30_000)


def _tile(page, key, part="value"):
    return page.locator(f'.wall-kpi[data-kpi="{key}"] .wall-kpi-{part}').inner_text()


OVERFLOW = """() => {
  const W = innerWidth, H = innerHeight, out = [], small = [], cut = [];
  const map = document.querySelector('.leaflet-container');
  for (const el of document.body.querySelectorAll('*')) {
    const style = getComputedStyle(el);
    if (style.display === 'none' || style.visibility === 'hidden' || el.closest('[hidden]')) continue;
    const r = el.getBoundingClientRect();
    if (!r.width && !r.height) continue;
    // Leaflet's panes and canvases reach past the map on purpose; the map clips them.
    const inMap = map.contains(el) && el !== map;
    if (!inMap && (r.left < -0.5 || r.top < -0.5 || r.right > W + 0.5 || r.bottom > H + 0.5))
      out.push(el.className || el.tagName);
    const text = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (text && parseFloat(style.fontSize) < 0.016 * H) small.push(el.className + ' ' + style.fontSize);
    if (text && !inMap && el.scrollWidth > el.clientWidth + 1 && style.display !== 'inline')
      cut.push(el.className + ': ' + el.textContent.trim());
    // A box that clips (tiles, panels) must hold all it has. (A line of text is checked across
    // only: CJK glyphs reach a few pixels past their line box without being cut.)
    const clips = /hidden|clip/.test(style.overflowX + style.overflowY);
    const over = el.scrollHeight > el.clientHeight + 1 || el.scrollWidth > el.clientWidth + 1;
    if (clips && !text && !inMap && el !== map && over)
      cut.push(`${el.className} holds ${el.scrollWidth}x${el.scrollHeight} in ${el.clientWidth}x${el.clientHeight}`);
  }
  const d = document.documentElement;
  return {scroll: [d.scrollWidth, d.scrollHeight, W, H], out, small, cut};
}"""


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_wall_fills_the_screen_without_overflow(page, live_server, app, size):
    _open(page, live_server(app) + f"/wall?area={YINZHOU}", size)
    page.wait_for_timeout(300)  # labels are placed after the map settles
    report = page.evaluate(OVERFLOW)
    w, h, vw, vh = report["scroll"]
    assert (w, h) == (vw, vh) == size, "the page scrolls"
    assert report["out"] == [], "elements outside the screen"
    assert report["cut"] == [], "text cut off in its box: " + "; ".join(report["cut"])
    assert report["small"] == [], "text smaller than 1.6% of the screen height (hard to read from 5 m)"
    # The view, its towns ranked, nine tiles with figures, the clock and the time of the data.
    assert page.locator("#wall-view-name").inner_text() == "鄞州区"
    assert page.locator(".wall-rank-rows li:not([hidden])").count() == 12
    assert page.locator(".wall-kpi").count() == 9
    assert re.fullmatch(r"\d{1,3}(,\d{3})*", _tile(page, "visits"))
    assert re.fullmatch(r"\d+\.\d", _tile(page, "online_rate"))
    assert re.fullmatch(r"\d\d:\d\d:\d\d", page.locator("#wall-clock-time").inner_text())
    assert PERIOD_END.isoformat() in page.locator("#wall-data").inner_text()
    assert page.blocked_requests == [] and page.failed_requests == [] and page.console_errors == []


def test_new_counts_show_after_the_next_refresh_without_reload(page, live_server, app, wall_settings, tmp_path):
    _open(page, live_server(app) + "/wall?refresh=1", (1920, 1080))
    page.evaluate("() => { window.__kept = 'no reload'; }")
    visits = int(_tile(page, "visits").replace(",", ""))
    service = app.extensions["gridatlas"]
    before = service.area_total(YINZHOU, "visits")
    # An import of 25 visits in 云龙镇 today: one transaction through the importer.
    x, y = service.atlas.geometry_of(YUNLONG).representative_point().coords[0]
    rows = "\n".join(f"W{i:03d},{PERIOD_END.isoformat()},{x:.6f},{y:.6f}" for i in range(25))
    (tmp_path / "visits.csv").write_text("id,date,lon,lat\n" + rows + "\n", encoding="utf-8")
    report = ingest_file(wall_settings, tmp_path / "visits.csv", metric="visits", atlas=service.atlas)
    assert report.accepted == 25
    expected = f"{visits + 25:,}"
    page.wait_for_function(f"() => document.querySelector('.wall-kpi[data-kpi=visits] .wall-kpi-value')"
                           f".textContent === '{expected}'", timeout=15_000)
    assert page.evaluate("() => window.__kept") == "no reload"
    # The map's polygon of 鄞州区 carries the new total, restyled in place.
    page.wait_for_function("() => GridAtlasWall.state.mapUpdates >= 2", timeout=15_000)
    value = page.evaluate("""() => { let v = null;
        GridAtlasWall.layers.areas.eachLayer(g => g.eachLayer(f => {
          if (f.feature.properties.code === '330212') v = f.feature.properties.value; }));
        return v; }""")
    assert value == before + 25
    row = page.locator('.wall-rank-rows li[data-code="330212"] .r-value').inner_text()
    assert row == f"{before + 25:,}"
    assert page.console_errors == []


def test_stale_badge_while_the_server_is_down_then_recovery(page, app):
    server = StoppableServer(app)
    url = server.start()
    try:
        _open(page, url + "/wall?refresh=1", (1920, 1080))
        page.evaluate("() => { window.__kept = 'no reload'; }")
        visits = _tile(page, "visits")
        assert page.locator("#wall-stale").is_hidden()
        server.stop()
        page.wait_for_function("() => GridAtlasWall.state.stale", timeout=15_000)
        badge = page.locator("#wall-stale")
        assert badge.is_visible()
        last = page.evaluate("() => GridAtlasWall.state.lastOk.getTime()")
        hhmm = dt.datetime.fromtimestamp(last / 1000).strftime("%H:%M")
        assert badge.inner_text().strip() == f"数据更新于 {hhmm}"
        assert _tile(page, "visits") == visits, "the last data stay on screen"
        server.start()
        page.wait_for_function("() => !GridAtlasWall.state.stale", timeout=15_000)
        assert badge.is_hidden()
        assert page.evaluate("() => window.__kept") == "no reload"
    finally:
        if server.server:
            server.stop()


def test_a_wall_restarted_while_the_server_is_away_opens_and_recovers(page, app):
    """The wall PC's browser restarts during an outage: the kept page opens, not an error page."""
    server = StoppableServer(app)
    url = server.start()
    try:
        _open(page, url + "/wall?refresh=1", (1920, 1080))
        page.wait_for_function("() => GridAtlasWall.state.keptForRestarts === true", timeout=20_000)
        visits = _tile(page, "visits")
        server.stop()
        page.reload()
        page.wait_for_function("() => window.GridAtlasWall && GridAtlasWall.state.stale", timeout=30_000)
        assert page.locator("#wall-stale").is_visible()
        assert _tile(page, "visits") == visits, "the last board shows while the server is away"
        assert page.locator("#wall-connecting").is_visible()
        server.start()
        page.wait_for_function(LOADED + " && !GridAtlasWall.state.stale && !GridAtlasWall.state.connecting",
                               timeout=30_000)
        assert page.locator("#wall-stale").is_hidden()
    finally:
        if server.server:
            server.stop()


def test_tour_moves_through_the_districts(page, live_server, app):
    _open(page, live_server(app) + "/wall?tour=1&dwell=2&refresh=30", (1920, 1080))
    page.wait_for_function("() => GridAtlasWall.state.tourSteps >= 1", timeout=10_000)
    # The tour goes city -> first district -> ...; wait for the board of the current stop.
    page.wait_for_function("""() => { const s = GridAtlasWall.state;
        return document.querySelector('#wall-rank-title').textContent.includes(
          document.querySelector('#wall-view-name').textContent) && s.stop > 0; }""", timeout=10_000)
    page.wait_for_timeout(1200)  # the map flies to the district
    seen = page.evaluate("""() => { const m = GridAtlasWall.map, s = GridAtlasWall.state;
        const stop = GridAtlasWall.stops[s.stop], city = GridAtlasWall.stops[0];
        return {stop: s.stop, name: stop.name, level: stop.level,
                inside: L.latLngBounds(stop.bounds).contains(m.getCenter()),
                zoom: m.getZoom(), cityZoom: m.getBoundsZoom(city.bounds)}; }""")
    districts = app.extensions["gridatlas"].atlas.layers["district"]
    assert seen["level"] == "district" and seen["name"] in set(districts["name"])
    assert page.locator("#wall-view-name").inner_text() == seen["name"]
    assert page.locator("#wall-tour").inner_text() == f"轮播 {seen['stop'] + 1}/11"
    assert seen["inside"] and seen["zoom"] > seen["cityZoom"]
    assert page.console_errors == []


# --- connecting, wall devices, playback --------------------------------------------------------

def test_a_server_down_at_the_first_data_load_shows_connecting_then_recovers(page, live_server, app):
    """The page came, but its data did not (server stopped right after): no blank map forever."""
    down = re.compile(r"/children\.geojson|/api/wall|/values|/checkpoints\.geojson")
    page.route(down, lambda route: route.abort("connectionrefused"))
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto(live_server(app) + "/wall?refresh=1")
    page.wait_for_function("() => window.GridAtlasWall && GridAtlasWall.state.failed >= 2", timeout=20_000)
    connecting = page.locator("#wall-connecting")
    assert connecting.is_visible() and "正在连接服务器" in connecting.inner_text()
    assert page.evaluate("() => GridAtlas.status.choropleth") == 0
    page.unroute(down)
    page.wait_for_function(LOADED + " && !GridAtlasWall.state.connecting", timeout=30_000)
    assert connecting.is_hidden() and page.locator("#wall-stale").is_hidden()
    assert page.evaluate("() => GridAtlasWall.state.geometryRetries") >= 1
    assert page.locator(".ga-toast").count() == 0


@pytest.fixture(scope="module")
def device_app(wall_settings):
    """The app with real sessions (no test user): a browser must claim a device link."""
    return create_app({"SETTINGS": {**location(wall_settings), "secret_key": "test"}, "TESTING": True,
                       "TEST_USER": None})


def test_a_device_link_opens_the_live_wall_and_a_revocation_stops_it(page, live_server, device_app):
    store = device_app.extensions["gridatlas"].store
    _, token = wall_devices.issue(store, "browser-wall", YINZHOU, 30)
    base = live_server(device_app)
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto(f"{base}/wall/device?refresh=1#token={token}")
    page.wait_for_function(LOADED, timeout=30_000)
    assert page.url == f"{base}/wall?refresh=1"  # the token is gone from the address bar
    assert token not in page.evaluate("() => history.length + location.href")
    assert page.locator("#wall-view-name").inner_text() == "鄞州区"
    expected = device_app.extensions["gridatlas"].area_total(YINZHOU, "visits")
    assert _tile(page, "visits") == f"{expected:,}"
    assert page.locator(".wall-rank-rows li:not([hidden])").count() == 12
    # A link cannot be used twice: the same URL in another tab of the same browser (sharing
    # this wall's cookies) is refused, clearly, and leaves the wall's own login alone.
    other = page.context.new_page()
    other.goto(f"{base}/wall/device#token={token}")
    other.wait_for_function("() => GridAtlasWall.state.claim === 'refused'", timeout=15_000)
    assert "已使用" in other.locator("#wall-device-text").inner_text()
    other.close()
    wall_devices.revoke(store, "browser-wall")
    page.wait_for_function("() => GridAtlasWall.state.ended", timeout=15_000)
    ended = page.locator("#wall-ended")
    assert ended.is_visible() and "撤销" in ended.inner_text(), (ended.inner_text(), page.failed_requests)
    assert page.console_errors == [] or all("401" in e for e in page.console_errors)


def test_playback_loops_the_last_days_with_fixed_classes(page, live_server, app):
    _open(page, live_server(app) + "/wall?playback=5&step=0.3&refresh=30", (1920, 1080))
    page.wait_for_function("() => GridAtlasWall.state.playbackSteps >= 1", timeout=15_000)
    colours = """() => { const c = {};
        GridAtlasWall.layers.areas.eachLayer(g => g.eachLayer(f => { c[f.feature.properties.code] = f.options.fillColor; }));
        return {day: document.querySelector('#wall-playback-date').textContent, c,
                loops: GridAtlasWall.state.playbackLoops}; }"""
    seen = []
    while len(seen) < 40:
        seen.append(page.evaluate(colours))
        if seen[-1]["loops"] >= 1 and len({s["day"] for s in seen}) == 5 and seen[-1]["day"] != seen[0]["day"]:
            break
        page.wait_for_timeout(150)
    days = [(PERIOD_END - dt.timedelta(days=i)).isoformat() for i in range(4, -1, -1)]
    order = [s["day"] for i, s in enumerate(seen) if i == 0 or s["day"] != seen[i - 1]["day"]]
    assert set(order) == set(days), order
    assert any(a == days[-1] and b == days[0] for a, b in zip(order, order[1:])), "it loops back to the first day"
    for a, b in zip(order, order[1:]):
        assert days.index(b) == (days.index(a) + 1) % 5, "the date advances one day at a time"
    by_day = {s["day"]: s["c"] for s in seen}
    assert len({tuple(sorted(c.items())) for c in by_day.values()}) > 1, "the district colours change"
    assert page.locator("#wall-playback-date").is_visible()
    meta = page.locator("#wall-legend-meta").inner_text()
    assert "固定" in meta and days[0] in meta and days[-1] in meta
    assert page.evaluate("() => GridAtlasWall.state.ok") >= 1 and page.console_errors == []
