"""Hostile area names in a real browser: shown as text everywhere, never run.

A copy of the demo data gets three villages of 云龙镇 (and one checkpoint) renamed to
``<img src=x onerror=alert(1)>``, a backtick and ``${document.title='x'}``, as an uploaded
boundary file could name them. A town official signs in through the form and opens the map,
the tooltips, the popups, the search suggestions and the result pages. Every name must read
as plain text, no dialog may open, the title must not change, and the page must break no rule
of the Content-Security-Policy.
"""

from __future__ import annotations

import geopandas as gpd
import pytest

from geo.access.users import add_user
from geo.store import open_store
from tests.stores import copy_settings, location, publish_areas
from web import create_app

TOWN = "330212108"
EVIL = {
    TOWN + "001": "<img src=x onerror=alert(1)>",
    TOWN + "002": "`",
    TOWN + "003": "${document.title='x'}",
}
CHECKPOINT = TOWN + "K0001"
PASSWORD = "a long test password"

pytestmark = pytest.mark.browser

# Collects what a page should never do: CSP violations (inline script, eval, foreign hosts).
WATCH = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__violations.push(e.violatedDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sample || ''));
});
"""


@pytest.fixture(scope="module")
def hostile_settings(demo_settings, tmp_path_factory):
    """A copy of the demo data with hostile village and checkpoint names, and a town user."""
    settings = copy_settings(demo_settings, tmp_path_factory.mktemp("xss") / "data", secret_key="test-secret")
    gpkg = settings.demo_dir / "areas.gpkg"
    villages = gpd.read_file(gpkg, layer="village")
    for code, name in EVIL.items():
        villages.loc[villages["code"] == code, "name"] = name
    villages.to_file(gpkg, layer="village", driver="GPKG")
    # The other towns of 鄞州区 too, for the command-centre wall's ranking of the district.
    towns = gpd.read_file(gpkg, layer="town")
    others = towns["code"].str.startswith("330212") & (towns["code"] != TOWN)
    towns.loc[others, "name"] = [f"<img src=x onerror=alert({i})>" for i in range(int(others.sum()))]
    towns.to_file(gpkg, layer="town", driver="GPKG")
    checkpoints = gpd.read_file(gpkg, layer="checkpoint")
    checkpoints.loc[checkpoints["code"] == CHECKPOINT, "name"] = EVIL[TOWN + "001"]
    checkpoints.to_file(gpkg, layer="checkpoint", driver="GPKG")
    publish_areas(settings)
    add_user(open_store(settings), "xss-town", "town", TOWN, PASSWORD)
    add_user(open_store(settings), "xss-city", "city", None, PASSWORD)
    return settings


@pytest.fixture(scope="module")
def inside_points(hostile_settings):
    """A point inside each renamed village (lat, lon) and the checkpoint's position."""
    villages = gpd.read_file(hostile_settings.demo_dir / "areas.gpkg", layer="village").set_index("code")
    points = {code: villages.geometry[code].representative_point() for code in EVIL}
    assert all(villages.loc[c, "name"] == n for c, n in EVIL.items())
    return {code: (p.y, p.x) for code, p in points.items()}


@pytest.fixture
def server(live_server, hostile_settings):
    """The app on the hostile data, with no test user: every page needs a real sign-in."""
    app = create_app({"SETTINGS": {**location(hostile_settings), "secret_key": "test-secret"},
                      "TESTING": True, "TEST_USER": None})
    return live_server(app)


def _sign_in(page, base, name, lands_on):
    """Sign in through the form and wait for the first page (the city map takes a while)."""
    page.set_default_timeout(120_000)  # a loaded two-core machine: slow, never wrong
    page.goto(base + "/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]", no_wait_after=True)
    page.wait_for_url(lands_on, timeout=180_000)


@pytest.fixture
def signed_in(page, server):
    """A page signed in as the town official through the login form; returns the base URL."""
    base = server
    page.dialogs = []

    def on_dialog(dialog):
        page.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.add_init_script(WATCH)
    _sign_in(page, base, "xss-town", f"{base}/map/{TOWN}*")
    return base


def _until(page, script: str, arg=None, tries: int = 900):
    """Poll ``script`` (a function) until it returns true. Playwright's wait_for_function
    evaluates its predicate with eval, which this site's CSP rightly blocks."""
    for _ in range(tries):
        if page.evaluate(script, arg):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"never true: {script}")


def _wait_for_map(page):
    _until(page, "() => !!(window.GridAtlas && GridAtlas.status.choropleth > 0)")


def _hover(page, lat, lon, button=None):
    """Move the mouse to (lat, lon) on the map (and click with ``button``)."""
    x, y = page.evaluate(
        """([lat, lon]) => {
            const p = GridAtlas.map.latLngToContainerPoint([lat, lon]);
            const r = GridAtlas.map.getContainer().getBoundingClientRect();
            return [r.left + p.x, r.top + p.y];
        }""", [lat, lon])
    page.mouse.move(x - 3, y - 3)
    page.mouse.move(x, y, steps=3)
    if button:
        page.mouse.click(x, y, button=button)


def _assert_harmless(page):
    assert page.dialogs == []
    assert page.title() != "x"
    assert page.evaluate("window.__violations") == []
    assert page.locator("img[src=x]").count() == 0


def test_hostile_names_show_as_text_in_the_page_tooltips_and_popups(page, signed_in, inside_points):
    _wait_for_map(page)
    ranking = page.locator(".ga-rank").inner_text()
    for name in EVIL.values():
        assert name in ranking

    for code, name in EVIL.items():
        lat, lon = inside_points[code]
        _hover(page, lat, lon)
        tip = page.locator(".leaflet-tooltip")
        tip.wait_for()
        assert tip.inner_text().splitlines()[0].startswith(name)
        assert tip.locator("img").count() == 0
        _hover(page, lat, lon, button="right")  # the summary popup
        popup = page.locator(".leaflet-popup-content .ga-pop-name")
        popup.wait_for()
        _until(page, "n => document.querySelector('.ga-pop-name').textContent === n", name)
        assert page.locator(".leaflet-popup-content img").count() == 0
        page.keyboard.press("Escape")
        page.evaluate("GridAtlas.map.closePopup()")
    _assert_harmless(page)

    # The checkpoint's tooltip and popup (its markers show from zoom 13 on).
    page.evaluate("""([lat, lon]) => GridAtlas.map.setView([lat, lon], 17, {animate: false})""",
                  list(_checkpoint_latlon(page)))
    _until(page, "() => GridAtlas.status.checkpoints > 0")
    marker = page.locator(".leaflet-ga-points-pane path.leaflet-interactive")
    _open_checkpoint(page, CHECKPOINT)
    popup = page.locator(".leaflet-popup-content .ga-pop-name")
    popup.wait_for()
    assert popup.inner_text() == EVIL[TOWN + "001"]
    assert marker.count() > 0
    _assert_harmless(page)


def _checkpoint_latlon(page):
    return page.evaluate(
        """async (code) => {
            const r = await fetch(location.pathname.replace('/map/', '/api/areas/') + '/checkpoints.geojson');
            const fc = await r.json();
            const f = fc.features.find(f => f.properties.code === code);
            return [f.geometry.coordinates[1], f.geometry.coordinates[0]];
        }""", CHECKPOINT)


def _open_checkpoint(page, code):
    """Click the checkpoint's circle (found through Leaflet, clicked with the mouse)."""
    lat, lon = page.evaluate(
        """(code) => {
            let found = null;
            GridAtlas.map.eachLayer(l => {
                if (l.feature && l.feature.properties && l.feature.properties.code === code && l.getLatLng) {
                    found = l.getLatLng();
                }
            });
            return [found.lat, found.lng];
        }""", code)
    _hover(page, lat, lon, button="left")


def test_hostile_names_show_as_text_in_search_suggestions_and_results(page, signed_in):
    base = signed_in
    for text, expected in (("onerror", EVIL[TOWN + "001"]), ("document", EVIL[TOWN + "003"]),
                           ("`", EVIL[TOWN + "002"])):
        page.fill("#ga-q", "")
        page.type("#ga-q", text)
        _until(page, """n => [...document.querySelectorAll('#ga-suggest .ga-suggest-name')]
                              .some(e => e.textContent === n)""", expected)
        assert page.locator("#ga-suggest img").count() == 0
    _assert_harmless(page)

    page.goto(base + "/search?q=o")  # two of the names hold an "o": a list of results
    results = page.locator(".ga-results b").all_inner_texts()
    assert EVIL[TOWN + "001"] in results and EVIL[TOWN + "003"] in results
    _assert_harmless(page)

    page.goto(f"{base}/map/{TOWN}003")  # the page of ${document.title='x'}: its name is its title
    _wait_for_map(page)
    assert EVIL[TOWN + "003"] in page.title()
    assert page.locator("h1").inner_text() == EVIL[TOWN + "003"]
    _assert_harmless(page)
    assert page.console_errors == []


def test_hostile_town_names_show_as_text_on_the_command_centre_wall(page, server):
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.add_init_script(WATCH)
    _sign_in(page, server, "xss-city", server + "/")
    page.goto(server + "/wall?area=330212&tour=off&metric=visits", timeout=180_000)
    _until(page, """() => [...document.querySelectorAll('.wall-rank-rows .r-name')]
                         .some(e => e.textContent.startsWith('<img src=x onerror=alert('))""")
    _until(page, "() => !!(window.GridAtlas && GridAtlas.status.choropleth > 0)")
    _assert_harmless(page)
    assert page.console_errors == []
