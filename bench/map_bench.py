"""Smoothness of the officials' map with all 10,205 grids on one city-wide view.

    .venv/bin/python bench/map_bench.py [--data-dir DIR] [--path "/?level=grid"]

Serves the app on 127.0.0.1 (the data the settings point at: run ``make demo`` first), opens
the page in Debian's headless Chromium, waits for the grids, then pans and zooms with the mouse
while counting animation frames. Prints the sizes and times of the GeoJSON per zoom bucket and,
for each gesture, frames per second and the longest frame. Smooth = 30+ fps, no frame over
100 ms. Headless Chromium draws in software on a shared 2-core box, so a desktop does better.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CHROMIUM = "/usr/bin/chromium"
FRAMES = """() => new Promise(done => {
  const times = []; let last = performance.now(); const end = last + %d;
  function tick(now) { times.push(now - last); last = now; if (now < end) requestAnimationFrame(tick); else done(times); }
  requestAnimationFrame(tick);
})"""


def _frames(page, gesture, ms: int = 2500) -> tuple[float, float]:
    handle = page.evaluate_handle(FRAMES % ms)
    gesture()
    times = handle.json_value()
    return len(times) / (ms / 1000), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--path", default="/?level=grid")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from web import create_app

    # TESTING: requests run as the test admin (web/auth.py), so the bench needs no login.
    config = {"TESTING": True}
    if args.data_dir:
        config["SETTINGS"] = {"data_dir": args.data_dir}
    app = create_app(config)
    client = app.test_client()
    print("GeoJSON of all grids, per zoom bucket (first request builds the bucket, second is warm):")
    for zoom in (8, 10, 12, 14, 16):
        url = f"/api/areas/330200/children.geojson?level=grid&zoom={zoom}"
        t0 = time.perf_counter()
        body = client.get(url).data
        t1 = time.perf_counter()
        client.get(url)
        t2 = time.perf_counter()
        print(f"  zoom {zoom:>2}: {len(body) / 1e6:5.2f} MB, {len(gzip.compress(body, 5)) / 1e3:6.0f} kB gzip, "
              f"cold {t1 - t0:5.2f} s, warm {t2 - t1:5.2f} s")

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        t0 = time.perf_counter()
        page.goto(base + args.path)
        while not page.evaluate("window.GridAtlas && GridAtlas.status.choropleth > 0"):
            page.wait_for_timeout(50)
        print(f"\n{args.path}: {page.evaluate('GridAtlas.status.choropleth')} areas drawn "
              f"{time.perf_counter() - t0:.1f} s after the request")
        page.wait_for_timeout(1000)
        box = page.locator(".folium-map").bounding_box()
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

        def pan():
            page.mouse.move(cx, cy)
            page.mouse.down()
            for i in range(40):
                page.mouse.move(cx + 6 * i, cy + 3 * i)
                page.wait_for_timeout(25)
            page.mouse.up()

        def zoom_in():
            for _ in range(4):
                page.mouse.wheel(0, -120)
                page.wait_for_timeout(450)

        def zoom_out():
            for _ in range(4):
                page.mouse.wheel(0, 120)
                page.wait_for_timeout(450)

        def hover():
            for i in range(40):
                page.mouse.move(cx - 200 + 10 * i, cy)
                page.wait_for_timeout(25)

        for name, gesture in (("pan", pan), ("zoom in", zoom_in), ("zoom out", zoom_out), ("hover", hover)):
            fps, worst = _frames(page, gesture)
            print(f"  {name:<9} {fps:5.1f} fps, longest frame {worst:6.1f} ms")
        browser.close()
    server.shutdown()


if __name__ == "__main__":
    main()
