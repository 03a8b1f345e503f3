"""``python -m geo demo``: build the demo city inside the real district outlines.

Writes ``areas.gpkg`` (layers district, town, village, grid, checkpoint), one GeoParquet
event file per point metric under ``events/``, ``checkpoint_checks.parquet`` and the grid
workers' daily online figures per district (``worker_online.parquet``). Everything
is deterministic for a seed; ``scale`` multiplies the events only.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import geopandas as gpd

from geo.atlas.areas import AREA_LAYERS, areas_file
from geo.atlas.online import ONLINE_FILE
from geo.demo.areas import TOWNS_FILE, read_towns, synthesise_areas
from geo.demo.checkpoints import synthesise_checkpoints, synthesise_checks
from geo.demo.events import synthesise_events
from geo.demo.online import synthesise_online


def build_demo(out_dir: Path, districts_file: Path, *, towns_file: Path | None = None, scale: float = 1.0,
               seed: int = 2020, log=print) -> dict:
    """Build the demo data set into ``out_dir`` (replacing it whole at the end) and return its manifest.

    ``towns_file`` is the list of town-level units (default: ``towns_2020.csv`` beside the districts).
    """
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    t0 = time.perf_counter()
    districts = gpd.read_file(districts_file, engine="pyogrio")
    towns = read_towns(towns_file or Path(districts_file).with_name(TOWNS_FILE))
    areas = synthesise_areas(districts, towns, seed)
    log(f"areas: {', '.join(f'{len(v)} {k}s' for k, v in areas.items())} ({time.perf_counter() - t0:.1f} s)")
    checkpoints = synthesise_checkpoints(areas["grid"], areas["town"], seed)
    gpkg = areas_file(tmp)
    for level in AREA_LAYERS:
        areas[level].to_file(gpkg, layer=level, driver="GPKG", engine="pyogrio")
    checkpoints.to_file(gpkg, layer="checkpoint", driver="GPKG", engine="pyogrio")
    log(f"checkpoints: {len(checkpoints)} ({time.perf_counter() - t0:.1f} s)")
    checks = synthesise_checks(checkpoints, scale, seed)
    checks.to_parquet(tmp / "checkpoint_checks.parquet", index=False)
    synthesise_online(areas["grid"], seed).to_parquet(tmp / ONLINE_FILE, index=False)
    counts = synthesise_events(areas["grid"], tmp / "events", scale, seed)
    counts["checkpoint_checks"] = int(checks["checks"].sum())
    log(f"events: {sum(counts.values()):,} ({time.perf_counter() - t0:.1f} s)")
    manifest = {"scale": scale, "seed": seed, "events": counts, "built_in_s": round(time.perf_counter() - t0, 1)}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    # Swap the finished folder in whole, so an interrupted build never leaves half a data set.
    old = out_dir.with_name(out_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out_dir.exists():
        out_dir.rename(old)
    tmp.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)
    return manifest
