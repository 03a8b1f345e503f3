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
    atlas.grids[atlas.grids["code"].str.startswith("330212101")][["code", "name", "geometry"]].to_file(path)
    return path


def test_join_writes_one_row_per_point_in_input_order(tmp_path, grids_file, atlas, capsys):
    grid = atlas.grids[atlas.grids["code"].str.startswith("330212101")].iloc[0]
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

    grid = atlas.grids[atlas.grids["code"].str.startswith("330212101")].iloc[3]
    p = grid.geometry.representative_point()
    gx, gy = wgs84_to_gcj02(p.x, p.y)
    points = tmp_path / "amap.csv"
    points.write_text(f"lng,lat\n{float(gx):.8f},{float(gy):.8f}\n")
    out = tmp_path / "out.csv"
    assert main(["join", str(grids_file), str(points), "--crs", "gcj02", "-o", str(out)]) == 0
    assert pd.read_csv(out, dtype={"grid_code": str})["grid_code"].iloc[0] == grid["code"]


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
