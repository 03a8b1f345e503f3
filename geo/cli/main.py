"""The command line: ``python -m geo <command>``. Each command calls the same core functions
as the web layer; errors print one clear line and exit non-zero, never a traceback."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from geo.errors import GridAtlasError
from geo.ingest.engines import ENGINES
from geo.settings import get_settings


def _say(line: str) -> None:
    """Progress line, flushed at once: a supervisor (or a test) may be reading the pipe."""
    print(line, flush=True)


def _cmd_demo(args, settings) -> int:
    from geo.atlas.areas import Atlas
    from geo.demo.build import build_demo
    from geo.ingest.rebuild import rebuild
    from geo.store import SqliteStore, open_store

    out = Path(args.out) if args.out else settings.demo_dir
    manifest = build_demo(out, settings.shapes_dir / "districts_wgs84.geojson", scale=args.scale, seed=args.seed)
    print(f"demo data written to {out} in {manifest['built_in_s']} s")
    # A demo built elsewhere (--out) gets its own SQLite store beside it, unless a database is set.
    if args.out and not settings.database_url:
        store = SqliteStore(out.parent / settings.store_path.name)
    else:
        store = open_store(settings)
    report = rebuild(Atlas.load(out), store, out / "events", out / "checkpoint_checks.parquet", publish_areas=True)
    for line in report.lines():
        print("  " + line)
    print(f"store: {store!r}")
    return 0


def _cmd_rebuild(args, settings) -> int:
    from geo.ingest.rebuild import rebuild
    from geo.store import open_store

    demo = settings.demo_dir
    store = open_store(settings)
    report = rebuild(store.load_atlas(demo), store, demo / "events", demo / "checkpoint_checks.parquet",
                     log=_say, engine=args.engine, scheduler=args.scheduler)
    for line in report.lines():
        print("  " + line)
    return 0


def _cmd_join(args, settings) -> int:
    from geo.ingest.joinfiles import join_files

    summary = join_files(args.grids, args.points, args.output, crs=args.crs, encoding=args.encoding,
                         code_column=args.code_column, layer=args.layer)
    print(summary)
    return 0


def _cmd_status(args, settings) -> int:
    from geo.query.service import AtlasService

    status = AtlasService(settings).status()
    print(", ".join(f"{n} {lv}s" for lv, n in status["areas"].items()) + f", {status['checkpoints']} checkpoints")
    for k, v in status["totals"].items():
        print(f"  {k}: {v:,}")
    return 0


def _cmd_migrate(args, settings) -> int:
    from geo.errors import BadParameter

    if not settings.database_url:
        raise BadParameter("migrate applies to a PostGIS store: set GRIDATLAS_DATABASE_URL=postgresql://… "
                           "(the SQLite store puts its schema in place by itself)")
    from geo.store.postgis import migrate, without_password

    applied = migrate(settings.database_url, settings.database_schema)
    where = f"{without_password(settings.database_url)} schema {settings.database_schema}"
    print(f"{where}: applied {', '.join(applied)}" if applied else f"{where}: up to date")
    return 0


def _cmd_bench(args, settings) -> int:
    from bench.targets import parse_parts, run_bench

    run_bench(settings, scale=args.scale, seed=args.seed, sjoin=not args.no_sjoin,
              parts=parse_parts(args.only, args.skip), duration=args.duration)
    return 0


def _progress(message: str) -> None:
    """Progress lines go to stderr, so stdout carries only the report."""
    print(message, file=sys.stderr, flush=True)


def _cmd_ingest(args, settings) -> int:
    from geo.ingest.imports import ingest_file

    report = ingest_file(settings, args.file, metric=args.metric, crs=args.crs, encoding=args.encoding,
                         mapping=args.map, layer=args.layer, log=_progress, engine=args.engine,
                         scheduler=args.scheduler)
    print("\n".join(report.lines()))
    return 0


def _cmd_grids_update(args, settings) -> int:
    from geo.ingest.boundaries import update_grids

    report = update_grids(settings, args.file, area=args.area, crs=args.crs, encoding=args.encoding,
                          layer=args.layer, dry_run=args.dry_run, log=_progress)
    print("\n".join(report.lines()))
    return 0


def _cmd_export(args, settings) -> int:
    from geo.errors import BadParameter
    from geo.export.exporter import batch_export, export_file, format_from_path, parse_options
    from geo.query.service import AtlasService

    params = {"metric": args.metric, "from": args.date_from, "to": args.date_to, "paper": args.paper,
              "orientation": args.orientation, "dpi": args.dpi, "level": args.show, "method": args.method,
              "k": args.k, "lang": args.lang, "suppress": "1" if args.suppress else "0", "basis": args.basis}
    if args.compare:
        # The same parameters as the map's change mode (a = before, b = after = --from..--to).
        a_from, _, a_to = args.compare.partition(":")
        params.update(a_from=a_from, a_to=a_to or a_from, b_from=args.date_from, b_to=args.date_to)
    service = AtlasService(settings)
    if args.area:
        if not args.output:
            raise BadParameter("give the file to write with -o FILE")
        options = parse_options(args.area, format_from_path(args.output, args.format), params)
        path = export_file(service, options, args.output)
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
        return 0
    if not (args.level and args.out):
        raise BadParameter("give --area CODE -o FILE for one map, or --level LEVEL [--within CODE] --out DIR/ for a batch")
    template = parse_options(args.within, (args.format or "png"), params)
    paths = batch_export(service, args.level, args.within, args.out, template, workers=args.workers)
    print(f"wrote {len(paths)} files to {args.out}")
    return 0


def _add_engine_args(p: argparse.ArgumentParser) -> None:
    """--engine and --scheduler, shared by every command that joins many points."""
    p.add_argument("--engine", choices=ENGINES, default="local",
                   help="where the join runs: both cores here, or a Dask cluster")
    p.add_argument("--scheduler", help="Dask scheduler address (tcp://HOST:PORT); default: a LocalCluster")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command (also used by the docs and tests)."""
    parser = argparse.ArgumentParser(prog="python -m geo", description="Grid Atlas command line")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="build the demo city, checkpoints and events, then the counts")
    p.add_argument("--scale", type=float, default=None, help="records multiplier (default 1: the seed's totals; 0.1 builds quicker)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", help="folder for the demo files (default: <data dir>/demo)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("rebuild", help="recompute all counts from the demo files and imported records")
    _add_engine_args(p)
    p.set_defaults(func=_cmd_rebuild)

    p = sub.add_parser("join", help="give each point the code of the grid that contains it")
    p.add_argument("grids")
    p.add_argument("points")
    p.add_argument("--crs", default="EPSG:4326", help="CRS of the points: EPSG:NNNN, gcj02 or bd09")
    p.add_argument("--encoding", help="text encoding of CSV / Shapefile attributes (e.g. gbk)")
    p.add_argument("--code-column", default=None, help="grid code column (default: code or grid_code)")
    p.add_argument("--layer", help="GeoPackage layer of the grids (default: grid, when the file has several)")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=_cmd_join)

    p = sub.add_parser("status", help="print what the store holds")
    p.set_defaults(func=_cmd_status)

    p = sub.add_parser("migrate", help="create or update the PostGIS store's schema (before starting servers)")
    p.set_defaults(func=_cmd_migrate)

    p = sub.add_parser("bench", help="measure every performance target against references in the same run")
    p.add_argument("--scale", type=float, default=1.0, help="scale of the visit points of the join")
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--no-sjoin", action="store_true", help="skip the geopandas.sjoin reference")
    p.add_argument("--only", help="comma-separated parts to run: join, rebuild, pages, server, memory (default: all)")
    p.add_argument("--skip", help="comma-separated parts to leave out")
    p.add_argument("--duration", type=int, default=10, help="seconds of each wrk run of the server part")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("ingest", help="import records (CSV, XLSX, GeoJSON, GeoPackage, zipped Shapefile)")
    p.add_argument("file")
    p.add_argument("--metric", help="metric of rows without a metric column/cell, e.g. visits or 走访排查")
    p.add_argument("--crs", help="CRS of the coordinates: wgs84 (default for tables), EPSG:4490, EPSG:4549, gcj02, bd09")
    p.add_argument("--encoding", help="text encoding of a CSV or Shapefile (default: detected; e.g. gbk)")
    p.add_argument("--layer", help="GeoPackage layer, XLSX sheet or shapefile inside the zip")
    p.add_argument("--map", action="append", metavar="COLUMN=FIELD",
                   help="use COLUMN as FIELD (id, date, lon, lat, metric), e.g. --map 走访日期=date; repeatable")
    _add_engine_args(p)
    p.set_defaults(func=_cmd_ingest)

    p = sub.add_parser("grids", help="grid polygons: `grids update FILE` replaces one town's or district's grids")
    grids_sub = p.add_subparsers(dest="grids_command", required=True)
    p = grids_sub.add_parser("update", help="check and replace the grid polygons of one town or district")
    p.add_argument("file", help="GeoJSON, GeoPackage or zipped Shapefile of grid polygons with a code column")
    p.add_argument("--area", help="the town (9 digits) or district (6) being re-zoned (default: from the codes)")
    p.add_argument("--crs", help="CRS of the file when it declares none")
    p.add_argument("--encoding", help="text encoding of a Shapefile's attributes")
    p.add_argument("--layer", help="GeoPackage layer or shapefile inside the zip")
    p.add_argument("--dry-run", action="store_true", help="check only; change nothing")
    p.set_defaults(func=_cmd_grids_update)

    p = sub.add_parser("export", help="print-ready map of one area (-o FILE), or one per area of a level (--out DIR)")
    p.add_argument("--area", help="the area to map (code), written to -o FILE")
    p.add_argument("-o", "--output", help="file to write; its suffix gives the format unless --format is given")
    p.add_argument("--level", choices=["district", "town", "village", "grid"], help="batch: one map per area of this level")
    p.add_argument("--within", default="330200", help="batch: only the areas inside this one (default: the city)")
    p.add_argument("--out", help="batch: folder for the files (<code>_<name>_<metric>.<format>)")
    p.add_argument("--format", choices=["png", "pdf", "svg"], help="file format (default: from -o, png for a batch)")
    p.add_argument("--metric", default="visits", help="metric key (default: visits)")
    p.add_argument("--from", dest="date_from", help="first day, YYYY-MM-DD (default: start of the data)")
    p.add_argument("--to", dest="date_to", help="last day, YYYY-MM-DD (default: end of the data)")
    p.add_argument("--paper", default="a4", help="a4 or a3")
    p.add_argument("--orientation", default="auto", help="portrait, landscape or auto (the larger map)")
    p.add_argument("--dpi", default="150", help="PNG resolution: 150 or 300")
    p.add_argument("--show", help="colour the areas of this level (default: the children, as on the map)")
    p.add_argument("--method", default="quantiles", help="classes: quantiles or natural_breaks")
    p.add_argument("--k", default="5", help="number of classes, 3 to 7")
    p.add_argument("--lang", default="zh", help="zh (default) or en")
    p.add_argument("--workers", type=int, default=None, help="batch: processes (default: up to 2)")
    p.add_argument("--suppress", action="store_true",
                   help="print counts below small_count_threshold (default 5) as <5, in one <5 legend class "
                        "(and hide a sibling where needed)")
    p.add_argument("--compare", metavar="A_FROM:A_TO",
                   help="map the change from this earlier period to --from..--to (e.g. 2020-03-18:2020-03-24)")
    p.add_argument("--basis", default="absolute", help="with --compare: absolute (difference) or percent")
    p.set_defaults(func=_cmd_export)

    from geo.cli.users import register as register_user_commands

    register_user_commands(sub)  # users add/list/passwd/remove/ensure-demo-admin, audit
    return parser


def main(argv=None) -> int:
    """Run one command; return the process exit code."""
    args = build_parser().parse_args(argv)
    settings = get_settings()
    if getattr(args, "scale", None) is None and args.command == "demo":
        args.scale = settings.demo_scale
    if getattr(args, "seed", None) is None and args.command == "demo":
        args.seed = settings.demo_seed
    from geo.cli.users import audit_command

    try:
        code = args.func(args, settings)
        audit_command(args, settings, "ok")  # imports, boundary updates and exports
        return code
    except GridAtlasError as err:
        audit_command(args, settings, f"failed: {type(err).__name__}")
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
