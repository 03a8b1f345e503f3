"""Split a polygon into N pieces that tile it exactly, denser where the density surface is high.

Pieces are Voronoi cells of seed points, clipped to the parent. Every piece is the
intersection of the parent with a convex cell, so the pieces nest in the parent by
construction and tile it up to floating-point rounding (far below 1 m²).
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon

from geo.demo.density import KM_PER_DEG_LAT, KM_PER_DEG_LON, density

MAX_SEGMENT_DEG = 0.0005  # about 50 m


def random_points_in(geom, n: int, rng: np.random.Generator) -> np.ndarray:
    """Return ``n`` uniform random (lon, lat) points inside ``geom`` (rejection sampling)."""
    minx, miny, maxx, maxy = geom.bounds
    shapely.prepare(geom)
    out = np.empty((0, 2))
    fill = max(geom.area / ((maxx - minx) * (maxy - miny)), 0.01)
    while len(out) < n:
        k = int((n - len(out)) / fill * 1.3) + 16
        xs = rng.uniform(minx, maxx, k)
        ys = rng.uniform(miny, maxy, k)
        inside = shapely.contains_xy(geom, xs, ys)
        out = np.vstack([out, np.column_stack([xs[inside], ys[inside]])])
    return out[:n]


def weighted_seeds(geom, n: int, rng: np.random.Generator, power: float) -> np.ndarray:
    """Pick ``n`` distinct seed points in ``geom`` with probability ∝ density**power."""
    cand = random_points_in(geom, max(40 * n, 200), rng)
    w = density(cand[:, 0], cand[:, 1]) ** power
    idx = rng.choice(len(cand), size=n, replace=False, p=w / w.sum())
    return cand[idx]


def _polygonal(geom):
    """Keep only the polygonal part of an overlay result (drop stray lines and points)."""
    if isinstance(geom, (Polygon, MultiPolygon)):
        return geom
    parts = [g for g in shapely.get_parts(geom) if isinstance(g, (Polygon, MultiPolygon))]
    polys = []
    for p in parts:
        polys.extend(shapely.get_parts(p))
    return MultiPolygon(polys) if len(polys) > 1 else (polys[0] if polys else Polygon())


def voronoi_split(parent, seeds: np.ndarray) -> list:
    """Clip the Voronoi cells of ``seeds`` to ``parent``; the i-th piece holds the i-th seed."""
    if len(seeds) == 1:
        return [parent]
    # Voronoi in a locally isotropic space (km), so cells are not stretched north-south.
    lon0, lat0 = seeds[:, 0].mean(), seeds[:, 1].mean()
    kx, ky = KM_PER_DEG_LON, KM_PER_DEG_LAT
    pts = shapely.points((seeds[:, 0] - lon0) * kx, (seeds[:, 1] - lat0) * ky)
    minx, miny, maxx, maxy = parent.bounds
    env = shapely.box((minx - lon0) * kx - 10, (miny - lat0) * ky - 10,
                      (maxx - lon0) * kx + 10, (maxy - lat0) * ky + 10)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=env))
    cells = shapely.transform(cells, lambda c: np.column_stack([c[:, 0] / kx + lon0, c[:, 1] / ky + lat0]))
    # A straight edge in lon/lat bends in a projected CRS; short segments keep children inside
    # their parents (and tiles without overlaps) in any CRS, not just in lon/lat.
    cells = shapely.segmentize(cells, MAX_SEGMENT_DEG)
    # voronoi_polygons does not keep the input order: match each cell to its seed.
    seed_pts = shapely.points(seeds)
    tree = shapely.STRtree(cells)
    pairs = tree.query(seed_pts, predicate="intersects")
    order = np.full(len(seeds), -1)
    order[pairs[0]] = pairs[1]
    if (order < 0).any():
        raise RuntimeError("a Voronoi seed fell outside every cell")
    shapely.prepare(parent)
    return [_polygonal(shapely.intersection(cells[j], parent)) for j in order]


def allocate(total: int, weights, minimum: int = 1) -> np.ndarray:
    """Split the integer ``total`` in proportion to ``weights`` (largest remainder), each >= minimum."""
    weights = np.asarray(weights, dtype=float)
    n = len(weights)
    if total < minimum * n:
        raise ValueError(f"cannot give {n} parts at least {minimum} each out of {total}")
    spare = total - minimum * n
    share = weights / weights.sum() * spare
    out = np.floor(share).astype(int)
    rest = spare - out.sum()
    out[np.argsort(-(share - out), kind="stable")[:rest]] += 1
    return out + minimum
