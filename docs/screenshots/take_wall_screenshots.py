"""Screenshots of the command-centre wall at 3840×2160 and 1920×1080 (for the README).

Serves the app on 127.0.0.1 (as a test app: its requests count as a city-wide user) over a
data folder (default: the configured one; only read), opens ``/wall`` in headless Chromium at
each size, waits until the map, the heat and the first refresh are in, and saves
``wall-<width>.png`` into ``--out`` (default: this folder).

    .venv/bin/python docs/screenshots/take_wall_screenshots.py
    .venv/bin/python docs/screenshots/take_wall_screenshots.py --data DIR --query "area=330212&tour=1"
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SIZES = ((3840, 2160), (1920, 1080))
READY = ("() => window.GridAtlasWall && GridAtlasWall.state.ok >= 1 && GridAtlasWall.state.mapUpdates >= 1"
         " && GridAtlas.status.choropleth > 0 && GridAtlas.status.heat > 0")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, help="data folder (default: the configured one)")
    p.add_argument("--out", type=Path, default=HERE)
    p.add_argument("--query", default="", help="wall URL parameters, e.g. area=330212&metric=risk_code")
    p.add_argument("--name", default="wall", help="file name prefix")
    args = p.parse_args(argv)

    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from web import create_app

    settings = {"secret_key": "screenshots"}
    if args.data:
        settings["data_dir"] = args.data.resolve()
    app = create_app({"SETTINGS": settings, "TESTING": True})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/wall?{args.query}"
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            for width, height in SIZES:
                page = browser.new_page(viewport={"width": width, "height": height})
                errors = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("console", lambda m: m.type == "error" and errors.append(m.text))
                response = page.goto(url)
                if not response.ok:
                    raise SystemExit(f"{url} answered HTTP {response.status}")
                page.wait_for_function(READY, timeout=90_000)
                page.wait_for_timeout(1500)  # the labels settle and the bars finish growing
                path = args.out / f"{args.name}-{width}.png"
                page.screenshot(path=str(path))
                size = page.evaluate("() => [document.documentElement.scrollWidth,"
                                     " document.documentElement.scrollHeight]")
                print(f"{path}  page {size[0]}x{size[1]}  errors {errors or 'none'}")
                page.close()
            browser.close()
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
