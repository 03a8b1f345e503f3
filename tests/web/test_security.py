"""Security headers and the Content-Security-Policy with its per-request nonce."""

import re

import pytest

from tests.stores import location
from web import create_app
from web.security import content_security_policy, nonced, tile_source

TOWN = "330212108"


@pytest.fixture(scope="module")
def app(demo_settings):
    return create_app({"SETTINGS": {**location(demo_settings), "secret_key": "test"}, "TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


def _csp(response) -> dict:
    policy = response.headers["Content-Security-Policy"]
    return {d.split()[0]: d.split()[1:] for d in policy.split("; ")}


@pytest.mark.parametrize("path", ["/", f"/map/{TOWN}", f"/api/areas/{TOWN}/summary", "/login", "/map/999999",
                                  "/api/outlines/town.geojson?zoom=8"])
def test_every_answer_carries_the_security_headers(client, path):
    r = client.get(path)
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Referrer-Policy"] == "same-origin"
    assert "camera=()" in r.headers["Permissions-Policy"]
    csp = _csp(r)
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["default-src"] == ["'none'"]
    assert csp["object-src"] == ["'none'"] and csp["base-uri"] == ["'none'"]
    assert csp["connect-src"] == ["'self'"]
    assert "private" in r.headers["Cache-Control"]


def test_scripts_run_only_from_this_site_or_with_the_nonce(client):
    r = client.get(f"/map/{TOWN}")
    csp = _csp(r)
    script = csp["script-src"]
    assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script and "*" not in " ".join(script)
    nonce = next(s for s in script if s.startswith("'nonce-"))[len("'nonce-"):-1]
    assert len(nonce) >= 22
    html = r.get_data(as_text=True)
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", html)
    assert inline, "Folium's map script is inline"
    assert all(f'nonce="{nonce}"' in attrs for attrs in inline)
    styles = re.findall(r"<style([^>]*)>", html)
    assert all(f'nonce="{nonce}"' in attrs for attrs in styles)
    markup = re.sub(r"<script.*?</script>", "", html, flags=re.S)
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", markup), "no inline event handlers"
    # Every request gets a new nonce.
    assert _csp(client.get(f"/map/{TOWN}"))["script-src"] != script


def test_an_answer_without_inline_blocks_allows_none_and_says_each_header_once(client):
    r = client.get(f"/api/areas/{TOWN}/summary")
    assert r.status_code == 200
    csp = _csp(r)
    assert csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"]  # no nonce: no inline code
    names = [name.lower() for name, _ in r.headers]
    for name in ("content-security-policy", "x-frame-options", "x-content-type-options", "cache-control",
                 "referrer-policy", "permissions-policy", "cross-origin-opener-policy"):
        assert names.count(name) == 1, name
    assert r.headers["Cache-Control"] == "no-cache, private"


def test_static_files_stay_publicly_cacheable(client):
    r = client.get("/static/vendor/leaflet/leaflet.js?v=1")
    assert r.status_code == 200 and r.cache_control.public and "private" not in r.headers["Cache-Control"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("url", ["/login", "/wall/device"])
def test_sign_in_pages_are_never_stored(app, url):
    r = app.test_client(user=None).get(url)
    assert r.status_code == 200 and "no-store" in r.headers["Cache-Control"]


def test_an_intranet_tile_server_is_allowed_for_images_only():
    policy = content_security_policy("abc", "http://{s}.tiles.intranet:8080/{z}/{x}/{y}.png")
    assert "img-src 'self' data: http://*.tiles.intranet:8080" in policy
    assert "tiles.intranet" not in policy.split("img-src")[0]
    assert tile_source("/tiles/{z}/{x}/{y}.png") is None
    assert tile_source("") is None


def test_nonced_adds_the_nonce_to_inline_blocks_only_once(app):
    with app.test_request_context("/"):
        html = nonced('<script>var a;</script><style>.x{}</style><script nonce="n1">b</script>')
        assert html.count("nonce=") == 3
        assert '<script nonce="n1">' in html


# --- every state-changing route needs the CSRF token; no vector-tile route ----------------------

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
SAMPLE_ARGS = {"code": TOWN, "area_code": TOWN, "fmt": "png", "level": "town", "import_id": "20200301-153012-5f3a9c",
               "path": "leaflet/leaflet.js", "filename": "app.css"}


@pytest.mark.parametrize("signed_in", [False, True])
def test_every_state_changing_route_refuses_a_request_without_a_csrf_token(secure_settings, signed_in):
    """Walks the URL map, so a POST route added later is covered too (/login included)."""
    from .conftest import ROLE_USERS, login

    app = create_app({"SETTINGS": {**location(secure_settings), "secret_key": "test-secret"},
                      "TESTING": True, "TEST_USER": None})
    client = app.test_client()
    if signed_in:
        assert login(client, ROLE_USERS["admin"][0]).status_code == 302
    adapter = app.url_map.bind("localhost")
    checked = set()
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods & STATE_CHANGING):
            url = adapter.build(rule.endpoint, {a: SAMPLE_ARGS[a] for a in rule.arguments}, method=method)
            for token in (None, "forged-token"):
                data = {"username": ROLE_USERS["admin"][0], "password": "a long test password"}
                if token:
                    data["csrf_token"] = token
                r = client.open(url, method=method, data=data)
                assert r.status_code == 400, (method, url, token, r.status_code)
            checked.add(rule.rule)
    assert {"/login", "/logout", "/upload", "/account/password"} <= checked
    if signed_in:
        assert client.get("/api/metrics").status_code == 200  # the refused requests changed nothing


def test_there_is_no_vector_tile_route_and_every_geometry_route_is_scoped(app):
    """The map's geometry comes from GeoJSON endpoints (README: not vector tiles). A tile route
    added later must carry an area rule or list only the user's areas: this test then needs
    updating with a check of its answers, as tests/web/test_route_scopes.py does."""
    from web.auth import access_of

    tile_like = [r.rule for r in app.url_map.iter_rules()
                 if re.search(r"tile|\.pbf|\.mvt|<int:z>|\{z\}", r.rule, re.I)]
    assert tile_like == [], "a vector-tile route exists: scope it and test it"
    for rule in app.url_map.iter_rules():
        if rule.rule.endswith(".geojson") or rule.rule.startswith("/api/areas/"):
            assert access_of(app, rule.endpoint).kind in ("area", "listing"), rule.rule


# --- household points never reach the browser: the import pages ---------------------------------

@pytest.fixture(scope="module")
def import_pages(demo_settings, tmp_path_factory):
    """An admin imports a record, then the same record moved plus a row with a bad date; returns
    the pages a browser gets (the report and the rejected rows) and the record positions."""
    import io

    from geo.access.users import add_user
    from geo.store import open_store
    from tests.stores import copy_settings

    from .conftest import USER_PASSWORD, csrf_token_of, login

    settings = copy_settings(demo_settings, tmp_path_factory.mktemp("imports") / "data")
    add_user(open_store(settings), "importer", "admin", None, USER_PASSWORD)
    app = create_app({"SETTINGS": {**location(settings), "secret_key": "test-secret"}, "TESTING": True,
                      "TEST_USER": None})
    client = app.test_client()
    login(client, "importer")
    pages = []
    for rows in (["privacy-r1,2020-02-03,121.551234,29.871234"],
                 ["privacy-r1,2020-02-04,121.552345,29.872345", "privacy-r2,2020-13-45,121.553456,29.873456"]):
        csv = ("编号,日期,经度,纬度\n" + "\n".join(rows) + "\n").encode("utf-8")
        token = csrf_token_of(client.get("/upload").get_data(as_text=True))
        r = client.post("/upload", data={"csrf_token": token, "metric": "visits", "file": (io.BytesIO(csv), "v.csv")},
                        content_type="multipart/form-data")
        assert r.status_code == 303, r.get_data(as_text=True)[:500]
        report = client.get(r.headers["Location"])
        pages.append(report.get_data(as_text=True))
        for link in re.findall(r'href="([^"]*rejected\.csv)"', pages[-1]):
            pages.append(client.get(link).get_data(as_text=True))
    return pages


def test_the_import_pages_carry_no_record_coordinates(import_pages):
    text = "\n".join(import_pages)
    assert "privacy-r1" in text  # the pages do describe the records...
    assert "≈121.55" in text  # (the rejected row's position, rounded to 0.01°, about 1 km)
    for coordinate in ("121.551234", "29.871234", "121.552345", "29.872345", "121.553456", "29.873456"):
        assert coordinate not in text  # ...but never where a household is
