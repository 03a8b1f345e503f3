"""Does the wall's page keep growing? Measure its JS heap over many refresh cycles.

The target: over 200 refresh cycles the page's JS heap must not keep growing. This script:

1. copies a data folder (default: the configured one, ``GRIDATLAS_DATA_DIR`` or ``./data``) to a
   temporary folder, so the counts can be changed without touching the original;
2. serves the app on 127.0.0.1 (as a test app: its requests count as a city-wide user) and
   opens ``/wall`` in headless Chromium with a short refresh interval (and the tour on);
3. every ``--changes`` cycles, imports one new record (a household visit today) through the
   importer (``geo.ingest.ingest_file``: one store transaction), so the next cycle also
   re-fetches the map's colours and heat and restyles the layers (the heaviest path);
4. after ``--warmup`` cycles and then every ``--every`` cycles, forces a garbage collection
   (CDP ``HeapProfiler.collectGarbage``) and reads the heap (CDP ``Performance.getMetrics``:
   JSHeapUsedSize, Nodes, JSEventListeners; and ``performance.memory.usedJSHeapSize``).

It prints one line per sample and a verdict; with ``--json FILE`` it also writes the samples.
The exit status is 1 when the heap grew by more than ``--tolerance-mb`` between the first and
the last samples (medians of three) or the DOM kept growing.

    .venv/bin/python bench/wall_memory.py                      # 200 cycles, refresh 0.25 s, tour on
    .venv/bin/python bench/wall_memory.py --data DIR --cycles 400 --json heap.json
    .venv/bin/python bench/wall_memory.py --playback 14 --step 0.5   # the map also loops through 14 days
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def copy_data(source: Path, target: Path) -> None:
    """Copy the demo folder and a consistent snapshot of the store (SQLite's backup API)."""
    shutil.copytree(source / "demo", target / "demo")
    src = sqlite3.connect(source / "gridatlas.sqlite")
    dst = sqlite3.connect(target / "gridatlas.sqlite")
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def change_a_count(service, folder: Path, metric: str, grid: str, day: str, n: int) -> None:
    """Import one record of ``metric`` on ``day`` inside ``grid`` through the importer (one
    transaction: the store version moves, the wall re-fetches). ``n`` makes its id new."""
    from geo.ingest.imports import ingest_file

    x, y = service.atlas.geometry_of(grid).representative_point().coords[0]
    path = folder / f"bench-{n}.csv"
    path.write_text(f"id,date,lon,lat\nwall-bench-{n},{day},{x:.7f},{y:.7f}\n", encoding="utf-8")
    report = ingest_file(service.settings, path, metric=metric, atlas=service.atlas)
    if report.accepted != 1:
        raise SystemExit(f"the bench's record was not imported: {report.first_line()}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, help="data folder to copy (default: the configured one)")
    p.add_argument("--cycles", type=int, default=200, help="refresh cycles measured after the warm-up")
    p.add_argument("--warmup", type=int, default=20, help="cycles before the first sample")
    p.add_argument("--every", type=int, default=20, help="cycles between samples")
    p.add_argument("--refresh", type=float, default=0.25, help="refresh interval in seconds")
    p.add_argument("--changes", type=int, default=10, help="change a count every N cycles (0: never)")
    p.add_argument("--no-tour", action="store_true", help="keep one view (default: tour every 2 s)")
    p.add_argument("--playback", type=int, default=0, help="also loop the map through the last N days (0: off)")
    p.add_argument("--step", type=float, default=0.5, help="seconds per day of the playback")
    p.add_argument("--width", type=int, default=1920)
    p.add_argument("--height", type=int, default=1080)
    p.add_argument("--tolerance-mb", type=float, default=1.0)
    p.add_argument("--json", type=Path, help="write the samples and the verdict to this file")
    args = p.parse_args(argv)

    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from geo.query.wall import data_day
    from geo.settings import get_settings
    from web import create_app

    source = (args.data or get_settings().data_path).resolve()
    tmp = Path(tempfile.mkdtemp(prefix="wall-memory-"))
    try:
        copy_data(source, tmp / "data")
        app = create_app({"SETTINGS": {"data_dir": tmp / "data", "secret_key": "bench"}, "TESTING": True})
        service = app.extensions["gridatlas"]
        day = data_day(service).isoformat()
        grid = str(service.atlas.grid_codes[0])
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        tour = "" if args.no_tour else "&tour=1&dwell=2"
        if args.playback:
            tour += f"&playback={args.playback}&step={args.step}"
        url = f"http://127.0.0.1:{server.server_port}/wall?refresh={args.refresh}{tour}"
        print(f"data {source} (copied), {url}, {args.width}x{args.height}", flush=True)

        samples = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--enable-precise-memory-info", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")
            cdp.send("HeapProfiler.enable")
            t0 = time.perf_counter()
            response = page.goto(url)
            if not response.ok:
                raise SystemExit(f"{url} answered HTTP {response.status}")
            page.wait_for_function("() => window.GridAtlasWall && GridAtlasWall.state.mapUpdates >= 1", timeout=60_000)

            def cycles() -> int:
                return page.evaluate("() => GridAtlasWall.state.cycles")

            last_change = 0
            mark = args.warmup
            end = args.warmup + args.cycles
            while mark <= end:
                while (n := cycles()) < mark:
                    if args.changes and n - last_change >= args.changes:
                        change_a_count(service, tmp, "visits", grid, day, n)
                        last_change = n
                    time.sleep(0.05)
                for _ in range(2):  # a second pass frees what the first one's finalizers released
                    cdp.send("HeapProfiler.collectGarbage")
                metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
                state = page.evaluate("""() => ({s: GridAtlasWall.state, mem: performance.memory.usedJSHeapSize})""")
                sample = {
                    "cycle": mark,
                    "heap_mb": round(metrics["JSHeapUsedSize"] / 2**20, 3),
                    "memory_mb": round(state["mem"] / 2**20, 3),
                    "nodes": int(metrics["Nodes"]),
                    "listeners": int(metrics["JSEventListeners"]),
                    "map_updates": state["s"]["mapUpdates"],
                    "tour_steps": state["s"]["tourSteps"],
                    "failed": state["s"]["failed"],
                    "playback_steps": state["s"].get("playbackSteps", 0),
                    "errors": state["s"]["errors"],
                    "seconds": round(time.perf_counter() - t0, 1),
                }
                samples.append(sample)
                print("cycle {cycle:4d}  heap {heap_mb:7.3f} MB  (performance.memory {memory_mb:7.3f} MB)  "
                      "DOM nodes {nodes:5d}  listeners {listeners:4d}  map updates {map_updates:3d}  "
                      "tour steps {tour_steps:3d}  playback steps {playback_steps:4d}  failed {failed}  {seconds:6.1f} s".format(**sample), flush=True)
                mark += args.every
            browser.close()
        server.shutdown()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    first = statistics.median(s["heap_mb"] for s in samples[:3])
    last = statistics.median(s["heap_mb"] for s in samples[-3:])
    # DOM nodes come and go with the fly-to animations: compare medians too.
    nodes_grew = (statistics.median(s["nodes"] for s in samples[-3:])
                  - statistics.median(s["nodes"] for s in samples[:3]))
    grew = last - first > args.tolerance_mb or nodes_grew > 50
    verdict = {
        "cycles": samples[-1]["cycle"], "refresh_s": args.refresh, "tour": not args.no_tour,
        "heap_first_mb": round(first, 3), "heap_last_mb": round(last, 3), "heap_change_mb": round(last - first, 3),
        "heap_min_mb": min(s["heap_mb"] for s in samples), "heap_max_mb": max(s["heap_mb"] for s in samples),
        "dom_nodes_change": nodes_grew, "map_updates": samples[-1]["map_updates"],
        "tour_steps": samples[-1]["tour_steps"], "playback_steps": samples[-1]["playback_steps"],
        "page_errors": errors,
        "growth": grew,
    }
    print(json.dumps(verdict, ensure_ascii=False))
    print("GROWTH: the heap or the DOM kept growing" if grew else "OK: no growth")
    if args.json:
        args.json.write_text(json.dumps({"samples": samples, "verdict": verdict}, indent=2, ensure_ascii=False))
    return 1 if grew or errors else 0


if __name__ == "__main__":
    sys.exit(main())
