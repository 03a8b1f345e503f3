"""Security headers on every response, and the Content-Security-Policy's per-request nonce.

The policy (``Content-Security-Policy``), directive by directive:

* ``default-src 'none'``: nothing loads unless a directive below allows it.
* ``script-src 'self' 'nonce-<n>'``: our own files (``/static``, the vendored Leaflet and
  plugins under ``/static/vendor``) and the inline ``<script>`` blocks that carry this
  request's nonce. Folium writes a map as inline script (the map, its layers and the calls
  into ``static/app.js``), and that is the only inline script: the page templates give it the
  nonce (``<script nonce="{{ csp_nonce() }}">`` and the ``nonced`` filter on the Folium
  header). No ``'unsafe-inline'``, no ``'unsafe-eval'``, no inline event handlers (``onerror=``
  in an injected name would not run even if escaping failed).
* ``style-src 'self' 'nonce-<n>'``: our and the vendored stylesheets and Folium's inline
  ``<style>`` blocks (nonced the same way). ``style-src-attr 'unsafe-inline'``: ``style=``
  attributes, which the templates use for class swatch colours and Leaflet sets on every
  marker and pane; a style attribute cannot run script.
* ``img-src 'self' data:`` (plus the origin of ``GRIDATLAS_TILE_URL`` when an intranet tile
  server is configured): Leaflet's images, the favicon, tiles.
* ``connect-src 'self'``: the map fetches its GeoJSON from this app only.
* ``font-src 'self'``, ``object-src 'none'``, ``base-uri 'none'``, ``form-action 'self'``,
  ``frame-ancestors 'none'`` (no page can be framed: clickjacking).

Also: ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` (older browsers),
``Referrer-Policy: same-origin`` (area codes in URLs stay on this site; Flask-WTF's HTTPS
check still sees our own Referer), ``Permissions-Policy`` (no camera, microphone,
geolocation...), ``Cross-Origin-Opener-Policy`` and ``-Resource-Policy: same-origin``, HSTS
when the app runs behind HTTPS (``GRIDATLAS_SESSION_COOKIE_SECURE=true``), and
``Cache-Control: private`` on everything but the public static files, so no shared cache keeps
one official's answers for another.

An answer that used no nonce (JSON, GeoJSON, anything not rendered from a page template)
gets the same policy without one: no inline script or style may run there at all. The headers
that never change are made once per app, so a warm JSON answer pays little for them.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlsplit

from flask import Flask, Response, g, request
from markupsafe import Markup

STATIC_ENDPOINTS = frozenset({"static", "vendor_static.vendor_file"})
NO_STORE_ENDPOINTS = frozenset({"auth.login", "auth.logout", "auth.password", "wall.device"})
_OPEN_TAG = re.compile(r"<(script|style)\b(?![^>]*\bnonce=)", re.IGNORECASE)


def csp_nonce() -> str:
    """This request's nonce (made on first use; one per request)."""
    nonce = g.get("csp_nonce")
    if nonce is None:
        nonce = g.csp_nonce = secrets.token_urlsafe(18)
    return nonce


def nonced(html) -> Markup:
    """Trusted server-made markup (Folium's header and script) with this request's nonce on each
    inline ``<script>`` and ``<style>``. Never for text that holds user input."""
    return Markup(_OPEN_TAG.sub(lambda m: f'<{m.group(1)} nonce="{csp_nonce()}"', str(html)))


def tile_source(tile_url: str) -> str | None:
    """The CSP source of an intranet tile URL template (``{s}`` becomes ``*``); None when
    there is none or it is on this site."""
    if not tile_url:
        return None
    parts = urlsplit(tile_url.replace("{s}", "tiles-sub"))
    if not parts.scheme or not parts.netloc:
        return None  # relative: served by this site
    host = parts.netloc.replace("tiles-sub", "*")
    return f"{parts.scheme}://{host}"


def content_security_policy(nonce: str | None, tile_url: str = "") -> str:
    """The policy text (see the module docstring for each directive); ``nonce`` None: no
    inline block may run."""
    images = ["'self'", "data:"]
    tiles = tile_source(tile_url)
    if tiles:
        images.append(tiles)
    own = "'self'" if nonce is None else f"'self' 'nonce-{nonce}'"
    directives = [
        "default-src 'none'",
        f"script-src {own}",
        f"style-src {own}",
        "style-src-attr 'unsafe-inline'",
        f"img-src {' '.join(images)}",
        "connect-src 'self'",
        "font-src 'self'",
        "manifest-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


def constant_headers(session_cookie_secure: bool) -> list[tuple[str, str]]:
    """The security headers that are the same on every answer."""
    headers = [
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "same-origin"),
        ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("Cross-Origin-Resource-Policy", "same-origin"),
    ]
    if session_cookie_secure:
        headers.append(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))
    return headers


def _private(response: Response, no_store: bool) -> None:
    """Mark ``response`` private (and no-store): the common cases without parsing the header."""
    h = response.headers
    current = h.get("Cache-Control")
    if not no_store and current is None:
        h["Cache-Control"] = "private"
    elif not no_store and current == "no-cache":  # revalidated answers (web/caching.py)
        h["Cache-Control"] = "no-cache, private"
    else:
        response.cache_control.public = False
        response.cache_control.private = True
        if no_store:
            response.cache_control.no_store = True


def init_app(app: Flask) -> None:
    """Add the security headers to every response of ``app``."""
    settings = app.extensions["gridatlas"].settings
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.jinja_env.filters["nonced"] = nonced
    fixed = constant_headers(settings.session_cookie_secure)
    names = frozenset(name.lower() for name, _ in fixed)
    without_nonce = content_security_policy(None, settings.tile_url)

    @app.after_request
    def _security_headers(response: Response) -> Response:
        h = response.headers
        # A 304 sends no policy: the browser keeps the stored page with the stored policy, whose
        # nonce is the one in that page (a new nonce here would block the page's own scripts).
        if response.status_code != 304:
            nonce = g.get("csp_nonce")
            h["Content-Security-Policy"] = (without_nonce if nonce is None
                                            else content_security_policy(nonce, settings.tile_url))
        if not names.isdisjoint(name.lower() for name in h.keys()):  # a view set one: replace, never repeat
            for name, value in fixed:
                h[name] = value
        else:
            h.extend(fixed)
        endpoint = request.endpoint
        if endpoint not in STATIC_ENDPOINTS:
            _private(response, endpoint in NO_STORE_ENDPOINTS)
        return response
