"""Record imports: every row accepted, duplicate or rejected with its reason; one transaction.

Small committed fixtures live in tests/fixtures/ingest (see make_fixtures.py there); XLSX,
GeoPackage, Shapefile and the hostile zips are built from them in tmp_path. Every test that
writes works on a copy of the session's demo data folder.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
import shapely

from geo.cli.main import main
from geo.errors import BadParameter, InputFileError
from geo.ingest.imports import (
    REASONS,
    IngestReport,
    ingest_file,
    ingest_upload,
    load_report,
    parse_days,
    parse_mapping,
    rejects_file,
)
from geo.ingest.rebuild import compute_cube
from geo.query.counts import CountCube
from geo.query.service import AtlasService
from geo.settings import PROJECT_ROOT
from geo.store import counts as count_store
from geo.store import open_store
from tests.stores import copy_settings, frame, location_env, use_location, write_progress

FIXTURES = PROJECT_ROOT / "tests" / "fixtures" / "ingest"
# The five good rows of every fixture (see make_fixtures.py).
POINTS = [
    ("V001", "2020-02-01", 121.55, 29.87),
    ("V002", "2020-02-02", 121.56, 29.86),
    ("V003", "2020-02-03", 121.54, 29.88),
    ("V004", "2020-02-04", 121.60, 29.82),
    ("V005", "2020-02-05", 121.45, 29.90),
]


@pytest.fixture
def settings(demo_settings, tmp_path):
    """Settings on a private copy of the demo data (tests may write to it)."""
    data = tmp_path / "data"
    return copy_settings(demo_settings, data, secret_key="test")


def ingest(settings, atlas, name_or_path, **kwargs) -> IngestReport:
    """Import a fixture (by name) or any path, with the session atlas (its join index is shared)."""
    path = FIXTURES / name_or_path if isinstance(name_or_path, str) else name_or_path
    kwargs.setdefault("metric", "visits")
    report = ingest_file(settings, path, atlas=atlas, **kwargs)
    assert report.read == report.accepted + report.duplicate + report.rejected
    return report


def store_state(settings) -> tuple:
    """Everything an import may change: version, records, counts, import log size."""
    with open_store(settings).snapshot() as con:
        return (
            con.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0],
            con.execute("SELECT metric, record_id, day, lon, lat, grid_code FROM records ORDER BY 1, 2").fetchall(),
            count_store.counts_rows(con).to_records(index=False).tolist(),
            con.execute("SELECT COUNT(*) FROM imports").fetchone()[0],
        )


def records(settings) -> pd.DataFrame:
    return frame(open_store(settings), "SELECT * FROM records ORDER BY metric, record_id")


def assert_counts_equal_full_rebuild(settings, atlas):
    """The counts the imports maintained by delta are exactly what a full rebuild computes."""
    store = open_store(settings)
    demo = settings.demo_dir
    cube, _, _ = compute_cube(atlas, store, demo / "events", demo / "checkpoint_checks.parquet")
    stored = CountCube.load(store, atlas).values
    assert np.array_equal(stored, cube), f"{int(np.abs(stored - cube).sum())} counts differ from a full rebuild"


# --------------------------------------------------------------------------------------------
# Every reason has a file that triggers it
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, metric, key, n, message", [
    # Positions are quoted rounded to 0.01° and marked "≈" (a record is a household).
    ("reason_outside_city.csv", "visits", "outside_city", 1, r"^\(≈120\.16, ≈30\.27\) is outside 宁波市: it lies in no grid$"),
    ("reason_swapped.csv", "visits", "swapped", 1,
     r"^longitude and latitude look swapped: \(≈29\.87, ≈121\.55\) would lie in the given bounds as \(≈121\.55, ≈29\.87\)$"),
    ("reason_nan_coordinate.csv", "visits", "nan_coordinate", 1, r"longitude \(lon\) is NaN"),
    ("reason_unparseable_date.csv", "visits", "unparseable_date", 1,
     r"date '2020-13-45' cannot be read; write dates as YYYY-MM-DD"),
    ("reason_date_outside_period.csv", "visits", "date_outside_period", 2,
     r"date 2019-12-31 is outside the allowed period 2020-01-24\.\.2020-03-31"),
    ("reason_missing_id.csv", "visits", "missing_id", 1, r"the record id \(column 'id'\) is empty"),
    ("reason_unknown_metric.csv", None, "unknown_metric", 1, r"metric 'flying_saucers' is unknown; allowed: visits"),
    ("visits_ok.csv", "vists", "unknown_metric", 5, r"metric 'vists' \(--metric\) is unknown; allowed: visits"),
])
def test_each_reason_has_a_file_that_triggers_it(settings, atlas, name, metric, key, n, message):
    report = ingest(settings, atlas, name, metric=metric)
    assert report.rejected == n
    assert report.accepted == report.read - n  # the five good rows go in (none when --metric is bad)
    assert [g.key for g in report.rejects] == [key]
    group = report.rejects[0]
    assert group.count == n and group.label == REASONS[key].label
    assert any(re.search(message, ex["detail"]) for ex in group.examples), group.examples
    # The CLI-style report groups it under the reason, with the example and the CSV path.
    text = "\n".join(report.lines())
    assert f"  {REASONS[key].label}: {n}" in text
    assert f"rejected rows: {report.rejects_csv}" in text


def test_the_reason_labels_cover_the_issue():
    labels = {r.label for r in REASONS.values()}
    assert {"outside the city", "latitude and longitude probably swapped", "NaN coordinate", "unparseable date",
            "date outside the allowed period", "missing id", "unknown metric"} <= labels


def test_rejected_rows_csv_keeps_the_row_as_written_with_its_reason(settings, atlas):
    report = ingest(settings, atlas, "reason_nan_coordinate.csv")
    with open(report.rejects_csv, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows == [{"row": "7", "reason": "NaN coordinate", "原因": "坐标为NaN", "detail": "longitude (lon) is NaN",
                     "id": "X003", "date": "2020-02-01", "lon": "NaN", "lat": "≈29.87"}]  # positions rounded


def test_a_messy_file_loses_no_row(settings, atlas, tmp_path):
    """Every problem at once, plus repeats: read = accepted + duplicate + rejected, and the
    rejects CSV has exactly the rejected rows."""
    rows = [list(p) for p in POINTS]
    rows += [["V001", "2020-02-01", 121.55, 29.87],          # repeat of row 2: duplicate in file
             ["C1", "2020-02-01", 121.55, 29.87], ["C1", "2020-02-09", 121.55, 29.87],  # conflict
             ["", "2020-02-01", 121.55, 29.87], ["B1", "", 121.55, 29.87], ["B2", "soon", 121.55, 29.87],
             ["B3", "2020-02-01", "", 29.87], ["B4", "2020-02-01", "abc", 29.87], ["B5", "2020-02-01", "nan", "nan"],
             ["B6", "2020-02-01", 29.87, 121.55], ["B7", "2020-02-01", 120.155, 30.274], ["B8", "2021-01-01", 121.55, 29.87],
             ["", "", "", ""]]
    path = tmp_path / "messy.csv"
    pd.DataFrame(rows, columns=["id", "date", "lon", "lat"]).to_csv(path, index=False)
    report = ingest(settings, atlas, path)
    assert report.first_line() == "read 18, accepted 5, duplicate 1, rejected 12"
    assert report.duplicate_in_file == 1
    by_key = {g.key: g.count for g in report.rejects}
    assert by_key == {"missing_id": 2, "missing_date": 1, "unparseable_date": 1, "missing_coordinate": 1,
                      "bad_coordinate": 1, "nan_coordinate": 1, "swapped": 1, "outside_city": 1,
                      "date_outside_period": 1, "conflicting_id": 2}
    rejects = pd.read_csv(report.rejects_csv, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert len(rejects) == report.rejected
    # The fully empty row is filed under its first problem and lists all of them.
    last = rejects[rejects["row"] == "19"].iloc[0]
    assert last["reason"] == "missing id" and "date" in last["detail"] and "longitude" in last["detail"]


# --------------------------------------------------------------------------------------------
# Privacy: no household position in the report, the CLI lines or the rejects CSV
# --------------------------------------------------------------------------------------------

FINE_NUMBER = re.compile(r"\d\.\d{3,}")  # a position finer than 0.01° (about 1 km)


def _precise_rows(shift: float = 0.0) -> pd.DataFrame:
    """In-city rows written to 6 decimals: good ones, and one of each coordinate problem."""
    rows = [["P1", "2020-02-01", 121.551234 + shift, 29.871234], ["P2", "2020-02-02", 121.562345, 29.862345],
            ["P3", "2020-02-01", 29.873456, 121.553456],            # swapped
            ["P4", "2020-02-01", "121.554567x", 29.874567],         # not a number
            ["P5", "2020-02-01", 120.155678, 30.274678],            # outside the city (Hangzhou)
            ["P6", "2020-13-45", 121.556789, 29.876789],            # bad date, good position
            ["P7", "2020-02-01", 121.557891, 29.877891], ["P7", "2020-02-02", 121.557891, 29.877891]]  # conflict
    frame = pd.DataFrame(rows, columns=["id", "date", "lon", "lat"])
    frame["备注"] = "坐标 " + frame["lat"].astype(str) + "," + frame["lon"].astype(str)  # a note quoting it
    return frame


def test_no_exact_position_reaches_the_report_or_the_rejects_csv(settings, atlas, tmp_path):
    _precise_rows().to_csv(tmp_path / "a.csv", index=False)
    ingest(settings, atlas, tmp_path / "a.csv")
    _precise_rows(shift=0.002).to_csv(tmp_path / "b.csv", index=False)  # P1 moved by 200 m
    report = ingest(settings, atlas, tmp_path / "b.csv")
    assert (report.replaced, report.rejected) == (1, 6)
    shown = json.dumps(load_report(settings, report.import_id).to_dict(), ensure_ascii=False)
    shown += "\n".join(report.lines()) + Path(report.rejects_csv).read_text(encoding="utf-8-sig")
    assert FINE_NUMBER.findall(shown) == []
    # ...yet the clerk still sees what is wrong, and where in their file.
    details = {ex["id"]: ex["detail"] for g in report.rejects for ex in g.examples}
    assert details["P3"] == ("longitude and latitude look swapped: (≈29.87, ≈121.55) would lie in the given bounds "
                             "as (≈121.55, ≈29.87)")
    assert details["P4"] == "longitude (lon) '≈121.55x' is not a number"
    assert details["P5"] == "(≈120.16, ≈30.27) is outside 宁波市: it lies in no grid"
    rejects = pd.read_csv(report.rejects_csv, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    p6 = rejects.set_index("id").loc["P6"]
    assert (p6["row"], p6["reason"], p6["date"], p6["lon"], p6["lat"], p6["备注"]) == (
        "7", "unparseable date", "2020-13-45", "≈121.56", "≈29.88", "坐标 ≈29.88,≈121.56")
    (example,) = report.replaced_examples
    assert (example["id"], example["row"], example["change"]) == ("P1", 2, "position changed")
    assert example["old_grid"] and example["new_grid"] and example["old_day"] == example["new_day"] == "2020-02-01"


def test_reports_written_before_the_rounding_are_rounded_when_shown(settings, atlas, tmp_path):
    _precise_rows().iloc[:3].to_csv(tmp_path / "a.csv", index=False)
    report = ingest(settings, atlas, tmp_path / "a.csv")
    old = report.to_dict()  # a report stored with exact positions and no marker
    del old["coarse_positions"]
    old["rejects"][0]["examples"][0]["detail"] = "longitude and latitude look swapped: (29.8735, 121.553) would lie"
    old["replaced_examples"] = [{"row": 2, "metric": "visits", "id": "P1", "old": "2020-02-01 (121.551234, 29.871234)",
                                 "new": "2020-02-02 (121.552345, 29.872345)"}]
    Path(report.rejects_csv).write_text("row,reason,原因,detail,id,date,lon,lat\n4,x,x,\"(29.873456, 121.553456)\",P3,"
                                        "2020-02-01,29.873456,121.553456\n", encoding="utf-8-sig")
    with open_store(settings).transaction(bump_version=False) as con:
        con.execute("UPDATE imports SET report = ? WHERE import_id = ?", (json.dumps(old), report.import_id))
    shown = load_report(settings, report.import_id)
    assert shown.replaced_examples[0]["old"] == "2020-02-01 (≈121.55, ≈29.87)"
    assert shown.rejects[0].examples[0]["detail"].startswith("longitude and latitude look swapped: (≈29.87, ≈121.55)")
    copy = rejects_file(settings, report.import_id)
    assert copy != Path(report.rejects_csv)
    assert copy.read_text(encoding="utf-8-sig").splitlines()[1] == "4,x,x,\"(≈29.87, ≈121.55)\",P3,2020-02-01,≈29.87,≈121.55"


# --------------------------------------------------------------------------------------------
# Encodings, formats, coordinate systems, columns
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, encoding", [("visits_gbk.csv", "gb18030"), ("visits_bom.csv", "utf-8-sig")])
def test_gbk_and_bom_csv_with_chinese_columns_import(settings, atlas, name, encoding):
    report = ingest(settings, atlas, name)
    assert report.first_line() == "read 5, accepted 5, duplicate 0, rejected 0"
    assert report.encoding == encoding
    assert report.columns == {"id": "编号", "date": "日期", "lon": "经度", "lat": "纬度"}
    got = records(settings)
    got = got[got["source"] == name]
    assert got["record_id"].tolist() == [p[0] for p in POINTS]
    assert got["day"].tolist() == [p[1] for p in POINTS]


def _write_format(kind: str, tmp_path: Path) -> Path:
    frame = pd.DataFrame(POINTS, columns=["编号", "日期", "经度", "纬度"])
    gdf = gpd.GeoDataFrame(frame[["编号", "日期"]], geometry=gpd.points_from_xy(frame["经度"], frame["纬度"]),
                           crs="EPSG:4326")
    if kind == "xlsx":
        path = tmp_path / "visits.xlsx"
        wb = openpyxl.Workbook()
        ws = wb.active
        ws.append(list(frame.columns))
        for i, d, x, y in POINTS:
            ws.append([i, pd.Timestamp(d).to_pydatetime(), x, y])  # a real date cell
        wb.save(path)
    elif kind == "geojson":
        path = tmp_path / "visits.geojson"
        gdf.to_file(path, driver="GeoJSON", engine="pyogrio")
    elif kind == "gpkg":
        path = tmp_path / "visits.gpkg"
        gdf.to_file(path, driver="GPKG", engine="pyogrio")
    else:
        folder = tmp_path / "shp"
        folder.mkdir()
        gdf.rename(columns={"编号": "id", "日期": "date"}).to_file(folder / "visits.shp", engine="pyogrio",
                                                                  encoding="UTF-8")
        path = tmp_path / "visits.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for part in folder.iterdir():
                zf.write(part, part.name)
    return path


@pytest.mark.parametrize("kind", ["xlsx", "geojson", "gpkg", "shapezip"])
def test_other_formats_give_the_same_records_as_the_csv(settings, atlas, tmp_path, kind):
    first = ingest(settings, atlas, "visits_ok.csv")
    assert first.accepted == 5
    again = ingest(settings, atlas, _write_format(kind, tmp_path))
    # Same ids, days and positions: the same records, so nothing new.
    assert again.first_line() == "read 5, accepted 0, duplicate 5, rejected 0"


@pytest.mark.parametrize("name, crs", [
    ("visits_cgcs2000.csv", "EPSG:4490"), ("visits_epsg4549.csv", "EPSG:4549"),
    ("visits_gcj02.csv", "gcj02"), ("visits_bd09.csv", "bd09"),
])
def test_coordinate_systems_convert_to_the_same_places(settings, atlas, name, crs):
    report = ingest(settings, atlas, name, crs=crs)
    assert report.accepted == 5
    got = records(settings)
    assert np.allclose(got["lon"], [p[2] for p in POINTS], atol=2e-7)  # about 2 cm
    assert np.allclose(got["lat"], [p[3] for p in POINTS], atol=2e-7)
    # Re-importing the WGS84 original finds the same records.
    assert ingest(settings, atlas, "visits_ok.csv").duplicate == 5


def test_gcj02_read_as_wgs84_lands_hundreds_of_metres_away(settings, atlas):
    ingest(settings, atlas, "visits_gcj02.csv")  # the clerk forgot --crs gcj02
    got = records(settings)
    assert (np.abs(got["lon"].to_numpy() - [p[2] for p in POINTS]) > 0.003).all()
    assert ingest(settings, atlas, "visits_gcj02.csv", crs="gcj02").replaced == 5  # corrected on re-import


def test_column_mapping_and_clerk_date_spellings(settings, atlas):
    with pytest.raises(InputFileError, match=r"has no longitude column: .* or give --map COLUMN=lon; columns: 流水号"):
        ingest(settings, atlas, "visits_custom_columns.csv")
    with pytest.raises(InputFileError, match=r"has no id column: .* --map COLUMN=id; columns: 流水号, 走访时间"):
        ingest(settings, atlas, "visits_custom_columns.csv", mapping="东经=lon, 北纬=lat")
    report = ingest(settings, atlas, "visits_custom_columns.csv", mapping=["流水号=id", "走访时间=date", "东经=lon", "北纬=lat"])
    assert report.accepted == 5 and report.columns == {"id": "流水号", "date": "走访时间", "lon": "东经", "lat": "北纬"}
    spelled = ingest(settings, atlas, "visits_date_spellings.csv")
    assert spelled.duplicate == 5  # 2020/2/1, 2020年2月2日, 20200203, ... are the same days


def test_parse_mapping_forms():
    assert parse_mapping("东经=lon, 北纬=lat；工单=record_id") == {"lon": "东经", "lat": "北纬", "id": "工单"}
    assert parse_mapping({"日": "date"}) == {"date": "日"}
    with pytest.raises(BadParameter, match="unknown field 'longitude'; allowed: id, date, lon, lat, metric"):
        parse_mapping(["x=longitude"])
    with pytest.raises(BadParameter, match="must look like COLUMN=FIELD"):
        parse_mapping(["lon"])


def test_parse_days_accepts_common_spellings_and_refuses_ambiguous_ones():
    days, missing = parse_days(pd.Series(["2020-02-03", "2020/2/3", "2020年2月3日", "20200203", "2020.02.03 08:00",
                                          "03/02/2020", "2020-02-30", "", None], dtype="string"))
    assert days[:5].astype(str).tolist() == ["2020-02-03"] * 5
    assert np.isnat(days[5:]).all()
    assert missing.tolist() == [False] * 7 + [True, True]


def test_metric_column_with_chinese_names(settings, atlas):
    report = ingest(settings, atlas, "reason_unknown_metric.csv", metric=None)
    assert report.accepted_by_metric == {"visits": 5}  # "走访排查" is visits


def test_no_metric_at_all_is_a_bad_parameter(settings, atlas):
    before = store_state(settings)
    with pytest.raises(BadParameter, match="give the metric with --metric"):
        ingest(settings, atlas, "visits_ok.csv", metric=None)
    assert store_state(settings) == before


# --------------------------------------------------------------------------------------------
# Idempotent, corrections, counts
# --------------------------------------------------------------------------------------------


@pytest.mark.both_stores
def test_uploading_the_same_file_again_adds_nothing(settings, atlas):
    first = ingest(settings, atlas, "visits_ok.csv")
    assert first.first_line() == "read 5, accepted 5, duplicate 0, rejected 0"
    _, recs, counts, _ = store_state(settings)
    again = ingest(settings, atlas, "visits_ok.csv")
    assert again.first_line() == "read 5, accepted 0, duplicate 5, rejected 0"
    assert again.duplicate_in_store == 5
    _, recs2, counts2, _ = store_state(settings)
    assert recs2 == recs and counts2 == counts


@pytest.mark.both_stores
def test_a_corrected_row_replaces_the_old_record_and_the_report_says_so(settings, atlas):
    ingest(settings, atlas, "visits_ok.csv")
    report = ingest(settings, atlas, "visits_corrected.csv")
    assert report.first_line() == "read 5, accepted 1, duplicate 4, rejected 0"
    assert (report.new, report.replaced) == (0, 1)
    text = "\n".join(report.lines())
    assert "accepted: 0 new, 1 replaced" in text
    # Date and grid, old -> new, never the position (a record is a household).
    v002 = records(settings).set_index("record_id").loc["V002"]
    assert (v002["day"], v002["lon"], v002["lat"]) == ("2020-02-10", 121.45, 29.90)
    old_grid = atlas.grid_codes[int(atlas.grid_index.assign(np.array([121.56]), np.array([29.86]))[0])]
    assert (f"replaced visits V002, row 3: 2020-02-02, grid {old_grid} -> 2020-02-10, grid {v002['grid_code']} "
            "(date and position changed)") in text
    assert "121.45" not in text and "121.56" not in text
    assert len(records(settings)) == 5
    assert_counts_equal_full_rebuild(settings, atlas)


@pytest.mark.both_stores
def test_same_id_twice_in_one_file(settings, atlas, tmp_path):
    path = tmp_path / "twice.csv"
    pd.DataFrame([["A", "2020-02-01", 121.55, 29.87], ["A", "2020-02-01", 121.55, 29.87],
                  ["B", "2020-02-01", 121.55, 29.87], ["B", "2020-02-02", 121.55, 29.87]],
                 columns=["id", "date", "lon", "lat"]).to_csv(path, index=False)
    report = ingest(settings, atlas, path)
    assert report.first_line() == "read 4, accepted 1, duplicate 1, rejected 2"
    assert report.rejects[0].key == "conflicting_id"
    assert report.rejects[0].examples[0]["detail"] == "record id 'B' appears in rows 4, 5 of this file with different content"


@pytest.mark.both_stores
def test_counts_after_imports_equal_a_full_rebuild(settings, atlas, tmp_path):
    rng = np.random.default_rng(3)
    n = 3000
    minx, miny, maxx, maxy = atlas.grids.total_bounds
    frame = pd.DataFrame({
        "id": [f"R{i}" for i in range(n)],
        "metric": rng.choice(["visits", "appeals", "居家隔离", "disputes"], n),
        "date": (np.datetime64("2020-01-20") + rng.integers(0, 80, n).astype("timedelta64[D]")).astype(str),
        "lon": rng.uniform(minx, maxx, n), "lat": rng.uniform(miny, maxy, n),
    })
    frame.to_csv(tmp_path / "a.csv", index=False)
    first = ingest(settings, atlas, tmp_path / "a.csv", metric=None)
    assert first.accepted > 1000 and first.rejected > 100  # outside the city or the period
    # Corrections: move a third of them, re-date another third.
    frame.loc[::3, "lon"] += 0.01
    frame.loc[1::3, "date"] = "2020-03-01"
    frame.to_csv(tmp_path / "b.csv", index=False)
    second = ingest(settings, atlas, tmp_path / "b.csv", metric=None)
    assert second.replaced > 500
    assert_counts_equal_full_rebuild(settings, atlas)


@pytest.mark.both_stores
def test_a_service_sees_the_new_counts_without_restart(settings, atlas):
    service = AtlasService(settings)
    before = service.area_total("330200", "visits")
    version = service.cube().version
    report = ingest(settings, atlas, "visits_ok.csv")
    assert service.cube().version == version + 1 == report.store_version
    assert service.area_total("330200", "visits") == before + 5
    day = dt.date(2020, 2, 5)
    assert service.area_total("330200", "visits", day, day) >= 1


@pytest.mark.both_stores
def test_the_report_is_kept_with_the_import(settings, atlas):
    report = ingest(settings, atlas, "reason_outside_city.csv")
    again = load_report(settings, report.import_id)
    assert again.to_dict() == report.to_dict()
    with pytest.raises(BadParameter, match="is not an import id"):
        load_report(settings, "../../etc/passwd")


# --------------------------------------------------------------------------------------------
# Bounded: sizes, zips, XLSX
# --------------------------------------------------------------------------------------------


def _shape_zip(tmp_path: Path, extra: dict | None = None) -> Path:
    """A valid zipped Shapefile of the five points, plus ``extra`` entries {name: bytes}."""
    path = _write_format("shapezip", tmp_path)
    with zipfile.ZipFile(path, "a") as zf:
        for name, data in (extra or {}).items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
    return path


@pytest.mark.parametrize("entry", ["../evil.txt", "shp/../../evil.txt", "/etc/cron.d/evil", "C:\\evil.txt", "..\\evil.txt"])
def test_a_zip_entry_outside_the_archive_rejects_the_whole_upload(settings, atlas, tmp_path, entry):
    path = _shape_zip(tmp_path, {entry: b"x"})
    before = store_state(settings)
    with pytest.raises(InputFileError, match=r"refused: the archive entry .* points outside the archive"):
        ingest(settings, atlas, path)
    assert store_state(settings) == before


def test_a_zip_that_inflates_beyond_the_limit_is_rejected(settings, atlas, tmp_path):
    small = settings.model_copy(update={"max_unzipped_bytes": 1_000_000})
    path = _shape_zip(tmp_path, {"padding.bin": bytes(5_000_000)})  # deflates to a few kB
    assert path.stat().st_size < 100_000
    before = store_state(settings)
    with pytest.raises(InputFileError, match=r"inflates to 5\.0 MB, more than the 1\.0 MB allowed \(possible zip bomb\)"):
        ingest(small, atlas, path)
    assert store_state(settings) == before


def test_a_zip_whose_headers_understate_its_size_is_rejected(settings, atlas, tmp_path):
    """Headers can lie: the check inflates the entries instead of trusting them."""
    small = settings.model_copy(update={"max_unzipped_bytes": 1_000_000})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("visits.csv", b"id,date,lon,lat\n" + b"0" * 3_000_000)
    data = bytearray(buf.getvalue())
    # Patch the uncompressed size in the local header (offset 22) and the central directory
    # entry (offset 24 after its signature) to 100 bytes.
    data[22:26] = (100).to_bytes(4, "little")
    central = data.rfind(b"PK\x01\x02")
    data[central + 24:central + 28] = (100).to_bytes(4, "little")
    path = tmp_path / "liar.zip"
    path.write_bytes(bytes(data))
    with pytest.raises(InputFileError, match="zip bomb|not a readable zip archive"):
        ingest(small, atlas, path)


def test_xlsx_with_entity_declarations_is_refused(settings, atlas, tmp_path):
    path = _write_format("xlsx", tmp_path)
    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bomb, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                # A small nested-entity ("billion laughs") DTD in front of the sheet.
                dtd = b'<!DOCTYPE worksheet [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
                head, sep, rest = data.partition(b"?>")
                data = head + sep + dtd + rest if sep else dtd + data
            dst.writestr(info, data)
    before = store_state(settings)
    with pytest.raises(InputFileError, match="declares a DTD or XML entities"):
        ingest(settings, atlas, bomb)
    assert store_state(settings) == before


@pytest.mark.both_stores
def test_upload_over_the_limit_stores_nothing(settings, atlas):
    small = settings.model_copy(update={"max_upload_bytes": 100})
    before = store_state(settings)
    with pytest.raises(InputFileError, match="larger than the .* upload limit"):
        ingest_upload(small, io.BytesIO(b"id,date,lon,lat\n" + b"V1,2020-02-01,121.55,29.87\n" * 10), "big.csv",
                      atlas=atlas, metric="visits")
    assert store_state(settings) == before
    assert not any((settings.data_path / "uploads").iterdir())


def test_upload_keeps_only_the_suffix_of_the_client_file_name(settings, atlas):
    data = (FIXTURES / "visits_ok.csv").read_bytes()
    report = ingest_upload(settings, io.BytesIO(data), "../../etc/visits.csv", atlas=atlas, metric="visits")
    assert report.source == "visits.csv" and report.accepted == 5
    assert not any((settings.data_path / "uploads").iterdir())
    with pytest.raises(InputFileError, match="unsupported file type"):
        ingest_upload(settings, io.BytesIO(data), "visits.exe", atlas=atlas, metric="visits")


# --------------------------------------------------------------------------------------------
# The command line, and a real SIGKILL in the middle of a million-row import
# --------------------------------------------------------------------------------------------


@pytest.mark.both_stores
def test_cli_prints_the_report_first_line_then_reasons_and_the_csv(settings, monkeypatch, capsys):
    use_location(monkeypatch, settings)
    code = main(["ingest", str(FIXTURES / "reason_swapped.csv"), "--metric", "visits", "--map", "id=id"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0] == "read 6, accepted 5, duplicate 0, rejected 1"
    assert "rejected by reason:" in out and "  latitude and longitude probably swapped: 1" in out
    csv_line = next(line for line in out if line.startswith("rejected rows: "))
    assert Path(csv_line.removeprefix("rejected rows: ")).is_file()


def test_cli_bad_file_is_one_line_and_a_non_zero_exit(settings, monkeypatch, capsys, tmp_path):
    use_location(monkeypatch, settings)
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    assert main(["ingest", str(tmp_path / "x.csv"), "--metric", "visits"]) == 4
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("error: ") and "has no longitude column" in err[-1]


def _million_rows(path: Path, atlas) -> None:
    n = 1_000_000
    rng = np.random.default_rng(1)
    minx, miny, maxx, maxy = atlas.grids.total_bounds
    table = pa.table({
        "id": pa.array(np.char.add("K", np.arange(n).astype(str))),
        "date": pa.array((np.datetime64("2020-01-24") + rng.integers(0, 68, n).astype("timedelta64[D]")).astype(str)),
        "lon": pa.array(np.round(rng.uniform(minx, maxx, n), 6)),
        "lat": pa.array(np.round(rng.uniform(miny, maxy, n), 6)),
    })
    pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="none"))


@pytest.mark.both_stores
@pytest.mark.slow
def test_sigkill_in_the_middle_of_a_million_row_import_leaves_the_store_as_it_was(settings, atlas, tmp_path):
    big = tmp_path / "million.csv"
    _million_rows(big, atlas)
    ingest(settings, atlas, "visits_ok.csv")  # the store already holds records of the metric
    before = store_state(settings)
    written = write_progress(settings)
    env = dict(os.environ, **location_env(settings), PYTHONPATH=str(PROJECT_ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "geo", "ingest", str(big), "--metric", "visits"],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True).start()
    try:
        # The CLI says so on stderr once its transaction is open...
        deadline = time.monotonic() + 600
        said = []
        while not said or "transaction open" not in said[-1]:
            try:
                said.append(lines.get(timeout=1.0))
            except queue.Empty:
                assert proc.poll() is None, f"the import ended ({proc.returncode}) before it could be killed: {said}"
                assert time.monotonic() < deadline, f"no open transaction after 600 s: {said}"
        # ...then wait until it has written megabytes of uncommitted rows.
        start = written()
        while written() < start + 8_000_000:
            assert proc.poll() is None, "the import finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert store_state(settings) == before  # same version, records, counts and import log
    # The store still works: the next import commits normally.
    assert ingest(settings, atlas, "visits_corrected.csv").replaced == 1


def test_vector_files_number_features_from_one(settings, atlas, tmp_path):
    gdf = gpd.GeoDataFrame({"id": ["A", "B"], "date": ["2020-02-01", "2020-02-01"]},
                           geometry=[shapely.Point(121.55, 29.87), shapely.Point(120.155, 30.274)], crs="EPSG:4326")
    path = tmp_path / "p.geojson"
    gdf.to_file(path, driver="GeoJSON", engine="pyogrio")
    report = ingest(settings, atlas, path)
    assert report.rejects[0].examples[0]["row"] == 2
