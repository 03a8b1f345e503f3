"""Import records (one point per visit, quarantine case, appeal...) into the store.

:func:`ingest_file` reads a CSV, XLSX, GeoJSON, GeoPackage or zipped Shapefile with
:func:`geo.loaders.read_points`, sorts **every** row into exactly one of

- *accepted*: new, or a corrected version of a record already in the store ("replaced");
- *duplicate*: the same record again (already in the store, or repeated in this file);
- *rejected*: with a reason (outside the city, NaN coordinate, unparseable date, ...),

joins the accepted rows to their grids, and writes the records and the change to the counts
in **one** SQLite transaction, so a killed import leaves the store exactly as it was and a
finished one bumps the store version (every view reloads its counts). The rejected rows go
to a CSV, each with its reason and row number, for the clerk to fix in their file.

Records are households: no exact position leaves the store. The report, its messages and the
rejects CSV quote positions rounded to 0.01 degree and marked "≈" (:func:`coarse`); a
replaced record is shown by date and grid code.

A record is identified by (metric, record id). Two rows are "the same record" when they have
the same day and the same position to within 5e-7 degree (about 5 cm): only what the atlas
stores is compared, so the same export saved as CSV or XLSX, or in another CRS, is still a
duplicate.

Counts are updated by delta (minus the old grid/day of replaced records, plus the new), which
gives exactly what a full rebuild (:func:`geo.rebuild.compute_cube`) would: both join the same
stored coordinates with the same index.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import threading
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
import pandas as pd

from geo.atlas.areas import Atlas
from geo.atlas.hierarchy import CITY_NAME
from geo.atlas.metrics import METRICS, N_DAYS, PERIOD_END, PERIOD_START, POINT_METRICS
from geo.errors import BadParameter, DataNotReady, InputFileError
from geo.ingest.engines import make_assigner
from geo.ingest.readers import CHINA_BOUNDS, LAT_NAMES, LON_NAMES, TABLE_SUFFIXES, VECTOR_SUFFIXES, read_points
from geo.settings import Settings
from geo.store import SET_META, open_store
from geo.store import counts as count_store

# Columns recognised by name (compared case-insensitively, spaces and "_" ignored);
# longitude/latitude names are the loaders' (经度/lon/lng/longitude, 纬度/lat/latitude, x/y).
ID_NAMES = ("编号", "记录编号", "记录id", "id", "recordid", "uuid", "单号", "工单号")
DATE_NAMES = ("日期", "date", "day", "记录日期", "登记日期", "走访日期", "发生日期", "时间", "datetime", "time")
METRIC_NAMES = ("metric", "指标", "指标类型")
FIELDS = ("id", "date", "lon", "lat", "metric")

# Positions closer than this (degrees, about 5 cm) are the same position.
SAME_POSITION_DEG = 5e-7
EXAMPLES_PER_REASON = 5
REPLACED_EXAMPLES = 5


@dataclass(frozen=True)
class Reason:
    """Why a row was rejected: a stable key, an English and a Chinese label."""

    key: str
    label: str
    label_zh: str


# In priority order: a row with several problems is filed under the first (all are listed in
# its detail).
REASONS = {
    r.key: r
    for r in (
        Reason("missing_id", "missing id", "缺少编号"),
        Reason("unknown_metric", "unknown metric", "未知指标"),
        Reason("missing_coordinate", "missing coordinate", "缺少坐标"),
        Reason("nan_coordinate", "NaN coordinate", "坐标为NaN"),
        Reason("swapped", "latitude and longitude probably swapped", "经纬度可能颠倒"),
        Reason("bad_coordinate", "unusable coordinate", "坐标无法使用"),
        Reason("outside_city", "outside the city", "不在市域内"),
        Reason("missing_date", "missing date", "缺少日期"),
        Reason("unparseable_date", "unparseable date", "日期无法识别"),
        Reason("date_outside_period", "date outside the allowed period", "日期超出允许范围"),
        Reason("conflicting_id", "same id twice in this file with different content", "同一文件中编号重复且内容不同"),
    )
}
_REASON_KEYS = tuple(REASONS)


# --------------------------------------------------------------------------------------------
# Privacy: no exact position leaves the store
# --------------------------------------------------------------------------------------------
# A record is a household (no household-level point reaches a browser). The report,
# the CLI and the rejected-rows CSV therefore show positions only to 0.01 degree (about 1 km:
# a neighbourhood, not a door, yet enough to see a swapped pair or a point in another city)
# and projected metres to 1 km, each marked "≈". The clerk finds the row in their own file by
# its row number and id.

COARSE_DEGREES = 2  # decimals kept
COARSE_METRES = 1000
_NUM = r"[-+]?(?:\d+(?:[.,]\d+)?|[.,]\d+)(?:[eE][-+]?\d+)?"
# Not inside a word, a code (EPSG:4549, WGS84) or an already coarsened "≈" number.
_NUMBER = re.compile(rf"(?<![A-Za-z0-9_:.≈]){_NUM}")
_PAIR = re.compile(rf"\(\s*({_NUM})\s*,\s*({_NUM})\s*\)")
# Degrees-minutes-seconds text such as 121°33'04"E: keep the degrees only.
_DMS = re.compile(r"(\d+)\s*[°度][\d.′″'\"\\分秒NSEW东西南北]*")


def coarse(value: float) -> str:
    """A coordinate as reports show it: degrees to 0.01° (``≈121.55``), metres (1000 and more,
    a projected CRS) to 1 km (``≈40512000``)."""
    value = float(value)
    if not np.isfinite(value):
        return str(value)
    if abs(value) >= COARSE_METRES:
        return f"≈{round(value / COARSE_METRES) * COARSE_METRES:.0f}"
    return f"≈{value:.{COARSE_DEGREES}f}"


def _is_fine(text: str, value: float) -> bool:
    """True for a number finer than a report may show: over 2 decimals, or metres."""
    decimals = re.search(r"[.,](\d+)", text.lower().split("e")[0])
    too_many = bool(decimals and len(decimals.group(1)) > COARSE_DEGREES)
    return abs(value) >= COARSE_METRES or "e" in text.lower() or too_many


def coarsen_text(text, within=None):
    """``text`` with each number finer than 0.01 coarsened by :func:`coarse`; "(x, y)" pairs always
    are. ``within(value) -> bool`` limits it to numbers that could be a coordinate (free text
    such as an id or a note is otherwise kept as written). Non-text values pass unchanged."""
    if not isinstance(text, str):
        return text

    def number(m):
        s = m.group(0)
        try:
            v = float(s.replace(",", "."))
        except ValueError:
            return s
        if not _is_fine(s, v) or within is not None and not within(v):
            return s
        # Keep a decimal comma: it may be what is wrong with the cell.
        return coarse(v).replace(".", ",") if "," in s else coarse(v)

    if within is None:
        text = _coarsen_pairs(_DMS.sub(r"\1°…", text))
    return _NUMBER.sub(number, text)


def _coarsen_pairs(text: str) -> str:
    """``text`` with each "(x, y)" pair coarsened (the loaders' messages quote positions so)."""
    return _PAIR.sub(lambda m: f"({coarse(float(m[1].replace(',', '.')))}, "
                               f"{coarse(float(m[2].replace(',', '.')))})", text)


def _in_box(box):
    """``within`` for :func:`coarsen_text`: a value in the longitude or latitude range of ``box``."""
    minx, miny, maxx, maxy = box
    return lambda v: minx <= v <= maxx or miny <= v <= maxy


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------


@dataclass
class RejectGroup:
    """The rejected rows of one reason: how many, and the first few as examples."""

    key: str
    label: str
    label_zh: str
    count: int
    examples: list[dict] = field(default_factory=list)  # {"row", "id", "detail"}


@dataclass
class IngestReport:
    """What an import did. ``read == accepted + duplicate + rejected`` always holds.

    ``accepted`` = ``new`` + ``replaced`` (corrected rows whose id was already in the store);
    ``duplicate`` = ``duplicate_in_store`` + ``duplicate_in_file``. Row numbers count the
    header as row 1, as a spreadsheet shows them (for GeoJSON/GeoPackage/Shapefile: feature
    numbers from 1).
    """

    import_id: str
    source: str
    metric: str | None
    read: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    new: int = 0
    replaced: int = 0
    duplicate_in_store: int = 0
    duplicate_in_file: int = 0
    accepted_by_metric: dict = field(default_factory=dict)
    rejects: list[RejectGroup] = field(default_factory=list)
    replaced_examples: list[dict] = field(default_factory=list)
    rejects_csv: str | None = None
    columns: dict = field(default_factory=dict)
    crs: str | None = None
    crs_assumed: bool = False
    encoding: str | None = None
    imported_at: str | None = None
    store_version: int | None = None
    seconds: float = 0.0
    # Reports written before positions were coarsened (see coarse()) are coarsened on loading.
    coarse_positions: bool = False

    def __post_init__(self):
        self.rejects = [g if isinstance(g, RejectGroup) else RejectGroup(**g) for g in self.rejects]

    def check(self) -> None:
        """Check the bookkeeping (no row is ever dropped silently); raises AssertionError, even
        under ``python -O``, so an import that fails it is rolled back."""
        sums = (self.read == self.accepted + self.duplicate + self.rejected,
                self.accepted == self.new + self.replaced,
                self.duplicate == self.duplicate_in_store + self.duplicate_in_file,
                self.rejected == sum(g.count for g in self.rejects))
        if not all(sums):
            raise AssertionError(f"import bookkeeping does not add up: {self.first_line()}, "
                                 f"{self.new} new, {self.replaced} replaced, {self.duplicate_in_store} + "
                                 f"{self.duplicate_in_file} duplicates, reasons {[g.count for g in self.rejects]}")

    def first_line(self) -> str:
        """``read N, accepted N, duplicate N, rejected N``."""
        return f"read {self.read}, accepted {self.accepted}, duplicate {self.duplicate}, rejected {self.rejected}"

    def lines(self) -> list[str]:
        """The report as the CLI prints it; the first line is :meth:`first_line`."""
        out = [self.first_line()]
        if self.accepted:
            out.append(f"accepted: {self.new} new, {self.replaced} replaced "
                       "(corrected rows for an id already in the store)")
            for ex in self.replaced_examples:
                change = f" ({ex['change']})" if ex.get("change") else ""
                out.append(f"  replaced {ex['metric']} {ex['id']}, row {ex['row']}: {ex['old']} -> {ex['new']}{change}")
        if self.duplicate:
            out.append(f"duplicate: {self.duplicate_in_store} already in the store, "
                       f"{self.duplicate_in_file} repeated in this file")
        if self.rejects:
            out.append("rejected by reason:")
            for group in self.rejects:
                out.append(f"  {group.label}: {group.count}")
                for ex in group.examples:
                    ident = f", id {ex['id']}" if ex.get("id") else ""
                    out.append(f"    row {ex['row']}{ident}: {ex['detail']}")
            out.append(f"rejected rows: {self.rejects_csv}")
        cols = ", ".join(f"{k}={v}" for k, v in self.columns.items())
        crs = f"{self.crs} (assumed: give --crs if it is gcj02 or bd09)" if self.crs_assumed else self.crs
        out.append(f"columns: {cols}; CRS {crs}" + (f"; encoding {self.encoding}" if self.encoding else ""))
        out.append(f"import {self.import_id}: store version {self.store_version}, {self.seconds:.1f} s")
        return out

    def to_dict(self) -> dict:
        """A JSON-ready dict (stored with the import, shown by the web report page)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "IngestReport":
        """Rebuild a report from :meth:`to_dict`'s output."""
        return cls(**data)


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def ingest_file(settings: Settings, path, *, metric: str | None = None, crs=None, encoding=None,
                mapping=None, layer=None, source_name: str | None = None, atlas: Atlas | None = None,
                log=None, engine: str = "local", scheduler: str | None = None) -> IngestReport:
    """Import the records in ``path`` into the store of ``settings``; return the report.

    ``metric`` (a key such as ``visits``, or its Chinese name) applies to rows whose file has no
    metric column or whose metric cell is empty. ``crs``/``encoding``/``layer`` are passed to
    :func:`geo.loaders.read_points`. ``mapping`` names columns the recogniser does not know:
    ``{"走访日期": "date"}`` or ``["走访日期=date"]`` (fields: id, date, lon, lat, metric).
    ``source_name`` is recorded as the records' source (default: the file name). ``engine`` and
    ``scheduler`` choose where the join runs (:func:`geo.engines.make_assigner`). ``log`` gets
    progress lines. Unreadable files raise InputFileError and store nothing; bad rows never
    raise, they are rejected with a reason.
    """
    t0 = time.perf_counter()
    say = log or (lambda *_: None)
    path = Path(path)
    source = source_name or path.name
    fields = parse_mapping(mapping)
    default_metric = None if metric is None or not str(metric).strip() else str(metric).strip()
    check_archive(path, settings.max_unzipped_bytes)
    store = open_store(settings)
    areas_version = store.get_meta("areas_version")  # before the atlas: see _check_areas_unchanged
    atlas = atlas or store.load_atlas(settings.demo_dir)
    assign = make_assigner(atlas, engine, scheduler)
    # The local join's raster takes seconds to build; build it while the file is being parsed.
    warm = threading.Thread(target=lambda: atlas.grid_index.raster, daemon=True)
    if engine == "local":
        warm.start()
    say(f"reading {path.name}")
    try:
        points = read_points(path, crs=crs, encoding=encoding, layer=layer, lon_col=fields.get("lon"),
                             lat_col=fields.get("lat"), bounds=_city_box(atlas))
    except InputFileError as err:
        # The loader names its own parameters; a clerk maps columns with --map. (A refused
        # file does not wait for the raster: the thread finishes on its own.)
        reason = _coarsen_pairs(re.sub(r"\b(lon|lat)_col\b", r"--map COLUMN=\1", err.reason))
        raise InputFileError(err.path, reason, row=err.row, feature=err.feature) from None
    frame = points.frame
    columns = _find_columns(path, frame, fields, has_default_metric=default_metric is not None)
    say(f"read {len(frame):,} rows; classifying and joining")
    rows = _Rows.classify(frame, points.problems, columns, default_metric, assign, _row_offset(path),
                          before_join=warm.join if engine == "local" else None)
    report = IngestReport(
        import_id=new_import_id(), source=source, metric=default_metric, read=len(frame),
        columns={k: v for k, v in columns.items() if v is not None},
        crs=points.crs.label if points.crs else None, crs_assumed=points.crs_assumed,
        encoding=points.encoding,
    )
    report.columns.update(_coordinate_columns(path, points.source_table, fields))
    rejects_path = imports_dir(settings) / f"{report.import_id}-rejected.csv"
    try:
        with store.transaction() as con:
            say(f"writing {int(rows.ok.sum()):,} candidate records (transaction open)")
            _check_areas_unchanged(con, areas_version)
            _compare_with_store(con, rows)
            report.imported_at = dt.datetime.now().isoformat(timespec="seconds")
            _write_records(con, rows, atlas.grid_codes, assign, source, report.imported_at)
            _fill_report(report, rows, points.source_table, rejects_path, atlas)
            report.store_version = int(con.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0]) + 1
            report.seconds = round(time.perf_counter() - t0, 2)
            report.check()
            con.execute("INSERT INTO imports VALUES (?, 'records', ?, ?, ?, ?)",
                        (report.import_id, source, report.imported_at, json.dumps(report.to_dict(), ensure_ascii=False),
                         report.rejects_csv))
            say("committing")
    except BaseException:
        rejects_path.unlink(missing_ok=True)
        raise
    say(f"committed in {time.perf_counter() - t0:.1f} s")
    return report


def ingest_upload(settings: Settings, stream, filename: str, *, atlas: Atlas | None = None, **options) -> IngestReport:
    """Import an uploaded file: save ``stream`` (a binary file object) privately, import it, delete it.

    Only the suffix of the client's ``filename`` is used for the saved file; the name itself is
    recorded as the source. More than ``settings.max_upload_bytes`` is refused (the web layer
    refuses it earlier with 413, this guards other callers). ``options`` go to :func:`ingest_file`.
    """
    name = safe_filename(filename)
    suffix = Path(name).suffix.lower()
    if suffix not in TABLE_SUFFIXES and suffix not in VECTOR_SUFFIXES or suffix == ".shp":
        raise InputFileError(name, "unsupported file type; upload CSV, XLSX, GeoJSON, GeoPackage (.gpkg) "
                                   "or a zipped Shapefile (.zip)")
    folder = settings.data_path / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{secrets.token_hex(8)}{suffix}"
    try:
        _save_stream(stream, tmp, settings.max_upload_bytes, name)
        return ingest_file(settings, tmp, source_name=name, atlas=atlas, **options)
    except InputFileError as err:
        if Path(err.path) != tmp:
            raise
        # Name the file as the clerk knows it, not our private copy.
        raise InputFileError(name, err.reason, row=err.row, feature=err.feature) from None
    finally:
        tmp.unlink(missing_ok=True)


def parse_mapping(mapping) -> dict[str, str]:
    """Turn a column mapping into {field: column}.

    Accepts ``{"经度": "lon"}``, ``["经度=lon", "工单号=id"]`` or the text ``"经度=lon, 工单号=id"``
    (commas, semicolons or new lines between pairs). Fields: id, date, lon, lat, metric.
    """
    if mapping is None or mapping == "":
        return {}
    if isinstance(mapping, str):
        mapping = [p for p in re.split(r"[,;，；\n]+", mapping) if p.strip()]
    if isinstance(mapping, dict):
        pairs = list(mapping.items())
    else:
        pairs = []
        for item in mapping:
            if "=" not in str(item):
                raise BadParameter(f"column mapping {item!r} must look like COLUMN=FIELD, e.g. 经度=lon")
            column, _, target = str(item).rpartition("=")
            pairs.append((column, target))
    out: dict[str, str] = {}
    for column, target in pairs:
        column, target = str(column).strip(), str(target).strip().lower()
        if target == "record_id":
            target = "id"
        if target not in FIELDS:
            raise BadParameter(f"column mapping {column}={target}: unknown field {target!r}; allowed: {', '.join(FIELDS)}")
        if not column:
            raise BadParameter(f"column mapping ={target}: the column name is empty")
        if target in out and out[target] != column:
            raise BadParameter(f"column mapping gives two columns for {target}: {out[target]!r} and {column!r}")
        out[target] = column
    return out


def check_archive(path, max_unzipped_bytes: int) -> None:
    """Refuse a zip (zipped Shapefile, XLSX) with unsafe entry names or too much content.

    An entry whose name has a ``..`` component or is absolute (``/x``, ``C:\\x``, ``\\\\host``)
    rejects the whole upload, as does a total inflated size over ``max_unzipped_bytes``; the
    size is measured by actually inflating the entries (headers can lie), stopping at the limit.
    Other files pass unchanged.
    """
    path = Path(path)
    if path.suffix.lower() not in (".zip", ".xlsx"):
        return
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            for info in infos:
                if _unsafe_entry(info.filename):
                    raise InputFileError(path, f"refused: the archive entry {info.filename!r} points outside "
                                               "the archive (absolute path or '..'); nothing was imported")
            declared = sum(i.file_size for i in infos)
            if declared > max_unzipped_bytes:
                raise InputFileError(path, _bomb_message(declared, max_unzipped_bytes))
            total = 0
            for info in infos:
                with zf.open(info) as fh:
                    while chunk := fh.read(1 << 20):
                        total += len(chunk)
                        if total > max_unzipped_bytes:
                            raise InputFileError(path, _bomb_message(total, max_unzipped_bytes, at_least=True))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as err:
        raise InputFileError(path, f"is not a readable zip archive: {err}") from None


def safe_filename(filename) -> str:
    """The last path component of a client-supplied file name, without control characters."""
    name = re.split(r"[\\/]", str(filename or ""))[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:200] or "upload"


def new_import_id() -> str:
    """A sortable, unguessable import id such as ``20200301-153012-5f3a9c``."""
    return f"{dt.datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def imports_dir(settings: Settings) -> Path:
    """Where the rejected-rows CSVs of imports are kept."""
    folder = settings.data_path / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def load_report(settings: Settings, import_id: str) -> IngestReport:
    """The report of one past import; an unknown or malformed id raises BadParameter."""
    row = _import_row(settings, import_id)
    report = IngestReport.from_dict(json.loads(row[0]))
    if not report.coarse_positions:
        # A report stored with exact positions: coarsen what it quotes.
        for ex in report.replaced_examples:
            ex["old"], ex["new"] = _coarsen_legacy(ex["old"]), _coarsen_legacy(ex["new"])
        for group in report.rejects:
            for ex in group.examples:
                ex["detail"] = _coarsen_legacy(ex["detail"])
        report.coarse_positions = True
    return report


def rejects_file(settings: Settings, import_id: str) -> Path:
    """The rejected-rows CSV of one import (BadParameter if there is none)."""
    row = _import_row(settings, import_id)
    if not row[1] or not Path(row[1]).is_file():
        raise BadParameter(f"import {import_id} has no rejected rows file")
    report = json.loads(row[0])
    if report.get("coarse_positions"):
        return Path(row[1])
    # Written before positions were coarsened: hand out a coarsened copy (made once).
    copy = Path(row[1]).with_name(f"{import_id}-rejected-coarse.csv")
    if not copy.is_file():
        frame = pd.read_csv(row[1], dtype=str, keep_default_na=False, encoding="utf-8-sig")
        frame["detail"] = [_coarsen_legacy(d) for d in frame["detail"].tolist()]
        columns = report.get("columns") or {}
        _coarsen_frame(frame, {c for c in frame.columns if _is_coordinate_column(c, columns)}, _legacy_within)
        tmp = copy.with_suffix(".csv.tmp")
        frame.to_csv(tmp, index=False, encoding="utf-8-sig")
        os.replace(tmp, copy)
    return copy


def _legacy_within(value: float) -> bool:
    """Old reports do not say which city box they were checked against: any number that could
    be degrees counts as a coordinate there."""
    return abs(value) <= 180


def _coarsen_legacy(text):
    """A text of a report written before positions were coarsened, coarsened."""
    return coarsen_text(_coarsen_pairs(text), _legacy_within) if isinstance(text, str) else text


def recent_imports(settings: Settings, limit: int = 20) -> list[dict]:
    """The latest imports, newest first: import_id, kind, source, imported_at and the counts."""
    store = open_store(settings)
    if not store.exists():
        return []
    rows = store.query("SELECT import_id, kind, source, imported_at, report FROM imports "
                       "ORDER BY imported_at DESC, import_id DESC LIMIT ?", (int(limit),))
    out = []
    for import_id, kind, source, imported_at, report in rows:
        data = json.loads(report)
        out.append({"import_id": import_id, "kind": kind, "source": source, "imported_at": imported_at,
                    **{k: data.get(k) for k in ("read", "accepted", "duplicate", "rejected", "replaced")}})
    return out


def resolve_metric(value) -> str | None:
    """The metric key for a key or a Chinese/English name (any case); None if unknown.

    Checkpoint checks are counts per checkpoint and day, not points, so they are not a
    metric records can be imported for.
    """
    return _METRIC_ALIASES.get(_norm(value))


# --------------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------------


def _norm(value) -> str:
    return re.sub(r"[\s_]+", "", str(value)).lower()


_METRIC_ALIASES = {
    _norm(alias): m.key
    for m in METRICS.values() if m.key in POINT_METRICS
    for alias in (m.key, m.name_zh, m.name_en)
}
_ALLOWED_METRICS = ", ".join(f"{k} ({METRICS[k].name_zh})" for k in POINT_METRICS)


class _Rows:
    """Per-row arrays of one import, filled step by step (vectorised; loops only over bad rows)."""

    def __init__(self, n: int, offset: int):
        self.n = n
        self.offset = offset  # row number shown = 0-based row + offset
        self.reason = np.zeros(n, dtype=np.int8)  # 0 = none, else 1 + index in _REASON_KEYS
        self._parts: list[tuple[np.ndarray, np.ndarray]] = []  # (rows, detail texts) per problem found
        self._details: pd.Series | None = None
        self.duplicate_in_file = np.zeros(n, dtype=bool)
        self.duplicate_in_store = np.zeros(n, dtype=bool)
        self.replaced = np.zeros(n, dtype=bool)
        self.old: dict[int, tuple] = {}  # row -> (day, lon, lat) of the record it replaces
        self.old_grid: dict[int, str] = {}  # row -> grid code of the record it replaces (for the report)
        self.ids = np.full(n, None, dtype=object)
        self.metric = np.full(n, None, dtype=object)
        self.day = np.full(n, -1, dtype=np.int64)  # 0-based day in the period
        self.lon = np.full(n, np.nan)
        self.lat = np.full(n, np.nan)
        self.grid = np.full(n, -1, dtype=np.int64)

    @property
    def ok(self) -> np.ndarray:
        """Rows still standing: not rejected and not a repeat inside the file."""
        return (self.reason == 0) & ~self.duplicate_in_file

    @property
    def accepted(self) -> np.ndarray:
        """Rows that go into the store (new or replacing)."""
        return self.ok & ~self.duplicate_in_store

    def reject(self, mask: np.ndarray, key: str, detail) -> None:
        """File the rows in ``mask`` under ``key`` unless a reason earlier in REASONS holds them;
        every problem is kept in the row's detail. ``detail`` is a text, or a function of the
        array of row indexes returning one text per row."""
        rows = np.flatnonzero(mask)
        if not len(rows):
            return
        texts = [detail] * len(rows) if isinstance(detail, str) else list(detail(rows))
        self._parts.append((rows, np.asarray(texts, dtype=object)))
        self._details = None
        code = 1 + _REASON_KEYS.index(key)
        current = self.reason[rows]
        # The earliest reason in REASONS wins, whatever order the checks run in.
        self.reason[rows] = np.where(current == 0, code, np.minimum(current, code))

    def details(self, rows: np.ndarray) -> np.ndarray:
        """The detail of each rejected row in ``rows``: all its problems, joined with "; "."""
        if self._details is None:
            idx = np.concatenate([r for r, _ in self._parts]) if self._parts else np.zeros(0, np.int64)
            texts = np.concatenate([t for _, t in self._parts]) if self._parts else np.zeros(0, object)
            series = pd.Series(texts, index=idx)
            if not series.index.is_unique:
                series = series.groupby(level=0, sort=False).agg("; ".join)
            self._details = series
        return self._details.reindex(rows).to_numpy(dtype=object)

    def label(self, i: int) -> int:
        """The row number a user sees."""
        return i + self.offset

    @classmethod
    def classify(cls, frame: pd.DataFrame, problems, columns: dict, default_metric, assign,
                 offset: int, before_join=None) -> "_Rows":
        """Check ids, metrics, dates, coordinates and repeats; join the good rows to their grids
        with ``assign(x, y) -> grid index`` (:func:`geo.engines.make_assigner`).

        ``before_join`` is called just before the join (to wait for its index being built)."""
        rows = cls(len(frame), offset)
        rows._ids(frame[columns["id"]], columns["id"])
        rows._metrics(frame[columns["metric"]] if columns.get("metric") else None, default_metric)
        rows._dates(frame[columns["date"]], columns["date"])
        if before_join is not None:
            before_join()
        rows._coordinates(frame, problems, assign)
        rows._repeats()
        return rows

    def _ids(self, values: pd.Series, column: str) -> None:
        self.ids = _text_values(values)
        self.reject(pd.isna(self.ids), "missing_id", f"the record id (column {column!r}) is empty")

    def _metrics(self, values: pd.Series | None, default_metric) -> None:
        default = resolve_metric(default_metric) if default_metric is not None else None
        if values is None:
            text = np.full(self.n, None, dtype=object)
            self.metric = np.full(self.n, default, dtype=object)
        else:
            text = _text_values(values)
            codes, uniques = pd.factorize(text, use_na_sentinel=True)
            resolved = np.array([resolve_metric(u) for u in uniques] + [default], dtype=object)
            self.metric = resolved[codes]  # the sentinel -1 picks the default for empty cells

        def why(cell):
            if cell is not None:
                return f"metric {cell!r} is unknown; allowed: {_ALLOWED_METRICS}"
            if default_metric is None:
                return f"the metric cell is empty and no --metric was given; allowed: {_ALLOWED_METRICS}"
            return f"metric {default_metric!r} (--metric) is unknown; allowed: {_ALLOWED_METRICS}"

        self.reject(pd.isna(self.metric), "unknown_metric", lambda rows: [why(text[i]) for i in rows])

    def _coordinates(self, frame: pd.DataFrame, problems, assign) -> None:
        lon = frame["lon"].to_numpy(np.float64)
        lat = frame["lat"].to_numpy(np.float64)
        placed = np.isfinite(lon) & np.isfinite(lat)
        x, y = frame["x"].to_numpy(np.float64), frame["y"].to_numpy(np.float64)
        by_reason: dict[str, list] = {}
        for problem in problems:
            by_reason.setdefault(_coordinate_reason(problem.reason), []).append(problem)
        for key, found in by_reason.items():
            mask = np.zeros(self.n, dtype=bool)
            mask[[p.row for p in found]] = True
            text = {p.row: _problem_text(p.reason, x[p.row], y[p.row]) for p in found}
            self.reject(mask, key, lambda rows, text=text: [text[i] for i in rows.tolist()])
        grid = np.full(self.n, -1, dtype=np.int64)
        if placed.any():
            grid[placed] = assign(lon[placed], lat[placed])
        self.reject(placed & (grid < 0), "outside_city",
                    lambda rows: [f"({coarse(a)}, {coarse(b)}) is outside {CITY_NAME}: it lies in no grid"
                                  for a, b in zip(x[rows].tolist(), y[rows].tolist())])
        self.lon, self.lat, self.grid = lon, lat, grid

    def _dates(self, values: pd.Series, column: str) -> None:
        days, missing = parse_days(values)
        raw = values.to_numpy(dtype=object)
        self.reject(missing, "missing_date", f"the date (column {column!r}) is empty")
        bad = ~missing & np.isnat(days)
        self.reject(bad, "unparseable_date",
                    lambda rows: [f"date {str(v)!r} cannot be read; write dates as YYYY-MM-DD" for v in raw[rows]])
        index = (days - np.datetime64(PERIOD_START, "D")).astype(np.int64)
        outside = ~np.isnat(days) & ((index < 0) | (index >= N_DAYS))
        self.reject(outside, "date_outside_period",
                    lambda rows: [f"date {d} is outside the allowed period {PERIOD_START}..{PERIOD_END}"
                                  for d in days[rows].astype(str)])
        self.day = np.where(np.isnat(days), -1, index)

    def _repeats(self) -> None:
        """Same (metric, id) twice in the file: identical rows are duplicates of the first;
        rows that differ are all rejected (which one is right is the clerk's call)."""
        ok = np.flatnonzero(self.reason == 0)
        if not len(ok):
            return
        keys = pd.DataFrame({"m": self.metric[ok], "id": self.ids[ok]})
        repeated = keys.duplicated(keep=False).to_numpy()
        if not repeated.any():
            return
        rep = ok[repeated]
        sub = pd.DataFrame({"row": rep, "m": self.metric[rep], "id": self.ids[rep], "day": self.day[rep],
                            "lon": np.round(self.lon[rep], 7), "lat": np.round(self.lat[rep], 7)})
        variants = sub.drop_duplicates(["m", "id", "day", "lon", "lat"]).groupby(["m", "id"]).size()
        conflict = sub.set_index(["m", "id"]).index.isin(variants[variants > 1].index)
        same = sub[~conflict]
        self.duplicate_in_file[same.loc[same.duplicated(["m", "id"], keep="first"), "row"].to_numpy()] = True
        if conflict.any():
            bad = sub[conflict]
            shown = bad.groupby(["m", "id"], sort=False)["row"].agg(
                lambda r: ", ".join(str(self.label(i)) for i in r.tolist()[:5]) + (" ..." if len(r) > 5 else ""))
            texts = {row: f"record id {rid!r} appears in rows {shown[(m, rid)]} of this file with different content"
                     for row, m, rid in zip(bad["row"].tolist(), bad["m"].tolist(), bad["id"].tolist())}
            mask = np.zeros(self.n, dtype=bool)
            mask[bad["row"].to_numpy()] = True
            self.reject(mask, "conflicting_id", lambda rows: [texts[i] for i in rows.tolist()])


def _problem_text(reason: str, x: float, y: float) -> str:
    """A loader's message about a row, its positions coarsened from the row's own values ``x``,
    ``y`` (the message holds them to 6 digits: rounding those again may differ from the CSV)."""
    def pair(m):
        a, b = float(m[1].replace(",", ".")), float(m[2].replace(",", "."))
        for u, v in ((x, y), (y, x)):
            if abs(a - u) <= 1e-5 * max(abs(u), 1.0) and abs(b - v) <= 1e-5 * max(abs(v), 1.0):
                return f"({coarse(u)}, {coarse(v)})"
        return f"({coarse(a)}, {coarse(b)})"

    return coarsen_text(_PAIR.sub(pair, reason))


def _coordinate_reason(text: str) -> str:
    """Map a loader problem to a reason key (the loader's text becomes the detail)."""
    if "swapped" in text:
        return "swapped"
    if "NaN" in text or "infinite" in text:
        return "nan_coordinate"
    if text.startswith("missing") or "has no geometry" in text or "empty point" in text:
        return "missing_coordinate"
    return "bad_coordinate"


def _text_values(values: pd.Series) -> np.ndarray:
    """Cell values as stripped text (object array), None where empty; 1001.0 reads as "1001"."""
    s = values.reset_index(drop=True)
    if pd.api.types.is_string_dtype(s.dtype) and s.dtype != object:
        s = s.str.strip()
        out = s.to_numpy(dtype=object, na_value=None)
        out[s.eq("").fillna(False).to_numpy(bool)] = None
        return out
    if pd.api.types.is_integer_dtype(s.dtype):
        return s.astype(str).to_numpy(dtype=object)
    out = np.empty(len(s), dtype=object)
    for i, v in enumerate(s.tolist()):
        if v is None or (isinstance(v, float) and not np.isfinite(v)) or v is pd.NA or v is pd.NaT:
            out[i] = None
        elif isinstance(v, float) and v.is_integer():
            out[i] = str(int(v))
        else:
            text = str(v).strip()
            out[i] = text or None
    return out


_DATE_RE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[T\s].*)?$")
_COMPACT_DATE_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:[T\s].*)?$")


def parse_days(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Parse dates; return (datetime64[D] array, NaT where unreadable; bool array of empty cells).

    Accepted: date cells (XLSX, GeoPackage), ``2020-02-03``, ``2020/2/3``, ``2020.2.3``,
    ``2020年2月3日``, ``20200203``, each optionally followed by a time (ignored). Day-first or
    month-first forms such as ``03/02/2020`` are ambiguous and refused.
    """
    s = values.reset_index(drop=True)
    n = len(s)
    days = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        if getattr(s.dt, "tz", None) is not None:
            s = s.dt.tz_localize(None)
        days = s.to_numpy().astype("datetime64[D]")
        return days, np.isnat(days)
    if pd.api.types.is_string_dtype(s.dtype) and s.dtype != object:
        text = s
    else:
        cells = s.tolist()
        texts = [None] * n
        for i, v in enumerate(cells):
            if isinstance(v, (dt.date, pd.Timestamp)):
                days[i] = np.datetime64(v.date() if isinstance(v, dt.datetime) else v, "D")
            elif isinstance(v, np.datetime64):
                days[i] = v.astype("datetime64[D]")
            elif isinstance(v, float) and v.is_integer():
                texts[i] = str(int(v))
            elif v is not None and not (isinstance(v, float) and np.isnan(v)) and v is not pd.NA:
                texts[i] = str(v)
        text = pd.Series(texts, dtype="string")
    text = text.astype("string").str.strip()
    missing = (text.isna() | text.eq("")).fillna(True).to_numpy(bool) & np.isnat(days)
    todo = ~missing & np.isnat(days)
    if todo.any():
        fast = pd.to_datetime(text[todo], format="%Y-%m-%d", errors="coerce").to_numpy().astype("datetime64[D]")
        days[np.flatnonzero(todo)] = fast
        rest = np.flatnonzero(todo & np.isnat(days))
        if len(rest):
            days[rest] = _parse_loose(text.iloc[rest])
    return days, missing


def _parse_loose(text: pd.Series) -> np.ndarray:
    """The slower path of parse_days for the other spellings."""
    parts = text.str.extract(_DATE_RE)
    compact = text.str.extract(_COMPACT_DATE_RE)
    parts = parts.where(parts[0].notna(), compact)
    ymd = parts.apply(pd.to_numeric, errors="coerce")
    ymd.columns = ["year", "month", "day"]
    ok = ymd.notna().all(axis=1)
    out = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[D]")
    if ok.any():
        parsed = pd.to_datetime(ymd[ok].astype("int64"), errors="coerce")
        out[ok.to_numpy()] = parsed.to_numpy().astype("datetime64[D]")
    return out


# --------------------------------------------------------------------------------------------
# Store
# --------------------------------------------------------------------------------------------


def _compare_with_store(con, rows: _Rows) -> None:
    """Mark rows whose (metric, id) is already stored: same content -> duplicate, else replaced."""
    ok = np.flatnonzero(rows.ok)
    if not len(ok):
        return
    metrics = sorted(set(rows.metric[ok].tolist()))
    existing = []
    for metric in metrics:
        n_stored = con.execute("SELECT COUNT(*) FROM records WHERE metric = ?", (metric,)).fetchone()[0]
        if not n_stored:
            continue
        mine = ok[rows.metric[ok] == metric]
        if n_stored <= 4 * len(mine):
            found = con.execute("SELECT record_id, day, lon, lat, grid_code FROM records WHERE metric = ?",
                                (metric,)).fetchall()
        else:
            # A small file against a big store: look up only this file's ids.
            con.execute("CREATE TEMP TABLE IF NOT EXISTS incoming (record_id TEXT PRIMARY KEY)"
                        + (" WITHOUT ROWID" if con.dialect == "sqlite" else ""))
            con.execute("DELETE FROM incoming")
            con.executemany("INSERT INTO incoming VALUES (?) ON CONFLICT DO NOTHING",
                            ((r,) for r in rows.ids[mine].tolist()))
            found = con.execute("SELECT r.record_id, r.day, r.lon, r.lat, r.grid_code FROM records r JOIN incoming i "
                                "ON r.record_id = i.record_id WHERE r.metric = ?", (metric,)).fetchall()
        if found:
            old = pd.DataFrame(found, columns=["id", "old_day", "old_lon", "old_lat", "old_grid"])
            old["m"] = metric
            existing.append(old)
    if not existing:
        return
    old = pd.concat(existing, ignore_index=True)
    new = pd.DataFrame({"row": ok, "m": rows.metric[ok], "id": rows.ids[ok]})
    both = new.merge(old, on=["m", "id"], how="inner")
    if both.empty:
        return
    r = both["row"].to_numpy()
    old_day = (pd.to_datetime(both["old_day"]).to_numpy().astype("datetime64[D]")
               - np.datetime64(PERIOD_START, "D")).astype(np.int64)
    old_lon = both["old_lon"].to_numpy(np.float64)
    old_lat = both["old_lat"].to_numpy(np.float64)
    same = ((old_day == rows.day[r]) & (np.abs(old_lon - rows.lon[r]) <= SAME_POSITION_DEG)
            & (np.abs(old_lat - rows.lat[r]) <= SAME_POSITION_DEG))
    rows.duplicate_in_store[r[same]] = True
    rows.replaced[r[~same]] = True
    old_grid = both["old_grid"].to_numpy(dtype=object)
    for i in np.flatnonzero(~same):
        rows.old[int(r[i])] = (int(old_day[i]), float(old_lon[i]), float(old_lat[i]))
        rows.old_grid[int(r[i])] = old_grid[i]


def _check_areas_unchanged(con, seen) -> None:
    """Refuse to commit grid codes joined against boundaries replaced meanwhile."""
    row = con.execute("SELECT value FROM meta WHERE key = 'areas_version'").fetchone()
    if (row[0] if row else None) != seen:
        raise DataNotReady("the grid boundaries were updated while this file was being imported; "
                           "nothing was stored: import it again")


def _write_records(con, rows: _Rows, codes: np.ndarray, assign, source: str, imported_at: str) -> None:
    """Insert new records, update replaced ones and apply the change to the counts (``codes``
    are the grid codes in index order; ``assign`` joins the replaced records' old positions)."""
    from geo.query.counts import METRIC_KEYS

    day_text = np.array([(PERIOD_START + dt.timedelta(days=i)).isoformat() for i in range(N_DAYS)])
    acc = np.flatnonzero(rows.accepted)
    new = acc[~rows.replaced[acc]]
    rep = acc[rows.replaced[acc]]
    # Inserting in primary-key order lets SQLite append to the records B-tree instead of
    # splitting pages all over it: about twice as fast for a million rows.
    if len(new):
        new = new[np.lexsort((rows.ids[new].astype(str), rows.metric[new].astype(str)))]

    def columns(idx):
        return (rows.metric[idx].tolist(), rows.ids[idx].tolist(), day_text[rows.day[idx]].tolist(),
                rows.lon[idx].tolist(), rows.lat[idx].tolist(), codes[rows.grid[idx]].tolist(),
                [source] * len(idx), [imported_at] * len(idx))

    con.executemany("INSERT INTO records (metric, record_id, day, lon, lat, grid_code, source, imported_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", zip(*columns(new)))
    metric, ids, *rest = columns(rep)
    con.executemany("UPDATE records SET day = ?, lon = ?, lat = ?, grid_code = ?, source = ?, "
                    "imported_at = ? WHERE metric = ? AND record_id = ?", zip(*rest, metric, ids))

    # Counts: +1 at each accepted row's (metric, grid, day); -1 where a replaced record was.
    n_grids = len(codes)
    m_acc = pd.Index(METRIC_KEYS).get_indexer(rows.metric[acc]).astype(np.int64)
    keys = [(m_acc * n_grids + rows.grid[acc]) * N_DAYS + rows.day[acc]]
    signs = [np.ones(len(acc), dtype=np.int64)]
    if len(rep):
        old = np.array([rows.old[int(i)] for i in rep], dtype=np.float64)
        old_grid = assign(old[:, 1], old[:, 2]).astype(np.int64)
        old_day = old[:, 0].astype(np.int64)
        counted = (old_grid >= 0) & (old_day >= 0) & (old_day < N_DAYS)  # as compute_cube bins them
        m_rep = pd.Index(METRIC_KEYS).get_indexer(rows.metric[rep]).astype(np.int64)
        keys.append(((m_rep * n_grids + old_grid) * N_DAYS + old_day)[counted])
        signs.append(-np.ones(int(counted.sum()), dtype=np.int64))
    keys, signs = np.concatenate(keys), np.concatenate(signs)
    if not len(keys):
        return
    uniq, inverse = np.unique(keys, return_inverse=True)
    delta = np.bincount(inverse, weights=signs, minlength=len(uniq)).astype(np.int64)
    uniq, delta = uniq[delta != 0], delta[delta != 0]
    m, rest = np.divmod(uniq, n_grids * N_DAYS)
    g, d = np.divmod(rest, N_DAYS)
    count_store.add(con, codes, m, g, d, delta)
    con.execute(SET_META, ("records_imported_at", imported_at))


def _fill_report(report: IngestReport, rows: _Rows, source_table: pd.DataFrame | None, rejects_path: Path,
                 atlas: Atlas) -> None:
    """Counts, reasons with examples, replaced examples; write the rejected rows CSV. No exact
    position goes into any of them (see :func:`coarse`): a replaced record is shown by its date
    and grid code, and messages and CSV cells by coarsened coordinates."""
    # In free text (a note, an address, a mistyped date) a finer number that could be a
    # longitude or latitude anywhere in China counts as a position.
    within = _in_box(CHINA_BOUNDS)
    report.coarse_positions = True
    accepted = rows.accepted
    report.accepted = int(accepted.sum())
    report.replaced = int((accepted & rows.replaced).sum())
    report.new = report.accepted - report.replaced
    report.duplicate_in_file = int(rows.duplicate_in_file.sum())
    report.duplicate_in_store = int((rows.ok & rows.duplicate_in_store).sum())
    report.duplicate = report.duplicate_in_file + report.duplicate_in_store
    report.rejected = int((rows.reason > 0).sum())
    if report.accepted:
        report.accepted_by_metric = pd.Series(rows.metric[accepted]).value_counts().to_dict()
    for i in np.flatnonzero(accepted & rows.replaced)[:REPLACED_EXAMPLES]:
        d0, x0, y0 = rows.old[int(i)]
        old_day, new_day = PERIOD_START + dt.timedelta(days=d0), PERIOD_START + dt.timedelta(days=int(rows.day[i]))
        old_grid, new_grid = rows.old_grid.get(int(i)) or "none", str(atlas.grid_codes[rows.grid[i]])
        moved = abs(x0 - rows.lon[i]) > SAME_POSITION_DEG or abs(y0 - rows.lat[i]) > SAME_POSITION_DEG
        change = " and ".join(w for w, c in (("date", old_day != new_day), ("position", moved)) if c)
        report.replaced_examples.append({
            "row": rows.label(int(i)), "metric": rows.metric[i], "id": rows.ids[i],
            "old_day": old_day.isoformat(), "old_grid": old_grid, "new_day": new_day.isoformat(), "new_grid": new_grid,
            "old": f"{old_day}, grid {old_grid}", "new": f"{new_day}, grid {new_grid}",
            "change": f"{change or 'record'} changed",
        })
    rejected = np.flatnonzero(rows.reason > 0)
    for code in np.unique(rows.reason[rejected]):
        reason = REASONS[_REASON_KEYS[code - 1]]
        members = rejected[rows.reason[rejected] == code]
        shown = members[:EXAMPLES_PER_REASON]
        examples = [{"row": rows.label(int(i)), "id": rows.ids[i], "detail": coarsen_text(d, within)}
                    for i, d in zip(shown, rows.details(shown))]
        report.rejects.append(RejectGroup(reason.key, reason.label, reason.label_zh, len(members), examples))
    if len(rejected):
        _write_rejects(rows, rejected, source_table, rejects_path, report.columns, within)
        report.rejects_csv = str(rejects_path)


def _write_rejects(rows: _Rows, rejected: np.ndarray, source_table, path: Path, columns: dict, within) -> None:
    """One line per rejected row: row number, reason (English and Chinese), detail, then the
    row's cells as read, except positions: the coordinate columns (``columns``' lon/lat and
    any column named like one) are coarsened, and so is any finer number that ``within``
    takes for a coordinate (see :func:`coarse`). UTF-8 with BOM so that Excel shows the
    Chinese correctly."""
    keys = [_REASON_KEYS[c - 1] for c in rows.reason[rejected]]
    out = pd.DataFrame({
        "row": rejected + rows.offset,
        "reason": [REASONS[k].label for k in keys],
        "原因": [REASONS[k].label_zh for k in keys],
        "detail": rows.details(rejected),
    })
    if source_table is not None:
        cells = source_table.iloc[rejected].reset_index(drop=True)
        coordinates = {c for c in cells.columns if _is_coordinate_column(c, columns)}
        cells.columns = [c if c not in out.columns else f"{c} (file)" for c in cells.columns]
        coordinates = {c if c not in out.columns else f"{c} (file)" for c in coordinates}
        out = pd.concat([out, cells], axis=1)
    else:
        coordinates = set()
    _coarsen_frame(out, coordinates, within)
    tmp = path.with_suffix(".csv.tmp")
    out.to_csv(tmp, index=False, encoding="utf-8-sig")
    os.replace(tmp, path)


_COORDINATE_NAMES = {n for tier in LON_NAMES + LAT_NAMES for n in tier}


def _is_coordinate_column(name, columns: dict) -> bool:
    """True for the column that gave longitude or latitude and any column named like one."""
    return name in (columns.get("lon"), columns.get("lat")) or str(name).strip().lower() in _COORDINATE_NAMES


def _coarsen_frame(frame: pd.DataFrame, coordinates, within) -> None:
    """Coarsen, in place, every cell of the ``coordinates`` columns and, elsewhere, the numbers
    that ``within`` takes for a coordinate (row numbers and reasons are left alone)."""
    for name in frame.columns:
        if name in ("row", "reason", "原因"):
            continue
        col = frame[name]
        if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
            v = col.to_numpy(np.float64, na_value=np.nan)
            fine = np.isfinite(v) & ((np.abs(v) >= COARSE_METRES) | (np.round(v, COARSE_DEGREES) != v))
            if name not in coordinates:
                idx = np.flatnonzero(fine)
                fine[idx] = np.array([within(x) for x in v[idx].tolist()], dtype=bool)
            elif pd.api.types.is_float_dtype(col.dtype):
                fine = np.isfinite(v)  # a number the clerk typed with two decimals is marked too
            if fine.any():
                col = col.astype(object)
                col[fine] = [coarse(x) for x in v[fine].tolist()]
                frame[name] = col
            continue
        if name in coordinates:
            frame[name] = [_coarse_cell(c) for c in col.tolist()]
            continue
        text = col.astype("string")
        maybe = text.str.contains(r"\d[.,]\d{3}", regex=True).fillna(False).to_numpy(bool)
        if maybe.any():
            col = col.astype(object)
            col[maybe] = [coarsen_text(str(c), within) for c in col[maybe].tolist()]
            frame[name] = col


def _coarse_cell(cell):
    """A cell of a coordinate column as the rejects CSV shows it: a number coarsened and marked
    (however it was written), other text with its numbers coarsened (``121.551234E`` ->
    ``≈121.55E``), empty and NaN cells as written."""
    if isinstance(cell, (int, float, np.integer, np.floating)) and not isinstance(cell, bool):
        return coarse(cell) if np.isfinite(cell) else cell  # an Excel number cell
    if not isinstance(cell, str):
        return cell
    try:
        value = float(cell)
    except ValueError:
        return coarsen_text(cell)
    return coarse(value) if np.isfinite(value) else cell


def _import_row(settings: Settings, import_id: str):
    if not isinstance(import_id, str) or not re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", import_id):
        raise BadParameter(f"import id {import_id!r} is not an import id (like 20200301-153012-5f3a9c)")
    rows = open_store(settings).query("SELECT report, rejects_path FROM imports WHERE import_id = ?", (import_id,))
    if not rows:
        raise BadParameter(f"no import with id {import_id!r}")
    return rows[0]


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def _find_columns(path: Path, frame: pd.DataFrame, fields: dict, *, has_default_metric: bool) -> dict:
    """The id, date and (optional) metric columns: mapped, else recognised by name."""
    columns = [c for c in frame.columns if c not in ("lon", "lat", "x", "y", "row")]
    names = {"id": ID_NAMES, "date": DATE_NAMES, "metric": METRIC_NAMES}
    found = {}
    for key, candidates in names.items():
        if key in fields:
            if fields[key] not in frame.columns:
                raise InputFileError(path, f"has no column {fields[key]!r} (mapped to {key}); "
                                           f"columns: {', '.join(map(str, columns))}")
            found[key] = fields[key]
            continue
        wanted = {_norm(c) for c in candidates}
        matches = [c for c in columns if _norm(c) in wanted]
        if len(matches) > 1:
            # Prefer the earlier name in the list (e.g. 日期 over 时间).
            order = [_norm(c) for c in candidates]
            matches.sort(key=lambda c: order.index(_norm(c)))
        found[key] = matches[0] if matches else None
    for key in ("id", "date"):
        if found[key] is None:
            raise InputFileError(
                path, f"has no {key} column: expected one named {', '.join(names[key])} or a mapping such as "
                      f"--map COLUMN={key}; columns: {', '.join(map(str, columns))}")
    if found["metric"] is None and not has_default_metric:
        raise BadParameter(f"give the metric with --metric (one of {_ALLOWED_METRICS}) or a metric column")
    return found


def _coordinate_columns(path: Path, table: pd.DataFrame | None, fields: dict) -> dict:
    """Which columns gave longitude and latitude, for the report (as the loader chose them)."""
    if path.suffix.lower() not in TABLE_SUFFIXES:
        return {"lon": "geometry", "lat": "geometry"}
    out = {}
    for key, tiers in (("lon", LON_NAMES), ("lat", LAT_NAMES)):
        if key in fields:
            out[key] = fields[key]
            continue
        for names in tiers:
            matches = [c for c in (table.columns if table is not None else []) if str(c).strip().lower() in names]
            if matches:
                out[key] = matches[0]
                break
    return out


def _city_box(atlas: Atlas) -> tuple[float, float, float, float]:
    """The city's box, slightly enlarged: used only to recognise swapped longitude/latitude."""
    minx, miny, maxx, maxy = atlas.grids.total_bounds
    return minx - 0.05, miny - 0.05, maxx + 0.05, maxy + 0.05


def _row_offset(path: Path) -> int:
    """0-based data row -> the row number a user sees: spreadsheet rows (header = 1) for tables,
    feature numbers from 1 for vector files."""
    return 2 if path.suffix.lower() in TABLE_SUFFIXES else 1


def _unsafe_entry(name: str) -> bool:
    """True for archive entry names that are absolute or climb out with '..'."""
    if not name or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return True
    parts = set(PurePosixPath(name).parts) | set(PureWindowsPath(name).parts)
    return ".." in parts


def _bomb_message(size: int, limit: int, at_least: bool = False) -> str:
    more = "at least " if at_least else ""
    return (f"refused: the archive inflates to {more}{size / 1e6:,.1f} MB, more than the "
            f"{limit / 1e6:,.1f} MB allowed (possible zip bomb); nothing was imported")


def _save_stream(stream, target: Path, limit: int, name: str) -> None:
    """Copy an upload to ``target``, refusing it past ``limit`` bytes."""
    written = 0
    with open(target, "wb") as out:
        while chunk := stream.read(1 << 20):
            written += len(chunk)
            if written > limit:
                raise InputFileError(name, f"is larger than the {limit / 1e6:,.0f} MB upload limit")
            out.write(chunk)


__all__ = [
    "IngestReport", "REASONS", "RejectGroup", "check_archive", "ingest_file", "ingest_upload", "load_report",
    "parse_days", "parse_mapping", "recent_imports", "rejects_file", "resolve_metric", "safe_filename",
]
