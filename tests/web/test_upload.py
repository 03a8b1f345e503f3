"""The upload page: import, report, rejected rows; 413 and hostile zips store nothing."""

from __future__ import annotations

import csv
import io
import re
import zipfile

import pytest

from geo.settings import PROJECT_ROOT
from geo.store import counts as count_store
from geo.store import open_store
from tests.stores import copy_settings, location
from web import create_app

FIXTURES = PROJECT_ROOT / "tests" / "fixtures" / "ingest"


@pytest.fixture
def settings(demo_settings, tmp_path):
    return copy_settings(demo_settings, tmp_path / "data")


@pytest.fixture
def app(settings):
    return create_app({"TESTING": True, "SETTINGS": {**location(settings), "secret_key": "test",
                                                      "max_upload_bytes": 200_000}})


@pytest.fixture
def client(app):
    return app.test_client()


def _state(settings):
    with open_store(settings).snapshot() as con:
        return (con.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0],
                con.execute("SELECT COUNT(*) FROM records").fetchone()[0],
                tuple(count_store.counts_rows(con)["value"].agg(["count", "sum"]).tolist()))


def _post(client, data: bytes, filename: str, url: str = "/upload", **fields):
    form = {"file": (io.BytesIO(data), filename), "metric": "visits", **fields}
    return client.post(url, data=form, content_type="multipart/form-data")


def test_the_form_offers_the_metrics_and_coordinate_systems(client):
    page = client.get("/upload?lang=en")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'type="file" name="file"' in html and 'enctype="multipart/form-data"' in html
    assert 'value="visits"' in html and 'value="checkpoint_checks"' not in html
    assert 'value="gcj02"' in html and 'value="bd09"' in html and 'value="EPSG:4549"' in html


@pytest.mark.both_stores
def test_upload_shows_the_report_and_the_rejected_rows_download(client, app):
    service = app.extensions["gridatlas"]
    before = service.area_total("330200", "visits")
    answer = _post(client, (FIXTURES / "reason_outside_city.csv").read_bytes(), "出行记录.csv")
    assert answer.status_code == 303
    report_url = answer.headers["Location"]
    page = client.get(report_url + "?lang=en").get_data(as_text=True)
    assert 'id="summary">read 6, accepted 5, duplicate 0, rejected 1<' in page
    assert "outside the city" in page and "X001" in page and "出行记录.csv" in page
    assert "不在市域内" in client.get(report_url + "?lang=zh").get_data(as_text=True)
    # The map's numbers move at once (same service, no restart).
    assert service.area_total("330200", "visits") == before + 5

    download = client.get(report_url + "/rejected.csv")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert "attachment" in download.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(download.get_data().decode("utf-8-sig"))))
    assert [(r["row"], r["reason"], r["id"]) for r in rows] == [("7", "outside the city", "X001")]

    # The import is listed on the form page.
    assert "出行记录.csv" in client.get("/upload").get_data(as_text=True)


def test_the_report_page_and_the_rejects_csv_show_no_exact_position(client):
    """A record is a household: an admin's browser gets positions rounded to 0.01° (about 1 km),
    never as written, on the report page (both languages) and in the rejected rows."""
    header = "编号,日期,经度,纬度,备注\n"
    first = "H1,2020-02-01,121.551234,29.871234,\nH2,2020-02-02,121.562345,29.862345,\n"
    second = ("H1,2020-02-03,121.553456,29.873456,\n"              # corrected: replaces H1
              "H3,2020-02-01,29.874567,121.554567,\n"               # swapped
              "H4,2020-02-01,121.555678E,29.875678,\n"              # not a number
              "H5,2020-13-45,121.556789,29.876789,门口 121.556789\n")  # bad date; a note quoting the position
    client.get(_post(client, (header + first).encode(), "a.csv").headers["Location"])
    report_url = _post(client, (header + second).encode(), "b.csv").headers["Location"]
    shown = [client.get(report_url + lang).get_data(as_text=True) for lang in ("?lang=en", "?lang=zh")]
    shown.append(client.get(report_url + "/rejected.csv").get_data().decode("utf-8-sig"))
    for text in shown:
        assert re.findall(r"\d\.\d{3,}", text) == []
    page, _, rejects = shown
    assert "read 4, accepted 1, duplicate 0, rejected 3" in page
    assert "(≈29.87, ≈121.55)" in page and "&#39;≈121.56E&#39; is not a number" in page
    grid = r'grid <span class="ga-code">\d{15}</span>'  # a replaced record: date and grid, old -> new
    assert re.search(rf"row 2 · .*?H1.*?\(visits\):\s*2020-02-01, {grid} → 2020-02-03, {grid} \(date and position changed\)",
                     page, re.DOTALL)
    rows = {r["编号"]: r for r in csv.DictReader(io.StringIO(rejects))}
    assert (rows["H5"]["row"], rows["H5"]["reason"], rows["H5"]["经度"], rows["H5"]["纬度"], rows["H5"]["备注"]) == (
        "5", "unparseable date", "≈121.56", "≈29.88", "门口 ≈121.56")


@pytest.mark.both_stores
def test_uploading_again_adds_nothing(client, settings):
    data = (FIXTURES / "visits_gbk.csv").read_bytes()
    client.get(_post(client, data, "gbk.csv").headers["Location"])
    state = _state(settings)
    again = client.get(_post(client, data, "gbk.csv").headers["Location"] + "?lang=en").get_data(as_text=True)
    assert "read 5, accepted 0, duplicate 5, rejected 0" in again
    assert _state(settings)[1:] == state[1:]


@pytest.mark.both_stores
def test_an_upload_over_the_limit_gets_413_and_stores_nothing(client, settings):
    before = _state(settings)
    big = b"id,date,lon,lat\n" + b"V1,2020-02-01,121.55,29.87\n" * 10_000  # 270 kB > 200 kB
    answer = _post(client, big, "big.csv", url="/upload?lang=en")
    assert answer.status_code == 413
    assert "The upload is too large" in answer.get_data(as_text=True)
    assert "nothing was imported" in answer.get_data(as_text=True)
    assert _state(settings) == before
    assert not (settings.data_path / "uploads").exists() or not any((settings.data_path / "uploads").iterdir())


def test_the_413_page_says_what_the_limit_is(settings):
    app = create_app({"TESTING": True, "SETTINGS": {**location(settings), "max_upload_bytes": 2 * 1024 * 1024}})
    answer = app.test_client().post("/upload?lang=en", data={"file": (io.BytesIO(b"x" * 3_000_000), "big.csv")},
                                    content_type="multipart/form-data")
    assert answer.status_code == 413
    assert "larger than the upload limit of 2 MB, so nothing was imported" in answer.get_data(as_text=True)


def test_a_zip_slip_upload_is_refused_whole(client, settings):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("visits.csv", (FIXTURES / "visits_ok.csv").read_bytes())
        zf.writestr("../../evil.sh", b"echo pwned")
    before = _state(settings)
    answer = _post(client, buf.getvalue(), "visits.zip")
    assert answer.status_code == 422
    assert "visits.zip: refused: the archive entry &#39;../../evil.sh&#39; points outside the archive" in answer.get_data(as_text=True)
    assert _state(settings) == before


def test_a_zip_bomb_upload_is_refused(settings):
    app = create_app({"TESTING": True, "SETTINGS": {**location(settings), "max_unzipped_bytes": 1_000_000}})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("visits.shp", bytes(20_000_000))
    assert len(buf.getvalue()) < 100_000
    before = _state(settings)
    answer = _post(app.test_client(), buf.getvalue(), "bomb.zip")
    assert answer.status_code == 422
    assert "possible zip bomb" in answer.get_data(as_text=True)
    assert _state(settings) == before


def test_unknown_or_malformed_import_ids(client):
    assert client.get("/upload/20200101-000000-abcdef").status_code == 400
    assert client.get("/upload/..%2F..%2Fetc/rejected.csv").status_code in (400, 404)
    answer = _post(client, b"", "")
    assert answer.status_code == 400
