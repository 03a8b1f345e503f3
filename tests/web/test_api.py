"""JSON endpoints: GeoJSON collections, counts, search; every bad parameter; cache headers."""

import gzip
import json

import pytest

from geo.atlas.metrics import METRICS
from geo.store import open_store
from tests.stores import location
from web import create_app

YINZHOU, YUNLONG, JIACUN = "330212", "330212108", "330212108001"


@pytest.fixture(scope="module")
def app(demo_settings):
    return create_app({"SETTINGS": {**location(demo_settings), "secret_key": "test"}, "TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


def _error(response):
    return response.get_json()["error"]


def test_children_geojson_is_a_feature_collection_with_values(client, app):
    r = client.get(f"/api/areas/{YINZHOU}/children.geojson?metric=risk_code&from=2020-02-01&to=2020-02-29")
    assert r.status_code == 200
    assert r.mimetype == "application/geo+json"
    fc = r.get_json()
    assert fc["type"] == "FeatureCollection"
    towns = app.extensions["gridatlas"].atlas.children(YINZHOU)
    assert [f["properties"]["code"] for f in fc["features"]] == list(towns["code"])
    assert all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in fc["features"])
    assert fc["legend"]["metric"]["key"] == "risk_code"
    assert fc["legend"]["period"] == {"from": "2020-02-01", "to": "2020-02-29"}
    total = app.extensions["gridatlas"].area_total(YINZHOU, "risk_code", *map(_date, ("2020-02-01", "2020-02-29")))
    assert sum(f["properties"]["value"] for f in fc["features"]) == total


def _date(text):
    import datetime as dt

    return dt.date.fromisoformat(text)


def test_all_grids_of_the_city_come_compressed(client):
    r = client.get("/api/areas/330200/children.geojson?level=grid&zoom=10", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip"
    fc = json.loads(gzip.decompress(r.data))
    assert len(fc["features"]) == 10205
    assert fc["zoom"] == 10


def test_less_zoom_sends_less_geometry(client):
    small = client.get("/api/outlines/district.geojson?zoom=8").data
    full = client.get("/api/outlines/district.geojson").data
    assert len(small) < len(full) / 3


def test_checkpoints_geojson_carries_heat_weights(client):
    fc = client.get(f"/api/areas/{YUNLONG}/checkpoints.geojson?from=2020-02-01&to=2020-02-10").get_json()
    assert fc["features"] and all(f["geometry"]["type"] == "Point" for f in fc["features"])
    assert fc["total"] == sum(f["properties"]["checks"] for f in fc["features"])
    assert fc["period"] == {"from": "2020-02-01", "to": "2020-02-10"}


def test_summary_values_series_outline_and_metrics(client):
    s = client.get(f"/api/areas/{YUNLONG}/summary").get_json()
    assert s["name"] == "云龙镇" and len(s["metrics"]) == 8
    assert {"leaders", "workers", "households", "population"} <= set(s)
    v = client.get(f"/api/areas/{YUNLONG}/values?metric=home_quarantine").get_json()
    assert [row["name"] for row in v["values"]][:1] == ["甲村"]
    assert v["legend"]["metric"]["key"] == "home_quarantine"
    days = client.get(f"/api/areas/{YUNLONG}/series?metric=visits&from=2020-03-01&to=2020-03-07").get_json()["days"]
    assert [d["date"] for d in days] == [f"2020-03-0{i}" for i in range(1, 8)]
    assert sum(d["value"] for d in days) == sum(
        row["value"] for row in client.get(
            f"/api/areas/{YUNLONG}/values?metric=visits&from=2020-03-01&to=2020-03-07").get_json()["values"])
    feature = client.get(f"/api/areas/{YUNLONG}/outline.geojson").get_json()
    assert feature["type"] == "Feature" and feature["properties"]["name"] == "云龙镇"
    metrics = client.get("/api/metrics").get_json()
    assert [m["key"] for m in metrics["metrics"]] == list(METRICS)
    assert metrics["period"] == {"from": "2020-01-24", "to": "2020-03-31"}


def test_outlines_within_an_area(client):
    fc = client.get(f"/api/outlines/grid.geojson?within={JIACUN}").get_json()
    assert fc["features"] and {f["properties"]["parent"] for f in fc["features"]} == {JIACUN}


@pytest.mark.parametrize("q, first", [("云龙", "云龙镇"), ("云龙镇", "云龙镇"), (YUNLONG, "云龙镇"), ("甲村", "甲村")])
def test_search(client, q, first):
    results = client.get("/api/search", query_string={"q": q}).get_json()["results"]
    assert results[0]["name"] == first
    assert results[0]["path"][0] == "鄞州区"


def test_search_with_no_hit_is_an_empty_list(client):
    assert client.get("/api/search?q=火星村").get_json()["results"] == []


# Each bad parameter: status and the message, in Chinese by default and in English on request.
BAD = [
    (f"/api/areas/{YINZHOU}/children.geojson?metric=steps", 400,
     "未知指标 'steps'。可选：visits", "Unknown metric 'steps'. Allowed: visits"),
    (f"/api/areas/{YINZHOU}/children.geojson?from=2020-02-30", 400,
     "日期参数 from='2020-02-30' 不是 YYYY-MM-DD 格式的日期。", "The date from='2020-02-30' is not a date"),
    (f"/api/areas/{YINZHOU}/children.geojson?to=yesterday", 400,
     "日期参数 to='yesterday' 不是 YYYY-MM-DD 格式的日期。", "The date to='yesterday' is not a date"),
    (f"/api/areas/{YINZHOU}/children.geojson?from=2020-03-02&to=2020-03-01", 400,
     "起始日期 2020-03-02 晚于结束日期 2020-03-01。", "The start date 2020-03-02 is after the end date 2020-03-01."),
    (f"/api/areas/{YINZHOU}/children.geojson?to=2020-04-30", 400,
     "时段 2020-01-24 至 2020-04-30 超出数据期 2020-01-24 至 2020-03-31。", "is outside the data period"),
    (f"/api/areas/{YINZHOU}/children.geojson?method=equal", 400,
     "未知的分级方法 'equal'。可选：quantiles, natural_breaks。", "Unknown classification method 'equal'."),
    (f"/api/areas/{YINZHOU}/children.geojson?k=12", 400,
     "分级数 12 必须在 3 到 7 之间。", "The number of classes 12 must be between 3 and 7."),
    (f"/api/areas/{YINZHOU}/children.geojson?k=five", 400,
     "参数 k='five' 不是整数。", "The parameter k='five' is not a whole number."),
    (f"/api/areas/{YINZHOU}/children.geojson?level=district", 400,
     "层级 'district' 不能在本区域（区县）内显示。可选：town, village, grid。", "Level 'district' cannot be shown"),
    (f"/api/areas/{YINZHOU}/children.geojson?zoom=30", 400,
     "缩放级别 30 必须是 0 到 22 之间的整数。", "Zoom 30 must be a whole number from 0 to 22."),
    (f"/api/areas/{YINZHOU}/children.geojson?zoom=near", 400,
     "参数 zoom='near' 不是整数。", "The parameter zoom='near' is not a whole number."),
    (f"/api/areas/{YINZHOU}/children.geojson?crs=bd09", 400,
     "未知的坐标系 'bd09'。可选：wgs84, gcj02。", "Unknown coordinate system 'bd09'."),
    ("/api/areas/330299/children.geojson", 404, "没有编码为 '330299' 的区域。", "No area has the code '330299'."),
    ("/api/areas/abc/summary", 404, "没有编码为 'abc' 的区域。", "No area has the code 'abc'."),
    (f"/api/areas/{YUNLONG}/summary?from=2020-1-5", 400, "日期参数 from='2020-1-5'", "The date from='2020-1-5'"),
    (f"/api/areas/{YUNLONG}/checkpoints.geojson?to=2020-01-01", 400,
     "起始日期 2020-01-24 晚于结束日期 2020-01-01。", "The start date 2020-01-24 is after"),
    (f"/api/areas/{YUNLONG}/checkpoints.geojson?crs=utm", 400, "未知的坐标系 'utm'", "Unknown coordinate system 'utm'"),
    (f"/api/areas/{YUNLONG}/series?metric=", 200, None, None),  # empty = default metric
    (f"/api/areas/{YUNLONG}/series?metric=temperature", 400, "未知指标 'temperature'", "Unknown metric 'temperature'"),
    (f"/api/areas/{YUNLONG}/values?level=town", 400, "层级 'town' 不能在本区域（镇街）内显示", "Level 'town' cannot"),
    ("/api/outlines/city.geojson", 400, "未知的层级 'city'。可选：district, town, village, grid。", "Unknown level 'city'."),
    ("/api/outlines/town.geojson?within=330212108001", 400,
     "层级 'town' 高于区域 330212108001（村社）。", "Level 'town' is above the area 330212108001"),
    ("/api/outlines/town.geojson?within=999999", 404, "没有编码为 '999999' 的区域。", "No area has the code"),
    ("/api/outlines/town.geojson?zoom=-2", 400, "缩放级别 -2 必须是 0 到 22 之间的整数。", "Zoom -2 must be"),
    ("/api/search", 400, "请输入要搜索的名称或编码（参数 q）。", "Enter a name or a code to search for"),
    ("/api/search?q=%20", 400, "请输入要搜索的名称或编码（参数 q）。", "Enter a name or a code to search for"),
    ("/api/search?q=" + "村" * 51, 400, "搜索内容有 51 个字符，最多允许 50 个。", "The search text has 51 characters"),
    ("/api/search?q=云龙&limit=100", 400, "条数 100 必须是 1 到 50 之间的整数。", "The limit 100 must be"),
    ("/api/search?q=云龙&lang=fr", 400, "不支持的语言 'fr'。可选：zh, en。", None),
    ("/api/nothing-here", 404, "页面 /api/nothing-here 不存在。", "There is no page at /api/nothing-here."),
]


@pytest.mark.parametrize("url, status, zh, en", BAD)
def test_bad_parameters_get_a_message_in_the_language_of_the_request(client, url, status, zh, en):
    r = client.get(url)
    assert r.status_code == status
    if zh is None:
        return
    assert r.get_json()["status"] == status
    assert zh in _error(r)
    if en is not None:
        sep = "&" if "?" in url else "?"
        r_en = client.get(url + sep + "lang=en")
        assert r_en.status_code == status
        assert en in _error(r_en)


def test_post_is_not_allowed(client):
    r = client.post("/api/search?q=云龙")
    assert r.status_code == 405
    assert "此处不允许 POST 请求" in _error(r)


def test_answers_carry_an_etag_and_revalidate(client):
    url = f"/api/areas/{YINZHOU}/children.geojson?zoom=10"
    first = client.get(url)
    tag = first.headers["ETag"]
    assert tag.startswith('W/"')
    assert "no-cache" in first.headers["Cache-Control"]
    assert "Cookie" in first.headers["Vary"] and "Accept-Encoding" in first.headers["Vary"]
    again = client.get(url, headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.data == b""
    other = client.get(url + "&metric=disputes")
    assert other.headers["ETag"] != tag
    english = client.get(url + "&lang=en")
    assert english.headers["ETag"] != tag


def test_an_import_changes_the_etag(client, demo_settings):
    url = f"/api/areas/{YUNLONG}/summary"
    tag = client.get(url).headers["ETag"]
    with open_store(demo_settings).transaction():
        pass  # every committed write bumps the store version, as an import does
    fresh = client.get(url, headers={"If-None-Match": tag})
    assert fresh.status_code == 200
    assert fresh.headers["ETag"] != tag


def test_static_files_are_versioned_and_cached_for_a_year(client):
    page = client.get("/").get_data(as_text=True)
    import re

    url = re.search(r'src="(/static/app\.js\?v=[0-9a-f]+)"', page).group(1)
    r = client.get(url)
    assert r.status_code == 200
    assert r.cache_control.max_age == 365 * 24 * 3600 and r.cache_control.immutable
    assert client.get("/static/app.js").cache_control.no_cache
    vendor = re.search(r'src="(/static/vendor/leaflet/leaflet\.js\?v=[^"]+)"', page).group(1)
    assert client.get(vendor).status_code == 200
