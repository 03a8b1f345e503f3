"""Every route of the app, for every role: a rule, a 403 outside the jurisdiction, listings cut
to it, and no household point in any JSON answer.

A route added without an access rule (web/auth.py) fails here, and so does a route whose URL
takes an argument this walk has no sample value for: add one to ``SAMPLES`` and decide what it
means for each role.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from geo.access.scope import Scope
from geo.atlas.hierarchy import CITY_CODE
from geo.atlas.metrics import POINT_METRICS
from geo.ingest.eventfiles import event_path, read_event_arrays
from geo.store import open_store
from tests.stores import location
from web import create_app
from web.auth import access_of

CITY, YINZHOU, YUNLONG = CITY_CODE, "330212", "330212108"
HAISHU = "330203"
SCOPES = {"admin": ("admin", CITY), "city": ("city", CITY), "district": ("district", YINZHOU),
          "town": ("town", YUNLONG)}
ROLES = ["anonymous", *SCOPES]
CODE_RE = re.compile(r"(?<![\d.])(\d{15}|\d{12}|\d{9}|\d{6})(?![\d.])")


@pytest.fixture(scope="module")
def app(secure_settings):
    return create_app({"SETTINGS": {**location(secure_settings), "secret_key": "test-secret"},
                       "TESTING": True})


@pytest.fixture(scope="module")
def atlas(app):
    return app.extensions["gridatlas"].atlas


@pytest.fixture(scope="module")
def household_points(secure_settings):
    """Every record position the store and the event files hold, rounded as GeoJSON is (6 places)."""
    points = set()
    for metric in POINT_METRICS:
        path = event_path(secure_settings.demo_dir / "events", metric)
        if path.exists():
            x, y, _ = read_event_arrays(path)
            points.update(zip(np.round(x, 6).tolist(), np.round(y, 6).tolist()))
    points.update((round(lon, 6), round(lat, 6))
                  for lon, lat in open_store(secure_settings).query("SELECT lon, lat FROM records"))
    assert len(points) > 1000
    return points


def _foreign(scope: Scope | None, atlas) -> str:
    """An existing area just outside the scope: a sibling town for a town official, another
    district for a district official; for the city, a town (inside)."""
    if scope is None or scope.is_city:
        return YUNLONG
    if scope.role == "town":
        siblings = atlas.children(YINZHOU)["code"]
        return next(c for c in siblings if c != scope.root)
    return HAISHU


def _samples(scope, atlas, code):
    """URL argument -> value. ``fmt`` is deliberately not a format, so an export stops at its
    parameter check (after the access check) instead of drawing a map."""
    return {
        "code": code, "area_code": code, "fmt": "nope", "level": "town",
        "import_id": "20200301-153012-5f3a9c", "path": "leaflet/leaflet.js", "filename": "app.css",
    }


def _coordinates(obj):
    """Every [x, y] number pair inside a JSON value."""
    if isinstance(obj, list):
        if len(obj) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in obj):
            yield (round(float(obj[0]), 6), round(float(obj[1]), 6))
        else:
            for item in obj:
                yield from _coordinates(item)
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _coordinates(value)


def _points(obj):
    """Coordinates of every GeoJSON Point inside a JSON value."""
    if isinstance(obj, dict):
        if obj.get("type") == "Point":
            yield tuple(round(float(v), 6) for v in obj["coordinates"][:2])
        for value in obj.values():
            yield from _points(value)
    elif isinstance(obj, list):
        for item in obj:
            yield from _points(item)


def _codes_in(response) -> set[str]:
    text = response.get_data(as_text=True) + " " + response.headers.get("Location", "")
    if response.is_json:
        found = set()

        def walk(v):
            if isinstance(v, str):
                found.update(CODE_RE.findall(v))
            elif isinstance(v, dict):
                for k, x in v.items():
                    walk(k)
                    walk(x)
            elif isinstance(v, list):
                for x in v:
                    walk(x)

        walk(response.get_json())
        found.update(CODE_RE.findall(response.headers.get("Location", "")))
        return found
    return set(CODE_RE.findall(text))


@pytest.mark.parametrize("role", ROLES)
def test_every_route_checks_the_users_jurisdiction(app, atlas, role, household_points):
    spec = None if role == "anonymous" else {"name": f"walk-{role}", "role": SCOPES[role][0],
                                             "area": SCOPES[role][1]}
    scope = None if spec is None else Scope(spec["role"], spec["area"], spec["name"])
    client = app.test_client(user=spec)
    known = set(atlas._index.index)
    checkpoints = {(round(p.x, 6), round(p.y, 6)) for p in atlas.checkpoints.geometry}
    foreign = _foreign(scope, atlas)
    foreign_name = str(atlas.get(foreign)["name"])
    own = scope.root if scope is not None and not scope.is_city else YUNLONG
    problems = []
    walked = 0

    for rule in app.url_map.iter_rules():
        access = access_of(app, rule.endpoint)
        if access is None:
            problems.append(f"{rule.rule} ({rule.endpoint}) has no access rule: mark it with a decorator of web/auth.py")
            continue
        unknown = set(rule.arguments) - set(_samples(scope, atlas, "x"))
        if unknown:
            problems.append(f"{rule.rule}: no sample value for {sorted(unknown)}; add one to SAMPLES")
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for code in ([foreign, own] if rule.arguments & {"code", "area_code"} else [foreign]):
                url = app.url_map.bind("localhost").build(rule.endpoint, _samples(scope, atlas, code), method=method,
                                                                append_unknown=False)
                query = {"q": foreign_name, "within": CITY, "metric": "visits"}
                r = client.open(url, method=method, query_string=query)
                walked += 1
                where = f"{method} {url} as {role}: {r.status_code}"
                to_login = r.status_code == 401 or r.headers.get("Location", "").startswith("/login")
                if access.kind == "public":
                    if method == "GET" and to_login and rule.endpoint != "auth.logout":
                        problems.append(f"{where}: a public route asks to sign in")
                    continue
                if scope is None:
                    # Nobody signed in: sent to sign in, or (a POST) refused for its missing CSRF token.
                    csrf_refused = method != "GET" and r.status_code == 400
                    if not (to_login or csrf_refused):
                        problems.append(f"{where}: open to anyone")
                    continue
                refused = r.status_code == 403
                allowed = scope.allows(access.permission) and (
                    access.kind != "city" or scope.is_city) and (
                    access.kind != "area" or scope.can_see(code))
                if allowed == refused:
                    problems.append(f"{where}: expected {'an answer' if allowed else '403'}")
                if refused or r.status_code >= 400:
                    continue
                # Whatever came back lists only areas inside the scope (or the ones above it,
                # whose names a breadcrumb shows).
                outside = {c for c in _codes_in(r) & known if not (scope.can_see(c) or scope.contains_scope(c))}
                if outside:
                    problems.append(f"{where}: answer names areas outside the jurisdiction: {sorted(outside)[:5]}")
                if r.is_json:
                    body = r.get_json()
                    leaked = set(_coordinates(body)) & household_points
                    if leaked:
                        problems.append(f"{where}: sends household positions {sorted(leaked)[:3]}")
                    stray = set(_points(body)) - checkpoints
                    if stray:
                        problems.append(f"{where}: sends points that are not checkpoints {sorted(stray)[:3]}")
    assert walked > 20
    assert problems == [], "\n".join(problems)


def test_the_privacy_check_would_see_a_leaked_point(household_points):
    x, y = next(iter(household_points))
    leaked = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]}}
    assert set(_coordinates(json.loads(json.dumps(leaked)))) & household_points


# --- the two rules, spelled out ----------------------------------------------------------------

def _client(app, role):
    kind, area = SCOPES[role]
    return app.test_client(user={"name": f"u-{role}", "role": kind, "area": area})


def test_a_town_officials_search_for_another_towns_name_finds_nothing(app, atlas):
    town = _client(app, "town")
    other = next(c for c in atlas.children(YINZHOU)["code"] if c != YUNLONG)
    name = str(atlas.get(other)["name"])
    assert town.get("/api/search", query_string={"q": name}).get_json()["results"] == []
    assert town.get("/api/search", query_string={"q": other}).get_json()["results"] == []
    page = town.get("/search", query_string={"q": name})
    assert page.status_code == 200 and other not in page.get_data(as_text=True)
    # The city official finds it.
    city = _client(app, "city")
    assert other in [r["code"] for r in city.get("/api/search", query_string={"q": name}).get_json()["results"]]
    # Their own villages are found.
    village = atlas.children(YUNLONG).iloc[0]
    hits = town.get("/api/search", query_string={"q": village["name"]}).get_json()["results"]
    assert village["code"] in [h["code"] for h in hits] and all(h["code"].startswith(YUNLONG) for h in hits)


def test_a_district_official_lands_on_their_district_and_sees_only_it(app, atlas):
    district = _client(app, "district")
    home = district.get("/")
    assert home.status_code == 302 and home.headers["Location"].startswith(f"/map/{YINZHOU}")
    outlines = district.get("/api/outlines/district.geojson").get_json()
    assert [f["properties"]["code"] for f in outlines["features"]] == [YINZHOU]
    towns = district.get("/api/outlines/town.geojson").get_json()
    assert {f["properties"]["code"] for f in towns["features"]} == set(atlas.children(YINZHOU)["code"])
    assert district.get(f"/map/{HAISHU}").status_code == 403
    assert district.get(f"/api/areas/{CITY}/children.geojson").status_code == 403
    assert district.get(f"/api/outlines/town.geojson?within={HAISHU}").status_code == 403
    page = district.get(f"/map/{YINZHOU}").get_data(as_text=True)
    crumbs = re.search(r'<nav class="ga-crumbs".*?</nav>', page, re.S).group(0)
    assert 'href="/"' not in crumbs and "宁波市" in crumbs  # the city is named, not linked
    assert district.get("/api/status").status_code == 403  # city-wide totals
    assert district.get("/wall").status_code == 403  # the command-centre wall covers the city


def test_the_same_url_answers_each_user_with_their_own_etag(app):
    town, city = _client(app, "town"), _client(app, "city")
    a = town.get("/api/outlines/town.geojson?zoom=8")
    b = city.get("/api/outlines/town.geojson?zoom=8")
    assert a.headers["ETag"] != b.headers["ETag"]
    assert "private" in a.headers["Cache-Control"]
    # The city's answer cannot be replayed to the town official through a conditional request.
    again = town.get("/api/outlines/town.geojson?zoom=8", headers={"If-None-Match": b.headers["ETag"]})
    assert again.status_code == 200 and len(again.get_json()["features"]) == 1


def test_a_wall_device_opens_only_the_walls_routes_inside_its_area(secure_settings, atlas):
    """A wall device (geo/access/wall_devices.py) of 鄞州区, signed in through its link: every GET route
    of the app is walked; only the wall's own routes answer, and only inside the district."""
    from geo.access import wall_devices
    from web.auth import DEVICE_ENDPOINTS

    from .conftest import csrf_token_of

    app = create_app({"SETTINGS": {**location(secure_settings), "secret_key": "test-secret"},
                      "TESTING": True, "TEST_USER": None})
    _, token = wall_devices.issue(app.extensions["gridatlas"].store, "walk-wall", YINZHOU)
    client = app.test_client()
    page = client.get("/wall/device").get_data(as_text=True)
    assert client.post("/wall/device", json={"token": token},
                       headers={"X-CSRFToken": csrf_token_of(page)}).status_code == 200
    scope = Scope("district", YINZHOU)
    known = set(atlas._index.index)
    problems, answered = [], set()
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "auth.logout":
            continue
        access = access_of(app, rule.endpoint)
        for code in ([HAISHU, YINZHOU] if rule.arguments & {"code", "area_code"} else [YINZHOU]):
            url = app.url_map.bind("localhost").build(rule.endpoint, _samples(scope, atlas, code), append_unknown=False)
            r = client.get(url, query_string={"metric": "visits", "q": "云龙"})
            where = f"GET {url}: {r.status_code}"
            if access.kind == "public":
                continue
            if r.status_code == 401:
                problems.append(f"{where}: the device was signed out")
                continue
            allowed = rule.endpoint in DEVICE_ENDPOINTS and code == YINZHOU
            if allowed == (r.status_code == 403):
                problems.append(f"{where}: expected {'an answer' if allowed else '403'}")
            if r.status_code < 400:
                answered.add(rule.endpoint)
                outside = {c for c in _codes_in(r) & known if not (scope.can_see(c) or scope.contains_scope(c))}
                if outside:
                    problems.append(f"{where}: answer names areas outside the device's area: {sorted(outside)[:5]}")
    assert problems == [], "\n".join(problems)
    assert {"wall.page", "wall.board", "api.values", "time_api.daily"} <= answered
