"""Uniform random points inside many polygons at once, fully vectorised.

Each polygon is cut into triangles once (constrained Delaunay); a point is placed by picking a
triangle in proportion to its area and a uniform point inside it. This places millions of
event points in seconds without per-point geometry objects.
"""

from __future__ import annotations

import numpy as np
import shapely


class PolygonSampler:
    """Draw uniform points inside polygon ``i`` of a fixed list of polygons."""

    def __init__(self, polygons):
        tris, owners = [], []
        for i, poly in enumerate(polygons):
            t = shapely.get_parts(shapely.constrained_delaunay_triangles(poly))
            tris.append(t)
            owners.append(np.full(len(t), i))
        tris = np.concatenate(tris)
        self._owner = np.concatenate(owners)
        coords = shapely.get_coordinates(shapely.get_exterior_ring(tris)).reshape(len(tris), 4, 2)
        self._a, self._b, self._c = coords[:, 0], coords[:, 1], coords[:, 2]
        area = shapely.area(tris)
        self._cum = np.cumsum(area)
        poly_area = np.bincount(self._owner, weights=area, minlength=len(polygons))
        self._poly_start = np.concatenate([[0.0], np.cumsum(poly_area)[:-1]])
        self._poly_area = poly_area

    def sample(self, owner: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Return (x, y) arrays with one uniform point inside polygon ``owner[k]`` for each k."""
        owner = np.asarray(owner)
        target = self._poly_start[owner] + rng.random(len(owner)) * self._poly_area[owner]
        tri = np.searchsorted(self._cum, target, side="right")
        tri = np.minimum(tri, len(self._cum) - 1)
        # Rounding at a polygon's last triangle can land on the next polygon's first one.
        wrong = self._owner[tri] != owner
        tri[wrong & (tri > 0)] -= 1
        r1, r2 = rng.random(len(owner)), rng.random(len(owner))
        flip = r1 + r2 > 1
        r1[flip], r2[flip] = 1 - r1[flip], 1 - r2[flip]
        a, b, c = self._a[tri], self._b[tri], self._c[tri]
        p = a + r1[:, None] * (b - a) + r2[:, None] * (c - a)
        return p[:, 0], p[:, 1]
