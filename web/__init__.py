"""Grid Atlas web app: a thin Flask layer over ``geo``.

``create_app(test_config=None)`` follows Flask's tutorial factory: defaults, then the settings
object (``GRIDATLAS_*`` environment variables and ``.env``), then the test override. Routes
parse their arguments, call one ``geo`` function and render.
"""

from __future__ import annotations

import secrets

from flask import Flask

from geo.service import AtlasService
from geo.settings import get_settings


def create_app(test_config: dict | None = None) -> Flask:
    """Build the Flask application. ``test_config`` may hold ``settings`` overrides and Flask keys.

    With ``TESTING=True`` (only ever from ``test_config``) requests run as ``TEST_USER``, an
    admin by default; see web/auth.py.
    """
    test_config = dict(test_config or {})
    settings = get_settings(**test_config.pop("SETTINGS", {}))
    app = Flask(__name__)
    app.config.from_mapping(
        SECRET_KEY=settings.secret_key or secrets.token_hex(32),
        MAX_CONTENT_LENGTH=settings.max_upload_bytes,
        JSON_AS_ASCII=False,
    )
    app.config.update(test_config)
    app.extensions["gridatlas"] = AtlasService(settings)

    from . import auth, caching, errors, export, i18n, offline_assets, security, time_api, upload, views, wall

    auth.init_app(app)  # first: its guard runs before every other request hook and view
    security.init_app(app)
    i18n.init_app(app)
    caching.init_app(app)
    _compress(app)
    offline_assets.register_vendor_static(app)
    errors.register(app)
    views.register(app)
    app.register_blueprint(export.bp)
    app.register_blueprint(wall.bp)
    app.register_blueprint(upload.bp)
    app.register_blueprint(time_api.bp)
    return app


def _compress(app: Flask) -> None:
    """Compress HTML, JSON, GeoJSON, scripts and styles (brotli/gzip, as the browser accepts)."""
    from flask_compress import Compress

    app.config.setdefault("COMPRESS_MIMETYPES", [
        "text/html", "text/css", "text/javascript", "application/javascript", "application/json",
        "application/geo+json", "image/svg+xml",
    ])
    # Big GeoJSON answers: a quick level keeps the time small and still gives about 8:1.
    app.config.setdefault("COMPRESS_LEVEL", 5)
    app.config.setdefault("COMPRESS_BR_LEVEL", 4)
    # Warm JSON answers are compressed once (web/caching.py says which answers are kept).
    from .caching import compress_cache, compress_cache_key

    app.config.setdefault("COMPRESS_CACHE_BACKEND", lambda: compress_cache(app))
    app.config.setdefault("COMPRESS_CACHE_KEY", compress_cache_key)
    Compress(app)


def service() -> AtlasService:
    """The AtlasService of the current app."""
    from flask import current_app

    return current_app.extensions["gridatlas"]
