"""Speed of record imports, printed as a table against the target.

    .venv/bin/python bench/ingest_bench.py [--rows 1000000] [--keep]

Target: 1 million CSV rows imported in at most 20 s, including the join. Each case runs the
real command line, ``python -m geo ingest FILE --metric visits``, in a fresh process (so the
time includes Python's start-up, loading the grids and building the join index) against a
copy of the data the settings point at (``GRIDATLAS_DATA_DIR``, default ./data: run
``make demo`` first); ./data itself is never written. CPU seconds are printed next to the wall
time: on a shared machine, wall time well above CPU time means the import waited for a core.

Cases: a first import of N new rows (the target); the same file again (all duplicates,
nothing written but the import log); the file with a tenth of its rows corrected (replaced).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from geo.atlas.areas import Atlas  # noqa: E402
from geo.settings import get_settings  # noqa: E402

TARGET_S = 20.0


def write_csv(path: Path, n: int, atlas: Atlas, seed: int, corrected: float = 0.0) -> None:
    """N rows with Chinese headers, as a clerk's export looks: id, date, lon, lat, a note.

    99 % of the points lie inside the city, 1 % outside it (rejected, which is part of the
    work). ``corrected`` moves that share of rows by about 100 m, so that re-importing them
    replaces the records."""
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = atlas.grids.total_bounds
    x, y = rng.uniform(minx, maxx, 3 * n), rng.uniform(miny, maxy, 3 * n)
    inside = atlas.grid_index.assign(x, y) >= 0
    n_out = n // 100
    lon = np.concatenate([x[inside][: n - n_out], x[~inside][:n_out]])
    lat = np.concatenate([y[inside][: n - n_out], y[~inside][:n_out]])
    order = rng.permutation(n)
    lon, lat = np.round(lon[order], 6), np.round(lat[order], 6)
    if corrected:
        moved = np.random.default_rng(seed + 1).random(n) < corrected
        lon[moved] = np.round(lon[moved] + 0.001, 6)
    days = np.datetime64("2020-01-24") + rng.integers(0, 68, n).astype("timedelta64[D]")
    table = pa.table({
        "编号": pa.array(np.char.add("ZF", np.arange(n).astype(str))),
        "日期": pa.array(days.astype(str)),
        "经度": pa.array(lon),
        "纬度": pa.array(lat),
        "备注": pa.array(np.where(rng.random(n) < 0.5, "入户走访", "电话随访")),
    })
    pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="none"))


def run_cli(data_dir: Path, csv_path: Path) -> tuple[float, float, str]:
    """(wall s, CPU s, first line of the report) of one `python -m geo ingest` process."""
    env = dict(os.environ, GRIDATLAS_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "geo", "ingest", str(csv_path), "--metric", "visits"],
                         env=env, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"ingest failed ({out.returncode}):\n{out.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out.stdout.splitlines()[0]


def main(argv=None) -> int:
    """Run the cases and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (printed)")
    args = parser.parse_args(argv)

    settings = get_settings()
    atlas = Atlas.load(settings.demo_dir)
    work = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    try:
        data = work / "data"
        data.mkdir()
        shutil.copytree(settings.demo_dir, data / "demo")
        if settings.store_path.exists():
            shutil.copy2(settings.store_path, data / settings.store_path.name)
        first, fixed = work / "records.csv", work / "records_corrected.csv"
        t0 = time.perf_counter()
        write_csv(first, args.rows, atlas, args.seed)
        write_csv(fixed, args.rows, atlas, args.seed, corrected=0.1)
        print(f"files: {args.rows:,} rows each, {first.stat().st_size / 1e6:.0f} MB "
              f"(written in {time.perf_counter() - t0:.1f} s) in {work}")

        cases = [("first import (new rows)", first, True), ("same file again (duplicates)", first, False),
                 ("10% of rows corrected (replaced)", fixed, False)]
        rows = []
        for label, path, targeted in cases:
            wall, cpu, line = run_cli(data, path)
            rows.append((label, wall, cpu, line, targeted))

        print()
        print(f"{'case':34} {'wall s':>7} {'CPU s':>7}  {'target':>8}  report")
        for label, wall, cpu, line, targeted in rows:
            target = f"<= {TARGET_S:.0f} s" if targeted else ""
            verdict = ("ok" if wall <= TARGET_S else "SLOW") if targeted else ""
            print(f"{label:34} {wall:7.1f} {cpu:7.1f}  {target:>8} {verdict:4}  {line}")
        print(f"\n{os.cpu_count()} cores; load average {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
        return 0 if rows[0][1] <= TARGET_S else 1
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
