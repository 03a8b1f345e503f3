"""Coordinate systems of incoming data and their conversion to WGS84 (EPSG:4326).

Records arrive in WGS84 / CGCS2000 (EPSG:4326 / 4490), a Gauss-Krüger zone (EPSG:4549),
Web Mercator, GCJ-02 (Amap, Tencent) or BD-09 (Baidu). PROJ knows the first kinds; GCJ-02 and
BD-09 are handled by :mod:`geo.chinacrs`. Nothing here guesses: every function takes the source
CRS explicitly, and data that carries its own CRS must agree with the one passed in.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import geopandas
import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from geo.errors import BadParameter
from geo.spatial import chinacrs

WGS84 = "EPSG:4326"
ALLOWED_TEXT = '"EPSG:<code>" (e.g. EPSG:4326, EPSG:4490, EPSG:4549, EPSG:3857), "wgs84", "gcj02" or "bd09"'

_EPSG_RE = re.compile(r"^\s*epsg\s*:\s*(\d{1,6})\s*$", re.IGNORECASE)
# Spellings seen in exports and in our own CLI help; compared after lower-casing and removing
# "-", "_" and spaces.
_ALIASES = {"wgs84": WGS84, "gcj02": "gcj02", "bd09": "bd09", "bd09ll": "bd09"}
_OFFSET_KINDS = ("gcj02", "bd09")


@dataclass(frozen=True)
class CrsSpec:
    """A source coordinate system: a PROJ CRS (``kind="proj"``) or GCJ-02 / BD-09.

    ``name`` is the canonical text: "EPSG:4549", "gcj02", "bd09", or for a file's CRS without an
    EPSG code its authority string or WKT. Specs are hashable, so transformers can be cached.
    """

    kind: str  # "proj", "gcj02" or "bd09"
    name: str

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        """A short human-readable name (the WKT of a custom CRS is shortened to its name)."""
        if self.kind == "proj" and not self.name.upper().startswith(("EPSG:", "OGC:")):
            return self.pyproj_crs.name
        return self.name

    @property
    def pyproj_crs(self) -> CRS | None:
        """The pyproj CRS, or None for GCJ-02 / BD-09 (which PROJ does not know)."""
        return _pyproj_crs(self.name) if self.kind == "proj" else None

    @property
    def is_geographic(self) -> bool:
        """True when coordinates are longitude/latitude degrees (GCJ-02 and BD-09 included)."""
        return self.kind in _OFFSET_KINDS or self.pyproj_crs.is_geographic

    @property
    def is_wgs84(self) -> bool:
        """True for EPSG:4326 and its equivalents (e.g. OGC:CRS84): no conversion needed."""
        return self.kind == "proj" and self.same_as(_WGS84_SPEC)

    def same_as(self, other: CrsSpec) -> bool:
        """True when both describe the same CRS (axis order ignored: we always use lon, lat)."""
        if self.kind != other.kind:
            return False
        if self.kind != "proj":
            return True
        return self.name == other.name or self.pyproj_crs.equals(
            other.pyproj_crs, ignore_axis_order=True
        )


_WGS84_SPEC = CrsSpec("proj", WGS84)


def parse_crs(text) -> CrsSpec:
    """Parse a CRS given by a user: "EPSG:NNNN", "wgs84", "gcj02" or "bd09" (any case).

    Any EPSG code pyproj knows is accepted as long as it is a horizontal 2D CRS (geographic
    or projected). A CrsSpec is returned unchanged. Anything else raises BadParameter naming
    the value and what is allowed.
    """
    if isinstance(text, CrsSpec):
        return text
    if not isinstance(text, str) or not text.strip():
        raise BadParameter(f"crs {text!r} is not a CRS; allowed: {ALLOWED_TEXT}")
    key = re.sub(r"[-_\s]", "", text).lower()
    if key in _ALIASES:
        alias = _ALIASES[key]
        return CrsSpec("proj", alias) if alias == WGS84 else CrsSpec(alias, alias)
    match = _EPSG_RE.match(text)
    if not match:
        raise BadParameter(f"crs {text!r} is not recognised; allowed: {ALLOWED_TEXT}")
    name = f"EPSG:{int(match.group(1))}"
    try:
        crs = _pyproj_crs(name)
    except CRSError:
        raise BadParameter(f"crs {text!r}: unknown EPSG code; allowed: {ALLOWED_TEXT}") from None
    _check_horizontal(crs, text)
    return CrsSpec("proj", name)


def crs_from_pyproj(crs: CRS) -> CrsSpec:
    """Wrap the CRS a file declares (as read by pyogrio/geopandas) in a CrsSpec.

    A 3D or compound CRS is reduced to its horizontal part (heights are not used here).
    Raises BadParameter for CRSs that cannot hold 2D map coordinates (vertical, geocentric).
    """
    crs = CRS.from_user_input(crs)
    if len(crs.axis_info) != 2 and not crs.is_geocentric:
        crs = crs.to_2d()
    _check_horizontal(crs, crs.name)
    epsg = crs.to_epsg()
    if epsg is not None:
        return CrsSpec("proj", f"EPSG:{epsg}")
    authority = crs.to_authority()
    name = ":".join(authority) if authority else crs.to_wkt()
    return CrsSpec("proj", name)


def to_wgs84(x, y, crs) -> tuple[np.ndarray, np.ndarray]:
    """Convert coordinates from ``crs`` (a CrsSpec or text for parse_crs) to WGS84 lon/lat.

    ``x``/``y`` are easting/northing or longitude/latitude, always in that order whatever the
    CRS's official axis order. Returns float64 arrays. Coordinates PROJ cannot convert come
    back as inf or NaN; callers decide how to report them.
    """
    spec = parse_crs(crs)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if spec.kind == "gcj02":
        return chinacrs.gcj02_to_wgs84(x, y)
    if spec.kind == "bd09":
        return chinacrs.bd09_to_wgs84(x, y)
    if spec.is_wgs84:
        return x.copy(), y.copy()
    lon, lat = _transformer(spec.name).transform(x, y)
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


def geometry_to_wgs84(data, crs):
    """Return a copy of a GeoSeries or GeoDataFrame with its geometries converted to WGS84.

    ``crs`` is the source CRS (CrsSpec or text). If the data already carries a CRS, it must be
    the same one: a mismatch raises BadParameter rather than being silently reprojected. The
    result has ``crs == "EPSG:4326"``. Works for any geometry type (shapely.transform).
    """
    spec = parse_crs(crs)
    if data.crs is not None and not crs_from_pyproj(data.crs).same_as(spec):
        raise BadParameter(
            f"the data is in {crs_from_pyproj(data.crs).label} but crs {spec.label} was given; "
            "drop one of them or clear the data's CRS first"
        )
    geoms = np.asarray(data.geometry.values, dtype=object)
    converted = shapely.transform(
        geoms, lambda gx, gy: to_wgs84(gx, gy, spec), interleaved=False
    )
    if isinstance(data, geopandas.GeoDataFrame):
        out = data.copy()
        out[out.geometry.name] = geopandas.GeoSeries(converted, index=out.index)
        return out.set_crs(WGS84, allow_override=True)
    return geopandas.GeoSeries(converted, index=data.index, crs=WGS84, name=data.name)


@functools.lru_cache(maxsize=64)
def _pyproj_crs(name: str) -> CRS:
    """Build (once) the pyproj CRS for a canonical name."""
    return CRS.from_user_input(name)


@functools.lru_cache(maxsize=64)
def _transformer(name: str) -> Transformer:
    """One Transformer per source CRS; pyproj >= 3.1 makes them safe to share between threads."""
    return Transformer.from_crs(_pyproj_crs(name), WGS84, always_xy=True)


def _check_horizontal(crs: CRS, shown) -> None:
    """Refuse CRSs that do not describe 2D positions on a map."""
    if not (crs.is_geographic or crs.is_projected) or len(crs.axis_info) != 2:
        raise BadParameter(
            f"crs {shown!r} is a {crs.type_name}, not a 2D geographic or projected CRS; "
            f"allowed: {ALLOWED_TEXT}"
        )
