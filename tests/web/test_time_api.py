"""The time endpoints: playback values, changes and the trend chart, through Flask's test client."""

from __future__ import annotations

import datetime as dt

import pytest

from geo.query.service import AtlasService
from tests.stores import location
from web import create_app

CITY, YINZHOU, YUNLONG = "330200", "330212", "330212108"


@pytest.fixture(scope="module")
def app(demo_settings):
    return create_app({"SETTINGS": {**location(demo_settings), "secret_key": "test"}, "TESTING": True})


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def service(demo_settings):
    return AtlasService(demo_settings)


def test_daily_gives_every_day_in_one_answer_with_fixed_classes(client, service):
    r = client.get(f"/api/areas/{YINZHOU}/daily.json?metric=visits&from=2020-02-01&to=2020-02-29")
    assert r.status_code == 200 and r.is_json
    d = r.get_json()
    assert len(d["days"]) == 29 and d["legend"]["fixed"] is True
    month = service.child_values(YINZHOU, "visits", dt.date(2020, 2, 1), dt.date(2020, 2, 29))
    assert [a["code"] for a in d["areas"]] == month["code"].tolist()
    # Summed over the days, each town has the value the map shows for the month.
    assert [sum(day[j] for day in d["values"]) for j in range(len(month))] == month["value"].tolist()
    assert "ETag" in r.headers


def test_daily_follows_the_level_of_the_map(client):
    d = client.get(f"/api/areas/{YUNLONG}/daily.json?metric=visits&level=grid&from=2020-03-01&to=2020-03-02").get_json()
    assert d["level"] == "grid" and all(a["code"].startswith(YUNLONG) and len(a["code"]) == 15 for a in d["areas"])


def test_change_defaults_to_last_week_against_the_week_before(client):
    d = client.get(f"/api/areas/{CITY}/change.json?metric=visits").get_json()
    assert d["a"] == {"from": "2020-03-18", "to": "2020-03-24", "days": 7}
    assert d["b"] == {"from": "2020-03-25", "to": "2020-03-31", "days": 7}
    assert len(d["values"]) == 10 and d["basis"] == "absolute"
    for row in d["values"]:
        assert row["diff"] == row["b"] - row["a"] and row["value"] == row["diff"]


def test_change_in_per_cent(client, service):
    q = "metric=new_arrivals&a_from=2020-02-01&a_to=2020-02-07&b_from=2020-02-08&b_to=2020-02-14&basis=percent"
    d = client.get(f"/api/areas/{YINZHOU}/change.json?{q}").get_json()
    a = service.child_values(YINZHOU, "new_arrivals", dt.date(2020, 2, 1), dt.date(2020, 2, 7))["value"].tolist()
    b = service.child_values(YINZHOU, "new_arrivals", dt.date(2020, 2, 8), dt.date(2020, 2, 14))["value"].tolist()
    assert [r["a"] for r in d["values"]] == a and [r["b"] for r in d["values"]] == b
    assert [r["pct"] for r in d["values"]] == [None if x == 0 else round(100 * (y - x) / x, 1) for x, y in zip(a, b)]
    assert d["legend"]["labels"][d["legend"]["zero_class"]] == "0%"


def test_trend_chart_is_an_svg_image(client):
    r = client.get(f"/api/areas/{YINZHOU}/trend.svg?metric=visits&lang=en")
    assert r.status_code == 200 and r.mimetype == "image/svg+xml"
    text = r.get_data(as_text=True)
    assert text.startswith("<svg") and "鄞州区" in text and 'class="ga-spark"' in text
    assert "<script" not in text


@pytest.mark.parametrize("url, status, message", [
    (f"/api/areas/{CITY}/daily.json?metric=cats", 400, "cats"),
    (f"/api/areas/{CITY}/daily.json?from=2020-13-01", 400, "2020-13-01"),
    (f"/api/areas/{CITY}/daily.json?from=2020-03-01&to=2020-02-01", 400, "2020-03-01"),
    (f"/api/areas/{CITY}/daily.json?from=2019-12-01", 400, "2019-12-01"),
    (f"/api/areas/{CITY}/daily.json?k=12", 400, "12"),
    ("/api/areas/999999/daily.json", 404, "999999"),
    (f"/api/areas/{CITY}/change.json?a_from=2020-02-10&a_to=2020-02-01", 400, "period a: start 2020-02-10 is after end 2020-02-01"),
    (f"/api/areas/{CITY}/change.json?b_to=2020-04-02", 400, "period b 2020-03-25..2020-04-02 is outside the data period"),
    (f"/api/areas/{CITY}/change.json?b_from=yesterday", 400, "b_from 'yesterday' is not an ISO date"),
    (f"/api/areas/{CITY}/change.json?basis=ratio", 400, "unknown change basis 'ratio'; allowed: absolute, percent"),
    (f"/api/areas/{CITY}/change.json?k=5", 400, "classes per side 5 must be between 1 and 3"),
    (f"/api/areas/{YINZHOU}/change.json?level=city", 400, "city"),
    (f"/api/areas/{CITY}/trend.svg?metric=cats", 400, "cats"),
    ("/api/areas/999999/trend.svg", 404, "999999"),
])
def test_bad_parameters_get_a_message_naming_them(client, url, status, message):
    r = client.get(url + ("&" if "?" in url else "?") + "lang=en")
    assert r.status_code == status
    assert message in r.get_json()["error"]


def test_a_town_official_cannot_play_another_town(app):
    town = app.test_client(user={"name": "t", "role": "town", "area": YUNLONG})
    assert town.get(f"/api/areas/{YUNLONG}/daily.json").status_code == 200
    assert town.get(f"/api/areas/{YINZHOU}/daily.json").status_code == 403
    assert town.get(f"/api/areas/{YINZHOU}/change.json").status_code == 403
    assert town.get(f"/api/areas/{YINZHOU}/trend.svg").status_code == 403
