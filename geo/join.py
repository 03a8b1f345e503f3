"""The exact point-in-grid join: each point gets the one grid that contains it.

Rule for points on a shared edge or vertex: such a point lies in the closed polygons of two
or more grids; it goes to the one among them with the **smallest grid code**. Points in no
grid (outside the city, in a hole, NaN) get -1. Every point strictly inside a grid gets that
grid, exactly as ``geopandas.sjoin(predicate="within")`` would.

Speed comes from a lookup raster over the city (:class:`GridIndex`): a cell that no grid
boundary touches lies wholly inside one grid, so its points are answered by one array read;
only points in cells along boundaries are tested exactly against the polygons with
``shapely.STRtree``. The raster is exact by construction, not an approximation: see
``_build_raster``.
"""

from __future__ import annotations

import numpy as np
import shapely
from scipy import ndimage

from .errors import BadParameter

OUTSIDE = -1
_EDGE = -2
# Largest raster the index builds (cells); bounds memory to ~4 bytes a cell during the build.
_MAX_CELLS = 40_000_000
_CHUNK = 500_000


class GridIndex:
    """Answers "which grid contains this point" for arrays of WGS84 coordinates.

    ``polygons`` are the grid geometries in the order that defines grid indexes (the atlas
    keeps them sorted by code, so "smallest index" is "smallest code").
    """

    def __init__(self, polygons, cell_size: float | None = None):
        self.polygons = np.asarray(polygons, dtype=object)
        shapely.prepare(self.polygons)
        self.tree = shapely.STRtree(self.polygons)
        self._cell_size = cell_size
        self._raster = None

    def assign_exact(self, x, y) -> np.ndarray:
        """Grid index of each point by testing the polygons directly (the reference path)."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        out = np.full(len(x), OUTSIDE, dtype=np.int32)
        for start in range(0, len(x), _CHUNK):
            sl = slice(start, start + _CHUNK)
            pts = shapely.points(x[sl], y[sl])
            pt_i, grid_i = self.tree.query(pts, predicate="intersects")
            if len(pt_i):
                # Smallest grid index wins for points on shared edges: sort pairs, keep the first.
                order = np.lexsort((grid_i, pt_i))
                pt_i, grid_i = pt_i[order], grid_i[order]
                first = np.ones(len(pt_i), bool)
                first[1:] = pt_i[1:] != pt_i[:-1]
                out[start + pt_i[first]] = grid_i[first]
        return out

    def assign(self, x, y) -> np.ndarray:
        """Grid index of each point (int32, -1 outside every grid), by raster then exact test."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        r = self.raster
        col = np.floor((x - r.x0) / r.dx)
        row = np.floor((y - r.y0) / r.dy)
        inside = (col >= 0) & (col < r.ncols) & (row >= 0) & (row < r.nrows)  # NaN compares False
        out = np.full(len(x), OUTSIDE, dtype=np.int32)
        out[inside] = r.labels[row[inside].astype(np.int64), col[inside].astype(np.int64)]
        edge = np.flatnonzero(out == _EDGE)
        if len(edge):
            out[edge] = self.assign_exact(x[edge], y[edge])
        return out

    @property
    def raster(self) -> "_Raster":
        """The lookup raster, built on first use."""
        if self._raster is None:
            self._raster = _build_raster(self, self._cell_size)
        return self._raster


class _Raster:
    def __init__(self, x0, y0, dx, dy, labels):
        self.x0, self.y0, self.dx, self.dy, self.labels = x0, y0, dx, dy, labels
        self.nrows, self.ncols = labels.shape


def _build_raster(index: GridIndex, cell_size: float | None) -> _Raster:
    """Label every cell with its grid, -1 outside, or -2 where a boundary may pass.

    Why it is exact: every cell that a grid boundary can touch is marked -2 (boundaries are
    sampled at a third of a cell and the marks dilated by one cell, so a segment between two
    samples cannot slip through unmarked). The remaining cells form regions that no boundary
    crosses, so each region lies wholly inside one grid or wholly outside; testing one
    representative point per region labels all of its cells.
    """
    minx, miny, maxx, maxy = shapely.total_bounds(index.polygons)
    if cell_size is None:
        cell_size = max(0.00025, np.sqrt((maxx - minx) * (maxy - miny) / _MAX_CELLS))
    dx = dy = float(cell_size)
    x0, y0 = minx - dx, miny - dy
    ncols = int(np.ceil((maxx - x0) / dx)) + 2
    nrows = int(np.ceil((maxy - y0) / dy)) + 2

    edge = np.zeros((nrows, ncols), dtype=bool)
    rings = shapely.segmentize(shapely.boundary(index.polygons), dx / 3)
    coords = shapely.get_coordinates(rings)
    cols = np.floor((coords[:, 0] - x0) / dx).astype(np.int64)
    rows = np.floor((coords[:, 1] - y0) / dy).astype(np.int64)
    edge[rows, cols] = True
    edge = ndimage.binary_dilation(edge, structure=np.ones((3, 3), bool))

    regions, n_regions = ndimage.label(~edge)  # 4-connected regions free of boundaries
    rep = np.zeros(n_regions + 1, dtype=np.int64)
    rep[regions.ravel()] = np.arange(regions.size)  # any cell of a region represents it
    rep_rows, rep_cols = np.divmod(rep[1:], ncols)
    grid_of_region = index.assign_exact(x0 + (rep_cols + 0.5) * dx, y0 + (rep_rows + 0.5) * dy)

    dtype = np.int16 if len(index.polygons) < np.iinfo(np.int16).max else np.int32
    lut = np.concatenate([[_EDGE], grid_of_region]).astype(dtype)
    labels = lut[regions]
    return _Raster(x0, y0, dx, dy, labels)


def assign_grids(grids, x, y, code_column: str = "code") -> np.ndarray:
    """Return the grid code of each point (object array, None outside) for a grids GeoDataFrame.

    ``grids`` must be in EPSG:4326; x and y are WGS84 lon/lat arrays. The smallest-code rule
    for shared edges uses the codes as text. For one-off joins; long-lived callers keep a
    :class:`GridIndex`.
    """
    if grids.crs is None or grids.crs.to_epsg() != 4326:
        raise BadParameter(f"grids must be in EPSG:4326 to join lon/lat points, got {grids.crs}")
    text_codes = grids[code_column].astype(str).to_numpy()
    order = np.argsort(text_codes, kind="stable")
    idx = GridIndex(grids.geometry.to_numpy()[order]).assign(x, y)
    codes = text_codes.astype(object)[order]
    out = np.full(len(idx), None, dtype=object)
    out[idx >= 0] = codes[idx[idx >= 0]]
    return out
