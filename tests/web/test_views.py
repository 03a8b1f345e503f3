"""Pages: the city and area maps, breadcrumbs, pickers, legend, search, languages, errors, size."""

import re

import pytest

from geo.atlas.areas import Atlas
from tests.stores import location
from web import create_app

YINZHOU, YUNLONG, JIACUN = "330212", "330212108", "330212108001"
GRID = JIACUN + "003"
EVIL = "<img src=x onerror=alert(1)>"


def _make_app(demo_settings, **settings):
    return create_app({"SETTINGS": {**location(demo_settings), "secret_key": "test", **settings},
                       "TESTING": True})


@pytest.fixture(scope="module")
def app(demo_settings):
    return _make_app(demo_settings)


@pytest.fixture
def client(app):
    return app.test_client()


def _text(html):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


def _crumbs(html):
    nav = re.search(r'<nav class="ga-crumbs".*?</nav>', html, re.S).group(0)
    return _text(nav).strip()


def _message(html):
    return re.search(r'<p class="error-message">(.*?)</p>', html, re.S).group(1)


def test_city_page(client):
    r = client.get("/")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert '<html lang="zh-CN">' in html
    assert "<h1>宁波市</h1>" in html
    assert _crumbs(html) == "宁波市"
    # The metric picker covers all eight metrics; the date picker spans the data period.
    options = re.findall(r'<option value="(\w+)"[^>]*>([^<]+)</option>', html)
    keys = [k for k, _ in options]
    assert keys[:8] == ["visits", "home_observation", "home_quarantine", "risk_code", "new_arrivals",
                        "disputes", "appeals", "checkpoint_checks"]
    assert dict(options)["risk_code"] == "红码/黄码人员"
    assert 'name="from" value="2020-01-24" min="2020-01-24" max="2020-03-31"' in html
    assert 'name="to" value="2020-03-31" min="2020-01-24" max="2020-03-31"' in html


def test_legend_names_metric_unit_period_method_and_limits(client, app):
    html = client.get(f"/map/{YINZHOU}?metric=risk_code&from=2020-02-01&to=2020-02-29&method=natural_breaks").get_data(as_text=True)
    legend = _text(re.search(r'<div class="ga-legend".*?</table>', html, re.S).group(0))
    assert "红码/黄码人员" in legend and "(人)" in legend
    assert "2020-02-01 – 2020-02-29" in legend
    assert "自然断点 (Fisher-Jenks)" in legend and "镇街" in legend
    fc = app.test_client().get(f"/api/areas/{YINZHOU}/children.geojson?metric=risk_code&from=2020-02-01"
                               "&to=2020-02-29&method=natural_breaks").get_json()
    for c in fc["legend"]["classes"]:
        assert c["label"] in legend and c["color"] in html


@pytest.mark.parametrize("code, crumbs", [
    (YINZHOU, "宁波市 › 鄞州区"),
    (YUNLONG, "宁波市 › 鄞州区 › 云龙镇"),
    (JIACUN, "宁波市 › 鄞州区 › 云龙镇 › 甲村"),
    (GRID, "宁波市 › 鄞州区 › 云龙镇 › 甲村 › 甲村第3网格"),
])
def test_breadcrumbs_read_city_district_town_village(client, code, crumbs):
    html = client.get(f"/map/{code}").get_data(as_text=True)
    assert _crumbs(html) == crumbs
    # Every ancestor is a link that keeps the state.
    assert 'href="/?metric=visits&amp;from=2020-01-24&amp;to=2020-03-31">宁波市</a>' in html


def test_the_url_holds_the_whole_state(client):
    url = f"/map/{YUNLONG}?metric=home_quarantine&from=2020-02-03&to=2020-02-16&method=natural_breaks&level=grid"
    html = client.get(url).get_data(as_text=True)
    assert '<option value="home_quarantine" selected>' in html
    assert 'name="from" value="2020-02-03"' in html and 'name="to" value="2020-02-16"' in html
    assert '<option value="natural_breaks" selected>' in html and '<option value="grid" selected>' in html
    # The layers fetch exactly that state.
    assert (f"/api/areas/{YUNLONG}/children.geojson?lang=zh&amp;metric=home_quarantine&amp;from=2020-02-03"
            "&amp;to=2020-02-16&amp;method=natural_breaks&amp;level=grid") in html.replace("\\u0026", "&amp;")
    assert f"/api/areas/{YUNLONG}/checkpoints.geojson?lang=zh&amp;from=2020-02-03&amp;to=2020-02-16" in \
        html.replace("\\u0026", "&amp;")
    # Links to other areas carry it on (the grid level stays where it fits).
    assert "metric=home_quarantine&amp;from=2020-02-03&amp;to=2020-02-16&amp;method=natural_breaks" in html


def test_pages_are_small_and_hold_no_geometry(client):
    for url in ("/", "/?level=grid", f"/map/{YINZHOU}?level=grid", f"/map/{GRID}"):
        r = client.get(url)
        assert r.status_code == 200
        assert len(r.data) <= 300 * 1024
        assert b'"coordinates"' not in r.data


def test_everything_is_served_by_the_app(client):
    html = client.get("/").get_data(as_text=True)
    links = re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="([^"]*)"', html)
    assert links and all(link.startswith("/static/") for link in links), links
    assert "https://" not in html and "http://" not in html
    assert "tileLayer" not in html  # no default base map: the base is our own outlines
    for link in links:
        assert client.get(link).status_code == 200, link


def test_summary_ranking_and_trend(client):
    html = client.get(f"/map/{YINZHOU}").get_data(as_text=True)
    assert len(re.findall(r'class="ga-kpi(?: on)?"', html)) == 8
    assert "网格长" in html and "网格员" in html
    assert "最低（工作可能滞后）" in html
    assert '<polyline points="' in html


def test_english_is_selectable_and_remembered(client):
    r = client.get(f"/map/{YUNLONG}?lang=en")
    html = r.get_data(as_text=True)
    assert '<html lang="en">' in html
    assert "Update map" in html and "Household visits" in html and "Town/street" in html
    assert "lang=en" in r.headers["Set-Cookie"]
    again = client.get(f"/map/{YUNLONG}").get_data(as_text=True)
    assert '<html lang="en">' in again
    back = client.get(f"/map/{YUNLONG}?lang=zh").get_data(as_text=True)
    assert '<html lang="zh-CN">' in back and "更新地图" in back


def test_unknown_area_gets_a_404_page(client):
    r = client.get("/map/330299")
    assert r.status_code == 404
    html = r.get_data(as_text=True)
    assert "未找到" in html and _message(html) == "没有编码为 &#39;330299&#39; 的区域。"
    r = client.get("/map/330299?lang=en")
    assert r.status_code == 404 and _message(r.get_data(as_text=True)) == "No area has the code &#39;330299&#39;."
    r = client.get("/no/such/page?lang=zh")
    assert r.status_code == 404 and "页面 /no/such/page 不存在。" in r.get_data(as_text=True)


@pytest.mark.parametrize("query, zh, en", [
    ("metric=steps", "未知指标 &#39;steps&#39;。可选：visits, home_observation", "Unknown metric &#39;steps&#39;."),
    ("from=24-01-2020", "日期参数 from=&#39;24-01-2020&#39; 不是 YYYY-MM-DD 格式的日期。",
     "The date from=&#39;24-01-2020&#39; is not a date in the form YYYY-MM-DD."),
    ("to=2020-02-31", "日期参数 to=&#39;2020-02-31&#39; 不是 YYYY-MM-DD 格式的日期。", "The date to=&#39;2020-02-31&#39;"),
    ("from=2020-03-10&to=2020-03-01", "起始日期 2020-03-10 晚于结束日期 2020-03-01。",
     "The start date 2020-03-10 is after the end date 2020-03-01."),
    ("from=2020-01-01", "时段 2020-01-01 至 2020-03-31 超出数据期 2020-01-24 至 2020-03-31。",
     "The period 2020-01-01 to 2020-03-31 is outside the data period 2020-01-24 to 2020-03-31."),
    ("method=jenks", "未知的分级方法 &#39;jenks&#39;。可选：quantiles, natural_breaks。", "Unknown classification method"),
    ("k=2", "分级数 2 必须在 3 到 7 之间。", "The number of classes 2 must be between 3 and 7."),
    ("level=town", "层级 &#39;town&#39; 不能在本区域（镇街）内显示。可选：village, grid。",
     "Level &#39;town&#39; cannot be shown inside this area (Town/street). Allowed: village, grid."),
    ("lang=de", "不支持的语言 &#39;de&#39;。可选：zh, en。", None),
])
def test_bad_parameters_get_a_400_page_in_the_page_language(client, query, zh, en):
    r = client.get(f"/map/{YUNLONG}?{query}")
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert "请求参数有误" in html
    assert zh in _message(html)
    if en:
        r = client.get(f"/map/{YUNLONG}?{query}&lang=en")
        assert r.status_code == 400
        html = r.get_data(as_text=True)
        assert '<html lang="en">' in html and "The request is not valid" in html
        assert en in _message(html)


def test_the_city_page_checks_its_parameters_too(client):
    r = client.get("/?metric=nope")
    assert r.status_code == 400 and "未知指标 &#39;nope&#39;" in _message(r.get_data(as_text=True))


@pytest.mark.parametrize("q, target", [("云龙镇", YUNLONG), ("云龙", YUNLONG), (YUNLONG, YUNLONG), ("鄞州区", YINZHOU)])
def test_search_goes_to_a_clear_hit(client, q, target):
    r = client.get("/search", query_string={"q": q, "metric": "risk_code", "from": "2020-02-01", "to": "2020-02-29"})
    assert r.status_code == 302
    assert r.headers["Location"] == f"/map/{target}?metric=risk_code&from=2020-02-01&to=2020-02-29"


def test_search_lists_several_hits(client):
    r = client.get("/search?q=甲")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "甲村" in html and "镇街" in html or "村社" in html
    assert f'href="/map/{JIACUN}?metric=visits' in html
    empty = client.get("/search?q=火星").get_data(as_text=True)
    assert "未找到区域" in empty
    assert client.get("/search?q=").status_code == 302


def test_a_grid_page(client):
    html = client.get(f"/map/{GRID}").get_data(as_text=True)
    assert "<h1>甲村第3网格</h1>" in html
    assert '<option value="grid" selected>' in html
    assert "单击网格查看详情" in html


def test_pages_revalidate_with_their_etag(client):
    first = client.get(f"/map/{YUNLONG}")
    tag = first.headers["ETag"]
    assert "no-cache" in first.headers["Cache-Control"]
    assert client.get(f"/map/{YUNLONG}", headers={"If-None-Match": tag}).status_code == 304
    assert client.get(f"/map/{YUNLONG}?metric=disputes", headers={"If-None-Match": tag}).status_code == 200


def test_pages_are_compressed(client):
    r = client.get("/", headers={"Accept-Encoding": "gzip"})
    assert r.headers["Content-Encoding"] == "gzip"


def test_favicon(client):
    r = client.get("/favicon.ico")
    assert r.status_code == 301
    assert client.get(r.headers["Location"]).status_code == 200


def test_gcj02_tiles_shift_the_overlays(demo_settings):
    app = _make_app(demo_settings, tile_url="http://tiles.intranet/{z}/{x}/{y}.png", tile_crs="gcj02",
                    tile_attribution="Command centre tiles")
    html = app.test_client().get(f"/map/{YUNLONG}").get_data(as_text=True).replace("\\u0026", "&")
    assert "http://tiles.intranet/{z}/{x}/{y}.png" in html and "Command centre tiles" in html
    assert f"/api/areas/{YUNLONG}/children.geojson?crs=gcj02" in html
    assert "checkpoints.geojson?crs=gcj02" in html and "outlines/town.geojson?crs=gcj02" in html


def test_names_are_escaped_in_pages(demo_settings, atlas):
    app = _make_app(demo_settings)
    layers = {k: v.copy() for k, v in atlas.layers.items()}
    town = layers["town"]
    town.loc[town["code"] == YUNLONG, "name"] = EVIL + "云龙镇"
    service = app.extensions["gridatlas"]
    service.atlas  # load it, so that the service takes the areas file as seen
    service._atlas = Atlas(layers, atlas.checkpoints)
    client = app.test_client()
    for url in (f"/map/{JIACUN}", "/search?q=云龙", f"/map/{YUNLONG}", "/search?q=onerror"):
        html = client.get(url, follow_redirects=True).get_data(as_text=True)
        assert EVIL not in html, url
        assert "&lt;img src=x onerror=alert(1)&gt;云龙镇" in html, url
    summary = client.get(f"/api/areas/{YUNLONG}/summary").get_json()
    assert summary["name"] == EVIL + "云龙镇"  # JSON carries the name as it is; app.js escapes it


def _about(html):
    return _text(re.search(r'<p class="ga-about">(.*?)</p>', html, re.S).group(1)).strip()


def test_about_the_data_says_which_parts_are_real_and_which_synthesised(client):
    zh = _about(client.get(f"/map/{YUNLONG}?lang=zh").get_data(as_text=True))
    assert zh.startswith("关于数据：真实数据：区县边界，以及 160 个乡镇（街道）的名称和代码")
    assert "为演示合成：乡镇（街道）和村（社区）的边界，村（社区）、网格、卡口，以及全部记录。" in zh
    en = _about(client.get("/?lang=en").get_data(as_text=True))
    assert en.startswith("About the data: Real: the district outlines, and the names and codes of the 160 towns")
    assert "Synthesised for the demo: the outlines of towns and villages, the villages, grids and checkpoints" in en


def test_about_the_data_is_the_configured_source_on_other_data(demo_settings):
    client = _make_app(demo_settings, export_source="宁波市网格化治理平台导出 <b>2020</b>").test_client()
    html = client.get("/").get_data(as_text=True)
    assert '<p class="ga-about">关于数据：宁波市网格化治理平台导出 &lt;b&gt;2020&lt;/b&gt;</p>' in html


def test_the_committed_chinese_catalog_is_complete_and_compiled():
    from pathlib import Path

    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    folder = Path(__file__).resolve().parents[2] / "web" / "translations" / "zh" / "LC_MESSAGES"
    with open(folder / "messages.po", "rb") as f:
        po = {m.id: m.string for m in read_po(f) if m.id and not m.fuzzy}
    with open(folder / "messages.mo", "rb") as f:
        mo = {m.id: m.string for m in read_mo(f) if m.id}
    assert [k for k, v in po.items() if not v] == [], "untranslated messages"
    assert mo == po, "run: .venv/bin/pybabel compile -d web/translations"
