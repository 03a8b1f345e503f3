"""/export/<area_code>.<png|pdf|svg>: downloads of the map view, and 400/404 with a message."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from urllib.parse import unquote

import pytest
from PIL import Image
from pypdf import PdfReader

from tests.stores import location
from web import create_app

TOWN = "330212108"


@pytest.fixture(scope="module")
def client(demo_settings):
    app = create_app({"TESTING": True, "SETTINGS": {**location(demo_settings),
                                                    "secret_key": "test-secret"}})
    return app.test_client()


def test_png_download_of_the_map_view(client):
    r = client.get(f"/export/{TOWN}.png?metric=visits&from=2020-02-01&to=2020-02-29"
                   "&paper=a4&orientation=landscape&dpi=150")
    assert r.status_code == 200
    assert r.mimetype == "image/png"
    disposition = unquote(r.headers["Content-Disposition"])
    assert disposition.startswith("attachment") and f"{TOWN}_云龙镇_visits_20200201-20200229.png" in disposition
    assert Image.open(io.BytesIO(r.data)).size == (1754, 1240)  # A4 landscape at 150 dpi


def test_pdf_download_is_one_a3_page(client):
    r = client.get(f"/export/{TOWN}.pdf?metric=home_quarantine&paper=a3&orientation=portrait")
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    page = PdfReader(io.BytesIO(r.data)).pages[0]
    assert float(page.mediabox.width) == pytest.approx(297 / 25.4 * 72, abs=0.5)
    assert float(page.mediabox.height) == pytest.approx(420 / 25.4 * 72, abs=0.5)
    assert "云龙镇" in page.extract_text() and "居家隔离" in page.extract_text()


def test_svg_download_parses(client):
    r = client.get(f"/export/{TOWN}.svg")
    assert r.status_code == 200 and r.mimetype == "image/svg+xml"
    root = ET.fromstring(r.data)
    assert any("云龙镇" in "".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text"))


def test_language_follows_the_parameter_then_the_cookie(client):
    r = client.get(f"/export/{TOWN}.pdf?lang=en&metric=appeals")
    assert "Appeals" in PdfReader(io.BytesIO(r.data)).pages[0].extract_text()
    client.set_cookie("lang", "en")
    try:
        r = client.get(f"/export/{TOWN}.pdf?metric=appeals")
        assert "Appeals" in PdfReader(io.BytesIO(r.data)).pages[0].extract_text()
    finally:
        client.delete_cookie("lang")
    r = client.get(f"/export/{TOWN}.pdf?metric=appeals")
    assert "群众诉求" in PdfReader(io.BytesIO(r.data)).pages[0].extract_text()


@pytest.mark.parametrize("url, said", [
    (f"/export/{TOWN}.gif", ["gif", "png, pdf, svg"]),
    (f"/export/{TOWN}.png?paper=letter", ["letter", "a4, a3"]),
    (f"/export/{TOWN}.png?orientation=upside", ["upside", "portrait, landscape"]),
    (f"/export/{TOWN}.png?dpi=96", ["96", "150, 300"]),
    (f"/export/{TOWN}.png?dpi=max", ["max"]),
    (f"/export/{TOWN}.png?metric=steps", ["steps", "visits"]),
    (f"/export/{TOWN}.png?from=yesterday", ["yesterday"]),
    (f"/export/{TOWN}.png?from=2020-03-01&to=2020-02-01", ["2020-03-01", "2020-02-01"]),
    (f"/export/{TOWN}.png?level=district", ["district", "village, grid"]),
    (f"/export/{TOWN}.png?method=equal", ["equal", "quantiles"]),
    (f"/export/{TOWN}.png?k=12", ["12"]),
    (f"/export/{TOWN}.png?lang=fr", ["fr"]),
])
def test_bad_parameters_get_400_naming_the_value(client, url, said):
    r = client.get(url, headers={"Accept": "application/json"})
    assert r.status_code == 400
    message = r.get_json()["error"]
    for part in said:
        assert part in message, message


def test_bad_parameter_page_in_a_browser_shows_the_message(client):
    r = client.get(f"/export/{TOWN}.png?paper=a5", headers={"Accept": "text/html"})
    assert r.status_code == 400
    assert "paper &#39;a5&#39; is not allowed" in r.get_data(as_text=True) or \
        "paper 'a5' is not allowed" in r.get_data(as_text=True)


@pytest.mark.parametrize("code", ["330299", "123456789", "abc"])
def test_unknown_area_is_404(client, code):
    r = client.get(f"/export/{code}.png", headers={"Accept": "application/json"})
    assert r.status_code == 404
    assert code in r.get_json()["error"]


def test_map_page_offers_the_export_of_its_own_view(client):
    """The "导出图片" links export exactly what the page shows (area, metric, period)."""
    page = client.get("/map/330212?metric=home_quarantine&from=2020-02-01&to=2020-02-29").get_data(as_text=True)
    assert "导出图片" in page
    for fmt in ("png", "pdf", "svg"):
        assert f"/export/330212.{fmt}?" in page
    link = page.split('class="ga-export-png" href="')[1].split('"')[0].replace("&amp;", "&")
    assert "metric=home_quarantine" in link and "from=2020-02-01" in link and "to=2020-02-29" in link
    response = client.get(link)
    assert response.status_code == 200 and response.mimetype == "image/png"
