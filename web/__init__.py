"""Grid Atlas web app: a thin Flask layer over ``geo``.

``create_app(test_config=None)`` follows Flask's tutorial factory: defaults, then the settings
object (``GRIDATLAS_*`` environment variables and ``.env``), then the test override. Routes
parse their arguments, call one ``geo`` function and render.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask

from geo.query.service import AtlasService
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
        SECRET_KEY=settings.secret_key or shared_secret(settings.data_path),
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


def shared_secret(data_path: Path) -> str:
    """The session secret when none is configured: one kept in ``<data>/secret_key`` (made
    once, readable by its owner only), so that every worker process of the server (granian
    starts 2, each building its own app) and a restart sign sessions alike."""
    path = Path(data_path) / "secret_key"
    try:
        key = path.read_text().strip()
        if key:
            return key
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".secret_key.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(32))
    try:
        os.link(tmp, path)  # atomic: when two workers start at once, the first key is everyone's
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return path.read_text().strip()


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
    # Conditional requests are answered before any body exists (``revalidated`` for our answers,
    # ``send_file`` for static files); a second evaluation after compressing finds nothing new.
    app.config.setdefault("COMPRESS_EVALUATE_CONDITIONAL_REQUEST", False)
    Compress(app)


def service() -> AtlasService:
    """The AtlasService of the current app."""
    from flask import current_app

    return current_app.extensions["gridatlas"]
