"""GCJ-02 ("Mars", Amap/Tencent) and BD-09 (Baidu) coordinates, which PROJ does not have.

GCJ-02 is WGS84 plus a deliberate, non-linear offset of a few hundred metres; BD-09 adds a
further rotation-and-shift on top of GCJ-02. The formulas here are the well-known public ones
(the Krasovsky-ellipsoid offset published in many open-source libraries, and Baidu's
``3000 * pi / 180`` transform). They reproduce Amap's and Baidu's own conversions to well under
a metre inside China; the official algorithms are not published, so that is the honest bound
on *absolute* accuracy. The inverses here invert *these formulas* to better than 1e-7 degree
(about 1 cm), so a round trip is exact for practical purposes.

All functions are vectorised: they take scalars or array-likes of longitudes and latitudes (in
degrees, longitude first) and return a pair of float64 numpy arrays of the broadcast shape.
NaN stays NaN. For GCJ-02, points outside China are returned unchanged (the usual
``out_of_china`` rule), because the offset is only applied inside China.
"""

from __future__ import annotations

import numpy as np

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 offset.
A = 6378245.0
EE = 0.00669342162296594323
X_PI = np.pi * 3000.0 / 180.0

# The box of the usual out_of_china rule (deliberately generous: it is a box, not a border).
CHINA_LON = (72.004, 137.8347)
CHINA_LAT = (0.8293, 55.8271)

# The inverse is a contraction with a factor around 1e-3, so a handful of steps suffice;
# the cap only guards against a bug turning into an endless loop.
_TOLERANCE_DEG = 1e-7
_MAX_ITER = 30


def out_of_china(lon, lat) -> np.ndarray:
    """Return a boolean array: True where (lon, lat) lies outside the GCJ-02 box of China.

    NaN coordinates count as inside, so that they propagate as NaN instead of being passed
    through as if they were valid foreign points.
    """
    lon, lat = _as_arrays(lon, lat)
    return (lon < CHINA_LON[0]) | (lon > CHINA_LON[1]) | (lat < CHINA_LAT[0]) | (lat > CHINA_LAT[1])


def wgs84_to_gcj02(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Convert WGS84 (EPSG:4326) longitude/latitude to GCJ-02.

    Accuracy: exact evaluation of the public formula in float64 (about 1e-12 degree);
    against Amap's own conversion, typically better than 1 m. Points outside China are
    returned unchanged.
    """
    lon, lat = _as_arrays(lon, lat)
    dlon, dlat = _gcj_offset(lon, lat)
    outside = out_of_china(lon, lat)
    return np.where(outside, lon, lon + dlon), np.where(outside, lat, lat + dlat)


def gcj02_to_wgs84(
    lon, lat, *, tol: float = _TOLERANCE_DEG, max_iter: int = _MAX_ITER
) -> tuple[np.ndarray, np.ndarray]:
    """Convert GCJ-02 longitude/latitude to WGS84 by fixed-point iteration.

    Starts from the common one-step approximation (error up to about 1e-5 degree, i.e. a
    metre) and repeats ``w <- w - (gcj(w) - g)`` until every correction is below ``tol``
    (default 1e-7 degree, about 1 cm). Because each step shrinks the error about a
    thousandfold, the result is in practice accurate to about 1e-10 degree: converting it back
    with wgs84_to_gcj02 gives the input. Points outside China are returned unchanged.
    """
    g_lon, g_lat = _as_arrays(lon, lat)
    w_lon, w_lat = g_lon.copy(), g_lat.copy()
    for _ in range(max_iter):
        c_lon, c_lat = wgs84_to_gcj02(w_lon, w_lat)
        step_lon, step_lat = c_lon - g_lon, c_lat - g_lat
        w_lon, w_lat = w_lon - step_lon, w_lat - step_lat
        if _converged(step_lon, step_lat, tol):
            break
    else:  # pragma: no cover - the contraction converges in 2-3 steps inside China
        raise ArithmeticError(f"gcj02_to_wgs84 did not converge to {tol} degree")
    # Re-apply the out_of_china rule on the *input*, as GCJ-02 defines it on the input side.
    outside = out_of_china(g_lon, g_lat)
    return np.where(outside, g_lon, w_lon), np.where(outside, g_lat, w_lat)


def gcj02_to_bd09(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Convert GCJ-02 longitude/latitude to BD-09 (Baidu).

    Accuracy: exact evaluation of Baidu's public formula in float64. Applied everywhere
    (Baidu's shift has no out-of-China rule).
    """
    x, y = _as_arrays(lon, lat)
    z = np.hypot(x, y) + 0.00002 * np.sin(y * X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(
    lon, lat, *, tol: float = _TOLERANCE_DEG, max_iter: int = _MAX_ITER
) -> tuple[np.ndarray, np.ndarray]:
    """Convert BD-09 longitude/latitude to GCJ-02.

    Starts from the published one-step inverse (error around 1e-6 degree, 0.1 m) and refines it
    by fixed-point iteration until every correction is below ``tol`` (default 1e-7 degree), so
    gcj02_to_bd09 of the result gives back the input to about 1e-10 degree.
    """
    b_lon, b_lat = _as_arrays(lon, lat)
    g_lon, g_lat = _bd09_to_gcj02_approx(b_lon, b_lat)
    for _ in range(max_iter):
        c_lon, c_lat = gcj02_to_bd09(g_lon, g_lat)
        step_lon, step_lat = c_lon - b_lon, c_lat - b_lat
        g_lon, g_lat = g_lon - step_lon, g_lat - step_lat
        if _converged(step_lon, step_lat, tol):
            break
    else:  # pragma: no cover
        raise ArithmeticError(f"bd09_to_gcj02 did not converge to {tol} degree")
    return g_lon, g_lat


def wgs84_to_bd09(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Convert WGS84 longitude/latitude to BD-09 (through GCJ-02).

    Accuracy: that of wgs84_to_gcj02 followed by gcj02_to_bd09.
    """
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Convert BD-09 longitude/latitude to WGS84 (through GCJ-02).

    Accuracy: both inverses are iterated to below 1e-7 degree; in practice the round trip
    wgs84 -> bd09 -> wgs84 is exact to about 1e-9 degree.
    """
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def _as_arrays(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Broadcast the inputs to float64 arrays (copies, so callers' arrays are never touched)."""
    lon, lat = np.broadcast_arrays(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
    return lon.astype(np.float64, copy=True), lat.astype(np.float64, copy=True)


def _converged(step_lon: np.ndarray, step_lat: np.ndarray, tol: float) -> bool:
    """True when every finite correction is below ``tol`` (NaN inputs never converge: ignore)."""
    step = np.maximum(np.abs(step_lon), np.abs(step_lat))
    return not np.any(step[np.isfinite(step)] >= tol)


def _gcj_offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the GCJ-02 offset (dlon, dlat) in degrees at WGS84 (lon, lat)."""
    x, y = lon - 105.0, lat - 35.0
    dlat = _offset_lat_metres(x, y)
    dlon = _offset_lon_metres(x, y)
    radlat = np.radians(lat)
    magic = 1.0 - EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    # Metres to degrees on the Krasovsky ellipsoid: meridian and prime-vertical radii.
    dlat = (dlat * 180.0) / ((A * (1.0 - EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (A / sqrtmagic * np.cos(radlat) * np.pi)
    return dlon, dlat


def _offset_lat_metres(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The latitude part of the public GCJ-02 offset polynomial (x, y relative to 105E, 35N)."""
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return ret


def _offset_lon_metres(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The longitude part of the public GCJ-02 offset polynomial (x, y relative to 105E, 35N)."""
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return ret


def _bd09_to_gcj02_approx(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Baidu's published one-step inverse, used as the starting point of the iteration."""
    x, y = lon - 0.0065, lat - 0.006
    z = np.hypot(x, y) - 0.00002 * np.sin(y * X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * X_PI)
    return z * np.cos(theta), z * np.sin(theta)
