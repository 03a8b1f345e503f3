"""Time on the map in a real Chromium: playback and the change map."""

from __future__ import annotations

import pytest

from geo.query.timeseries import DIVERGING
from tests.stores import location
from web import create_app

pytestmark = pytest.mark.browser

YINZHOU = "330212"
LOADED = ("window.GridAtlas && GridAtlas.status.choropleth > 0 && GridAtlas.map && GridAtlas.playback"
          " && !GridAtlas.map._animatingZoom")
FILLS = """() => {
    const out = {};
    GridAtlas.map.eachLayer(l => { if (l.feature && l.options.pane === 'ga-areas') out[l.feature.properties.code] = l.options.fillColor; });
    return out;
}"""
BLUES = set(DIVERGING[3][0]) | set(DIVERGING[2][0]) | set(DIVERGING[1][0])
REDS = set(DIVERGING[3][2]) | set(DIVERGING[2][2]) | set(DIVERGING[1][2])


@pytest.fixture(scope="module")
def app(demo_settings):
    return create_app({"SETTINGS": {**location(demo_settings), "secret_key": "test"}, "TESTING": True})


def _wait(page, expression, timeout_ms=60_000):
    """Poll a JavaScript expression (wait_for_function needs eval, which the CSP forbids)."""
    waited = 0
    while not page.evaluate(expression):
        if waited >= timeout_ms:
            raise AssertionError(f"timed out waiting for {expression}")
        page.wait_for_timeout(100)
        waited += 100


def _open(page, url):
    page.goto(url)
    _wait(page, LOADED)
    page.wait_for_timeout(300)


def _clean(page):
    assert page.console_errors == []
    assert page.failed_requests == []
    assert page.blocked_requests == []


def test_playback_advances_the_date_and_changes_the_colours(page, live_server, app):
    base = live_server(app)
    _open(page, base + "/?lang=en&metric=visits")
    totals = page.evaluate(FILLS)
    assert len(totals) == 10
    requests = []
    page.on("request", lambda r: "daily.json" in r.url and requests.append(r.url))

    page.click("#ga-time .ga-time-mode[data-mode=play]")
    _wait(page, "document.getElementById('ga-time').getAttribute('data-day') === '2020-01-24'")
    first = page.evaluate(FILLS)
    legend = page.inner_text(".ga-legend")
    assert "2020-01-24" in legend and "fixed for the whole period 2020-01-24 – 2020-03-31" in legend

    page.evaluate("document.getElementById('ga-time').setAttribute('data-interval', '60')")
    page.click("#ga-time .ga-play-button")
    _wait(page, "document.getElementById('ga-time').getAttribute('data-day') >= '2020-02-20'")
    page.click("#ga-time .ga-play-button")  # pause
    day = page.evaluate("document.getElementById('ga-time').getAttribute('data-day')")
    assert page.inner_text("#ga-time .ga-play-date") == day
    later = page.evaluate(FILLS)
    assert later != first, "the colours did not change while playing"

    # The colours are those of the fixed classes for that day (the same answer, no re-request).
    daily = page.evaluate("() => GridAtlas.playback.data")
    i = daily["days"].index(day)
    assert page.input_value("#ga-time .ga-play-slider") == str(i)
    expected = {a["code"]: daily["legend"]["colors"][daily["classes"][i][j]] for j, a in enumerate(daily["areas"])}
    assert later == expected
    assert len(requests) == 1, "playback should fetch all days in one request"
    # The polygons were restyled, not re-created.
    assert page.evaluate("() => GridAtlas.status.choropleth") == 10

    page.click("#ga-time .ga-time-mode[data-mode=total]")
    _wait(page, "document.querySelector('.ga-legend').innerText.indexOf('fixed') < 0")
    page.wait_for_timeout(200)
    assert page.evaluate(FILLS) == totals
    _clean(page)


def test_change_map_shows_negative_and_positive_classes(page, live_server, app):
    base = live_server(app)
    _open(page, base + f"/map/{YINZHOU}?lang=en&metric=visits")
    page.click("#ga-time .ga-time-mode[data-mode=change]")
    _wait(page, "document.getElementById('ga-time').hasAttribute('data-change')")
    assert page.input_value("#ga-time input[name=a_from]") == "2020-03-18"
    assert page.input_value("#ga-time input[name=b_to]") == "2020-03-31"
    fills = set(page.evaluate(FILLS).values())
    assert fills & BLUES and fills & REDS, fills
    legend = page.inner_text(".ga-legend")
    assert "Change: 2020-03-18–2020-03-24 → 2020-03-25–2020-03-31" in legend

    # Other periods, in per cent.
    page.fill("#ga-time input[name=a_from]", "2020-02-01")
    page.fill("#ga-time input[name=a_to]", "2020-02-14")
    page.fill("#ga-time input[name=b_from]", "2020-03-01")
    page.fill("#ga-time input[name=b_to]", "2020-03-14")
    page.select_option("#ga-time select[name=basis]", "percent")
    page.click("#ga-time .ga-change-apply")
    _wait(page, "document.getElementById('ga-time').getAttribute('data-change') === '2020-02-01..2020-02-14/2020-03-01..2020-03-14'")
    page.wait_for_timeout(200)
    assert "%" in page.inner_text(".ga-legend")
    data = page.evaluate("() => GridAtlas.playback.changeData")
    fills = page.evaluate(FILLS)
    for row in data["values"]:
        assert fills[row["code"]] == row["color"]
        if row["pct"] is not None and row["pct"] < 0:
            assert row["color"] in BLUES
        if row["pct"] is not None and row["pct"] > 0:
            assert row["color"] in REDS
    _clean(page)
