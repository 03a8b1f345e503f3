"""True scale bars and north arrows for maps drawn in a projected CRS.

A bar's length is measured on the ellipsoid (pyproj's Geod between the bar's two ends taken
back to longitude and latitude), never in degrees or raw map units, so it stays right
wherever the map projection stretches distances.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from pyproj import CRS, Transformer

# CGCS2000 / 3-degree Gauss-Kruger CM 120E: China's national metric grid for Ningbo's longitudes
# (a conformal projection, so shapes and local scale are true in every direction).
MAP_CRS = "EPSG:4549"
NICE_STEPS = (1, 2, 5)


@lru_cache(maxsize=8)
def _to_lonlat(crs: str) -> Transformer:
    return Transformer.from_crs(crs, "EPSG:4326", always_xy=True)


@lru_cache(maxsize=8)
def _from_lonlat(crs: str) -> Transformer:
    return Transformer.from_crs("EPSG:4326", crs, always_xy=True)


@lru_cache(maxsize=8)
def _geod(crs: str):
    return CRS(crs).get_geod()


def ground_distance(x0: float, y0: float, x1: float, y1: float, crs: str = MAP_CRS) -> float:
    """Geodesic distance in metres between two points given in ``crs`` map units."""
    lon, lat = _to_lonlat(crs).transform([x0, x1], [y0, y1])
    return float(_geod(crs).inv(lon[0], lat[0], lon[1], lat[1])[2])


def nice_length(max_metres: float) -> float:
    """The longest 1, 2 or 5 × 10ⁿ metres not above ``max_metres`` (at least 1 m)."""
    if max_metres < 1:
        return 1.0
    power = 10 ** math.floor(math.log10(max_metres))
    return float(max(s * power for s in NICE_STEPS if s * power <= max_metres))


def format_length(metres: float) -> str:
    """"500 m", "1 km", "2.5 km"."""
    if metres < 1000:
        return f"{metres:g} m"
    return f"{metres / 1000:g} km"


@dataclass(frozen=True)
class ScaleBar:
    """A horizontal bar from (x0, y) to (x1, y) in map units that is ``metres`` long on the ground."""

    x0: float
    x1: float
    y: float
    metres: float
    crs: str = MAP_CRS

    @property
    def label(self) -> str:
        """The bar's length as printed."""
        return format_length(self.metres)

    def ticks(self, parts: int = 4) -> list[tuple[float, float]]:
        """(x position, metres) of the tick marks that split the bar into ``parts`` equal pieces."""
        return [(self.x0 + (self.x1 - self.x0) * i / parts, self.metres * i / parts) for i in range(parts + 1)]


def scale_bar(x0: float, y: float, max_map_length: float, crs: str = MAP_CRS) -> ScaleBar:
    """The longest round-length bar that starts at (x0, y) and fits in ``max_map_length`` map units."""
    ground = ground_distance(x0, y, x0 + max_map_length, y, crs)
    metres = nice_length(ground)
    length = max_map_length * metres / ground
    # The projection's scale factor changes slowly along the bar: one correction step lands
    # far inside a millimetre on paper.
    length *= metres / ground_distance(x0, y, x0 + length, y, crs)
    return ScaleBar(x0, x0 + length, y, metres, crs)


def true_north_angle(x: float, y: float, crs: str = MAP_CRS) -> float:
    """Angle in degrees, counter-clockwise from the map's up direction, of true north at (x, y)."""
    lon, lat = _to_lonlat(crs).transform(x, y)
    nx, ny = _from_lonlat(crs).transform(lon, lat + 0.01)
    return math.degrees(math.atan2(-(nx - x), ny - y))


def map_scale_denominator(map_units_per_mm: float, x: float, y: float, crs: str = MAP_CRS) -> float:
    """N of the representative fraction 1:N when one paper millimetre covers ``map_units_per_mm``."""
    ground_per_unit = ground_distance(x, y, x + 1000.0, y, crs) / 1000.0
    return map_units_per_mm * ground_per_unit * 1000.0
