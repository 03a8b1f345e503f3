"""The command line: ``python -m geo <command>``. Each command calls the same core functions
as the web layer; errors print one clear line and exit non-zero, never a traceback."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import GridAtlasError
from .settings import get_settings


def _say(line: str) -> None:
    """Progress line, flushed at once: a supervisor (or a test) may be reading the pipe."""
    print(line, flush=True)


def _cmd_demo(args, settings) -> int:
    from .areas import Atlas
    from .demo import build_demo
    from .rebuild import rebuild
    from .store import Store

    out = Path(args.out) if args.out else settings.demo_dir
    manifest = build_demo(out, settings.shapes_dir / "districts_wgs84.geojson", scale=args.scale, seed=args.seed)
    print(f"demo data written to {out} in {manifest['built_in_s']} s")
    store = Store(out.parent / settings.store_path.name) if args.out else Store(settings.store_path)
    report = rebuild(Atlas.load(out), store, out / "events", out / "checkpoint_checks.parquet")
    for line in report.lines():
        print("  " + line)
    print(f"store: {store.path}")
    return 0


def _cmd_rebuild(args, settings) -> int:
    from .areas import Atlas
    from .rebuild import rebuild
    from .store import Store

    demo = settings.demo_dir
    report = rebuild(Atlas.load(demo), Store(settings.store_path), demo / "events", demo / "checkpoint_checks.parquet",
                     log=_say)
    for line in report.lines():
        print("  " + line)
    return 0


def _cmd_join(args, settings) -> int:
    from .joinfiles import join_files

    summary = join_files(args.grids, args.points, args.output, crs=args.crs, encoding=args.encoding,
                         code_column=args.code_column)
    print(summary)
    return 0


def _cmd_status(args, settings) -> int:
    from .service import AtlasService

    status = AtlasService(settings).status()
    print(", ".join(f"{n} {lv}s" for lv, n in status["areas"].items()) + f", {status['checkpoints']} checkpoints")
    for k, v in status["totals"].items():
        print(f"  {k}: {v:,}")
    return 0


def _cmd_bench(args, settings) -> int:
    from .bench import run_bench

    run_bench(settings, scale=args.scale, seed=args.seed, sjoin=not args.no_sjoin)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command (also used by the docs and tests)."""
    parser = argparse.ArgumentParser(prog="python -m geo", description="Grid Atlas command line")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="build the demo city, checkpoints and events, then the counts")
    p.add_argument("--scale", type=float, default=None, help="events multiplier (1 = the seed's totals)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", help="folder for the demo files (default: <data dir>/demo)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("rebuild", help="recompute all counts from the demo files and imported records")
    p.set_defaults(func=_cmd_rebuild)

    p = sub.add_parser("join", help="give each point the code of the grid that contains it")
    p.add_argument("grids")
    p.add_argument("points")
    p.add_argument("--crs", default="EPSG:4326", help="CRS of the points: EPSG:NNNN, gcj02 or bd09")
    p.add_argument("--encoding", help="text encoding of CSV / Shapefile attributes (e.g. gbk)")
    p.add_argument("--code-column", default=None, help="grid code column (default: code or grid_code)")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=_cmd_join)

    p = sub.add_parser("status", help="print what the store holds")
    p.set_defaults(func=_cmd_status)

    p = sub.add_parser("bench", help="measure the join (and more) against references in the same run")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--no-sjoin", action="store_true", help="skip the geopandas.sjoin reference")
    p.set_defaults(func=_cmd_bench)
    return parser


def main(argv=None) -> int:
    """Run one command; return the process exit code."""
    args = build_parser().parse_args(argv)
    settings = get_settings()
    if getattr(args, "scale", None) is None and args.command == "demo":
        args.scale = settings.demo_scale
    if getattr(args, "seed", None) is None and args.command == "demo":
        args.seed = settings.demo_seed
    try:
        return args.func(args, settings)
    except GridAtlasError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
