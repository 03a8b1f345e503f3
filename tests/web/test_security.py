"""Security headers and the Content-Security-Policy with its per-request nonce."""

import re

import pytest

from web import create_app
from web.security import content_security_policy, nonced, tile_source

TOWN = "330212101"


@pytest.fixture(scope="module")
def app(demo_settings):
    return create_app({"SETTINGS": {"data_dir": demo_settings.data_path, "secret_key": "test"}, "TESTING": True})


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


def test_static_files_stay_publicly_cacheable(client):
    r = client.get("/static/vendor/leaflet/leaflet.js?v=1")
    assert r.status_code == 200 and r.cache_control.public and "private" not in r.headers["Cache-Control"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_login_pages_are_never_stored(app):
    r = app.test_client(user=None).get("/login")
    assert "no-store" in r.headers["Cache-Control"]


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
