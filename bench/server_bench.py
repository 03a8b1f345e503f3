"""Load-test the production server: 2 workers under wrk.

    .venv/bin/python bench/server_bench.py [--data-dir DIR] [--duration 10] [--connections 32]
                                           [--server granian|gunicorn|gunicorn-gevent]
                                           [--only static,counts,...] [--wrk-threads 2]
                                           [--no-load] [--no-memory] [--json]

Starts the production server (granian, 2 workers, as ``make run`` does; ``--server`` picks
another of :data:`SERVERS` for comparison) on 127.0.0.1 over a scratch copy of the data folder,
signs in as a ``bench`` admin through the login form (bench/bench_auth.py) and sends that
session cookie with every request. Every URL is warmed in both workers first, and must answer
200 (not a redirect to the login page), so wrk measures warm, signed-in requests.

Load: wrk (2 threads, --connections on loopback, gzip accepted) on the counts endpoint, a
grid GeoJSON request, a page and, as the reference, a tiny static file from the same server.
Prints requests per second, p99 latency, errors (socket errors and non-2xx/3xx answers) and the
server's own CPU time per answer (all its processes, from /proc): on a machine that others load
too, that figure moves much less than the latency does.

Memory: every endpoint (pages at each level, all grids at each zoom bucket, the wall, playback,
summaries, search, exports...) is requested 3 times (4 at once, so both workers likely see it), then
the resident memory of each worker is read from /proc; the target is under 1.5 GB for one serving process.

Needs Debian's `wrk` (apt-get install wrk) and the server (requirements.txt). With ``--json``
the table goes to stderr and stdout carries the rows for ``python -m geo bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_auth import bench_data, session_cookie  # noqa: E402
from bench.targets import ROWS_PREFIX, print_rows  # noqa: E402

P99_TARGET_MS = 50
RSS_TARGET_MB = 1536
STATIC = "/static/favicon.svg"
WARM_TIMES = 3
PERIOD = "from=2020-02-01&to=2020-02-29"
# The servers this bench can start, each with 2 workers (the set-up). Their command
# lines come from :func:`server_command`.
SERVERS = {
    "granian": "granian (WSGI), 2 workers",
    "gunicorn": "gunicorn, 2 workers x 4 threads (gthread), app loaded before forking",
    "gunicorn-gevent": "gunicorn, 2 gevent workers (needs gevent, not in requirements.txt)",
}
# Short names for --only.
SHORT = {"static": "reference: static file", "counts": "counts (10 districts' values)",
         "town": "grid GeoJSON (one town's grids)", "page": "page (/map/330212)",
         "city": "city grids GeoJSON (10,205, zoom 10)"}
# name -> (path, held to the p99 target)
LOAD = {
    "reference: static file": (STATIC, False),
    "counts (10 districts' values)": (f"/api/areas/330200/values?metric=visits&{PERIOD}", True),
    "grid GeoJSON (one town's grids)": (f"/api/areas/330212108/children.geojson?metric=visits&level=grid&{PERIOD}",
                                        True),
    "page (/map/330212)": ("/map/330212?metric=visits", False),
    # 3.5 MB before compression: last, since 32 of them in flight keep both workers busy after wrk stops.
    "city grids GeoJSON (10,205, zoom 10)": ("/api/areas/330200/children.geojson?metric=visits&level=grid&zoom=10",
                                            False),
}
# Every endpoint a day of use touches, for the memory figure.
WARM = [
    "/", "/?level=grid", "/map/330212", "/map/330212108", "/map/330212108001", "/map/330212108001001",
    "/search?q=%E9%95%87", "/wall", "/upload", "/api/status", "/api/metrics", "/api/wall",
    "/api/search?q=%E4%BA%91%E9%BE%99", "/api/areas/330212108/summary", "/api/areas/330212/values?metric=risk_code",
    "/api/areas/330212/series?metric=visits", "/api/areas/330200/outline.geojson",
    "/api/areas/330200/checkpoints.geojson", "/api/outlines/district.geojson", "/api/outlines/town.geojson",
    *[f"/api/areas/330200/children.geojson?metric=visits&level=grid&zoom={z}" for z in (8, 10, 12, 14, 16)],
    *[f"/api/areas/330200/children.geojson?metric={m}&{PERIOD}" for m in ("visits", "appeals", "checkpoint_checks")],
    "/api/areas/330200/daily.json?metric=visits&level=grid", "/api/areas/330200/daily.json?metric=visits",
    "/api/areas/330200/change.json?metric=visits&a_from=2020-01-24&a_to=2020-02-10&b_from=2020-02-11&b_to=2020-02-28",
    "/api/areas/330212/trend.svg?metric=visits", "/export/330212108.png", "/export/330212.svg",
]


def _say(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _get(url: str, cookie: str | None, timeout: float = 300) -> int:
    """GET ``url``; its status (redirects not followed: a 302 to /login is a failure here)."""
    req = urllib.request.Request(url, headers={"Cookie": cookie, "Accept-Encoding": "gzip"} if cookie else {})
    try:
        with _opener.open(req, timeout=timeout) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as err:
        return err.code


def _wait_up(base: str, master: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if master.poll() is not None:
            raise SystemExit(f"the server exited with status {master.returncode}")
        try:
            _get(base + "/login", None, timeout=5)
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the server did not answer within {timeout:.0f} s")


def _rss_mb(pid: int) -> tuple[float, float]:
    """(resident now, peak resident) of a process, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":", 1)
            fields[key] = int(value.split()[0]) / 1024
    return fields.get("VmRSS", float("nan")), fields.get("VmHWM", float("nan"))


def _cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) the processes ``pids`` have used so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def _workers(master: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(master)], check=False, capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def server_command(server: str, port: int) -> list[str]:
    """The command line that starts ``server`` (a key of :data:`SERVERS`) on 127.0.0.1:``port``."""
    bin_dir = Path(sys.executable).parent
    if server == "gunicorn":
        return [str(bin_dir / "gunicorn"), "-w", "2", "--threads", "4", "-b", f"127.0.0.1:{port}",
                "--preload", "--timeout", "300", "web:create_app()"]
    if server == "gunicorn-gevent":
        return [str(bin_dir / "gunicorn"), "-w", "2", "-k", "gevent", "--worker-connections", "100", "-b",
                f"127.0.0.1:{port}", "--preload", "--timeout", "300", "web:create_app()"]
    if server == "granian":  # as `make run` starts it
        return [str(bin_dir / "granian"), "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port),
                "--workers", "2", "--factory", "web:create_app"]
    raise SystemExit(f"unknown server {server!r}; allowed: {', '.join(SERVERS)}")


def _wrk(url: str, cookie: str | None, duration: int, connections: int, threads: int = 2) -> dict:
    # A 10 s timeout (wrk's default is 2 s) so slow answers count in the latency, not as errors.
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "--latency",
           "-H", "Accept-Encoding: gzip"]
    if cookie:
        cmd += ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(cmd + [url], check=False, capture_output=True, text=True, timeout=duration + 60).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    errors += sum(int(g) for g in sock.groups()) if sock else 0
    total = re.search(r"(\d+) requests in", out)
    return {"rate": rate, "p99_ms": p99_ms, "errors": errors, "requests": int(total.group(1)) if total else 0}


def _settle(base: str, timeout: float = 120) -> None:
    """Wait until the server answers the static file quickly again: requests still in flight
    from the last wrk run must not slow the next one."""
    deadline, fast = time.monotonic() + timeout, 0
    while fast < 3 and time.monotonic() < deadline:
        t = time.perf_counter()
        _get(base + STATIC, None, timeout=timeout)
        fast = fast + 1 if time.perf_counter() - t < 0.1 else 0
        time.sleep(0.2)


def _warm(base: str, cookie: str, paths: list[str], times: int) -> None:
    """Request each path ``times`` times, 4 at once (so both workers get each); all must be 200."""
    urls = [base + p for p in paths for _ in range(times)]
    with ThreadPoolExecutor(4) as pool:
        for url, status in zip(urls, pool.map(lambda u: _get(u, cookie), urls)):
            if status != 200:
                raise SystemExit(f"{url}: HTTP {status} while warming (signed in?)")


def run(data_dir: Path, duration: int, connections: int, load: bool, memory: bool, server: str = "granian",
        only: list[str] | None = None, wrk_threads: int = 2) -> list[tuple[str, str, str]]:
    """Start the server, sign in, warm, measure; the rows of the table. ``only``: names of
    :data:`LOAD` to measure (the static reference is always measured)."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    # One secret for both workers (and the master that signs the login): a session made by
    # one worker must be valid in the other.
    env = dict(os.environ, GRIDATLAS_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT),
               GRIDATLAS_SECRET_KEY=secrets.token_hex(32))
    log_path = data_dir / f"{server}.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed with the server
    master = subprocess.Popen(server_command(server, port), cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=log)
    rows = []
    try:
        _wait_up(base, master)
        cookie = session_cookie(base, data_dir)
        _say(f"{SERVERS[server]} at {base}, data {data_dir}; warming")
        if load:
            names = [n for n in LOAD if only is None or n in only or n == "reference: static file"]
            _warm(base, cookie, [LOAD[n][0] for n in names], 8)  # both workers' caches
            _say(f"wrk {wrk_threads} threads, {connections} connections, {duration} s each, gzip accepted, "
                 "signed in")
            results = {}
            for name in names:
                path = LOAD[name][0]
                _settle(base)
                serving = [master.pid, *_workers(master.pid)]
                cpu = _cpu_seconds(serving)
                results[name] = r = _wrk(base + path, cookie, duration, connections, wrk_threads)
                # The server's own CPU per answer: what the load costs it, whatever else runs.
                r["cpu_ms"] = (_cpu_seconds(serving) - cpu) * 1000 / max(r["requests"], 1)
                _say(f"  {name:<38} {r['rate']:>8.0f} req/s  p99 {r['p99_ms']:>8.1f} ms  {r['errors']} errors "
                     f"of {r['requests']:,}  server CPU {r['cpu_ms']:.2f} ms/request")
            ref = results["reference: static file"]
            ref = {k: (v or float("nan")) for k, v in ref.items()}
            for name in names:
                held, r = LOAD[name][1], results[name]
                if name == "reference: static file":
                    rows.append((f"server: {name}", f"{r['rate']:,.0f} req/s, p99 {r['p99_ms']:.1f} ms, "
                                 f"{r['errors']} errors, server CPU {r['cpu_ms']:.2f} ms/request ({STATIC}; "
                                 f"{server}, wrk -t{wrk_threads})", "-"))
                    continue
                target = f"p99 ≤ {P99_TARGET_MS} ms, 0 errors: " if held else "0 errors: "
                ok = r["errors"] == 0 and (r["p99_ms"] <= P99_TARGET_MS or not held)
                rows.append((f"server: {name}", f"{r['rate']:,.0f} req/s ({r['rate'] / ref['rate']:.2f}x the static "
                             f"file), p99 {r['p99_ms']:.1f} ms ({r['p99_ms'] / ref['p99_ms']:.1f}x), "
                             f"{r['errors']} errors of {r['requests']:,}, server CPU {r['cpu_ms']:.2f} ms/request",
                             target + ("ok" if ok else "MISSED")))
        if memory:
            t = time.perf_counter()
            _settle(base)
            _warm(base, cookie, WARM, WARM_TIMES)
            _say(f"warmed {len(WARM)} endpoints x {WARM_TIMES} in {time.perf_counter() - t:.0f} s")
            rss = [_rss_mb(p) for p in _workers(master.pid)]
            worst = max(r[0] for r in rss)
            each = ", ".join(f"{now:,.0f} MB now / {peak:,.0f} MB peak" for now, peak in rss)
            rows.append(("memory: one serving process",
                         f"{worst:,.0f} MB RSS, the larger of 2 {server} workers after {len(WARM)} endpoints "
                         f"x {WARM_TIMES} ({each})",
                         f"< 1.5 GB: {'ok' if worst < RSS_TARGET_MB else 'MISSED'}"))
    finally:
        master.send_signal(signal.SIGTERM)
        try:
            master.wait(timeout=30)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait()
        log.close()
        errors = [ln for ln in log_path.read_text().splitlines()
                  if "Traceback" in ln or "ERROR" in ln or "CRITICAL" in ln or "WORKER TIMEOUT" in ln]
        if errors:
            _say(f"{server} logged {len(errors)} errors, e.g. {errors[0]}")
    return rows


def main() -> None:
    """Run the load test and print its table (or its rows as JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.environ.get("GRIDATLAS_DATA_DIR", str(ROOT / "data")))
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--server", choices=list(SERVERS), default="granian", help="the server to start")
    parser.add_argument("--only", help=f"comma-separated loads to measure besides the reference: {', '.join(SHORT)}")
    parser.add_argument("--wrk-threads", type=int, default=2, help="threads of wrk (the load generator)")
    parser.add_argument("--no-load", action="store_true", help="skip the wrk runs")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory figure")
    parser.add_argument("--json", action="store_true", help="rows as JSON on stdout, the table on stderr")
    args = parser.parse_args()
    with bench_data(args.data_dir) as data_dir:
        only = None
        if args.only:
            unknown = [k for k in args.only.split(",") if k not in SHORT]
            if unknown:
                parser.error(f"unknown --only {','.join(unknown)}; allowed: {', '.join(SHORT)}")
            only = [SHORT[k] for k in args.only.split(",")]
        rows = run(data_dir, args.duration, args.connections, not args.no_load, not args.no_memory, args.server,
                   only, args.wrk_threads)
    print_rows(rows, sys.stderr if args.json else sys.stdout)
    if args.json:
        print(ROWS_PREFIX + json.dumps(rows, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
