"""A population-density surface for Ningbo, used to place synthetic areas, checkpoints and events.

The real density is not public at grid level. This surface keeps what matters for the maps:
dense urban cores where 海曙, 江北 and 鄞州 meet and at each county seat, a farmed northern
plain, and thin hills in the west and south.
"""

from __future__ import annotations

import numpy as np

SANJIANGKOU = (121.550, 29.875)  # where 海曙, 江北 and 鄞州 meet: the centre of Ningbo

# (lon, lat, peak weight, sigma in km): central Ningbo and the county seats.
URBAN_CORES = (
    (*SANJIANGKOU, 7.0, 5.0),
    (121.565, 29.815, 4.0, 4.0),  # 鄞州 new town
    (121.600, 29.900, 12.0, 3.0),  # 江北 east
    (121.850, 29.905, 14.0, 3.0),  # 北仑 新碶
    (121.715, 29.955, 14.0, 2.5),  # 镇海 招宝山
    (121.155, 30.040, 18.0, 3.0),  # 余姚 city
    (121.255, 30.170, 20.0, 3.5),  # 慈溪 浒山
    (121.405, 29.655, 12.0, 2.5),  # 奉化 city
    (121.430, 29.290, 12.0, 2.5),  # 宁海 city
    (121.875, 29.475, 12.0, 2.5),  # 象山 city
    (121.675, 29.785, 4.0, 2.5),   # 云龙镇 (the seed's town)
)
# Where each district's streets (街道) cluster: central Ningbo for the three central districts,
# the county seat's urban core for the others.
DISTRICT_CORES = {
    "330203": SANJIANGKOU,  # 海曙
    "330205": SANJIANGKOU,  # 江北
    "330212": SANJIANGKOU,  # 鄞州
    "330206": (121.850, 29.905),  # 北仑 新碶
    "330211": (121.715, 29.955),  # 镇海 招宝山
    "330281": (121.155, 30.040),  # 余姚
    "330282": (121.255, 30.170),  # 慈溪 浒山
    "330213": (121.405, 29.655),  # 奉化
    "330226": (121.430, 29.290),  # 宁海
    "330225": (121.875, 29.475),  # 象山
}
KM_PER_DEG_LAT = 111.2
KM_PER_DEG_LON = 111.2 * np.cos(np.radians(29.9))


def density(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Relative population density at WGS84 points (arbitrary units, always > 0)."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    # Northern plain (慈溪/余姚/镇海 north of ~29.95 N) is farmed and settled; the south and
    # west are hills. A smooth ramp avoids a visible seam.
    plain = 1.0 / (1.0 + np.exp(-(lat - 29.95) * 40.0))
    d = 0.25 + 0.9 * plain
    for clon, clat, w, sigma in URBAN_CORES:
        dx = (lon - clon) * KM_PER_DEG_LON
        dy = (lat - clat) * KM_PER_DEG_LAT
        d = d + w * np.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma))
    return d
