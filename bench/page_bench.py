"""Pages in headless Chromium, against plain Folium in the same run.

    .venv/bin/python bench/page_bench.py [--data-dir DIR] [--runs 3] [--json]

Serves the app with waitress on 127.0.0.1, on a
scratch copy of the data folder with a ``bench`` admin who signs in through the login form
(bench/bench_auth.py). Debian's headless Chromium may reach only 127.0.0.1; every other
request is blocked and counted. It measures:

* the HTML of every page (city, district, town, village, grid, all grids, search, wall,
  upload, login, password, logout): at most 300 kB each;
* the city view with all 10,205 grids (``/?level=grid``) in a fresh browser context (nothing
  cached; the server warm): bytes transferred as the wire carries them (compressed, headers
  included) until the network is idle, at most 1.5 MB; and the time from navigation to the
  grid layer painted plus the first hover answered (its tooltip shown), at most 2 s; a pan
  is timed too;
* the reference, measured the same way on the same server: plain Folium with the 10,205 grids
  embedded with ``folium.GeoJson`` (tooltip on the name), its CDN links localized with
  ``web.offline_assets.localize`` so it is not blank offline. Its raw size is printed too.

Each view is loaded ``--runs`` times; the median is reported. Prints a table; with
``--json`` the table goes to stderr and stdout carries the rows for ``python -m geo bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_auth import bench_data, ensure_bench_user, login  # noqa: E402
from bench.targets import ROWS_PREFIX  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
HTML_TARGET_KB = 300
TRANSFER_TARGET_MB = 1.5
READY_TARGET_S = 2.0
ALL_GRIDS = "/?level=grid"
REFERENCE = "/bench/reference.html"

# Resolves once the condition holds and the frame after it is painted: performance.now() then.
PAINTED_JS = """(cond) => new Promise((done, fail) => {
  const check = new Function('return ' + cond);
  (function poll() {
    if (check()) requestAnimationFrame(() => setTimeout(() => done(performance.now()), 0));
    else if (performance.now() > 120000) fail(new Error('not drawn after 120 s: ' + cond));
    else requestAnimationFrame(poll);
  })();
})"""
# When the HTML and the slowest other request had arrived, in ms since navigation start.
TIMELINE_JS = """() => { const nav = performance.getEntriesByType('navigation')[0];
  const last = performance.getEntriesByType('resource').reduce((a, b) => (b.responseEnd > a.responseEnd ? b : a),
                                                                {responseEnd: 0, name: '-'});
  return {html_ms: nav.responseEnd, dom_ms: nav.domContentLoadedEventEnd,
          last_ms: last.responseEnd, last: last.name.replace(location.origin, '').slice(0, 80)}; }"""
MAP_JS = "Object.values(window).find(v => v && window.L && v instanceof L.Map)"
# The page position of a point, so the hover lands on a grid.
POINT_JS = """([lat, lon]) => { const m = %s; const p = m.latLngToContainerPoint([lat, lon]);
  const r = m.getContainer().getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }""" % MAP_JS
MOVEEND_JS = """() => { const m = %s; window.__moved = new Promise(done =>
  m.once('moveend', () => requestAnimationFrame(() => done(performance.now())))); }""" % MAP_JS


def _say(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def _pages(atlas) -> dict[str, str]:
    """Every HTML page a signed-in official opens, by name."""
    town = "330212108" if "330212108" in set(atlas.layers["town"]["code"]) else atlas.layers["town"]["code"].iloc[0]
    village = atlas.children(town)["code"].iloc[0]
    grid = atlas.children(village)["code"].iloc[0]
    district = atlas.get(town)["parent"]
    return {
        "city (districts)": "/",
        "city, all grids": ALL_GRIDS,
        "district": f"/map/{district}",
        "town": f"/map/{town}",
        "village": f"/map/{village}",
        "grid": f"/map/{grid}",
        "town, grids, playback metric": f"/map/{town}?level=grid&metric=risk_code",
        "search (a list)": "/search?q=" + "镇",
        "wall": "/wall",
        "upload": "/upload",
        "password": "/account/password",
        "logout": "/logout",
    }


def reference_html(atlas) -> str:
    """Plain Folium: the grids embedded as GeoJSON with a name tooltip, links localized."""
    import folium

    from web.offline_assets import localize

    grids = atlas.grids[["code", "name", "geometry"]]
    b = grids.total_bounds
    m = folium.Map(location=[(b[1] + b[3]) / 2, (b[0] + b[2]) / 2], zoom_start=9, tiles=None, max_zoom=18)
    folium.GeoJson(grids, name="grids", tooltip=folium.GeoJsonTooltip(fields=["name"])).add_to(m)
    m.fit_bounds([[b[1], b[0]], [b[3], b[2]]])
    return localize(m).get_root().render()


def _without_csp(wsgi_app, path: str):
    """``wsgi_app`` minus the Content-Security-Policy header on ``path``: plain Folium's inline
    scripts carry no nonce, and the reference is plain Folium as anyone would serve it."""
    def app(environ, start_response):
        if environ.get("PATH_INFO") != path:
            return wsgi_app(environ, start_response)

        def start(status, headers, exc_info=None):
            return start_response(status, [(k, v) for k, v in headers if k.lower() != "content-security-policy"],
                                  exc_info)

        return wsgi_app(environ, start)

    return app


def _serve(app):
    """Serve ``app`` with waitress on a free loopback port; (base URL, server)."""
    import logging

    from waitress.server import create_server

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth" under load

    server = create_server(app, host="127.0.0.1", port=0, threads=8)
    threading.Thread(target=server.run, daemon=True).start()
    return f"http://127.0.0.1:{server.effective_port}", server


def _context(browser, base: str, cookies: dict | None):
    """A fresh context (empty cache) that may reach only local hosts; counts what it blocks."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    if cookies:
        host = urlsplit(base).hostname
        context.add_cookies([{"name": k, "value": v, "domain": host, "path": "/"} for k, v in cookies.items()])
    context.blocked = []

    def guard(route):
        context.blocked.append(route.request.url)
        route.abort("blockedbyclient")

    context.route(lambda url: urlsplit(url).hostname not in LOCAL_HOSTS, guard)
    return context


def html_sizes(browser, base: str, cookies: dict, pages: dict[str, str]) -> list[tuple[str, str, int, int]]:
    """(name, path, raw bytes, bytes on the wire) of each page's HTML, loaded in Chromium."""
    out = []
    for signed_in, items in ((False, {"login": "/login"}), (True, pages)):
        context = _context(browser, base, cookies if signed_in else None)
        page = context.new_page()
        for name, path in items.items():
            response = page.goto(base + path, wait_until="domcontentloaded")
            if response.status != 200 or urlsplit(response.url).path == "/login" != urlsplit(path).path:
                raise SystemExit(f"{path}: HTTP {response.status} at {response.url} (not signed in?)")
            sizes = response.request.sizes()
            out.append((name, path, len(response.body()), sizes["responseBodySize"] + sizes["responseHeadersSize"]))
        context.close()
    return out


def load_view(browser, base: str, path: str, cookies: dict | None, painted: str, tooltip: str, hover_at) -> dict:
    """Load ``path`` in a fresh context: bytes on the wire, painted, first hover and a pan answered."""
    context = _context(browser, base, cookies)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    wire = {"bytes": 0, "requests": 0}

    def finished(event):
        wire["bytes"] += event["encodedDataLength"]
        wire["requests"] += 1

    cdp.on("Network.loadingFinished", finished)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base + path, wait_until="commit")
    painted_ms = page.evaluate(PAINTED_JS, painted)
    timeline = page.evaluate(TIMELINE_JS)
    # The first hover, sent at once: answered when its tooltip shows.
    x, y = page.evaluate(POINT_JS, list(hover_at))
    t = time.perf_counter()
    page.mouse.move(x, y)
    page.wait_for_selector(tooltip, state="visible", timeout=30_000)
    hover_ms = (time.perf_counter() - t) * 1000
    page.wait_for_load_state("networkidle")
    transfer = dict(wire)
    # A pan: drag 200 px, hold still (so Leaflet adds no inertia), let go; answered when the
    # map has redrawn at its new place (moveend) and painted the frame after.
    page.evaluate(MOVEEND_JS)
    page.mouse.down()
    for i in range(1, 11):
        page.mouse.move(x + 20 * i, y + 10 * i)
    page.wait_for_timeout(150)
    t = time.perf_counter()
    page.mouse.up()
    page.evaluate("() => window.__moved")
    pan_ms = (time.perf_counter() - t) * 1000
    context.close()
    return {"bytes": transfer["bytes"], "requests": transfer["requests"], "painted_ms": painted_ms,
            "hover_ms": hover_ms, "pan_ms": pan_ms, "ready_ms": painted_ms + hover_ms,
            "blocked": len(context.blocked), "errors": errors, "timeline": timeline}


def _median(runs: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in runs) for k in ("bytes", "requests", "painted_ms", "hover_ms",
                                                                 "pan_ms", "ready_ms", "blocked")}


def _ok(flag: bool) -> str:
    return "ok" if flag else "MISSED"


def measure(data_dir: Path, runs: int) -> list[tuple[str, str, str]]:
    """All page rows of the table."""
    import gzip

    from flask import Response
    from playwright.sync_api import sync_playwright

    from web import create_app
    from web.auth import public

    app = create_app({"SETTINGS": {"data_dir": str(data_dir)}})
    atlas = app.extensions["gridatlas"].atlas
    n_grids = len(atlas.grids)
    t = time.perf_counter()
    html = reference_html(atlas)
    t_ref_build = time.perf_counter() - t
    raw_kb = len(html.encode()) / 1e3

    @public
    def reference():
        return Response(html, mimetype="text/html")

    app.add_url_rule(REFERENCE, "bench_reference", reference)
    app.wsgi_app = _without_csp(app.wsgi_app, REFERENCE)
    base, server = _serve(app)
    name, password = ensure_bench_user(data_dir)
    cookies = login(base, name, password)
    pages = _pages(atlas)
    # A big grid near the middle of the city: the hover lands on it at any zoom.
    from shapely.geometry import Point

    grids = atlas.grids.to_crs(3857)
    b = grids.total_bounds
    big = grids[grids.area >= grids.area.quantile(0.9)]
    spot = big.geometry.representative_point().to_crs(4326).iloc[
        big.distance(Point((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)).argmin()]
    hover_at = (spot.y, spot.x)
    ours_ready = f"window.GridAtlas && GridAtlas.status.choropleth >= {n_grids}"
    ours_view = (ALL_GRIDS, cookies, ours_ready, ".ga-tooltip", hover_at)
    ref_ready = (f"document.readyState === 'complete' && "
                 f"document.querySelectorAll('path.leaflet-interactive').length >= {n_grids}")
    ref_view = (REFERENCE, cookies, ref_ready, ".foliumtooltip", hover_at)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            _say(f"serving {data_dir} at {base}; warming every page once")
            sizes = html_sizes(browser, base, cookies, pages)  # also warms the server's caches
            sizes = html_sizes(browser, base, cookies, pages)
            for name, path, raw, wire in sizes:
                _say(f"  {name:<30} {path:<45} {raw / 1e3:7.1f} kB HTML, {wire / 1e3:6.1f} kB on the wire")
            load_view(browser, base, *ours_view)  # warm the grid buckets
            ours, ref = [], []
            for i in range(runs):  # alternate, so both sides see the same noise
                ours.append(load_view(browser, base, *ours_view))
                ref.append(load_view(browser, base, *ref_view))
                for side, r in (("ours", ours[-1]), ("reference", ref[-1])):
                    _say(f"  run {i + 1} {side:<9}: {r['bytes'] / 1e6:.2f} MB in {r['requests']} requests, painted "
                         f"{r['painted_ms']:.0f} ms, hover {r['hover_ms']:.0f} ms, pan {r['pan_ms']:.0f} ms, "
                         f"{r['blocked']} blocked, {len(r['errors'])} script errors; HTML in at "
                         f"{r['timeline']['html_ms']:.0f} ms, DOM ready {r['timeline']['dom_ms']:.0f} ms, "
                         f"last response {r['timeline']['last_ms']:.0f} ms ({r['timeline']['last']})")
            browser.close()
    finally:
        server.close()
    o, r = _median(ours), _median(ref)
    worst = max(sizes, key=lambda s: s[2])
    ref_wire_gz = len(gzip.compress(html.encode(), 5)) / 1e6
    all_grids_html = next(s for s in sizes if s[1] == ALL_GRIDS)[2]
    return [
        ("page HTML", f"largest {worst[2] / 1e3:.0f} kB ({worst[1]}) of {len(sizes)} pages; city with all grids "
                      f"{all_grids_html / 1e3:.0f} kB vs plain Folium {raw_kb / 1e3:.2f} MB raw "
                      f"({raw_kb * 1e3 / all_grids_html:.0f}x smaller)",
         f"≤ {HTML_TARGET_KB} kB each: {_ok(all(s[2] <= HTML_TARGET_KB * 1e3 for s in sizes))}"),
        ("all grids: transfer", f"{o['bytes'] / 1e6:.2f} MB on the wire ({o['requests']:.0f} requests, cold cache) vs "
                                f"plain Folium {r['bytes'] / 1e6:.2f} MB ({ref_wire_gz:.2f} MB gzip of its "
                                f"{raw_kb / 1e3:.2f} MB): it moves {r['bytes'] / o['bytes']:.1f}x our bytes",
         f"≤ {TRANSFER_TARGET_MB} MB: {_ok(o['bytes'] <= TRANSFER_TARGET_MB * 1e6)}"),
        ("all grids: drawn + answered", f"{o['ready_ms'] / 1e3:.2f} s (painted {o['painted_ms']:.0f} ms + first hover "
                                        f"{o['hover_ms']:.0f} ms; pan {o['pan_ms']:.0f} ms) vs plain Folium "
                                        f"{r['ready_ms'] / 1e3:.2f} s (painted {r['painted_ms']:.0f} ms, hover "
                                        f"{r['hover_ms']:.0f} ms, pan {r['pan_ms']:.0f} ms); "
                                        f"it takes {r['ready_ms'] / o['ready_ms']:.1f}x our time; median of {runs}",
         f"≤ {READY_TARGET_S:g} s: {_ok(o['ready_ms'] <= READY_TARGET_S * 1e3)}"),
        ("all grids: offline", f"{n_grids:,} grids drawn with {o['blocked']:.0f} outside requests blocked, "
                               f"{sum(len(x['errors']) for x in ours)} script errors; plain Folium localized: "
                               f"{r['blocked']:.0f} blocked, {sum(len(x['errors']) for x in ref)} errors "
                               f"(built in {t_ref_build:.1f} s)",
         _ok(o["blocked"] == 0 and not any(x["errors"] for x in ours))),
    ]


def main() -> None:
    """Run the page bench and print its table (or its rows as JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.environ.get("GRIDATLAS_DATA_DIR", str(ROOT / "data")))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="rows as JSON on stdout, the table on stderr")
    args = parser.parse_args()
    with bench_data(args.data_dir) as data_dir:
        rows = measure(data_dir, args.runs)
    from bench.targets import print_rows

    print_rows(rows, sys.stderr if args.json else sys.stdout)
    if args.json:
        print(ROWS_PREFIX + json.dumps(rows, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
