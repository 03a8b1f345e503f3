"""Screenshots of the officials' map for the README, from the data the settings point at.

    .venv/bin/python docs/screenshots/take_screenshots.py

Serves the app on 127.0.0.1 (run ``make demo`` first), opens each page in Debian's headless
Chromium at 1440 x 900 and writes docs/screenshots/<name>.png.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

PAGES = {
    "city": "/",
    "town": "/map/330212108",
    "grids": "/?level=grid&metric=risk_code",
}
READY = "window.GridAtlas && GridAtlas.status.choropleth > 0 && GridAtlas.status.outlines > 0"


def main() -> None:
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from web import create_app

    app = create_app({"TESTING": True})  # requests run as the test admin: no login needed
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1440, "height": 900}, locale="zh-CN")
        for name, path in PAGES.items():
            page.goto(base + path)
            while not page.evaluate(READY):
                page.wait_for_timeout(100)
            page.wait_for_timeout(2000)
            page.screenshot(path=str(HERE / f"{name}.png"))
            print("wrote", HERE / f"{name}.png")
        browser.close()
    server.shutdown()


if __name__ == "__main__":
    main()
