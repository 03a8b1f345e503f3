"""Speed of the map exports, printed as a table against the targets.

    .venv/bin/python bench/export_bench.py [--towns N] [--workers 2] [--repeat 3]

Uses the data the settings point at (``GRIDATLAS_DATA_DIR``, default ./data: run ``make demo``
first). Targets: an A3 300-dpi PNG of the whole city with all 10,205 grids in at most 5 s;
one town at A4 150 dpi in at most 1 s; every town of the city in one batch in at most 2 min.
"Warm" means the process has loaded the atlas, counts, shapes and font once, as a running
server or a batch worker has; the one-off start-up is reported on its own line.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from geo.export.exporter import batch_export, export_options, render_export  # noqa: E402
from geo.export.figure import warm_up  # noqa: E402
from geo.query.service import AtlasService  # noqa: E402
from geo.settings import get_settings  # noqa: E402

_cpu_log: list[float] = []


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the batch workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(fn):
    """(wall seconds, result); the CPU seconds go to _cpu_log (on a shared machine they show
    how much of the wall time was waiting for a core)."""
    t, c = time.perf_counter(), _cpu()
    out = fn()
    _cpu_log.append(_cpu() - c)
    return time.perf_counter() - t, out


def main(argv=None) -> int:
    """Run the measurements and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per single-map measurement (median)")
    parser.add_argument("--towns", type=int, default=10, help="towns timed one by one")
    parser.add_argument("--workers", type=int, default=2, help="processes of the batch")
    parser.add_argument("--no-batch", action="store_true", help="skip the every-town batch")
    args = parser.parse_args(argv)

    service = AtlasService(get_settings())
    rows = []
    start_s, _ = _timed(lambda: (service.atlas, warm_up(service, {"district", "town", "village", "grid"})))
    rows.append(("start-up: atlas, counts, shapes, font (once per process)", start_s, None, _cpu_log[-1]))

    def city(fmt, dpi=300):
        return render_export(service, export_options("330200", fmt, level="grid", paper="a3", dpi=dpi))

    _timed(lambda: city("png"))  # first draw also warms matplotlib's own caches
    times = [_timed(lambda: city("png"))[0] for _ in range(args.repeat)]
    rows.append(("city, all 10,205 grids, A3 300 dpi PNG", statistics.median(times), 5.0,
                 statistics.median(_cpu_log[-args.repeat:])))
    for fmt in ("pdf", "svg"):
        t, result = _timed(lambda: city(fmt))
        rows.append((f"city, all 10,205 grids, A3 {fmt.upper()} ({len(result.data) / 1e6:.1f} MB)", t, None,
                     _cpu_log[-1]))

    towns = service.atlas.layers["town"]["code"].tolist()
    sample = towns[:: max(1, len(towns) // args.towns)][: args.towns]
    times = [_timed(lambda c=c: render_export(service, export_options(c, "png", paper="a4", dpi=150)))[0]
             for c in sample]
    cpus = _cpu_log[-len(sample):]
    rows.append((f"one town, A4 150 dpi PNG (median of {len(sample)} towns)", statistics.median(times), 1.0,
                 statistics.median(cpus)))
    rows.append(("one town, A4 150 dpi PNG (slowest of them)", max(times), 1.0, cpus[times.index(max(times))]))

    if not args.no_batch:
        with tempfile.TemporaryDirectory() as out:
            template = export_options("330200", "png", paper="a4", dpi=150)
            t, paths = _timed(lambda: batch_export(service, "town", "330200", out, template,
                                                   workers=args.workers, progress=False))
        rows.append((f"every town ({len(paths)}), A4 150 dpi PNG, {args.workers} processes", t, 120.0, _cpu_log[-1]))

    width = max(len(r[0]) for r in rows)
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} cores, load average {load:.2f} at the end (other work on the machine slows the wall times)")
    print(f"{'measurement':<{width}}  {'wall s':>8}  {'CPU s':>7}  {'target':>7}  result")
    print("-" * (width + 40))
    for name, seconds, target, cpu in rows:
        verdict = "" if target is None else ("ok" if seconds <= target else "OVER")
        shown_target = "" if target is None else f"≤ {target:g}"
        print(f"{name:<{width}}  {seconds:8.2f}  {cpu:7.2f}  {shown_target:>7}  {verdict}")
    return 0 if all(t is None or s <= t for _, s, t, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
