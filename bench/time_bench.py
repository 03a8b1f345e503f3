"""How fast playback steps one day on the map (target: within 200 ms at the city level).

    .venv/bin/python bench/time_bench.py [--data-dir DIR] [--path "/"] [--path "/?level=grid"]

Serves the app on 127.0.0.1 (the data the settings point at: run ``make demo`` first), opens
each page in Debian's headless Chromium, switches to day-by-day playback (one request brings
every day), then steps through every day of the period. Each step is timed in the page with
``performance.now()`` from the start of the restyle until the animation frame after Leaflet's
canvas redraw (``GridAtlas.playback.show(i)`` resolves with that time). Prints the size and
time of the one daily request and the median, 95th percentile and worst step.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
LOADED = "window.GridAtlas && GridAtlas.status.choropleth > 0 && GridAtlas.playback && !GridAtlas.map._animatingZoom"
STEP_ALL = """async () => {
  const p = GridAtlas.playback, n = p.data.days.length, times = [];
  for (let i = 0; i < n; i++) { times.push(await p.show(i)); }
  return times;
}"""


def _wait(page, expression, timeout_s=120):
    end = time.time() + timeout_s
    while not page.evaluate(expression):
        if time.time() > end:
            raise SystemExit(f"timed out waiting for {expression}")
        page.wait_for_timeout(100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--path", action="append", help="page(s) to measure (default: / and /?level=grid)")
    args = parser.parse_args()
    paths = args.path or ["/", "/?level=grid"]

    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from web import create_app

    config = {"TESTING": True}  # requests run as the test admin: no login needed
    if args.data_dir:
        config["SETTINGS"] = {"data_dir": args.data_dir}
    app = create_app(config)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        for path in paths:
            page.goto(base + path)
            _wait(page, LOADED)
            page.wait_for_timeout(500)
            t0 = time.perf_counter()
            page.click("#ga-time .ga-time-mode[data-mode=play]")
            _wait(page, "document.getElementById('ga-time').hasAttribute('data-day')")
            load_s = time.perf_counter() - t0
            size = page.evaluate("() => JSON.stringify(GridAtlas.playback.data).length")
            areas = page.evaluate("() => GridAtlas.playback.data.areas.length")
            times = sorted(page.evaluate(STEP_ALL))
            p95 = times[int(0.95 * (len(times) - 1))]
            print(f"{path}: {areas:,} areas, all {len(times)} days in one request "
                  f"({size / 1e6:.2f} MB JSON, {load_s:.2f} s to first day)")
            print(f"  step one day (restyle + canvas redraw): median {statistics.median(times):.1f} ms, "
                  f"p95 {p95:.1f} ms, worst {times[-1]:.1f} ms -> {'OK' if p95 <= 200 else 'OVER'} 200 ms")
        browser.close()
    server.shutdown()


if __name__ == "__main__":
    main()
