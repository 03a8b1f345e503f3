"""Tests for geo.loaders: formats, encodings, coordinate checks and every refusal message.

Fixtures are tiny files generated into tmp_path; the only committed ones are the Amap outline
(tests/fixtures) and the real district outlines (data/shapes, read-only).
"""

from __future__ import annotations

import json
import math
import warnings
import zipfile
from pathlib import Path

import geopandas
import numpy as np
import openpyxl
import pytest
import shapely
from shapely.geometry import Point, Polygon

from geo.errors import BadParameter, InputFileError
from geo.ingest import readers as loaders
from geo.ingest.readers import Problem, read_areas, read_points
from geo.spatial import chinacrs

ROOT = Path(__file__).resolve().parents[3]
AMAP_GCJ02 = ROOT / "tests" / "fixtures" / "yinzhou_amap_gcj02.geojson"
DISTRICTS = ROOT / "data" / "shapes" / "districts_wgs84.geojson"
NINGBO_BOUNDS = (120.9, 28.8, 122.3, 30.4)


# --------------------------------------------------------------------------------------------
# Fixture builders
# --------------------------------------------------------------------------------------------


def square(x0, y0, d=0.01):
    """A closed square ring as GeoJSON coordinates."""
    return [[x0, y0], [x0 + d, y0], [x0 + d, y0 + d], [x0, y0 + d], [x0, y0]]


def polygon_feature(ring, **props):
    return {"type": "Feature", "properties": props, "geometry": {"type": "Polygon", "coordinates": [ring]}}


def write_geojson(path, features, crs=None):
    doc = {"type": "FeatureCollection", "features": features}
    if crs:
        doc["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def write_vector(path, gdf, **kwargs):
    """Write with pyogrio, silencing its warning about files without a CRS (wanted here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        gdf.to_file(path, engine="pyogrio", **kwargs)
    return path


def zipped_shapefile(tmp_path, gdf, *, encoding, keep_cpg, name="areas", extra_shp=None):
    """Write a shapefile and zip it, optionally without its .cpg (and with LDID 0, as old tools do)."""
    folder = tmp_path / f"shp_{name}"
    folder.mkdir()
    write_vector(folder / f"{name}.shp", gdf, encoding=encoding)
    dbf = folder / f"{name}.dbf"
    raw = bytearray(dbf.read_bytes())
    raw[29] = 0  # no language driver id: GDAL would fall back to ISO-8859-1
    dbf.write_bytes(bytes(raw))
    target = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(target, "w") as zf:
        for part in sorted(folder.iterdir()):
            if part.suffix == ".cpg" and not keep_cpg:
                continue
            zf.write(part, f"export/{part.name}")
        if extra_shp:
            zf.writestr("export/other.shp", b"")
    return target


def write_xlsx(path, rows, *, title="数据", extra_sheets=()):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    for row in rows:
        ws.append(row)
    for name in extra_sheets:
        wb.create_sheet(name).append(["lon", "lat"])
    wb.save(path)
    return path


def entity_bomb_xlsx(tmp_path):
    """An XLSX whose sheet XML carries a nested-entity ("billion laughs") DTD.

    Only five levels (3e5 characters if expanded), so a failing test cannot exhaust memory; the
    shape of the payload is what matters.
    """
    good = write_xlsx(tmp_path / "good.xlsx", [["lon", "lat"], [121.5, 29.8]])
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 6)
    )
    sheet = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f"<!DOCTYPE worksheet [{entities}]>\n"
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        '<row r="1"><c r="A1" t="inlineStr"><is><t>&lol5;</t></is></c>'
        '<c r="B1" t="inlineStr"><is><t>lat</t></is></c></row>'
        "</sheetData></worksheet>"
    )
    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = sheet.encode() if info.filename == "xl/worksheets/sheet1.xml" else src.read(info)
            dst.writestr(info.filename, data)
    return bomb


# --------------------------------------------------------------------------------------------
# read_areas: the real outlines
# --------------------------------------------------------------------------------------------


def test_read_areas_real_districts():
    areas = read_areas(DISTRICTS)
    assert len(areas) == 10
    assert areas.crs == "EPSG:4326"
    assert set(areas.geometry.geom_type) <= {"Polygon", "MultiPolygon"}
    assert "鄞州区" in set(areas["name"])
    assert areas.attrs["repairs"] == [] and areas.attrs["source_crs"] == "EPSG:4326"


def test_read_areas_amap_gcj02_outline_converts_to_wgs84():
    area = read_areas(AMAP_GCJ02, crs="gcj02")
    assert area.crs == "EPSG:4326" and area.attrs["source_crs"] == "gcj02"
    raw = np.array(json.loads(AMAP_GCJ02.read_text(encoding="utf-8"))["coordinates"][0][0])
    got = shapely.get_coordinates(area.geometry.values)
    expected = np.column_stack(chinacrs.gcj02_to_wgs84(raw[:, 0], raw[:, 1]))
    np.testing.assert_allclose(got, expected, atol=1e-12)
    # Against the committed WGS84 outline (made with the one-step approximation): ~1.5 m at most.
    districts = read_areas(DISTRICTS)
    yinzhou = districts.loc[districts["adcode"] == "330212"].geometry.values
    assert np.abs(shapely.get_coordinates(yinzhou) - got).max() < 2e-5


def test_geojson_without_crs_member_takes_explicit_crs_but_declared_crs_wins():
    # Amap's outline has no "crs" member: GDAL's WGS84 default is not a declaration.
    assert read_areas(AMAP_GCJ02, crs="bd09").attrs["source_crs"] == "bd09"
    with pytest.raises(InputFileError, match="declares its CRS as EPSG:4326 but crs gcj02 was given; drop --crs"):
        read_areas(DISTRICTS, crs="gcj02")


def test_read_areas_matching_explicit_crs_is_fine():
    assert len(read_areas(DISTRICTS, crs="wgs84")) == 10


# --------------------------------------------------------------------------------------------
# read_areas: refusals, each with its message
# --------------------------------------------------------------------------------------------


@pytest.fixture
def projected_gpkg(tmp_path):
    gdf = geopandas.GeoDataFrame(
        {"code": ["330212108"]},
        geometry=[Polygon([(500000, 3306000), (501000, 3306000), (501000, 3307000), (500000, 3307000)])],
        crs=None,
    )
    return write_vector(tmp_path / "towns.gpkg", gdf)


def test_projected_file_without_crs_asks_for_crs(projected_gpkg):
    with pytest.raises(InputFileError, match=r"\(500000, 3.306e\+06\) are outside the longitude/latitude range and the file has no CRS: they look projected; give their CRS with --crs") as err:
        read_areas(projected_gpkg)
    assert err.value.path.endswith("towns.gpkg")


def test_projected_file_with_crs_given(projected_gpkg):
    areas = read_areas(projected_gpkg, crs="EPSG:4549")
    minx, miny, maxx, maxy = areas.total_bounds
    assert minx == pytest.approx(120.0, abs=1e-6) and 29.8 < miny < maxy < 29.9


def test_degrees_with_projected_crs_is_refused():
    with pytest.raises(InputFileError, match=r"look like longitude/latitude degrees, but crs EPSG:4549 is projected"):
        read_areas(AMAP_GCJ02, crs="EPSG:4549")


def test_swapped_polygon_coordinates(tmp_path):
    swapped = [[lat, lon] for lon, lat in square(121.55, 29.87)]
    path = write_geojson(tmp_path / "swapped.geojson", [polygon_feature(swapped, code="a")])
    with pytest.raises(InputFileError, match=r"coordinates look swapped: \(29.87, 121.55\) reads as \(latitude, longitude\)"):
        read_areas(path)


def test_one_swapped_polygon_is_named(tmp_path):
    swapped = [[lat, lon] for lon, lat in square(121.55, 29.87)]
    features = [polygon_feature(square(121.5, 29.8), code="a"), polygon_feature(swapped, code="b")]
    path = write_geojson(tmp_path / "mixed.geojson", features)
    with pytest.raises(InputFileError, match="feature #1 \\(code=b\\): coordinates look swapped"):
        read_areas(path)


def test_out_of_range_with_declared_geographic_crs_names_feature(tmp_path):
    features = [polygon_feature(square(121.5, 29.8), code="a"), polygon_feature(square(500000, 3306000, 100), code="b")]
    path = write_geojson(tmp_path / "bad.geojson", features, crs="urn:ogc:def:crs:OGC:1.3:CRS84")
    with pytest.raises(InputFileError, match=r"feature #1 \(code=b\): coordinates such as .* are outside the longitude/latitude range of EPSG:4326"):
        read_areas(path)


def test_nan_polygon_coordinates_name_the_feature(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # shapely warns about the NaN we want
        bad = Polygon([(121.5, 29.8), (121.6, 29.8), (np.nan, 29.9), (121.5, 29.8)])
        gdf = geopandas.GeoDataFrame(
            {"code": ["a", "b"]}, geometry=[Polygon(square(121.5, 29.8)), bad], crs="EPSG:4326"
        )
        path = write_vector(tmp_path / "nan.gpkg", gdf)
    with pytest.raises(InputFileError, match=r"nan.gpkg, feature #1 \(code=b\): has NaN or infinite coordinates"):
        read_areas(path)


@pytest.mark.parametrize(
    ("geometry", "match"),
    [
        ({"type": "Polygon", "coordinates": []}, r"feature #1 \(name=甲村\): has an empty geometry"),
        (None, r"feature #1 \(name=甲村\): has no geometry"),
        ({"type": "Point", "coordinates": [121.5, 29.8]}, r"feature #1 \(name=甲村\): is a Point; areas must be polygons"),
    ],
)
def test_unusable_geometries_name_the_feature(tmp_path, geometry, match):
    features = [polygon_feature(square(121.5, 29.8), name="乙村"), {"type": "Feature", "properties": {"name": "甲村"}, "geometry": geometry}]
    path = write_geojson(tmp_path / "villages.geojson", features)
    with pytest.raises(InputFileError, match=match) as err:
        read_areas(path)
    assert err.value.feature == "#1 (name=甲村)"


def test_small_self_intersection_is_repaired_and_reported(tmp_path):
    # A square whose closing corner crosses itself in a 0.2 % sliver.
    ring = [[121.5, 29.8], [121.6, 29.8], [121.6, 29.9], [121.5, 29.9], [121.5002, 29.7998], [121.4998, 29.8002], [121.5, 29.8]]
    path = write_geojson(tmp_path / "twisted.geojson", [polygon_feature(square(121.7, 29.8), code="ok"), polygon_feature(ring, code="x")])
    areas = read_areas(path)
    assert areas.geometry.is_valid.all()
    [repair] = areas.attrs["repairs"]
    assert repair["feature"] == "#1 (code=x)"
    assert repair["reason"].startswith("Self-intersection")
    assert 0 < repair["area_change"] < 0.01


def test_repair_changing_area_by_more_than_one_percent_is_refused(tmp_path):
    bow_tie = [[121.5, 29.8], [121.6, 29.9], [121.6, 29.8], [121.5, 29.9], [121.5, 29.8]]
    path = write_geojson(tmp_path / "bowtie.geojson", [polygon_feature(bow_tie, code="x")])
    with pytest.raises(InputFileError, match=r"feature #0 \(code=x\): invalid polygon \(Self-intersection.*more than 1%: fix the feature"):
        read_areas(path)


def test_gpkg_with_several_layers_needs_layer(tmp_path):
    gdf = geopandas.GeoDataFrame({"code": ["a"]}, geometry=[Polygon(square(121.5, 29.8))], crs="EPSG:4326")
    path = tmp_path / "two.gpkg"
    write_vector(path, gdf, layer="towns")
    write_vector(path, gdf.assign(code="b"), layer="villages")
    with pytest.raises(InputFileError, match=r"has 2 layers \(towns, villages\); choose one with --layer"):
        read_areas(path)
    assert read_areas(path, layer="villages")["code"].tolist() == ["b"]
    with pytest.raises(InputFileError, match="has no layer 'grids'; layers: towns, villages"):
        read_areas(path, layer="grids")


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("areas.doc", b"x", r"unsupported file type '.doc'; allowed: GeoJSON"),
        ("areas.csv", "经度,纬度\n121.5,29.8\n".encode(), "areas must be polygons in a GeoJSON, GeoPackage or zipped Shapefile"),
        ("broken.geojson", b"{not json", "cannot be read"),
        ("gbk.geojson", '{"type": "FeatureCollection", "name": "甲村", "features": []}'.encode("gbk"), r"is not valid UTF-8 \(byte \d+\); GeoJSON must be UTF-8"),
    ],
)
def test_read_areas_bad_files(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputFileError, match=match):
        read_areas(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputFileError, match="nothere.geojson: file not found"):
        read_areas(tmp_path / "nothere.geojson")


# --------------------------------------------------------------------------------------------
# Shapefiles and their encodings
# --------------------------------------------------------------------------------------------

NAMES = ["云龙镇", "甲村", "鄞州区"]


@pytest.fixture
def villages():
    return geopandas.GeoDataFrame(
        {"name": NAMES, "code": ["330212108", "330212108001", "330212"]},
        geometry=[Polygon(square(121.5 + i / 10, 29.8)) for i in range(3)],
        crs="EPSG:4326",
    )


def test_gbk_shapefile_without_cpg_is_decoded(tmp_path, villages):
    path = zipped_shapefile(tmp_path, villages, encoding="GBK", keep_cpg=False)
    with zipfile.ZipFile(path) as zf:
        assert not any(n.endswith(".cpg") for n in zf.namelist())
    # The fixture is the realistic trap: read naively, GDAL decodes it as Latin-1.
    naive = geopandas.read_file(f"/vsizip/{path}/export/areas.shp", engine="pyogrio")
    assert naive["name"].tolist() != NAMES
    areas = read_areas(path)
    assert areas["name"].tolist() == NAMES
    assert areas.crs == "EPSG:4326"


def test_gbk_points_shapefile_without_cpg_reports_encoding(tmp_path, villages):
    points = villages.set_geometry(villages.geometry.representative_point())
    result = read_points(zipped_shapefile(tmp_path, points, encoding="GBK", keep_cpg=False))
    assert result.frame["name"].tolist() == NAMES
    assert result.encoding == "GB18030"


@pytest.mark.parametrize(("encoding", "keep_cpg"), [("GBK", True), ("UTF-8", False), ("UTF-8", True)])
def test_shapefile_encodings(tmp_path, villages, encoding, keep_cpg):
    areas = read_areas(zipped_shapefile(tmp_path, villages, encoding=encoding, keep_cpg=keep_cpg))
    assert areas["name"].tolist() == NAMES


def test_unknown_encoding_without_cpg_asks_for_encoding(tmp_path):
    gdf = geopandas.GeoDataFrame({"name": ["Café"]}, geometry=[Polygon(square(121.5, 29.8))], crs="EPSG:4326")
    path = zipped_shapefile(tmp_path, gdf, encoding="cp1252", keep_cpg=False)
    with pytest.raises(InputFileError, match="no .cpg and is neither UTF-8 nor GBK/GB18030; give its encoding with --encoding"):
        read_areas(path)
    assert read_areas(path, encoding="cp1252")["name"].tolist() == ["Café"]


def test_cpg_that_does_not_match_the_data_is_refused(tmp_path, villages):
    path = zipped_shapefile(tmp_path, villages, encoding="GBK", keep_cpg=False)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("export/areas.cpg", "UTF-8")
    with pytest.raises(InputFileError, match=r"row 0: field 'name' is not valid text in the .cpg's encoding 'UTF-8'"):
        read_areas(path)
    # An explicit --encoding overrides the wrong .cpg.
    assert read_areas(path, encoding="gbk")["name"].tolist() == NAMES


def test_plain_shp_on_disk(tmp_path, villages):
    folder = tmp_path / "plain"
    folder.mkdir()
    write_vector(folder / "v.shp", villages, encoding="GBK")
    (folder / "v.cpg").unlink()
    assert read_areas(folder / "v.shp")["name"].tolist() == NAMES


def test_zip_without_shapefile(tmp_path):
    path = tmp_path / "empty.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "nothing")
    with pytest.raises(InputFileError, match="the zip holds no .shp file"):
        read_areas(path)


def test_zip_with_two_shapefiles_needs_layer(tmp_path, villages):
    path = zipped_shapefile(tmp_path, villages, encoding="UTF-8", keep_cpg=True, extra_shp=True)
    with pytest.raises(InputFileError, match=r"holds 2 shapefiles \(areas, other\); choose one with --layer"):
        read_areas(path)
    assert len(read_areas(path, layer="areas")) == 3


def test_not_a_zip(tmp_path):
    path = tmp_path / "areas.zip"
    path.write_bytes(b"PK not really")
    with pytest.raises(InputFileError, match="is not a readable zip archive"):
        read_areas(path)


# --------------------------------------------------------------------------------------------
# read_points: CSV
# --------------------------------------------------------------------------------------------

CSV_TEXT = "编号,名称,经度,纬度,日期\n001,甲村,121.55,29.87,2020-02-01\n002,云龙镇,121.60,29.80,2020-02-02\n"


@pytest.mark.parametrize(
    ("encoding", "bom", "detected"),
    [("utf-8", b"", "utf-8"), ("utf-8", b"\xef\xbb\xbf", "utf-8-sig"), ("gbk", b"", "gb18030"), ("utf-16-le", b"\xff\xfe", "utf-16")],
)
def test_csv_encodings_are_detected(tmp_path, encoding, bom, detected):
    path = tmp_path / "records.csv"
    path.write_bytes(bom + CSV_TEXT.encode(encoding))
    result = read_points(path)
    frame = result.frame
    assert result.encoding == detected
    assert list(frame.columns) == ["编号", "名称", "经度", "纬度", "日期", "lon", "lat", "x", "y", "row"]
    assert frame["名称"].tolist() == ["甲村", "云龙镇"]
    assert frame["编号"].tolist() == ["001", "002"]  # codes stay text: leading zeros kept
    assert frame["lon"].tolist() == [121.55, 121.6] and frame["lat"].tolist() == [29.87, 29.8]
    assert frame["x"].dtype == frame["lon"].dtype == np.float64
    assert frame["row"].tolist() == [0, 1]
    assert result.problems == [] and result.crs.name == "EPSG:4326" and result.crs_assumed


def test_csv_undecodable_asks_for_encoding(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("lon,lat,name\n121.5,29.8,Café\n".encode("cp1252"))
    with pytest.raises(InputFileError, match="is neither UTF-8 nor GBK/GB18030 text; give its encoding with --encoding"):
        read_points(path)
    assert read_points(path, encoding="cp1252").frame["name"].tolist() == ["Café"]


def test_csv_wrong_explicit_encoding_names_line(tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes(CSV_TEXT.encode("gbk"))
    with pytest.raises(InputFileError, match=r"is not valid utf-8 text \(line 1 of the file\)"):
        read_points(path, encoding="utf-8")
    with pytest.raises(BadParameter, match="unknown encoding 'klingon'"):
        read_points(path, encoding="klingon")


@pytest.mark.parametrize(
    ("header", "sep"),
    [("lon,lat", ","), ("LNG,LAT", ","), ("Longitude,Latitude", ","), (" 经度 , 纬度 ", ","),
     ("X,Y", ","), ("lng\tlat", "\t"), ("lon;lat", ";")],
)
def test_coordinate_columns_recognised(tmp_path, header, sep):
    path = tmp_path / "p.csv"
    path.write_text(f"{header}\n121.5{sep}29.8\n", encoding="utf-8")
    frame = read_points(path).frame
    assert (frame["lon"][0], frame["lat"][0]) == (121.5, 29.8)


def test_explicit_columns(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("东经,北纬\n121.5,29.8\n", encoding="utf-8")
    assert read_points(path, lon_col="东经", lat_col="北纬").frame["lon"][0] == 121.5
    with pytest.raises(InputFileError, match=r"has no column 'E' \(lon_col\); columns: 东经, 北纬"):
        read_points(path, lon_col="E", lat_col="北纬")


@pytest.mark.parametrize(
    ("header", "match"),
    [
        ("名称,北纬", r"has no longitude column: expected one named 经度, lon, lng, longitude, x \(any case\) or give lon_col"),
        ("lon,lng,lat", r"has several longitude columns \(lon, lng\); choose one with lon_col"),
    ],
)
def test_column_problems(tmp_path, header, match):
    path = tmp_path / "p.csv"
    path.write_text(f"{header}\n1,2,3\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=match):
        read_points(path)


def test_named_columns_win_over_x_y_and_clashing_names_are_kept(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("经度,纬度,x,y,row\n121.5,29.8,500000,3306000,7\n", encoding="utf-8")
    frame = read_points(path).frame
    assert frame["x"][0] == 121.5  # x is the coordinate as read
    assert frame["x_orig"][0] == "500000" and frame["row_orig"][0] == "7"
    assert frame["row"][0] == 0


def test_bad_rows_are_kept_with_problems(tmp_path):
    rows = [
        "121.55,29.87,ok",
        ",29.87,missing lon",
        "abc,29.87,text",
        "nan,29.87,nan",
        "inf,29.87,inf",
        "29.87,121.55,swapped",
        "121.55,95,out of range",
        "121.56,29.88,ok",
    ]
    path = tmp_path / "p.csv"
    path.write_text("lon,lat,note\n" + "\n".join(rows) + "\n", encoding="utf-8")
    result = read_points(path)
    frame = result.frame
    assert len(frame) == len(rows) and frame["row"].tolist() == list(range(len(rows)))
    assert frame["note"].tolist() == [r.split(",")[2] for r in rows]
    assert result.valid.tolist() == [True, False, False, False, False, False, False, True]
    assert frame.loc[~result.valid, ["lon", "lat"]].isna().all().all()
    reasons = {p.row: p.reason for p in result.problems}
    assert sorted(reasons) == [1, 2, 3, 4, 5, 6]
    assert reasons[1] == "missing longitude (lon)"
    assert reasons[2] == "longitude (lon) 'abc' is not a number"
    assert reasons[3] == "longitude (lon) is NaN"
    assert reasons[4] == "longitude (lon) is infinite (inf)"
    assert reasons[5] == "longitude and latitude look swapped: (29.87, 121.55) would lie in China as (121.55, 29.87)"
    assert reasons[6] == "(121.55, 95) is outside the longitude/latitude range"
    assert str(result.problems[0]) == "row 1: missing longitude (lon)"
    assert isinstance(result.problems[0], Problem)


def test_every_row_swapped_is_a_file_error(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("经度,纬度\n29.87,121.55\n29.80,121.60\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"longitude and latitude look swapped in every row: \(29.87, 121.55\) is a \(latitude, longitude\) pair; swap the columns or pass lon_col='纬度', lat_col='经度'"):
        read_points(path)


def test_bounds_decide_swaps_and_outside_points_are_kept(tmp_path):
    path = tmp_path / "p.csv"
    # Ningbo; Shanghai (outside the city: kept); Ningbo swapped.
    path.write_text("lon,lat\n121.55,29.87\n121.47,31.23\n29.87,121.55\n", encoding="utf-8")
    result = read_points(path, bounds=NINGBO_BOUNDS)
    assert result.valid.tolist() == [True, True, False]
    assert result.problems == [Problem(2, "longitude and latitude look swapped: (29.87, 121.55) would lie in the given bounds as (121.55, 29.87)")]


@pytest.mark.parametrize("bounds", [(1, 2, 3), (122, 29, 121, 30), ("a", 1, 2, 3), (0, 0, math.inf, 1)])
def test_bad_bounds(tmp_path, bounds):
    path = tmp_path / "p.csv"
    path.write_text("lon,lat\n121.5,29.8\n", encoding="utf-8")
    with pytest.raises(BadParameter, match="bounds"):
        read_points(path, bounds=bounds)


def test_projected_csv_without_crs_asks_for_crs(tmp_path):
    path = tmp_path / "gk.csv"
    path.write_text("x,y\n500000,3306000\n501000,3306500\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"gk.csv: coordinates such as \(500000, 3.306e\+06\) are outside the longitude/latitude range and the file has no CRS: they look projected; give their CRS with --crs"):
        read_points(path)
    result = read_points(path, crs="EPSG:4549")
    assert result.frame["lon"][0] == pytest.approx(120.0, abs=1e-9)
    assert result.frame["x"][0] == 500000.0 and not result.crs_assumed


def test_geographic_crs_with_projected_values(tmp_path):
    path = tmp_path / "gk.csv"
    path.write_text("x,y\n500000,3306000\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"outside the longitude/latitude range, but crs EPSG:4490 is geographic: check --crs"):
        read_points(path, crs="EPSG:4490")


def test_projected_crs_with_degrees(tmp_path):
    path = tmp_path / "deg.csv"
    path.write_text("lon,lat\n121.5,29.8\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"look like longitude/latitude degrees, but crs EPSG:3857 is projected"):
        read_points(path, crs="EPSG:3857")


@pytest.mark.parametrize(("crs", "func"), [("gcj02", chinacrs.gcj02_to_wgs84), ("BD09", chinacrs.bd09_to_wgs84)])
def test_csv_in_gcj02_and_bd09(tmp_path, crs, func):
    path = tmp_path / "amap.csv"
    path.write_text("lng,lat\n121.555,29.873\n121.56,29.88\n", encoding="utf-8")
    result = read_points(path, crs=crs)
    lon, lat = func([121.555, 121.56], [29.873, 29.88])
    np.testing.assert_allclose(result.frame["lon"], lon, atol=0)
    np.testing.assert_allclose(result.frame["lat"], lat, atol=0)
    assert result.frame["x"].tolist() == [121.555, 121.56]


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"", "is empty"), (b"lon,lat\n121.5,29.8\n121.5,29.8,1,2\n", "is not a well-formed CSV: .*line 3")],
)
def test_malformed_csv(tmp_path, content, match):
    path = tmp_path / "p.csv"
    path.write_bytes(content)
    with pytest.raises(InputFileError, match=match):
        read_points(path)


def test_empty_table_gives_empty_result(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("lon,lat\n", encoding="utf-8")
    result = read_points(path)
    assert len(result.frame) == 0 and result.problems == []


# --------------------------------------------------------------------------------------------
# read_points: XLSX
# --------------------------------------------------------------------------------------------


def test_xlsx(tmp_path):
    path = write_xlsx(
        tmp_path / "records.xlsx",
        [["名称", "经度", "纬度", "数量"], ["甲村", 121.55, 29.87, 3], ["乙村", "121.6", "29.8", 5], ["丙村", None, 29.8, 1]],
    )
    result = read_points(path)
    frame = result.frame
    assert frame["名称"].tolist() == ["甲村", "乙村", "丙村"]
    assert frame["数量"].tolist() == [3, 5, 1]
    assert frame["lon"].tolist()[:2] == [121.55, 121.6]
    assert result.problems == [Problem(2, "missing longitude (经度)")]


def test_xlsx_sheet_choice(tmp_path):
    path = write_xlsx(tmp_path / "r.xlsx", [["lon", "lat"], [121.5, 29.8]], extra_sheets=["第二页"])
    assert len(read_points(path).frame) == 1  # the first sheet by default
    assert len(read_points(path, layer="第二页").frame) == 0
    with pytest.raises(InputFileError, match="has no sheet 'nope'; sheets: 数据, 第二页"):
        read_points(path, layer="nope")


def test_xlsx_entity_expansion_is_refused(tmp_path):
    bomb = entity_bomb_xlsx(tmp_path)
    with pytest.raises(InputFileError, match=r"bomb.xlsx: refused: part xl/worksheets/sheet1.xml declares a DTD or XML entities"):
        read_points(bomb)


def test_xlsx_entity_expansion_is_refused_by_openpyxl_layer_too(tmp_path, monkeypatch):
    # Second line of defence: openpyxl parses through defusedxml.
    monkeypatch.setattr(loaders, "_has_dtd", lambda zf, info: False)
    with pytest.raises(InputFileError, match="refused: the workbook's XML declares entities"):
        read_points(entity_bomb_xlsx(tmp_path))


def test_xlsx_not_a_workbook(tmp_path):
    path = tmp_path / "fake.xlsx"
    path.write_text("lon,lat\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"is not an XLSX workbook \(not a zip archive\)"):
        read_points(path)


# --------------------------------------------------------------------------------------------
# read_points: vector files
# --------------------------------------------------------------------------------------------


def point_feature(geometry, **props):
    return {"type": "Feature", "properties": props, "geometry": geometry}


def test_geojson_points_with_bad_geometries(tmp_path):
    features = [
        point_feature({"type": "Point", "coordinates": [121.55, 29.87]}, name="卡口1", x=5),
        point_feature({"type": "LineString", "coordinates": [[121.5, 29.8], [121.6, 29.9]]}, name="路", x=6),
        point_feature(None, name="无", x=7),
    ]
    result = read_points(write_geojson(tmp_path / "checkpoints.geojson", features))
    frame = result.frame
    assert frame["name"].tolist() == ["卡口1", "路", "无"]
    assert frame["x_orig"].tolist() == [5, 6, 7]
    assert frame["lon"][0] == 121.55
    assert result.problems == [Problem(1, "is a LineString, not a point"), Problem(2, "has no geometry")]


def test_geojson_points_in_gcj02(tmp_path):
    features = [point_feature({"type": "Point", "coordinates": [121.555, 29.873]})]
    result = read_points(write_geojson(tmp_path / "amap.geojson", features), crs="gcj02")
    lon, lat = chinacrs.gcj02_to_wgs84(121.555, 29.873)
    assert (result.frame["lon"][0], result.frame["lat"][0]) == (float(lon), float(lat))


def test_geojson_points_swapped(tmp_path):
    features = [point_feature({"type": "Point", "coordinates": [29.87, 121.55]})]
    with pytest.raises(InputFileError, match=r"look swapped in every row.*the file must store \(longitude, latitude\)"):
        read_points(write_geojson(tmp_path / "p.geojson", features))


def test_gpkg_points_with_nan_and_projected_crs(tmp_path):
    gdf = geopandas.GeoDataFrame(
        {"code": ["a", "b"]}, geometry=[Point(500000, 3306000), Point(np.nan, 3306000)], crs="EPSG:4549"
    )
    result = read_points(write_vector(tmp_path / "p.gpkg", gdf))
    assert result.crs.name == "EPSG:4549"
    assert result.frame["lon"][0] == pytest.approx(120.0, abs=1e-9)
    assert result.problems == [Problem(1, "x is NaN")]
    with pytest.raises(InputFileError, match="declares its CRS as EPSG:4549 but crs EPSG:4326 was given"):
        read_points(tmp_path / "p.gpkg", crs="EPSG:4326")


def test_vector_points_refuse_column_arguments(tmp_path):
    path = write_geojson(tmp_path / "p.geojson", [point_feature({"type": "Point", "coordinates": [121.5, 29.8]})])
    with pytest.raises(BadParameter, match="lon_col/lat_col apply to CSV and XLSX files"):
        read_points(path, lon_col="lon")


def test_bad_crs_text_is_bad_parameter(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("lon,lat\n121.5,29.8\n", encoding="utf-8")
    with pytest.raises(BadParameter, match="crs 'mars' is not recognised"):
        read_points(path, crs="mars")
