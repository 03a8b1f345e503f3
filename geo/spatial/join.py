"""The exact point-in-grid join: each point gets the one grid that contains it.

Rule for points on a shared edge or vertex: such a point lies in the closed polygons of two
or more grids; it goes to the one among them with the **smallest grid index** (the atlas keeps
grids sorted by code, so: the smallest grid code). Points in no grid (outside the city, in a
hole, NaN) get -1. Every point strictly inside a grid gets that grid, exactly as
``geopandas.sjoin(predicate="within")`` would. Grids are expected not to overlap (the demo and
boundary updates guarantee it).

How it is fast (:class:`GridIndex`): a lookup raster covers the city. A cell that no grid
boundary crosses lies wholly inside one grid (or outside all), so its points are answered by
one array read. A cell that a boundary crosses keeps the short list of grids whose boundary
crosses it; its points are tested against those few prepared polygons only, smallest index
first, so the first hit is the answer. ``_build_raster`` explains why this is exact.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import shapely
from scipy import ndimage

from geo.errors import BadParameter

OUTSIDE = -1
_UNRESOLVED = -2
# Largest raster the index builds (cells): 4 bytes a cell, so about 160 MB.
_MAX_CELLS = 40_000_000
_MIN_CELL_DEG = 0.00025  # about 25 m
_CHUNK = 500_000
_THREADS = 2  # GEOS predicates and NumPy gathers release the GIL


class GridIndex:
    """Answers "which grid contains this point" for arrays of WGS84 coordinates.

    ``polygons`` are the grid geometries in the order that defines grid indexes.
    """

    def __init__(self, polygons, cell_size: float | None = None):
        self.polygons = np.asarray(polygons, dtype=object)
        shapely.prepare(self.polygons)
        self.tree = shapely.STRtree(self.polygons)
        self._cell_size = cell_size
        self._raster = None

    def assign_exact(self, x, y) -> np.ndarray:
        """Grid index of each point by an R-tree query on the polygons (the reference path)."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        out = np.full(len(x), OUTSIDE, dtype=np.int32)
        for start in range(0, len(x), _CHUNK):
            sl = slice(start, start + _CHUNK)
            pt_i, grid_i = self.tree.query(shapely.points(x[sl], y[sl]), predicate="intersects")
            if len(pt_i):
                # Smallest grid index wins for points on shared edges: sort pairs, keep the first.
                order = np.lexsort((grid_i, pt_i))
                pt_i, grid_i = pt_i[order], grid_i[order]
                first = np.ones(len(pt_i), bool)
                first[1:] = pt_i[1:] != pt_i[:-1]
                out[start + pt_i[first]] = grid_i[first]
        return out

    def assign(self, x, y) -> np.ndarray:
        """Grid index of each point (int32, -1 outside every grid), using both cores."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        self.raster  # build once, outside the threads
        if len(x) < 2 * _CHUNK:
            return self._assign_part(x, y)
        bounds = np.linspace(0, len(x), _THREADS * 4 + 1).astype(int)
        out = np.empty(len(x), dtype=np.int32)
        with ThreadPoolExecutor(_THREADS) as pool:
            parts = [(a, b, pool.submit(self._assign_part, x[a:b], y[a:b]))
                     for a, b in zip(bounds[:-1], bounds[1:])]
            for a, b, fut in parts:
                out[a:b] = fut.result()
        return out

    def _assign_part(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        out = self.raster.assign(self.polygons, x, y)
        # Points in cells marked only for safety (near a boundary, not crossed by it) can miss
        # their grid among the candidates; the R-tree settles those few exactly.
        unresolved = np.flatnonzero(out == _UNRESOLVED)
        if len(unresolved):
            out[unresolved] = self.assign_exact(x[unresolved], y[unresolved])
        return out

    @property
    def raster(self) -> "_Raster":
        """The lookup raster, built on first use."""
        if self._raster is None:
            self._raster = _build_raster(self, self._cell_size)
        return self._raster


class _Raster:
    """Cell labels: >= 0 a grid, -1 outside, <= -2 an edge cell whose candidates are
    ``cand[start[k]:start[k+1]]`` with k = -2 - label."""

    def __init__(self, x0, y0, dx, labels, cand, start):
        self.x0, self.y0, self.dx = x0, y0, dx
        self.labels, self.cand, self.start = labels, cand, start
        self.nrows, self.ncols = labels.shape

    def assign(self, polygons, x, y) -> np.ndarray:
        col = np.floor((x - self.x0) / self.dx)
        row = np.floor((y - self.y0) / self.dx)
        inside = (col >= 0) & (col < self.ncols) & (row >= 0) & (row < self.nrows)  # NaN is False
        out = np.full(len(x), OUTSIDE, dtype=np.int32)
        out[inside] = self.labels[row[inside].astype(np.int64), col[inside].astype(np.int64)]
        edge = np.flatnonzero(out <= -2)
        if len(edge):
            out[edge] = self._resolve(polygons, x[edge], y[edge], -2 - out[edge])
        return out

    def _resolve(self, polygons, x, y, cell) -> np.ndarray:
        """Test edge points against their cell's candidates, smallest grid first; -2 if none holds."""
        result = np.full(len(x), _UNRESOLVED, dtype=np.int32)
        first, count = self.start[cell], self.start[cell + 1] - self.start[cell]
        todo = np.arange(len(x))
        r = 0
        while len(todo):
            todo = todo[count[todo] > r]
            if not len(todo):
                break
            grid = self.cand[first[todo] + r]
            order = np.argsort(grid, kind="stable")
            todo, grid = todo[order], grid[order]
            cuts = np.flatnonzero(np.diff(grid)) + 1
            hit = np.zeros(len(todo), bool)
            for lo, hi in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [len(todo)]])):
                pts = todo[lo:hi]
                hit[lo:hi] = shapely.intersects_xy(polygons[grid[lo]], x[pts], y[pts])
            result[todo[hit]] = grid[hit]
            todo = todo[~hit]
            r += 1
        return result


def _build_raster(index: GridIndex, cell_size: float | None) -> _Raster:
    """Label every cell with its grid, -1 outside, or its list of candidate grids.

    Why it is exact: grid boundaries are sampled at a third of a cell (so consecutive samples
    are in the same or adjacent cells) and every cell holding a sample, nudged by a tiny
    epsilon both ways to absorb rounding, is an edge cell; where consecutive samples sit in
    diagonal cells, both cells beside the shared corner are marked too. So every cell that a
    boundary passes through is an edge cell, and it lists every grid whose boundary passes
    through it. A point on the boundary of grid G therefore finds G among its candidates, and
    since candidates are tested smallest first, the edge rule holds. A point strictly inside G
    finds G among them too unless its cell was only marked for safety; then no candidate holds
    it and the R-tree answers (``GridIndex._assign_part``). The other cells form
    4-connected regions that no boundary crosses, so each region lies wholly inside one grid
    or wholly outside; one representative point per region, tested exactly, labels them all.
    """
    minx, miny, maxx, maxy = shapely.total_bounds(index.polygons)
    if cell_size is None:
        cell_size = max(_MIN_CELL_DEG, np.sqrt((maxx - minx) * (maxy - miny) / _MAX_CELLS))
    dx = float(cell_size)
    x0, y0 = minx - 2 * dx, miny - 2 * dx
    ncols = int(np.ceil((maxx - x0) / dx)) + 3
    nrows = int(np.ceil((maxy - y0) / dx)) + 3

    samples, owner = shapely.get_coordinates(
        shapely.segmentize(shapely.boundary(index.polygons), dx / 3), return_index=True)
    eps = dx * 1e-6
    base_c = np.floor((samples[:, 0] - x0) / dx).astype(np.int64)
    base_r = np.floor((samples[:, 1] - y0) / dx).astype(np.int64)
    cells, owners = [base_r * ncols + base_c], [owner]
    for ex, ey in ((-eps, -eps), (-eps, eps), (eps, -eps), (eps, eps)):
        c = np.floor((samples[:, 0] + ex - x0) / dx).astype(np.int64)
        r = np.floor((samples[:, 1] + ey - y0) / dx).astype(np.int64)
        moved = np.flatnonzero((c != base_c) | (r != base_r))  # only samples within eps of a cell side
        cells.append(r[moved] * ncols + c[moved])
        owners.append(owner[moved])
    # Diagonal steps between consecutive samples of one grid: mark both cells beside the corner.
    diag = np.flatnonzero((owner[1:] == owner[:-1]) & (np.abs(np.diff(base_c)) == 1) & (np.abs(np.diff(base_r)) == 1))
    cells += [base_r[diag] * ncols + base_c[diag + 1], base_r[diag + 1] * ncols + base_c[diag]]
    owners += [owner[diag], owner[diag]]
    n = len(index.polygons)
    pairs = np.sort(np.concatenate(cells) * n + np.concatenate(owners))  # by cell, then grid
    pairs = pairs[np.concatenate([[True], pairs[1:] != pairs[:-1]])]
    pair_cell, cand = np.divmod(pairs, n)
    first = np.flatnonzero(np.concatenate([[True], pair_cell[1:] != pair_cell[:-1]]))
    edge_cells = pair_cell[first]
    start = np.append(first, len(pairs)).astype(np.int64)
    cand = cand.astype(np.int32)

    edge = np.zeros(nrows * ncols, dtype=bool)
    edge[edge_cells] = True
    regions, n_regions = ndimage.label(~edge.reshape(nrows, ncols))
    rep = np.zeros(n_regions + 1, dtype=np.int64)
    rep[regions.ravel()] = np.arange(regions.size)  # any cell of a region represents it
    rep_rows, rep_cols = np.divmod(rep[1:], ncols)
    grid_of_region = index.assign_exact(x0 + (rep_cols + 0.5) * dx, y0 + (rep_rows + 0.5) * dx)

    labels = np.concatenate([[0], grid_of_region]).astype(np.int32)[regions]
    labels.ravel()[edge_cells] = -2 - np.arange(len(edge_cells), dtype=np.int32)
    return _Raster(x0, y0, dx, labels, cand, start)


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
