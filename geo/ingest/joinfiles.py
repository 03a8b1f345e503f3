"""``python -m geo join GRIDS POINTS -o OUT.csv``: the exact join on files.

OUT.csv has one row per input point, in input order: ``row`` (0-based), ``x`` and ``y`` as
read, and ``grid_code`` (empty when the point is in no grid or could not be placed). The
summary says how many points landed, how many are outside and which rows were unusable.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

from geo.errors import InputFileError
from geo.ingest.readers import read_areas, read_points
from geo.spatial.join import assign_grids

CODE_COLUMNS = ("code", "grid_code", "网格编码", "编码")
# The layer read from a GeoPackage of several layers (such as the demo's areas.gpkg) unless
# another is named.
GRID_LAYER = "grid"


def _code_column(path, frame, explicit: str | None) -> str:
    if explicit:
        if explicit not in frame.columns:
            raise InputFileError(path, f"no column {explicit!r}; columns are {', '.join(map(str, frame.columns))}")
        return explicit
    for name in CODE_COLUMNS:
        if name in frame.columns:
            return name
    raise InputFileError(path, f"no grid code column (looked for {', '.join(CODE_COLUMNS)}); pass --code-column")


def join_files(grids_path, points_path, out_path, *, crs: str = "EPSG:4326", encoding: str | None = None,
               code_column: str | None = None, layer: str | None = None) -> str:
    """Join a points file to a grids file, write OUT.csv and return a one-paragraph summary.

    ``layer`` names the grids' layer in a GeoPackage (default: ``grid`` when there are several).
    """
    grids = read_areas(grids_path, layer=layer, default_layer=GRID_LAYER)
    column = _code_column(grids_path, grids, code_column)
    if grids[column].astype(str).duplicated().any():
        dup = grids[column][grids[column].astype(str).duplicated()].iloc[0]
        raise InputFileError(grids_path, f"grid code {dup!r} appears more than once")
    points = read_points(points_path, crs=crs, encoding=encoding, bounds=tuple(grids.total_bounds))
    frame = points.frame
    codes = assign_grids(grids, frame["lon"].to_numpy(), frame["lat"].to_numpy(), code_column=column)
    out = pd.DataFrame({"row": frame["row"], "x": frame["x"], "y": frame["y"], "grid_code": codes})
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(out_path, index=False, encoding="utf-8")

    placed = points.valid.to_numpy()
    n_in = int(pd.notna(codes).sum())
    outside = int((placed & pd.isna(codes)).sum())
    lines = [f"{len(out):,} points: {n_in:,} in a grid, {outside:,} outside every grid, "
             f"{len(points.problems):,} unusable -> {out_path}"]
    for reason, n in Counter(p.reason for p in points.problems).most_common():
        example = next(p.row for p in points.problems if p.reason == reason)
        lines.append(f"  {n:,} unusable: {reason} (e.g. row {example})")
    return "\n".join(lines)
