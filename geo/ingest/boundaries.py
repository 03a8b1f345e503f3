"""Grid boundary updates: ``python -m geo grids update FILE`` re-zones one town or district.

A town that re-zones sends the new grid polygons of the whole town (or a district, of the
whole district). :func:`update_grids` checks them **before anything changes**:

- every geometry is a valid polygon;
- codes are unique 15-digit grid codes, nested in the town/district and in one of its
  existing villages, and every village of the area keeps at least one grid;
- together they tile the area's outline: no gap, no overlap and nothing outside it larger than
  1 m², measured in EPSG:4549 (CGCS2000 Gauss-Krüger, metres).

Any failure refuses the update with the list of every problem found (:class:`GridUpdateRefused`).
On success it writes a new ``areas.gpkg`` next to the old one and renames it into place (the
villages of the area become the union of their new grids, checkpoints are re-joined), re-joins
every record and event to the new grids and rewrites the counts, all inside one store
transaction, so counts move with the boundaries and every view reloads.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.atlas.areas import Atlas
from geo.atlas.hierarchy import CODE_LENGTHS, level_of
from geo.errors import BadParameter, DataNotReady, InputFileError
from geo.ingest.imports import check_archive, new_import_id
from geo.ingest.readers import read_areas
from geo.ingest.rebuild import compute_cube, write_cube
from geo.query.counts import METRIC_KEYS, CountCube
from geo.settings import Settings
from geo.store import open_store

M2_CRS = "EPSG:4549"  # CGCS2000 / 3-degree Gauss-Krüger CM 120E: metres around Ningbo
TOLERANCE_M2 = 1.0
CODE_NAMES = ("code", "grid_code", "网格编码", "网格代码", "编码", "代码")
NAME_NAMES = ("name", "grid_name", "网格名称", "名称")
GRID_NUMBERS = ("households", "population", "leaders", "workers")
MAX_PROBLEMS = 200


class GridUpdateRefused(InputFileError):
    """The new grids failed the checks; ``problems`` lists every one. Nothing was changed."""

    def __init__(self, path, problems: list[str]):
        self.problems = list(problems)
        shown = self.problems[:MAX_PROBLEMS]
        more = f"\n  ... and {len(self.problems) - len(shown)} more" if len(self.problems) > len(shown) else ""
        super().__init__(path, f"grid update refused, nothing was changed; {len(self.problems)} problem(s):\n"
                               + "\n".join(f"  - {p}" for p in shown) + more)


@dataclass
class GridUpdateReport:
    """What a grid update changed (or, with ``dry_run``, would change)."""

    area: str
    area_name: str
    grids_before: int
    grids_after: int
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    reshaped: list[str] = field(default_factory=list)
    villages_reshaped: list[str] = field(default_factory=list)
    records: int = 0
    records_moved: int = 0
    count_changes: list[dict] = field(default_factory=list)  # {code, name, metric, before, after}
    dry_run: bool = False
    store_version: int | None = None
    seconds: float = 0.0

    def lines(self) -> list[str]:
        """The report as the CLI prints it."""
        verb = "would replace" if self.dry_run else "replaced"
        out = [f"{verb} the grids of {self.area} {self.area_name}: {self.grids_before} -> {self.grids_after} grids "
               f"({len(self.added)} added, {len(self.removed)} removed, {len(self.reshaped)} reshaped)"]
        for label, codes in (("added", self.added), ("removed", self.removed), ("reshaped", self.reshaped)):
            if codes:
                out.append(f"  {label}: {', '.join(codes[:20])}" + (" ..." if len(codes) > 20 else ""))
        out.append(f"records re-joined: {self.records}, of which {self.records_moved} moved to another grid")
        if self.count_changes:
            out.append("village counts that move:")
            for c in self.count_changes[:40]:
                out.append(f"  {c['code']} {c['name']}: {c['metric']} {c['before']:,} -> {c['after']:,}")
        if self.dry_run:
            out.append("dry run: nothing was changed")
        else:
            out.append(f"store version {self.store_version}, {self.seconds:.1f} s")
        return out


def update_grids(settings: Settings, path, *, area: str | None = None, crs=None, encoding=None, layer=None,
                 dry_run: bool = False, log=None) -> GridUpdateReport:
    """Check the grid polygons in ``path`` and replace those of one town or district with them.

    ``area`` is the town (9 digits) or district (6 digits) being re-zoned; by default the
    smallest one holding every code of the file. Raises :class:`GridUpdateRefused` listing every
    problem (and changes nothing) when the checks fail.
    """
    t0 = time.perf_counter()
    say = log or (lambda *_: None)
    path = Path(path)
    check_archive(path, settings.max_unzipped_bytes)
    store = open_store(settings)
    areas_version = store.get_meta("areas_version")
    atlas = store.load_atlas(settings.demo_dir)
    say(f"reading {path.name}")
    raw = read_areas(path, crs=crs, encoding=encoding, layer=layer, repair=False)
    new, area, problems = prepare_grids(atlas, raw, area)
    say(f"checking {len(new)} grids against {area} {atlas.get(area)['name']}")
    problems += check_tiling(atlas, new, area)
    if problems:
        raise GridUpdateRefused(path, problems)

    layers = _new_layers(atlas, new, area)
    new_atlas = Atlas(layers, _rejoin_checkpoints(atlas.checkpoints, layers["grid"]))
    report = _describe(atlas, new_atlas, area, dry_run)
    demo = settings.demo_dir

    def rejoin(con):
        cube, checks, _ = compute_cube(new_atlas, store, demo / "events", demo / "checkpoint_checks.parquet",
                                       assign=new_atlas.grid_index.assign)
        report.records, report.records_moved, moves = _rejoin_records(con, new_atlas)
        report.count_changes = _count_changes(atlas, new_atlas, CountCube.load(store, atlas).values, cube, area)
        return cube, checks, moves

    if dry_run:
        with store.snapshot() as con:
            rejoin(con)
        report.seconds = round(time.perf_counter() - t0, 2)
        return report
    with store.transaction() as con:
        say("re-joining records and events (transaction open)")
        row = con.execute("SELECT value FROM meta WHERE key = 'areas_version'").fetchone()
        if (row[0] if row else None) != areas_version:
            # Another update replaced the areas since we read them: ours would undo it.
            raise DataNotReady("the grid boundaries were updated by someone else meanwhile; nothing was "
                               "changed: run the update again")
        cube, checks, moves = rejoin(con)
        write_cube(con, new_atlas, cube, checks)
        con.executemany("UPDATE records SET grid_code = ? WHERE metric = ? AND record_id = ?", moves)
        store.set_meta(con, "areas_version", f"{time.time_ns()}")
        report.store_version = int(con.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0]) + 1
        report.seconds = round(time.perf_counter() - t0, 2)
        # Kept in the import log next to the record imports: what was re-zoned, and when.
        con.execute("INSERT INTO imports VALUES (?, 'grids', ?, ?, ?, NULL)",
                    (new_import_id(), path.name, dt.datetime.now().isoformat(timespec="seconds"),
                     json.dumps(asdict(report), ensure_ascii=False)))
        # The new areas go into place last, just before the commit: a failure before this
        # line leaves both the areas and the counts as they were.
        store.save_atlas(con, new_atlas, demo)
        say("committing")
    return report


def prepare_grids(atlas: Atlas, raw: gpd.GeoDataFrame, area: str | None) -> tuple[gpd.GeoDataFrame, str, list[str]]:
    """Normalise the file's grids (code/name columns, validity) and check their codes.

    Returns (grids with ``code`` and optional ``name`` and numbers, the area code, problems).
    Raises BadParameter if no area can be worked out at all.
    """
    problems: list[str] = []
    code_col = _pick_column(raw, CODE_NAMES)
    if code_col is None:
        raise InputFileError(raw.attrs.get("path", "grid file"),
                             f"has no grid code column (expected one of {', '.join(CODE_NAMES)}); "
                             f"columns: {', '.join(c for c in raw.columns if c != raw.geometry.name)}")
    codes = [_code_text(v) for v in raw[code_col].tolist()]
    # Features are named as the loader names them: "#3 (code=330212108001003)", 0-based.
    labels = [f"#{i} ({code_col}={c})" for i, c in enumerate(codes)]
    for item in raw.attrs.get("invalid", []):
        problems.append(f"{item['feature']}: invalid geometry ({item['reason']})")
    for i, code in enumerate(codes):
        if code is None:
            problems.append(f"{labels[i]}: the code is empty")
        elif not (code.isdigit() and len(code) == CODE_LENGTHS["grid"]):
            problems.append(f"{labels[i]}: code {code!r} is not a 15-digit grid code")
    good = [c for c in codes if c and c.isdigit() and len(c) == 15]
    counts = pd.Series(good, dtype=object).value_counts()
    for code, n in counts[counts > 1].items():
        where = ", ".join(f"#{i}" for i, c in enumerate(codes) if c == code)
        problems.append(f"code {code} appears {n} times ({where}); codes must be unique")
    area = _area_of(atlas, good, area)
    name = atlas.get(area)["name"]
    villages = set(atlas.layers["village"]["code"])
    for code in sorted(set(good)):
        if not code.startswith(area):
            problems.append(f"grid {code} is not inside {area} {name}: its code must start with {area}")
        elif code[:12] not in villages:
            problems.append(f"grid {code}: village {code[:12]} does not exist in {area} {name}; "
                            "grid codes are <village code> + 3 digits")
    in_area = atlas.layers["village"]["code"].str.startswith(area)
    for vcode, vname in atlas.layers["village"].loc[in_area, ["code", "name"]].itertuples(index=False):
        if not any(c.startswith(vcode) for c in good):
            problems.append(f"village {vcode} {vname} would have no grid left")
    out = gpd.GeoDataFrame({"code": codes}, geometry=raw.geometry.to_numpy(), crs=raw.crs)
    name_col = _pick_column(raw, NAME_NAMES)
    if name_col is not None:
        out["name"] = raw[name_col].to_numpy()
    for col in GRID_NUMBERS:
        if col in raw.columns:
            out[col] = pd.to_numeric(raw[col], errors="coerce").to_numpy()
    return out, area, problems


def check_tiling(atlas: Atlas, grids: gpd.GeoDataFrame, area: str) -> list[str]:
    """Gaps, overlaps and overhangs over 1 m² (EPSG:4549) between ``grids`` and the area outline."""
    problems: list[str] = []
    outline = gpd.GeoSeries([atlas.geometry_of(area)], crs="EPSG:4326").to_crs(M2_CRS).iloc[0]
    geoms = grids.to_crs(M2_CRS).geometry.to_numpy()
    codes = grids["code"].tolist()
    for i in np.flatnonzero(~shapely.is_valid(geoms) & shapely.is_valid(grids.geometry.to_numpy())):
        problems.append(f"grid {codes[i]}: invalid once projected to metres ({shapely.is_valid_reason(geoms[i])})")
    # Invalid polygons are already problems; measure the tiling on their repaired form so that
    # GEOS can compute it and the other problems are still found.
    g = np.where(shapely.is_valid(geoms), geoms, shapely.make_valid(geoms))
    c = codes
    covered = shapely.union_all(g)
    for part in shapely.get_parts(shapely.difference(outline, covered)):
        if part.area > TOLERANCE_M2:
            problems.append(f"gap of {part.area:,.1f} m² covered by no grid near {_where(part)}")
    overhang = shapely.area(shapely.difference(g, outline))
    for i in np.flatnonzero(overhang > TOLERANCE_M2):
        problems.append(f"grid {c[i]} extends {overhang[i]:,.1f} m² beyond the outline of {area} "
                        f"{atlas.get(area)['name']}")
    left, right = shapely.STRtree(g).query(g, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    overlap = shapely.area(shapely.intersection(g[left], g[right]))
    for a, b, v in zip(left[overlap > TOLERANCE_M2], right[overlap > TOLERANCE_M2], overlap[overlap > TOLERANCE_M2]):
        problems.append(f"grids {c[a]} and {c[b]} overlap by {v:,.1f} m²")
    return problems


# --------------------------------------------------------------------------------------------
# Building the new atlas
# --------------------------------------------------------------------------------------------


def _new_layers(atlas: Atlas, new: gpd.GeoDataFrame, area: str) -> dict[str, gpd.GeoDataFrame]:
    """The atlas layers with the area's grids replaced and its changed villages re-outlined."""
    old = atlas.grids
    inside = old["code"].str.startswith(area)
    old_area = old[inside].set_index("code")
    new = new.to_crs("EPSG:4326")
    rows = pd.DataFrame({"code": new["code"].to_numpy(dtype=object)})
    rows["level"] = "grid"
    rows["parent"] = rows["code"].str.slice(0, CODE_LENGTHS["village"])
    village_names = atlas.layers["village"].set_index("code")["name"]
    default_names = [f"{village_names[c[:12]]}第{int(c[12:])}网格" for c in rows["code"]]
    names = new["name"] if "name" in new.columns else pd.Series([None] * len(new))
    kept_names = old_area["name"].reindex(rows["code"]).to_numpy()
    rows["name"] = [n if isinstance(n, str) and n.strip() else (k if isinstance(k, str) else d)
                    for n, k, d in zip(names, kept_names, default_names)]
    shares = _area_shares(old_area.geometry.to_numpy(), new.geometry.to_numpy())
    for col in GRID_NUMBERS:
        if col not in old.columns:
            continue
        estimate = np.rint(shares @ old_area[col].to_numpy(dtype=float))
        given = new[col].to_numpy(dtype=float) if col in new.columns else np.full(len(new), np.nan)
        rows[col] = np.where(np.isfinite(given), given, estimate).astype(old[col].dtype)
    geoms = [_multi(g) for g in new.geometry.to_numpy()]
    grids = gpd.GeoDataFrame(rows.reindex(columns=[c for c in old.columns if c != old.geometry.name]),
                             geometry=gpd.GeoSeries(geoms, crs=old.crs, name=old.geometry.name))
    grids = pd.concat([old[~inside], grids], ignore_index=True).sort_values("code", ignore_index=True)

    layers = dict(atlas.layers)
    layers["grid"] = gpd.GeoDataFrame(grids, geometry=old.geometry.name, crs=old.crs)
    villages = atlas.layers["village"].copy()
    changed = _changed_villages(old_area, new)
    geom_col = villages.columns.get_loc(villages.geometry.name)
    for i in np.flatnonzero(villages["code"].isin(changed).to_numpy()):
        vcode = villages["code"].iat[i]
        members = grids.geometry.to_numpy()[grids["code"].str.startswith(vcode).to_numpy()]
        villages.iloc[i, geom_col] = _multi(shapely.union_all(members))
    layers["village"] = villages
    return layers


def _area_shares(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """[new, old] matrix: the share of each old grid's area that falls in each new grid.

    Grid households, population and staff of re-zoned grids are estimated by area from the
    grids they replace, when the file does not give them."""
    old_m = gpd.GeoSeries(old, crs="EPSG:4326").to_crs(M2_CRS).to_numpy()
    new_m = gpd.GeoSeries(new, crs="EPSG:4326").to_crs(M2_CRS).to_numpy()
    shares = np.zeros((len(new_m), len(old_m)))
    if not len(old_m):
        return shares
    a, b = shapely.STRtree(old_m).query(new_m, predicate="intersects")
    areas = shapely.area(old_m)
    shares[a, b] = shapely.area(shapely.intersection(new_m[a], old_m[b])) / np.where(areas[b] > 0, areas[b], 1)
    return shares


def _changed_villages(old_area: gpd.GeoDataFrame, new: gpd.GeoDataFrame) -> set[str]:
    """Villages whose grids were added, removed or reshaped."""
    old_geoms = old_area.geometry
    changed = set()
    new_codes = set(new["code"])
    for code in set(old_area.index) ^ new_codes:
        changed.add(code[:12])
    for code, geom in zip(new["code"], new.geometry):
        if code in old_geoms.index and not shapely.equals_exact(_multi(geom), _multi(old_geoms[code]), 1e-9):
            changed.add(code[:12])
    return changed


def _rejoin_checkpoints(checkpoints: gpd.GeoDataFrame, grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Checkpoints get the grid that now contains them."""
    from geo.spatial.join import GridIndex

    out = checkpoints.copy()
    if len(out) and "grid_code" in out.columns:
        idx = GridIndex(grids.geometry.to_numpy()).assign_exact(out.geometry.x.to_numpy(), out.geometry.y.to_numpy())
        codes = grids["code"].to_numpy(dtype=object)
        out["grid_code"] = np.where(idx >= 0, codes[np.maximum(idx, 0)], None)
    return out


# --------------------------------------------------------------------------------------------
# Records, counts and the report
# --------------------------------------------------------------------------------------------


def _rejoin_records(con, atlas: Atlas) -> tuple[int, int, list[tuple]]:
    """Join every stored record to the new grids; return (records, moved, updates to apply)."""
    rows = con.execute("SELECT metric, record_id, lon, lat, grid_code FROM records").fetchall()
    if not rows:
        return 0, 0, []
    frame = pd.DataFrame(rows, columns=["metric", "record_id", "lon", "lat", "grid_code"])
    idx = atlas.grid_index.assign(frame["lon"].to_numpy(float), frame["lat"].to_numpy(float))
    codes = atlas.grid_codes.astype(object)
    new_codes = np.where(idx >= 0, codes[np.maximum(idx, 0)], None)
    moved = np.flatnonzero(new_codes != frame["grid_code"].to_numpy(dtype=object))
    updates = list(zip(new_codes[moved].tolist(), frame["metric"].to_numpy()[moved].tolist(),
                       frame["record_id"].to_numpy()[moved].tolist()))
    return len(frame), len(moved), updates


def _count_changes(old_atlas: Atlas, new_atlas: Atlas, old_cube: np.ndarray, new_cube: np.ndarray,
                   area: str) -> list[dict]:
    """Per village of the area and metric, the total before and after, where it changes."""
    def totals(atlas, cube):
        villages = pd.Series(atlas.grid_codes).str.slice(0, 12).to_numpy()
        sums = cube.sum(axis=2)  # [metric, grid]
        return {m: pd.Series(sums[i]).groupby(villages).sum() for i, m in enumerate(METRIC_KEYS)}

    before, after = totals(old_atlas, old_cube), totals(new_atlas, new_cube)
    names = old_atlas.layers["village"].set_index("code")["name"]
    out = []
    for vcode in sorted(c for c in names.index if c.startswith(area)):
        for m in METRIC_KEYS:
            b, a = int(before[m].get(vcode, 0)), int(after[m].get(vcode, 0))
            if a != b:
                out.append({"code": vcode, "name": names[vcode], "metric": m, "before": b, "after": a})
    return out


def _describe(atlas: Atlas, new_atlas: Atlas, area: str, dry_run: bool) -> GridUpdateReport:
    old = atlas.grids[atlas.grids["code"].str.startswith(area)].set_index("code").geometry
    new = new_atlas.grids[new_atlas.grids["code"].str.startswith(area)].set_index("code").geometry
    reshaped = [c for c in sorted(set(old.index) & set(new.index))
                if not shapely.equals_exact(old[c], new[c], 1e-9)]
    return GridUpdateReport(
        area=area, area_name=atlas.get(area)["name"], grids_before=len(old), grids_after=len(new),
        added=sorted(set(new.index) - set(old.index)), removed=sorted(set(old.index) - set(new.index)),
        reshaped=reshaped, dry_run=dry_run,
    )


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _area_of(atlas: Atlas, codes: list[str], area: str | None) -> str:
    """The town or district being updated: the one given, or the smallest holding every code."""
    if area is not None:
        area = str(area).strip()
        level = level_of(area)
        if level not in ("town", "district"):
            raise BadParameter(f"area {area!r} is a {level}; a grid update replaces a town (9 digits) "
                               "or a district (6 digits)")
        atlas.get(area)
        return area
    if not codes:
        raise BadParameter("no valid grid code in the file, so the town or district cannot be worked out; "
                           "give it with --area")
    for length in (CODE_LENGTHS["town"], CODE_LENGTHS["district"]):
        prefixes = {c[:length] for c in codes}
        if len(prefixes) == 1:
            candidate = prefixes.pop()
            atlas.get(candidate)
            return candidate
    raise BadParameter("the grids span several districts; update one town or district at a time (--area)")


def _pick_column(frame: pd.DataFrame, names) -> str | None:
    lowered = {str(c).strip().lower(): c for c in frame.columns if c != frame.geometry.name}
    return next((lowered[n] for n in names if n in lowered), None)


def _code_text(value) -> str | None:
    """A code cell as text: 330212108001001.0 -> "330212108001001", blanks -> None."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


def _multi(geom):
    """Polygons as MultiPolygons: the area layers hold one geometry type."""
    if geom is not None and geom.geom_type == "Polygon":
        return shapely.MultiPolygon([geom])
    return geom


def _where(geom) -> str:
    p = gpd.GeoSeries([geom.representative_point()], crs=M2_CRS).to_crs("EPSG:4326").iloc[0]
    return f"({p.x:.6f}, {p.y:.6f})"


__all__ = ["GridUpdateRefused", "GridUpdateReport", "check_tiling", "prepare_grids", "update_grids"]
