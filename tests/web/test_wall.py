"""The wall's routes through Flask's test client: the page, its JSON, parameters and access."""

import html as htmllib
import json
import re
import shutil

import pytest

from geo.metrics import PERIOD_END
from geo.service import AtlasService
from web import create_app

YINZHOU, YUNLONG = "330212", "330212101"
KPI_KEYS = ["visits", "home_observation", "home_quarantine", "risk_code", "new_arrivals", "disputes", "appeals",
            "active_checkpoints", "online_rate"]


def _app(data_dir, **settings):
    return create_app({"SETTINGS": {"data_dir": data_dir, "secret_key": "test", **settings}, "TESTING": True})


@pytest.fixture(scope="module")
def app(demo_settings):
    return _app(demo_settings.data_path)


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
    r = _app(demo_settings.data_path, wall_refresh_seconds=12, wall_tour_seconds=40).test_client().get("/wall")
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


def test_board_revalidates_until_the_store_changes(demo_settings, tmp_path):
    shutil.copytree(demo_settings.data_path, tmp_path / "data")
    app = _app(tmp_path / "data")
    client = app.test_client()
    first = client.get("/api/wall")
    tag = first.headers["ETag"]
    assert client.get("/api/wall", headers={"If-None-Match": tag}).status_code == 304
    service: AtlasService = app.extensions["gridatlas"]
    grid = service.atlas.grids["code"].iloc[0]
    with service.store.transaction() as con:
        con.execute("UPDATE counts SET value = value + 5 WHERE metric = 'visits' AND grid_code = ? AND day = ?",
                    (grid, PERIOD_END.isoformat()))
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
