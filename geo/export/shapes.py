"""Area outlines ready to draw: projected to the map CRS, turned into matplotlib paths once.

Drawing 10,205 grids through GeoPandas' ``plot`` costs seconds per export, most of it in
turning shapely geometries into matplotlib paths. Here that happens once per atlas and
level; an export then picks its slice of ready paths (codes are sorted and nest by prefix,
so the areas inside one area are one contiguous run).
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import shapely
from matplotlib.path import Path
from pyproj import Transformer

from geo.atlas.areas import Atlas
from geo.atlas.hierarchy import CITY_CODE
from geo.export.scalebar import MAP_CRS

# Vertices closer than this (metres) to a simplified outline are dropped: far below what any
# print shows (0.1 mm at 1:5,000) and it keeps vector files of imported survey-grade outlines small.
SIMPLIFY_M = 0.5
# How precisely the label anchor (centre of the largest inscribed circle) is searched, in metres.
ANCHOR_TOLERANCE_M = {"district": 200.0, "town": 50.0, "village": 15.0, "grid": 5.0}


def project(geoms: np.ndarray, crs: str = MAP_CRS) -> np.ndarray:
    """Geometries in EPSG:4326 to ``crs`` (vectorised over all coordinates at once)."""
    tr = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    return shapely.transform(geoms, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def to_paths(geoms: np.ndarray) -> list[Path]:
    """One compound matplotlib Path per (multi)polygon, holes and islands included."""
    parts, part_owner = shapely.get_parts(geoms, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
    per_ring = np.bincount(coord_ring, minlength=len(rings))
    starts = np.concatenate([[0], np.cumsum(per_ring)[:-1]])
    codes = np.full(len(coords), Path.LINETO, dtype=Path.code_type)
    codes[starts] = Path.MOVETO
    codes[starts + per_ring - 1] = Path.CLOSEPOLY
    owner = part_owner[ring_part][coord_ring]
    cuts = np.searchsorted(owner, np.arange(len(geoms) + 1))
    return [Path(coords[a:b], codes[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]


@dataclass
class LevelShapes:
    """One level's areas in map units: codes (sorted), names, geometries and paths."""

    level: str
    codes: np.ndarray
    names: np.ndarray
    geoms: np.ndarray

    @cached_property
    def paths(self) -> list[Path]:
        """Matplotlib paths, in code order."""
        return to_paths(self.geoms)

    @cached_property
    def areas(self) -> np.ndarray:
        """Area of each shape in square map units."""
        return shapely.area(self.geoms)

    @cached_property
    def bounds(self) -> np.ndarray:
        """(minx, miny, maxx, maxy) of each shape, for cheap view culling."""
        return shapely.bounds(self.geoms)

    def in_view(self, xmin: float, ymin: float, xmax: float, ymax: float) -> np.ndarray:
        """Indexes of the shapes whose bounding box meets the view rectangle."""
        b = self.bounds
        return np.flatnonzero((b[:, 0] <= xmax) & (b[:, 2] >= xmin) & (b[:, 1] <= ymax) & (b[:, 3] >= ymin))

    @cached_property
    def anchors(self) -> tuple[np.ndarray, np.ndarray]:
        """Label anchor (x, y) of each area, the centre of its largest inscribed circle, and that radius."""
        circles = shapely.maximum_inscribed_circle(self.geoms, tolerance=ANCHOR_TOLERANCE_M.get(self.level, 10.0))
        start = shapely.get_point(circles, 0)
        xy = shapely.get_coordinates(start)
        return xy, shapely.length(circles)

    def span(self, code: str) -> slice:
        """The run of areas whose code starts with ``code`` (all of them for the city)."""
        if code == CITY_CODE:
            return slice(0, len(self.codes))
        lo = np.searchsorted(self.codes, code, side="left")
        hi = np.searchsorted(self.codes, code + "\uffff", side="left")
        return slice(int(lo), int(hi))


class ShapeCache:
    """Projected shapes of one atlas, built per level on first use."""

    def __init__(self, atlas: Atlas):
        self._atlas = weakref.ref(atlas)
        self._levels: dict[str, LevelShapes] = {}
        self._lock = threading.Lock()
        self._city = None
        self.charset: str | None = None  # every character of the atlas's names (geo.export_figure)

    def level(self, level: str) -> LevelShapes:
        """The shapes of every area of ``level``."""
        with self._lock:
            if level not in self._levels:
                layer = self._atlas().layers[level]
                geoms = shapely.simplify(project(layer.geometry.to_numpy()), SIMPLIFY_M, preserve_topology=True)
                self._levels[level] = LevelShapes(level, layer["code"].to_numpy(dtype=str),
                                                  layer["name"].to_numpy(dtype=str), geoms)
            return self._levels[level]

    def city(self):
        """The whole city's outline in map units."""
        if self._city is None:
            self._city = shapely.union_all(self.level("district").geoms)
        return self._city

    def geometry(self, code: str, level: str):
        """The outline of one area in map units."""
        if level == "city":
            return self.city()
        shapes = self.level(level)
        return shapes.geoms[int(np.searchsorted(shapes.codes, code))]


_caches: dict[int, ShapeCache] = {}
_caches_lock = threading.Lock()


def shapes_of(atlas: Atlas) -> ShapeCache:
    """The shape cache of ``atlas`` (one per atlas object, dropped with it)."""
    key = id(atlas)
    with _caches_lock:
        cache = _caches.get(key)
        if cache is None or cache._atlas() is not atlas:
            cache = _caches[key] = ShapeCache(atlas)
            weakref.finalize(atlas, _caches.pop, key, None)
        return cache
