"""Read area polygons and record points from the files other systems export.

Two entry points:

- :func:`read_areas` reads polygons (GeoJSON, GeoPackage, zipped or plain Shapefile) and
  returns them in EPSG:4326, refusing anything the join could not trust.
- :func:`read_points` reads points (those vector formats, CSV or XLSX) and returns every input
  row: rows that cannot be placed are kept with NaN lon/lat and listed as problems, so nothing
  is ever dropped silently.

Bad input raises :class:`~geo.errors.InputFileError` naming the file, the row or feature and the
reason. Row numbers are 0-based data rows (the ``row`` column of the result); features are
0-based, with their code or name when the file has one.

Coordinates are converted with :mod:`geo.crs`; the source CRS is never guessed beyond one rule:
a file that declares no CRS is taken as WGS84 (EPSG:4326) when, and only when, its coordinates
fit the longitude/latitude range.
"""

from __future__ import annotations

import codecs
import io
import math
import re
import unicodedata
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import geopandas
import numpy as np
import pandas as pd
import pyogrio
import shapely

from geo.errors import BadParameter, InputFileError
from geo.spatial.crs import WGS84, CrsSpec, crs_from_pyproj, geometry_to_wgs84, parse_crs, to_wgs84

# Column names recognised as coordinates, compared case-insensitively. Tiers: a file with both
# "经度" and "x" uses "经度" (x/y are often a projected copy next to the real lon/lat).
LON_NAMES = (("经度", "lon", "lng", "longitude"), ("x",))
LAT_NAMES = (("纬度", "lat", "latitude"), ("y",))
OUTPUT_COLUMNS = ("lon", "lat", "x", "y", "row")

# Mainland China, used to tell a swapped (lat, lon) pair when the caller gives no bounds.
CHINA_BOUNDS = (73.0, 18.0, 135.0, 54.0)
# make_valid may change a polygon's area by at most this fraction before we refuse it.
MAX_REPAIR_AREA_CHANGE = 0.01
# An upload is capped at 200 MB; an archive expanding to more than this is a zip bomb.
MAX_UNZIPPED_BYTES = 2 * 1024**3

VECTOR_SUFFIXES = {
    ".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg", ".zip": "shapezip", ".shp": "shp"
}
TABLE_SUFFIXES = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "xlsx"}
ALLOWED_FILES = (
    "GeoJSON (.geojson/.json), GeoPackage (.gpkg), zipped Shapefile (.zip), .shp, CSV (.csv) or XLSX (.xlsx)"
)

# Byte patterns that only a DTD can contain; Excel never writes one (UTF-8 and UTF-16 forms).
_DTD_MARKERS = tuple(
    marker.encode(enc)
    for marker in ("<!DOCTYPE", "<!ENTITY")
    for enc in ("utf-8", "utf-16-le", "utf-16-be")
)
_CHUNK = 1 << 20
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


@dataclass(frozen=True)
class Problem:
    """A row that could not be placed: ``row`` is the 0-based data row, ``reason`` says why."""

    row: int
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.reason}"


@dataclass
class PointsResult:
    """What read_points returns.

    ``frame`` holds every input row in input order: the original columns, float64 ``lon``/``lat``
    in WGS84 (NaN where the row could not be placed), float64 ``x``/``y`` as read, and the 0-based
    ``row``. ``problems`` lists the rows with NaN lon/lat and why. ``crs`` is the source CRS used,
    ``crs_assumed`` is True when it was defaulted to EPSG:4326, ``encoding`` the text encoding
    used (None when the format fixes it).
    """

    frame: pd.DataFrame
    problems: list[Problem] = field(default_factory=list)
    crs: CrsSpec | None = None
    crs_assumed: bool = False
    encoding: str | None = None
    # The attribute columns exactly as read, before any conversion: reports of rejected rows
    # show the user's own values (e.g. "abc" in a longitude cell), not the NaN they became.
    source_table: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def valid(self) -> pd.Series:
        """Boolean mask of the rows that have a WGS84 position."""
        return self.frame["lon"].notna() & self.frame["lat"].notna()


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------


def read_areas(path, *, crs=None, encoding=None, layer=None, default_layer=None,
               repair=True) -> geopandas.GeoDataFrame:
    """Read area polygons from a GeoJSON, GeoPackage or (zipped) Shapefile, in EPSG:4326.

    ``crs`` (text for :func:`geo.crs.parse_crs`) is the source CRS when the file declares none;
    it must agree with the file's own CRS when there is one. ``encoding`` overrides the text
    encoding of a Shapefile's attribute table (otherwise: the .cpg, else UTF-8 or GB18030
    detected). ``layer`` picks a GeoPackage layer or the .shp inside a zip; without it, a
    GeoPackage of several layers is read at ``default_layer`` when it has one by that name.

    Every feature must be a non-empty polygon with finite coordinates. Invalid polygons are
    repaired with ``shapely.make_valid``; each repair is listed in ``frame.attrs["repairs"]``
    (dicts with ``feature``, ``reason`` and ``area_change``), and a repair that changes the
    area by more than 1 % is refused. ``frame.attrs["source_crs"]`` names the source CRS.
    With ``repair=False`` invalid polygons are kept as they are and listed in
    ``frame.attrs["invalid"]`` (dicts with ``feature`` and ``reason``), for callers that must
    refuse them rather than repair them (grid boundary updates).
    """
    path = _existing_file(path)
    kind = _file_kind(path)
    if kind not in VECTOR_SUFFIXES.values():
        raise InputFileError(
            path, "areas must be polygons in a GeoJSON, GeoPackage or zipped Shapefile, not a table"
        )
    explicit = None if crs is None else parse_crs(crs)
    gdf, declared, _ = _read_vector(path, kind, encoding=encoding, layer=layer, default_layer=default_layer)
    spec, assumed = _resolve_crs(path, declared, explicit)
    labels = _feature_labels(gdf)
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    _check_polygons(path, geoms, labels)
    if spec.is_geographic:
        _check_area_lonlat(path, geoms, labels, spec, assumed)
    else:
        _check_not_degrees(path, shapely.get_coordinates(geoms), spec)
    out = geometry_to_wgs84(gdf.set_crs(None, allow_override=True), spec)
    _check_converted(path, np.asarray(out.geometry.values, dtype=object), labels, spec)
    if repair:
        out, repairs = _repair_polygons(path, out, labels)
    else:
        repairs = []
        geoms = np.asarray(out.geometry.values, dtype=object)
        out.attrs["invalid"] = [
            {"feature": labels[i], "reason": shapely.is_valid_reason(geoms[i])}
            for i in np.flatnonzero(~shapely.is_valid(geoms))
        ]
    out.attrs["repairs"] = repairs
    out.attrs["source_crs"] = spec.name
    out.attrs["crs_assumed"] = assumed
    return out


def read_points(
    path,
    *,
    crs=None,
    encoding=None,
    layer=None,
    lon_col=None,
    lat_col=None,
    bounds=None,
) -> PointsResult:
    """Read record points from CSV, XLSX, GeoJSON, GeoPackage or a (zipped) Shapefile.

    CSV may be UTF-8 (with or without BOM), UTF-16 with BOM, or GBK/GB18030 (detected; give
    ``encoding`` otherwise). XLSX is read with openpyxl in read-only mode; ``layer`` names the
    sheet (default: the first). Coordinate columns are found by name (经度/lon/lng/longitude/x
    and 纬度/lat/latitude/y, any case) or given as ``lon_col``/``lat_col``. CSV columns are kept
    as text exactly as written (codes keep their leading zeros); XLSX cells keep openpyxl's
    types. Original columns named lon/lat/x/y/row that are not the coordinate columns are kept
    as ``<name>_orig``.

    ``crs``: source CRS text; default EPSG:4326 for tables, the file's own CRS for vector files
    (a conflicting ``crs`` is an error). ``bounds=(minx, miny, maxx, maxy)`` in WGS84, the city's
    box, is only used to recognise swapped longitude/latitude (default: China). Points outside
    it are kept: the join reports them.
    """
    path = _existing_file(path)
    kind = _file_kind(path)
    explicit = None if crs is None else parse_crs(crs)
    region = _check_bounds(bounds)
    if kind in VECTOR_SUFFIXES.values():
        if lon_col is not None or lat_col is not None:
            raise BadParameter(
                "lon_col/lat_col apply to CSV and XLSX files; vector files use their point geometry"
            )
        return _points_from_vector(path, kind, explicit, encoding, layer, region)
    if kind == "csv":
        table, used_encoding = _read_csv(path, encoding)
    else:
        table, used_encoding = _read_xlsx(path, layer), None
    lon_name = _find_column(path, table.columns, lon_col, LON_NAMES, "longitude", "lon_col")
    lat_name = _find_column(path, table.columns, lat_col, LAT_NAMES, "latitude", "lat_col")
    if lon_name == lat_name:
        raise InputFileError(path, f"the same column {lon_name!r} was chosen for longitude and latitude")
    spec = explicit or parse_crs(WGS84)
    return _build_points(
        path,
        table,
        (table[lon_name], table[lat_name]),
        (f"longitude ({lon_name})", f"latitude ({lat_name})"),
        spec=spec,
        assumed=explicit is None,
        region=region,
        swap_hint=f"swap the columns or pass lon_col={lat_name!r}, lat_col={lon_name!r}",
        replaced=(lon_name, lat_name),
        encoding=used_encoding,
    )


# --------------------------------------------------------------------------------------------
# File kinds, CRS resolution
# --------------------------------------------------------------------------------------------


def _existing_file(path) -> Path:
    """Return ``path`` as a Path, or raise InputFileError if it is not a readable file."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    return path


def _file_kind(path: Path) -> str:
    """Map the suffix to a reader, or refuse the file naming the allowed types."""
    suffix = path.suffix.lower()
    kind = VECTOR_SUFFIXES.get(suffix) or TABLE_SUFFIXES.get(suffix)
    if kind is None:
        raise InputFileError(path, f"unsupported file type {suffix or '(none)'!r}; allowed: {ALLOWED_FILES}")
    return kind


def _resolve_crs(path: Path, declared: CrsSpec | None, explicit: CrsSpec | None) -> tuple[CrsSpec, bool]:
    """Pick the source CRS: the file's, else the caller's, else EPSG:4326 (``assumed`` True)."""
    if declared is not None and explicit is not None and not declared.same_as(explicit):
        raise InputFileError(
            path,
            f"the file declares its CRS as {declared.label} but crs {explicit.label} was given; "
            "drop --crs or correct the file",
        )
    if declared is not None:
        return declared, False
    if explicit is not None:
        return explicit, False
    return parse_crs(WGS84), True


def _check_bounds(bounds) -> tuple[float, float, float, float]:
    """Validate the optional city box; default to China."""
    if bounds is None:
        return CHINA_BOUNDS
    try:
        minx, miny, maxx, maxy = (float(v) for v in bounds)
    except (TypeError, ValueError):
        raise BadParameter(f"bounds {bounds!r} must be four numbers (minx, miny, maxx, maxy)") from None
    if not all(map(math.isfinite, (minx, miny, maxx, maxy))) or minx >= maxx or miny >= maxy:
        raise BadParameter(f"bounds {bounds!r} must be finite with minx < maxx and miny < maxy")
    return minx, miny, maxx, maxy


def _in_box(x: np.ndarray, y: np.ndarray, box) -> np.ndarray:
    """True where (x, y) lies inside box = (minx, miny, maxx, maxy)."""
    return (x >= box[0]) & (x <= box[2]) & (y >= box[1]) & (y <= box[3])


def _outside_lonlat(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """True where a pair cannot be a longitude/latitude."""
    return (np.abs(x) > 180.0) | (np.abs(y) > 90.0)


def _check_not_degrees(path: Path, coords: np.ndarray, spec: CrsSpec) -> None:
    """A projected CRS given for data that is all within +-180/+-90 is a wrong --crs.

    Real projected data in China is hundreds of kilometres from any false origin; treating
    degrees as metres would put everything near (0, 0) without any error.
    """
    if len(coords) and not _outside_lonlat(coords[:, 0], coords[:, 1]).any():
        x, y = coords[0]
        raise InputFileError(
            path,
            f"coordinates such as ({x:.6g}, {y:.6g}) look like longitude/latitude degrees, "
            f"but crs {spec.label} is projected (metres): check --crs",
        )


def _projected_hint(x: float, y: float) -> str:
    """The message for a CRS-less file whose coordinates are not degrees."""
    return (
        f"coordinates such as ({x:.6g}, {y:.6g}) are outside the longitude/latitude range and "
        "the file has no CRS: they look projected; give their CRS with --crs "
        "(e.g. --crs EPSG:4549 for the CGCS2000 Gauss-Krüger zone of Ningbo)"
    )


# --------------------------------------------------------------------------------------------
# Vector files (pyogrio)
# --------------------------------------------------------------------------------------------


def _read_vector(path: Path, kind: str, *, encoding, layer, default_layer=None):
    """Read a vector file; return the frame, the CRS the file *declares* (None if none) and
    the attribute encoding used (None when GDAL decides, e.g. from a .cpg)."""
    source, read_encoding, layer_name = str(path), encoding, layer
    declared_in_text = True
    if kind == "geojson":
        declared_in_text = _scan_geojson(path, encoding)
    elif kind == "gpkg":
        layer_name = _pick_gpkg_layer(path, layer, default_layer)
    else:
        source, read_encoding = _shapefile_source(path, kind, encoding, layer)
        layer_name = None
    gdf = _pyogrio_read(path, source, layer_name, read_encoding)
    declared = None
    if gdf.crs is not None:
        try:
            declared = crs_from_pyproj(gdf.crs)
        except BadParameter as err:
            raise InputFileError(path, f"its CRS cannot be used: {err}") from None
        # GDAL reports WGS84 for every GeoJSON without a "crs" member (RFC 7946), which is an
        # assumption, not a declaration: an Amap export in GCJ-02 looks exactly the same.
        if not declared_in_text and declared.is_wgs84:
            declared = None
    return gdf, declared, read_encoding


def _pyogrio_read(path: Path, source: str, layer, encoding) -> geopandas.GeoDataFrame:
    """geopandas.read_file through pyogrio, with GDAL errors turned into InputFileError."""
    kwargs = {"engine": "pyogrio"}
    if layer is not None:
        kwargs["layer"] = layer
    if encoding is not None:
        kwargs["encoding"] = encoding
    try:
        with warnings.catch_warnings():
            # NaN coordinates warn inside shapely; we report them per feature instead.
            warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
            gdf = geopandas.read_file(source, **kwargs)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, pyogrio.errors.FieldError) as err:
        raise InputFileError(path, f"cannot be read: {err}") from None
    except (UnicodeDecodeError, LookupError) as err:
        raise InputFileError(path, f"cannot decode its text with encoding {encoding!r}: {err}") from None
    if not isinstance(gdf, geopandas.GeoDataFrame):
        raise InputFileError(path, "has no geometry column")
    return gdf


def _scan_geojson(path: Path, encoding) -> bool:
    """Check a GeoJSON is UTF-8 (unless ``encoding`` is given); return True if it has a "crs" member.

    Reads the file once in chunks, so large files are not held twice in memory.
    """
    decoder = codecs.getincrementaldecoder("utf-8")("strict") if encoding is None else None
    found, tail, offset = False, b"", 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            window = tail + chunk
            found = found or re.search(rb'"crs"\s*:', window) is not None
            tail = window[-16:]
            if decoder is not None:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as err:
                    raise InputFileError(
                        path,
                        f"is not valid UTF-8 (byte {offset + err.start}); GeoJSON must be UTF-8 — "
                        "if it is GBK, give --encoding gbk",
                    ) from None
            offset += len(chunk)
    return found


def _pick_gpkg_layer(path: Path, layer, default=None):
    """Return the layer to read; a GeoPackage with several layers needs ``layer``, or ``default``
    among them."""
    try:
        names = [str(name) for name, _ in pyogrio.list_layers(path)]
    except pyogrio.errors.DataSourceError as err:
        raise InputFileError(path, f"is not a readable GeoPackage: {err}") from None
    if layer is not None:
        if layer not in names:
            raise InputFileError(path, f"has no layer {layer!r}; layers: {', '.join(names)}")
        return layer
    if default is not None and default in names:
        return default
    if len(names) != 1:
        raise InputFileError(path, f"has {len(names)} layers ({', '.join(names)}); choose one with --layer")
    return names[0]


def _feature_labels(gdf: pd.DataFrame) -> list[str]:
    """Label features for messages: "#3 (adcode=330212)" when the file has an id-like column."""
    lowered = {str(c).lower(): c for c in gdf.columns if c != gdf.geometry.name}
    id_names = ("code", "adcode", "id", "编码", "name", "名称")
    key = next((lowered[k] for k in id_names if k in lowered), None)
    if key is None:
        return [f"#{i}" for i in range(len(gdf))]
    return [f"#{i} ({key}={v})" for i, v in enumerate(gdf[key].tolist())]


# --------------------------------------------------------------------------------------------
# Shapefiles and their attribute encoding
# --------------------------------------------------------------------------------------------


@dataclass
class _ShapeParts:
    """Where a shapefile's parts are: the GDAL path of the .shp, the .dbf bytes and .cpg text."""

    source: str
    dbf: bytes | None
    cpg: str | None


def _shapefile_source(path: Path, kind: str, encoding, layer) -> tuple[str, str | None]:
    """Return the GDAL path of the shapefile and the encoding to read it with (None: the .cpg).

    Without a .cpg GDAL would decode the .dbf as ISO-8859-1 and turn GBK names into mojibake,
    so the encoding is then detected here: UTF-8 if every string is valid UTF-8, else GB18030
    if every string decodes cleanly, else the caller must say.
    """
    parts = _zip_shape_parts(path, layer) if kind == "shapezip" else _disk_shape_parts(path)
    texts = _dbf_texts(path, parts.dbf) if parts.dbf is not None else []
    if encoding is not None:
        _verify_encoding(path, texts, encoding, f"encoding {encoding!r}")
        return parts.source, encoding
    if parts.cpg is not None:
        codec = _codec_from_cpg(parts.cpg)
        if codec is not None:
            _verify_encoding(path, texts, codec, f"the .cpg's encoding {parts.cpg.strip()!r}")
        return parts.source, None
    return parts.source, _detect_dbf_encoding(path, texts)


def _zip_shape_parts(path: Path, layer) -> _ShapeParts:
    """Find the .shp (chosen by ``layer`` if several), .dbf and .cpg inside a zip."""
    try:
        with zipfile.ZipFile(path) as zf:
            _check_unzipped_size(path, zf)
            names = [n for n in zf.namelist() if not n.startswith("__MACOSX/")]
            shp = _pick_shp(path, [n for n in names if n.lower().endswith(".shp")], layer)
            stem = shp[:-4].lower()
            siblings = {n[len(stem):].lower(): n for n in names if n.lower().startswith(stem)}
            dbf = zf.read(siblings[".dbf"]) if ".dbf" in siblings else None
            cpg = zf.read(siblings[".cpg"]).decode("ascii", "replace") if ".cpg" in siblings else None
    except zipfile.BadZipFile as err:
        raise InputFileError(path, f"is not a readable zip archive: {err}") from None
    return _ShapeParts(f"/vsizip/{path.resolve()}/{shp}", dbf, cpg)


def _disk_shape_parts(path: Path) -> _ShapeParts:
    """Find the .dbf and .cpg next to a .shp on disk (any case of the suffix)."""
    stem = path.stem.lower()
    siblings = {p.suffix.lower(): p for p in path.parent.iterdir() if p.stem.lower() == stem}
    dbf = siblings[".dbf"].read_bytes() if ".dbf" in siblings else None
    cpg = siblings[".cpg"].read_text("ascii", "replace") if ".cpg" in siblings else None
    return _ShapeParts(str(path), dbf, cpg)


def _pick_shp(path: Path, shps: list[str], layer) -> str:
    """Choose the .shp inside a zip: the only one, or the one named by ``layer``."""
    if not shps:
        raise InputFileError(path, "the zip holds no .shp file; a zipped Shapefile needs .shp, .shx and .dbf")
    stems = ", ".join(Path(s).stem for s in shps)
    if layer is not None:
        match = [s for s in shps if Path(s).stem == layer or s == layer]
        if len(match) != 1:
            raise InputFileError(path, f"has no shapefile {layer!r}; found: {stems}")
        return match[0]
    if len(shps) > 1:
        raise InputFileError(path, f"holds {len(shps)} shapefiles ({stems}); choose one with --layer")
    return shps[0]


def _check_unzipped_size(path: Path, zf: zipfile.ZipFile) -> None:
    """Refuse archives that expand beyond MAX_UNZIPPED_BYTES (zip bombs)."""
    total = sum(info.file_size for info in zf.infolist())
    if total > MAX_UNZIPPED_BYTES:
        raise InputFileError(
            path, f"expands to {total / 1e6:.0f} MB, more than the {MAX_UNZIPPED_BYTES / 1e6:.0f} MB allowed"
        )


def _dbf_texts(path: Path, dbf: bytes) -> list[tuple[int, str, bytes]]:
    """Return (record, field, raw bytes) for every non-ASCII character value and field name.

    Field names come first with record -1. Parsing is vectorised with numpy so a large table
    costs little: only values holding non-ASCII bytes are looked at one by one.
    """
    try:
        n_records = int.from_bytes(dbf[4:8], "little")
        header_len = int.from_bytes(dbf[8:10], "little")
        record_len = int.from_bytes(dbf[10:12], "little")
        fields = _dbf_fields(dbf, header_len)
        body = np.frombuffer(dbf, dtype=np.uint8, count=n_records * record_len, offset=header_len)
    except (ValueError, IndexError):
        raise InputFileError(path, "the .dbf attribute table is damaged") from None
    records = body.reshape(n_records, record_len)
    texts = [(-1, name.decode("latin-1"), name) for name, _, _, _ in fields if not name.isascii()]
    for name, ftype, start, length in fields:
        if ftype != b"C":
            continue
        block = records[:, start : start + length]
        for rec in np.flatnonzero((block >= 0x80).any(axis=1)):
            texts.append((int(rec), name.decode("latin-1"), block[rec].tobytes().rstrip(b" \x00")))
    return texts


def _dbf_fields(dbf: bytes, header_len: int) -> list[tuple[bytes, bytes, int, int]]:
    """Parse the field descriptors: (raw name, type, offset in record, length)."""
    fields, offset, pos = [], 1, 32  # offset 0 of a record is the deletion flag
    while pos + 32 <= header_len and dbf[pos] != 0x0D:
        desc = dbf[pos : pos + 32]
        name = desc[:11].split(b"\x00", 1)[0]
        fields.append((name, desc[11:12], offset, desc[16]))
        offset += desc[16]
        pos += 32
    return fields


def _detect_dbf_encoding(path: Path, texts) -> str:
    """UTF-8 if every value is valid UTF-8, else GB18030 if every value decodes cleanly."""
    raw = [t[2] for t in texts]
    if _all_decode(raw, "utf-8"):
        return "UTF-8"
    if _all_decode(raw, "gb18030"):
        return "GB18030"
    raise InputFileError(
        path,
        "the attribute table has no .cpg and is neither UTF-8 nor GBK/GB18030; "
        "give its encoding with --encoding (e.g. --encoding big5)",
    )


def _verify_encoding(path: Path, texts, codec: str, what: str) -> None:
    """Raise InputFileError naming the first record that does not decode with ``codec``."""
    try:
        codecs.lookup(codec)
    except LookupError:
        raise BadParameter(f"unknown encoding {codec!r}; use a name such as utf-8, gbk, gb18030") from None
    for record, name, raw in texts:
        if not _decodes_cleanly(raw, codec):
            where = "a field name" if record < 0 else f"field {name!r}"
            raise InputFileError(
                path,
                f"{where} is not valid text in {what}; give the right encoding with --encoding",
                row=None if record < 0 else record,
            )


def _codec_from_cpg(text: str) -> str | None:
    """Map a .cpg's content (e.g. "UTF-8", "GBK", "936", "ANSI 1252") to a Python codec name."""
    name = text.strip().upper().removeprefix("ANSI").strip()
    if name.isdigit():
        name = "utf-8" if name == "65001" else f"cp{name}"
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None  # GDAL may still know it; we just cannot double-check


def _all_decode(raw: list[bytes], codec: str) -> bool:
    """True if every byte string decodes cleanly with ``codec``."""
    return all(_decodes_cleanly(r, codec) for r in raw)


def _decodes_cleanly(raw: bytes, codec: str) -> bool:
    """Strict decode, and no control, private-use or unassigned characters in the result.

    GB18030 can map almost any byte pair to *something*; text that only decodes into
    private-use or unassigned code points is mojibake, not Chinese.
    """
    try:
        text = raw.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return False
    return _is_clean_text(text)


def _is_clean_text(text: str) -> bool:
    """No replacement, control, private-use, surrogate or unassigned characters outside ASCII.

    Only the distinct non-ASCII characters are looked at, so a large file costs one regex
    pass; ASCII bytes decode to themselves in every codec we try, so they prove nothing.
    """
    for ch in set(_NON_ASCII.findall(text)):
        if ch == "\ufffd" or unicodedata.category(ch) in ("Cc", "Co", "Cn", "Cs"):
            return False
    return True


# --------------------------------------------------------------------------------------------
# Areas: checks and repairs
# --------------------------------------------------------------------------------------------


def _check_polygons(path: Path, geoms: np.ndarray, labels: list[str]) -> None:
    """Every feature must be a non-empty (multi)polygon with finite coordinates."""
    for i, geom in enumerate(geoms):
        if geom is None:
            raise InputFileError(path, "has no geometry", feature=labels[i])
        if geom.is_empty:
            raise InputFileError(path, "has an empty geometry", feature=labels[i])
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            raise InputFileError(path, f"is a {geom.geom_type}; areas must be polygons", feature=labels[i])
    coords, index = shapely.get_coordinates(geoms, return_index=True)
    bad = ~np.isfinite(coords).all(axis=1)
    if bad.any():
        i = int(index[bad][0])
        raise InputFileError(path, "has NaN or infinite coordinates", feature=labels[i])


def _check_area_lonlat(
    path: Path, geoms: np.ndarray, labels: list[str], spec: CrsSpec, assumed: bool
) -> None:
    """For degrees: refuse (lat, lon) order and values that cannot be longitude/latitude."""
    b = shapely.bounds(geoms)
    minx, miny, maxx, maxy = b.T
    inside = _in_box(minx, miny, CHINA_BOUNDS) & _in_box(maxx, maxy, CHINA_BOUNDS)
    swapped = ~inside & _in_box(miny, minx, CHINA_BOUNDS) & _in_box(maxy, maxx, CHINA_BOUNDS)
    if swapped.any():
        i = int(np.flatnonzero(swapped)[0])
        message = (
            f"coordinates look swapped: ({minx[i]:.6g}, {miny[i]:.6g}) reads as (latitude, longitude) "
            "in China; the file must store (longitude, latitude)"
        )
        raise InputFileError(path, message, feature=None if swapped.all() else labels[i])
    out = _outside_lonlat(minx, miny) | _outside_lonlat(maxx, maxy)
    if out.any():
        i = int(np.flatnonzero(out)[0])
        x, y = (minx[i], miny[i]) if _outside_lonlat(minx[i:i + 1], miny[i:i + 1])[0] else (maxx[i], maxy[i])
        if assumed:
            raise InputFileError(path, _projected_hint(x, y))
        message = (
            f"coordinates such as ({x:.6g}, {y:.6g}) are outside the longitude/latitude range "
            f"of {spec.label}"
        )
        raise InputFileError(path, message, feature=labels[i])


def _check_converted(path: Path, geoms: np.ndarray, labels: list[str], spec: CrsSpec) -> None:
    """PROJ returns inf for points outside a projection's domain: name the feature."""
    coords, index = shapely.get_coordinates(geoms, return_index=True)
    bad = ~np.isfinite(coords).all(axis=1)
    if bad.any():
        i = int(index[bad][0])
        raise InputFileError(path, f"cannot be converted from {spec.label} to WGS84", feature=labels[i])


def _repair_polygons(path: Path, gdf: geopandas.GeoDataFrame, labels: list[str]):
    """Repair invalid polygons with make_valid; refuse repairs that change the area by > 1 %."""
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    repairs = []
    for i in np.flatnonzero(~shapely.is_valid(geoms)):
        reason = shapely.is_valid_reason(geoms[i])
        # "structure" keeps polygons polygonal (no stray lines or points in a collection).
        fixed = shapely.make_valid(geoms[i], method="structure", keep_collapsed=False)
        change = _area_change(geoms[i], fixed)
        polygonal = not fixed.is_empty and fixed.geom_type in ("Polygon", "MultiPolygon")
        if not polygonal or change > MAX_REPAIR_AREA_CHANGE:
            raise InputFileError(
                path,
                f"invalid polygon ({reason}); repairing it would change its area by "
                f"{_percent(change)}, more than {MAX_REPAIR_AREA_CHANGE:.0%}: fix the feature",
                feature=labels[i],
            )
        geoms[i] = fixed
        repairs.append({"feature": labels[i], "reason": reason, "area_change": change})
    if repairs:
        gdf = gdf.copy()
        gdf[gdf.geometry.name] = geopandas.GeoSeries(geoms, index=gdf.index, crs=gdf.crs)
    return gdf, repairs


def _area_change(before, after) -> float:
    """Relative area change; a zero-area original (e.g. a bow tie) counts as infinite change."""
    a0, a1 = before.area, after.area
    if a0 <= 0:
        return 0.0 if a1 <= 0 else math.inf
    return abs(a1 - a0) / a0


def _percent(value: float) -> str:
    """Format a fraction for messages, coping with infinity."""
    return "an unbounded amount" if math.isinf(value) else f"{value:.1%}"


# --------------------------------------------------------------------------------------------
# Points
# --------------------------------------------------------------------------------------------


def _points_from_vector(path: Path, kind: str, explicit, encoding, layer, region) -> PointsResult:
    """Points from a vector file: x/y from Point geometries, other geometries are problems."""
    gdf, declared, used_encoding = _read_vector(path, kind, encoding=encoding, layer=layer)
    spec, assumed = _resolve_crs(path, declared, explicit)
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    is_point = shapely.get_type_id(geoms) == 0
    x = np.where(is_point, shapely.get_x(geoms), np.nan)
    y = np.where(is_point, shapely.get_y(geoms), np.nan)
    early = {}
    for i in np.flatnonzero(~is_point):
        geom = geoms[i]
        early[int(i)] = "has no geometry" if geom is None else f"is a {geom.geom_type}, not a point"
    for i in np.flatnonzero(is_point & shapely.is_empty(geoms)):
        early[int(i)] = "has an empty point"
    table = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    return _build_points(
        path,
        table,
        (pd.Series(x), pd.Series(y)),
        ("x", "y"),
        spec=spec,
        assumed=assumed,
        region=region,
        swap_hint="the file must store (longitude, latitude)",
        replaced=(),
        encoding=used_encoding,
        early=early,
    )


def _build_points(
    path, table, raw_xy, labels, *, spec, assumed, region, swap_hint, replaced, encoding, early=None
):
    """Parse, check and convert coordinates; assemble the PointsResult."""
    reasons: dict[int, list[str]] = {}
    for row, reason in (early or {}).items():
        reasons.setdefault(row, []).append(reason)
    x = _coordinate_values(raw_xy[0], labels[0], reasons, skip=early or {})
    y = _coordinate_values(raw_xy[1], labels[1], reasons, skip=early or {})
    lon, lat = _place(path, x, y, spec, assumed, region, swap_hint, reasons)
    frame = _assemble_frame(table, replaced, x, y, lon, lat)
    problems = [Problem(row, "; ".join(r)) for row, r in sorted(reasons.items())]
    return PointsResult(frame, problems, spec, assumed, encoding, table.reset_index(drop=True))


def _coordinate_values(raw: pd.Series, label: str, reasons: dict, skip: dict) -> np.ndarray:
    """Convert one coordinate column to float64, recording why a value is unusable."""
    values = raw.reset_index(drop=True)
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if kind in ("string", "empty"):
        # CSV: text only, so the vectorised string methods apply (fast on millions of rows).
        values = values.str.strip()
        blank = values.isna() | values.eq("").fillna(False).astype(bool)
        numbers = pd.to_numeric(values.where(~blank), errors="coerce").to_numpy(np.float64, na_value=np.nan)
    elif values.dtype == object:
        # XLSX: numbers, text, dates and None mixed in one column.
        values = values.map(lambda v: v.strip() if isinstance(v, str) else v).astype(object)
        empty = np.fromiter((isinstance(v, str) and v == "" for v in values), dtype=bool, count=len(values))
        blank = pd.Series(values.isna().to_numpy() | empty, index=values.index)
        numbers = pd.to_numeric(values.where(~blank), errors="coerce").to_numpy(np.float64, na_value=np.nan)
    else:
        # Numbers from geometries: NaN there is a NaN coordinate, not an empty cell.
        blank = pd.Series(False, index=values.index)
        numbers = values.to_numpy(np.float64, na_value=np.nan)
    bad = ~np.isfinite(numbers)
    for i in np.flatnonzero(bad):
        if int(i) in skip:
            continue
        reason = _value_reason(values.iloc[i], bool(blank.iloc[i]), numbers[i], label)
        reasons.setdefault(int(i), []).append(reason)
    return np.where(bad, np.nan, numbers)


def _value_reason(value, blank: bool, number: float, label: str) -> str:
    """Why a single coordinate cannot be used."""
    if blank:
        return f"missing {label}"
    if np.isinf(number):
        return f"{label} is infinite ({value})"
    is_nan_text = isinstance(value, str) and value.lower() == "nan"
    is_nan_number = isinstance(value, (float, np.floating))
    if is_nan_text or is_nan_number:
        return f"{label} is NaN"
    return f"{label} {value!r} is not a number"


def _place(path, x, y, spec: CrsSpec, assumed: bool, region, swap_hint: str, reasons: dict):
    """Check lon/lat plausibility and convert to WGS84; unusable rows get NaN and a reason."""
    finite = np.isfinite(x) & np.isfinite(y)
    usable = finite.copy()
    if spec.is_geographic:
        usable &= ~_swapped_rows(path, x, y, finite, region, swap_hint, reasons)
        usable &= ~_out_of_range_rows(path, x, y, usable, spec, assumed, reasons)
    else:
        _check_not_degrees(path, np.column_stack([x[finite], y[finite]]), spec)
    lon = np.full(x.shape, np.nan)
    lat = np.full(x.shape, np.nan)
    if usable.any():
        lon[usable], lat[usable] = to_wgs84(x[usable], y[usable], spec)
    failed = usable & ~(np.isfinite(lon) & np.isfinite(lat))
    for i in np.flatnonzero(failed):
        reasons.setdefault(int(i), []).append(
            f"({x[i]:.6g}, {y[i]:.6g}) cannot be converted from {spec.label} to WGS84"
        )
    lon[failed] = lat[failed] = np.nan
    return lon, lat


def _swapped_rows(path, x, y, finite, region, swap_hint, reasons) -> np.ndarray:
    """Rows whose (lon, lat) lies outside ``region`` but whose (lat, lon) lies inside it."""
    swapped = finite & ~_in_box(x, y, region) & _in_box(y, x, region)
    if finite.any() and swapped[finite].all():
        i = int(np.flatnonzero(swapped)[0])
        raise InputFileError(
            path,
            f"longitude and latitude look swapped in every row: ({x[i]:.6g}, {y[i]:.6g}) is a "
            f"(latitude, longitude) pair; {swap_hint}",
        )
    where = "China" if region == CHINA_BOUNDS else "the given bounds"
    for i in np.flatnonzero(swapped):
        reasons.setdefault(int(i), []).append(
            f"longitude and latitude look swapped: ({x[i]:.6g}, {y[i]:.6g}) would lie in {where} "
            f"as ({y[i]:.6g}, {x[i]:.6g})"
        )
    return swapped


def _out_of_range_rows(path, x, y, candidates, spec: CrsSpec, assumed: bool, reasons) -> np.ndarray:
    """Rows that cannot be degrees; if none can, the file is projected: ask for its CRS."""
    out = candidates & _outside_lonlat(x, y)
    if candidates.any() and out[candidates].all():
        i = int(np.flatnonzero(out)[0])
        if assumed:
            raise InputFileError(path, _projected_hint(x[i], y[i]))
        raise InputFileError(
            path,
            f"coordinates such as ({x[i]:.6g}, {y[i]:.6g}) are outside the longitude/latitude range, "
            f"but crs {spec.label} is geographic: check --crs",
        )
    for i in np.flatnonzero(out):
        reasons.setdefault(int(i), []).append(
            f"({x[i]:.6g}, {y[i]:.6g}) is outside the longitude/latitude range"
        )
    return out


def _assemble_frame(table: pd.DataFrame, replaced, x, y, lon, lat) -> pd.DataFrame:
    """Original columns (clashing names moved to <name>_orig) plus lon, lat, x, y, row."""
    frame = table.reset_index(drop=True).copy()
    renames = {c: f"{c}_orig" for c in frame.columns if c in OUTPUT_COLUMNS and c not in replaced}
    frame = frame.rename(columns=renames)
    frame["lon"] = lon
    frame["lat"] = lat
    frame["x"] = x
    frame["y"] = y
    frame["row"] = np.arange(len(frame), dtype=np.int64)
    return frame


def _find_column(path: Path, columns, explicit, tiers, what: str, param: str) -> str:
    """Return the coordinate column: the one given, or the only one whose name is recognised."""
    columns = list(columns)
    if explicit is not None:
        if explicit in columns:
            return explicit
        listed = ", ".join(map(str, columns))
        raise InputFileError(path, f"has no column {explicit!r} ({param}); columns: {listed}")
    for names in tiers:
        matches = [c for c in columns if str(c).strip().lower() in names]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InputFileError(
                path, f"has several {what} columns ({', '.join(map(str, matches))}); choose one with {param}"
            )
    allowed = ", ".join(n for names in tiers for n in names)
    raise InputFileError(
        path,
        f"has no {what} column: expected one named {allowed} (any case) or give {param}; "
        f"columns: {', '.join(map(str, columns))}",
    )


# --------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------


def _read_csv(path: Path, encoding) -> tuple[pd.DataFrame, str]:
    """Read a CSV as text columns; return the frame and the encoding used."""
    text, used = _decode_text(path, path.read_bytes(), encoding)
    if not text.strip():
        raise InputFileError(path, "is empty")
    sep = _guess_separator(text)
    options = {"sep": sep, "dtype": str, "keep_default_na": False, "na_values": [""]}
    try:
        # pyarrow's parser is about ten times faster on a million-row export. Whatever it
        # refuses (ragged rows...) goes to pandas' C parser, whose result and messages are the
        # reference; both give the same frame for every well-formed file.
        table = pd.read_csv(io.BytesIO(text.encode("utf-8")), engine="pyarrow", **options)
    except Exception:  # noqa: BLE001 - any refusal just means "use the reference parser"
        try:
            table = pd.read_csv(io.StringIO(text), **options)
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise InputFileError(path, f"is not a well-formed CSV: {err}") from None
    table.columns = [str(c).strip() for c in table.columns]
    return table, used


def _decode_text(path: Path, raw: bytes, encoding) -> tuple[str, str]:
    """Decode a table: the given encoding, else by BOM, else UTF-8, else GB18030 if clean."""
    if encoding is not None:
        try:
            return raw.decode(encoding).removeprefix("\ufeff"), encoding
        except LookupError:
            raise BadParameter(
                f"unknown encoding {encoding!r}; use a name such as utf-8, gbk, gb18030"
            ) from None
        except UnicodeDecodeError as err:
            line = raw[: err.start].count(b"\n") + 1
            raise InputFileError(path, f"is not valid {encoding} text (line {line} of the file)") from None
    for bom, codec in _BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(codec), codec
            except UnicodeDecodeError as err:
                raise InputFileError(
                    path, f"starts with a {codec} byte-order mark but is not valid {codec}: {err}"
                ) from None
    for codec in ("utf-8", "gb18030"):
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError:
            continue
        if codec == "utf-8" or _is_clean_text(text):
            return text, codec
    raise InputFileError(
        path,
        "is neither UTF-8 nor GBK/GB18030 text; give its encoding with --encoding (e.g. --encoding big5)",
    )


def _guess_separator(text: str) -> str:
    """The most frequent of , tab ; | in the header line (exports differ by locale)."""
    header = text.split("\n", 1)[0]
    counts = {sep: header.count(sep) for sep in (",", "\t", ";", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


# --------------------------------------------------------------------------------------------
# XLSX
# --------------------------------------------------------------------------------------------


def _read_xlsx(path: Path, sheet) -> pd.DataFrame:
    """Read one sheet with openpyxl in read-only mode; the first non-empty row is the header.

    openpyxl parses with defusedxml when it is installed (it is a dependency), which refuses
    entity declarations; the archive is also checked beforehand, so the protection does not
    depend on openpyxl's import-time switch (OPENPYXL_DEFUSEDXML) or on lxml being absent.
    """
    import openpyxl
    from defusedxml import DefusedXmlException

    _check_xlsx_archive(path)
    try:
        with open(path, "rb") as fh:
            workbook = openpyxl.load_workbook(fh, read_only=True, data_only=True)
            try:
                rows = _sheet_rows(path, workbook, sheet)
            finally:
                workbook.close()
    # ElementTree's ParseError is a SyntaxError: malformed XML inside the archive. openpyxl
    # wraps parser errors in its own, so defusedxml's refusal may sit further down the chain.
    except (DefusedXmlException, zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError,
            SyntaxError) as err:
        refused = _find_cause(err, DefusedXmlException)
        if refused is not None:
            raise InputFileError(
                path,
                f"refused: the workbook's XML declares entities ({refused}); "
                "possible entity-expansion attack",
            ) from None
        raise InputFileError(path, f"is not a readable XLSX workbook: {_first_line(err)}") from None
    return _rows_to_frame(rows)


def _find_cause(err: BaseException, kind: type) -> BaseException | None:
    """Return the first exception of ``kind`` in ``err``'s cause/context chain."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, kind):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def _first_line(err: BaseException) -> str:
    """The first line of an exception's text (openpyxl's messages run over several lines)."""
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _sheet_rows(path: Path, workbook, sheet) -> list[tuple]:
    """All rows of the chosen sheet as tuples of cell values."""
    if sheet is None:
        ws = workbook.worksheets[0]
    elif sheet in workbook.sheetnames:
        ws = workbook[sheet]
    else:
        raise InputFileError(path, f"has no sheet {sheet!r}; sheets: {', '.join(workbook.sheetnames)}")
    return list(ws.iter_rows(values_only=True))


def _rows_to_frame(rows: list[tuple]) -> pd.DataFrame:
    """Header = first non-empty row; trailing empty rows (formatting only) are dropped."""
    def empty(row):
        return all(v is None or (isinstance(v, str) and not v.strip()) for v in row)

    while rows and empty(rows[0]):
        rows = rows[1:]
    while rows and empty(rows[-1]):
        rows = rows[:-1]
    if not rows:
        return pd.DataFrame()
    width = max(len(r) for r in rows)
    header = _unique_names([rows[0][i] if i < len(rows[0]) else None for i in range(width)])
    data = [tuple(r) + (None,) * (width - len(r)) for r in rows[1:]]
    return pd.DataFrame(data, columns=header, dtype=object)


def _unique_names(names: list) -> list[str]:
    """Header cells as unique strings, like pandas does for CSV ("a", "a.1", "Unnamed: 3")."""
    out, seen = [], {}
    for i, name in enumerate(names):
        base = f"Unnamed: {i}" if name is None or not str(name).strip() else str(name).strip()
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.append(base if count == 0 else f"{base}.{count}")
    return out


def _check_xlsx_archive(path: Path) -> None:
    """Refuse non-zip files, zip bombs and any XML part that carries a DTD (<!DOCTYPE/<!ENTITY).

    Spreadsheet XML never needs a DTD; one in a workbook is an entity-expansion ("billion
    laughs") or external-entity payload. Each part is streamed in chunks, so a large part is
    never held in memory.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            _check_unzipped_size(path, zf)
            for info in zf.infolist():
                if info.filename.lower().endswith((".xml", ".rels", ".vml")) and _has_dtd(zf, info):
                    raise InputFileError(
                        path,
                        f"refused: part {info.filename} declares a DTD or XML entities, which "
                        "spreadsheets never need (possible entity-expansion attack)",
                    )
    except zipfile.BadZipFile:
        raise InputFileError(path, "is not an XLSX workbook (not a zip archive)") from None


def _has_dtd(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    """True if the part contains a DTD marker, looking across chunk borders."""
    tail = b""
    with zf.open(info) as fh:
        while chunk := fh.read(_CHUNK):
            window = tail + chunk
            if any(marker in window for marker in _DTD_MARKERS):
                return True
            tail = window[-32:]
    return False
