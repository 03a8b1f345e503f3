"""The wall's routes through Flask's test client: the page, its JSON, parameters and access."""

import datetime as dt
import html as htmllib
import json
import re
import time

import pytest

from geo.access import audit, wall_devices
from geo.atlas.metrics import PERIOD_END
from geo.ingest.imports import ingest_file
from geo.query.service import AtlasService
from tests.stores import copy_settings, location
from web import create_app

from .conftest import csrf_token_of, login

YINZHOU, YUNLONG = "330212", "330212108"
KPI_KEYS = ["visits", "home_observation", "home_quarantine", "risk_code", "new_arrivals", "disputes", "appeals",
            "active_checkpoints", "online_rate"]


def _app(where, **settings):
    return create_app({"SETTINGS": {**location(where), "secret_key": "test", **settings}, "TESTING": True})


@pytest.fixture(scope="module")
def app(demo_settings):
    return _app(demo_settings)


@pytest.fixture
def client(app):
    return app.test_client()


def _config(html: str) -> dict:
    """The options object the page hands to wall.js."""
    match = re.search(r"GridAtlasWall\.start\(\{[^}]*\}, (\{.*\})\);\s*</script>", html, re.S)
    assert match, "no GridAtlasWall.start call in the page"
    return json.loads(match.group(1))


def test_wall_page_has_tiles_map_layers_and_config(client):
    r = client.get("/wall")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert re.findall(r'data-kpi="(\w+)"', html) == KPI_KEYS
    # The same layers as the officials' map, drawn by app.js from the same endpoints.
    assert "GridAtlas.choropleth(" in html and "GridAtlas.heat(" in html
    assert "/api/areas/330200/children.geojson" in html and "/api/areas/330200/checkpoints.geojson" in html
    assert not re.search(r'(src|href)="https?://', html), "the wall must not load anything from outside"
    cfg = _config(html)
    assert cfg["refresh"] == 30 and cfg["tour"] is False and cfg["metric"] == "visits" and cfg["level"] == "district"
    assert cfg["stops"][cfg["start"]]["code"] == "330200" and len(cfg["stops"]) == 11
    assert cfg["board"]["day"] == PERIOD_END.isoformat()
    assert cfg["urls"]["values"].startswith("/api/areas/330200/values?")
    assert cfg["words"]["stale"] == "数据更新于 %(time)s"
    assert "宁波市网格化治理指挥中心" in html


def test_url_parameters_set_the_view(client):
    r = client.get(f"/wall?metric=risk_code&area={YINZHOU}&tour=on&dwell=12&refresh=5")
    assert r.status_code == 200
    cfg = _config(r.get_data(as_text=True))
    assert (cfg["metric"], cfg["tour"], cfg["level"]) == ("risk_code", True, "town")
    assert (cfg["dwell"], cfg["refresh"]) == (12, 5)
    assert cfg["stops"][cfg["start"]]["code"] == YINZHOU
    assert cfg["board"]["ranking"]["level"] == "town"
    assert "metric=risk_code" in cfg["urls"]["board"] and "level=town" in cfg["urls"]["values"]


def test_settings_give_the_default_refresh(demo_settings):
    r = _app(demo_settings, wall_refresh_seconds=12, wall_tour_seconds=40).test_client().get("/wall")
    cfg = _config(r.get_data(as_text=True))
    assert (cfg["refresh"], cfg["dwell"]) == (12, 40)


def test_english_wall(client):
    html = client.get("/wall?lang=en").get_data(as_text=True)
    cfg = _config(html)
    assert cfg["lang"] == "en" and cfg["words"]["stale"] == "Data updated at %(time)s"
    assert "Household visits" in html


@pytest.mark.parametrize("query, status, words", [
    ("metric=cases", 400, "cases"),
    (f"area={YUNLONG}", 400, "the wall shows the city or one district"),
    ("area=330299", 404, "330299"),
    ("level=grid", 400, "grid"),
    ("tour=maybe", 400, "maybe"),
    ("refresh=0", 400, "refresh '0' must be a number of seconds from 0.25 to 3600"),
    ("refresh=soon", 400, "soon"),
    ("dwell=-5", 400, "dwell '-5'"),
    ("lang=fr", 400, "fr"),
])
def test_bad_parameters_are_refused_with_the_value_named(client, query, status, words):
    page = client.get(f"/wall?{query}")
    assert page.status_code == status and words in htmllib.unescape(page.get_data(as_text=True))
    if query.startswith(("metric", "area", "lang")):  # the JSON takes only these
        data = client.get(f"/api/wall?{query}")
        assert data.status_code == status and words in data.get_json()["error"]


def test_board_json(client, app):
    r = client.get(f"/api/wall?area={YINZHOU}&metric=new_arrivals")
    assert r.status_code == 200 and r.mimetype == "application/json"
    board = r.get_json()
    assert board["area"] == {"code": YINZHOU, "name": "鄞州区", "level": "district"}
    assert [k["key"] for k in board["kpis"]] == KPI_KEYS
    service = app.extensions["gridatlas"]
    tile = board["kpis"][KPI_KEYS.index("new_arrivals")]
    assert tile["value"] == service.area_total(YINZHOU, "new_arrivals")
    assert board["ranking"]["rows"][0]["value"] == board["ranking"]["max"]
    assert client.get("/api/wall").get_json()["area"]["code"] == "330200"


@pytest.mark.both_stores
def test_board_revalidates_until_the_store_changes(demo_settings, tmp_path):
    app = _app(copy_settings(demo_settings, tmp_path / "data"))
    client = app.test_client()
    first = client.get("/api/wall")
    tag = first.headers["ETag"]
    assert client.get("/api/wall", headers={"If-None-Match": tag}).status_code == 304
    service: AtlasService = app.extensions["gridatlas"]
    # Five visits today in 云龙镇, through the importer (one transaction, one version).
    x, y = service.atlas.geometry_of(YUNLONG).representative_point().coords[0]
    rows = "".join(f"R{i},{PERIOD_END.isoformat()},{x:.6f},{y:.6f}\n" for i in range(5))
    (tmp_path / "visits.csv").write_text("id,date,lon,lat\n" + rows, encoding="utf-8")
    assert ingest_file(service.settings, tmp_path / "visits.csv", metric="visits", atlas=service.atlas).accepted == 5
    changed = client.get("/api/wall", headers={"If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.get_json()["version"] == first.get_json()["version"] + 1


def test_the_wall_is_for_city_wide_users_only(app):
    district_user = app.test_client(user={"role": "district", "area": YINZHOU})
    assert district_user.get("/wall").status_code == 403
    assert district_user.get("/api/wall").status_code == 403
    nobody = app.test_client(user=None)
    assert nobody.get("/api/wall").status_code == 401
    assert nobody.get("/wall").status_code == 302  # to the sign-in page


# --- playback -----------------------------------------------------------------------------------

def test_playback_parameter_and_setting(client, demo_settings):
    cfg = _config(client.get("/wall?playback=14&step=0.5").get_data(as_text=True))
    assert (cfg["playback"], cfg["step"]) == (14, 0.5)
    assert cfg["urls"]["daily"].startswith("/api/areas/330200/daily.json?") and "level=district" in cfg["urls"]["daily"]
    assert _config(client.get("/wall?playback=on").get_data(as_text=True))["playback"] == 14
    assert _config(client.get("/wall").get_data(as_text=True))["playback"] == 0
    for bad in ("1000", "1x", "-3"):
        page = client.get(f"/wall?playback={bad}")
        assert page.status_code == 400 and f"playback '{bad}'" in htmllib.unescape(page.get_data(as_text=True))
    assert client.get("/wall?step=0").status_code == 400
    by_default = _app(demo_settings, wall_playback_days=7).test_client()
    cfg = _config(by_default.get("/wall").get_data(as_text=True))
    assert cfg["playback"] == 7 and _config(by_default.get("/wall?playback=off").get_data(as_text=True))["playback"] == 0
    html = client.get("/wall?playback=14").get_data(as_text=True)
    assert 'id="wall-playback-date"' in html and "playback.js" in html


# --- wall devices (a login that lasts days) ----------------------------------------------------

class Clock:
    """The app's clock, moved by the tests (no sleeping for hours)."""

    def __init__(self):
        self.offset = 0.0

    def __call__(self):
        return time.time() + self.offset

    def advance(self, hours: float):
        self.offset += hours * 3600


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def device_app(secure_settings, clock):
    return create_app({"SETTINGS": {**location(secure_settings), "secret_key": "test-secret"},
                       "TESTING": True, "TEST_USER": None, "GRIDATLAS_CLOCK": clock})


def _issue(app, name, area="330200", days=30):
    service = app.extensions["gridatlas"]
    return wall_devices.issue(service.store, name, area, days)[1]


def _claim(client, token, query=""):
    """What the device page's script does: GET the page (CSRF token), POST the fragment's token."""
    page = client.get("/wall/device" + query)
    assert page.status_code == 200
    return client.post("/wall/device", json={"token": token, "query": query},
                       headers={"X-CSRFToken": csrf_token_of(page.get_data(as_text=True))})


def test_the_device_page_is_public_and_holds_no_token(device_app):
    client = device_app.test_client()
    page = client.get("/wall/device?tour=1")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "GridAtlasWall.claim(" in html and not re.search(r"token=[\w-]{20}", html)
    assert 'name="csrf-token"' in html
    # Without the CSRF token nobody can post one (no login CSRF onto a wall).
    assert client.post("/wall/device", json={"token": "x"}).status_code == 400


def test_a_device_session_survives_past_session_hours_while_it_polls(device_app, clock, secure_settings):
    token = _issue(device_app, "wall-poll")
    wall = device_app.test_client()
    r = _claim(wall, token, "?tour=1&metric=risk_code&area=330203&token=x&evil=1")
    assert r.status_code == 200 and r.get_json()["next"] == "/wall?tour=1&metric=risk_code&area=330203"
    cookie = r.headers["Set-Cookie"]
    expires = dt.datetime.strptime(re.search(r"Expires=([^;]+)", cookie).group(1), "%a, %d %b %Y %H:%M:%S GMT")
    assert expires - dt.datetime.utcnow() > dt.timedelta(hours=70)  # the cookie outlives an 8-hour session
    person = device_app.test_client()
    login(person, "centre")
    assert wall.get("/wall?tour=1").status_code == 200
    for hour in range(1, 50):  # two days of polling, an hour apart on the app's clock
        clock.advance(1)
        assert wall.get("/api/wall").status_code == 200, f"the wall was signed out after {hour} hours"
        if hour == secure_settings.session_hours + 1:
            assert person.get("/api/wall").status_code == 401  # a person's session is over by now
    assert wall.get("/wall").status_code == 200
    # Switched off for longer than wall_device_idle_hours (72): signed out, with a clear message.
    clock.advance(73)
    r = wall.get("/api/wall")
    assert r.status_code == 401 and "关闭时间过长" in r.get_json()["error"]
    store = device_app.extensions["gridatlas"].store
    claimed = audit.entries(store, action="wall_device_claimed", user="wall:wall-poll")
    assert claimed and claimed[0].detail["first_use"] is True


def test_a_revoked_device_stops_at_the_next_refresh(device_app):
    token = _issue(device_app, "wall-revoke")
    wall = device_app.test_client()
    assert _claim(wall, token).status_code == 200
    assert wall.get("/api/wall").status_code == 200
    wall_devices.revoke(device_app.extensions["gridatlas"].store, "wall-revoke")
    r = wall.get("/api/wall")
    assert r.status_code == 401 and "撤销" in r.get_json()["error"]
    assert wall.get("/api/wall").status_code == 401  # and stays out
    # A wall reloaded at that moment says why, instead of showing a login form.
    token = _issue(device_app, "wall-revoke-2")
    assert _claim(wall, token).status_code == 200
    wall_devices.revoke(device_app.extensions["gridatlas"].store, "wall-revoke-2")
    page = wall.get("/wall")
    assert page.status_code == 401 and "撤销" in page.get_data(as_text=True)


def test_a_revocation_met_first_by_a_request_the_wall_never_reads_still_reaches_the_wall(device_app):
    # In the wall's browser, other requests share its cookie: its service worker's update check
    # (a public route) when a tab opens under /wall, the used link opened again in a tab. The
    # first of them to meet the revocation must not leave the wall only "please sign in".
    store = device_app.extensions["gridatlas"].store
    wall = device_app.test_client()
    assert _claim(wall, _issue(device_app, "wall-shared")).status_code == 200
    wall_devices.revoke(store, "wall-shared")
    assert wall.get("/wall-sw.js").status_code == 200
    assert wall.get("/wall/device").status_code == 200
    for _ in range(2):
        r = wall.get("/api/wall")
        assert r.status_code == 401 and "撤销" in r.get_json()["error"]
    page = wall.get("/wall")
    assert page.status_code == 401 and "撤销" in page.get_data(as_text=True)
    refused = audit.entries(store, action="wall_device_refused", user="wall:wall-shared")
    assert [e.outcome for e in refused] == ["revoked"]  # once, not once per refresh
    # Outside the wall that browser is nobody's: sent to sign in, and a person can.
    assert wall.get("/").status_code == 302
    login(wall, "centre")
    assert wall.get("/api/wall").status_code == 200


@pytest.mark.parametrize("case, words", [
    ("unknown", "无效"), ("expired", "过期"), ("used", "已使用"),
])
def test_unknown_expired_and_used_links_get_a_clear_message(device_app, clock, case, words):
    token = "no-such-token" if case == "unknown" else _issue(device_app, f"wall-{case}", days=1)
    if case == "expired":
        clock.advance(25)
    if case == "used":
        assert _claim(device_app.test_client(), token).status_code == 200
    r = _claim(device_app.test_client(), token)
    assert r.status_code == 403 and r.get_json()["reason"] == case and words in r.get_json()["error"]
    store = device_app.extensions["gridatlas"].store
    assert audit.entries(store, action="wall_device_refused", limit=1)[0].outcome == case


def test_a_device_opens_only_its_areas_wall(device_app):
    token = _issue(device_app, "wall-yinzhou", area=YINZHOU)
    wall = device_app.test_client()
    assert _claim(wall, token, "?refresh=5").get_json()["next"] == "/wall?refresh=5"
    page = wall.get("/wall")
    assert page.status_code == 200
    cfg = _config(page.get_data(as_text=True))
    assert [s["code"] for s in cfg["stops"]] == [YINZHOU] and cfg["level"] == "town" and cfg["device"] == "wall-yinzhou"
    assert cfg["urls"]["values"].startswith(f"/api/areas/{YINZHOU}/values?")
    assert all(a["code"].startswith(YINZHOU) for a in cfg["labels"])
    assert wall.get("/api/wall").get_json()["area"]["code"] == YINZHOU
    assert wall.get(f"/api/areas/{YINZHOU}/values?metric=visits&level=town").status_code == 200
    assert wall.get(f"/api/areas/{YINZHOU}/daily.json?metric=visits&level=town").status_code == 200
    for path in ["/wall?area=330200", "/wall?area=330203", "/api/wall?area=330203", "/api/areas/330203/values",
                 "/api/areas/330200/children.geojson", "/upload", f"/map/{YINZHOU}", "/api/status",
                 f"/export/{YINZHOU}.png", "/search?q=x", "/"]:
        assert wall.get(path).status_code == 403, path
    city = device_app.test_client()
    assert _claim(city, _issue(device_app, "wall-city")).status_code == 200
    assert city.get("/wall?area=330203").status_code == 200 and city.get("/upload").status_code == 403
