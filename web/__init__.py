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
    """Build the Flask application. ``test_config`` may hold ``settings`` overrides and Flask keys."""
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

    from . import errors, views

    errors.register(app)
    views.register(app)
    return app


def service() -> AtlasService:
    """The AtlasService of the current app."""
    from flask import current_app

    return current_app.extensions["gridatlas"]
