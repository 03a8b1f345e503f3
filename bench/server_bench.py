"""Load-test the production server: gunicorn with 2 workers under wrk, on loopback only.

Usage:  python bench/server_bench.py [--data-dir DIR] [--duration 10] [--connections 32]

Starts gunicorn on 127.0.0.1 with the data folder given, warms every URL in both workers, then
runs wrk for the counts endpoint, a grid GeoJSON request and a page. Prints requests per second,
p99 latency and errors for each, and the resident memory of each worker holding the data.
Needs Debian's `wrk` (apt-get install wrk). Bounded: each wrk run stops after --duration seconds.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_auth import session_cookie  # noqa: E402

URLS = {
    "counts (values of the 10 districts)": "/api/areas/330200/values?metric=visits&from=2020-02-01&to=2020-02-29",
    "grid GeoJSON (one town's grids)": "/api/areas/330212101/children.geojson?metric=visits&level=grid",
    "city grids GeoJSON (10,205, zoom 10)": "/api/areas/330200/children.geojson?metric=visits&level=grid&zoom=10",
    "page (/map/330212)": "/map/330212?metric=visits",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(base: str, cookie: str | None, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(base + "/api/status", headers={"Cookie": cookie} if cookie else {})
            urllib.request.urlopen(req, timeout=5).read()
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("gunicorn did not answer within 120 s")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _workers(master: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def _wrk(url: str, cookie: str | None, duration: int, connections: int) -> dict:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-H", "Accept-Encoding: gzip"]
    if cookie:
        cmd += ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=duration + 60).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    errors += sum(int(g) for g in sock.groups()) if sock else 0
    return {"rate": rate, "p99_ms": p99_ms, "errors": errors}


def main() -> None:
    """Run the load test and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("GRIDATLAS_DATA_DIR", str(ROOT / "data")))
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, GRIDATLAS_DATA_DIR=args.data_dir, PYTHONPATH=str(ROOT))
    gunicorn = Path(sys.executable).with_name("gunicorn")
    master = subprocess.Popen([str(gunicorn), "-w", "2", "--threads", "4", "-b", f"127.0.0.1:{port}",
                               "--preload", "web:create_app()"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        cookie = session_cookie(base, args.data_dir)
        _wait_up(base, cookie)
        for path in URLS.values():  # warm both workers' caches
            for _ in range(6):
                req = urllib.request.Request(base + path, headers={"Cookie": cookie} if cookie else {})
                urllib.request.urlopen(req, timeout=120).read()
        print(f"gunicorn, 2 workers x 4 threads, wrk 2 threads, {args.connections} connections, "
              f"{args.duration} s each, data {args.data_dir}")
        print(f"{'request':<40} {'req/s':>8} {'p99 ms':>8} {'errors':>7}")
        for name, path in URLS.items():
            r = _wrk(base + path, cookie, args.duration, args.connections)
            print(f"{name:<40} {r['rate']:>8.0f} {r['p99_ms']:>8.1f} {r['errors']:>7}")
        rss = [_rss_mb(p) for p in _workers(master.pid)]
        print("worker RSS: " + ", ".join(f"{m:,.0f} MB" for m in rss))
    finally:
        master.send_signal(signal.SIGTERM)
        master.wait(timeout=30)


if __name__ == "__main__":
    main()
