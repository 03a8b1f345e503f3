"""The command line: join output, bench output and error messages without tracebacks."""

import subprocess
import sys

import pandas as pd
import pytest

from geo.cli.main import main
from geo.settings import PROJECT_ROOT
from tests.stores import use_location


@pytest.fixture()
def grids_file(tmp_path, atlas):
    path = tmp_path / "grids.gpkg"
    atlas.grids[atlas.grids["code"].str.startswith("330212108")][["code", "name", "geometry"]].to_file(path)
    return path


def test_join_writes_one_row_per_point_in_input_order(tmp_path, grids_file, atlas, capsys):
    grid = atlas.grids[atlas.grids["code"].str.startswith("330212108")].iloc[0]
    inside = grid.geometry.representative_point()
    points = tmp_path / "points.csv"
    points.write_text(f"id,经度,纬度\na,{inside.x},{inside.y}\nb,100.0,20.0\nc,nan,29.8\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    assert main(["join", str(grids_file), str(points), "-o", str(out)]) == 0
    result = pd.read_csv(out, dtype={"grid_code": str})
    assert list(result.columns) == ["row", "x", "y", "grid_code"]
    assert list(result["row"]) == [0, 1, 2]
    assert result["grid_code"].iloc[0] == grid["code"]
    assert result["grid_code"].iloc[1:].isna().all()
    assert result["x"].iloc[0] == pytest.approx(inside.x)
    said = capsys.readouterr().out
    assert "3 points: 1 in a grid, 1 outside every grid, 1 unusable" in said


def test_join_accepts_gcj02_points(tmp_path, grids_file, atlas):
    from geo.spatial.chinacrs import wgs84_to_gcj02

    grid = atlas.grids[atlas.grids["code"].str.startswith("330212108")].iloc[3]
    p = grid.geometry.representative_point()
    gx, gy = wgs84_to_gcj02(p.x, p.y)
    points = tmp_path / "amap.csv"
    points.write_text(f"lng,lat\n{float(gx):.8f},{float(gy):.8f}\n")
    out = tmp_path / "out.csv"
    assert main(["join", str(grids_file), str(points), "--crs", "gcj02", "-o", str(out)]) == 0
    assert pd.read_csv(out, dtype={"grid_code": str})["grid_code"].iloc[0] == grid["code"]


@pytest.fixture()
def layered_file(tmp_path, atlas):
    """A GeoPackage laid out as the demo's areas.gpkg (town, village, grid), for 云龙镇 alone."""
    path = tmp_path / "areas.gpkg"
    for level in ("town", "village", "grid"):
        layer = atlas.layers[level]
        layer[layer["code"].str.startswith("330212108")][["code", "name", "geometry"]].to_file(path, layer=level)
    return path


def _one_point_in(tmp_path, grid):
    p = grid.geometry.representative_point()
    points = tmp_path / "points.csv"
    points.write_text(f"lon,lat\n{p.x},{p.y}\n")
    return points


def test_join_on_a_multi_layer_geopackage_reads_its_grid_layer(tmp_path, atlas, demo_files):
    grid = atlas.grids[atlas.grids["code"].str.startswith("330212108")].iloc[5]
    out = tmp_path / "out.csv"
    areas = demo_files / "demo" / "areas.gpkg"  # the demo's own file: district … grid, checkpoint
    assert main(["join", str(areas), str(_one_point_in(tmp_path, grid)), "-o", str(out)]) == 0
    assert pd.read_csv(out, dtype={"grid_code": str})["grid_code"].tolist() == [grid["code"]]


@pytest.mark.parametrize("layer, digits", [("grid", 15), ("village", 12), ("town", 9)])
def test_join_layer_option_picks_the_layer(tmp_path, atlas, layered_file, layer, digits):
    grid = atlas.grids[atlas.grids["code"].str.startswith("330212108")].iloc[2]
    out = tmp_path / "out.csv"
    assert main(["join", str(layered_file), str(_one_point_in(tmp_path, grid)), "--layer", layer, "-o", str(out)]) == 0
    assert pd.read_csv(out, dtype={"grid_code": str})["grid_code"].tolist() == [grid["code"][:digits]]


def test_join_names_the_layers_when_the_one_asked_for_is_missing(tmp_path, atlas, layered_file, capsys):
    grid = atlas.grids[atlas.grids["code"].str.startswith("330212108")].iloc[0]
    points = _one_point_in(tmp_path, grid)
    assert main(["join", str(layered_file), str(points), "--layer", "grids", "-o", str(tmp_path / "o.csv")]) != 0
    assert "has no layer 'grids'; layers: town, village, grid" in capsys.readouterr().err


def test_join_without_a_grid_layer_asks_for_layer(tmp_path, atlas, capsys):
    path = tmp_path / "two.gpkg"
    for name in ("zones_2019", "zones_2020"):
        atlas.layers["town"][["code", "name", "geometry"]].to_file(path, layer=name)
    grid = atlas.grids.iloc[0]
    assert main(["join", str(path), str(_one_point_in(tmp_path, grid)), "-o", str(tmp_path / "o.csv")]) != 0
    assert "has 2 layers (zones_2019, zones_2020); choose one with --layer" in capsys.readouterr().err


def test_errors_are_one_line_without_traceback(tmp_path, grids_file):
    proc = subprocess.run([sys.executable, "-m", "geo", "join", str(grids_file), str(tmp_path / "missing.csv"),
                           "--crs", "EPSG:99999999", "-o", str(tmp_path / "o.csv")],
                          cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ")


def test_bench_prints_throughput_ratio_and_memory(demo_settings, monkeypatch, capsys):
    use_location(monkeypatch, demo_settings)
    assert main(["bench", "--scale", "0.002", "--seed", "7", "--only", "join"]) == 0
    out = capsys.readouterr().out
    assert "M pts/s" in out and "x geopandas.sjoin, 0 mismatches" in out and "MB RSS" in out
