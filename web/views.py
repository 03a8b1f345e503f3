"""Routes of the web app: the pages (``map_views``) and the JSON endpoints (``api``)."""

from __future__ import annotations

from . import api, map_views


def register(app) -> None:
    """Add the pages and the JSON endpoints to ``app``."""
    app.register_blueprint(map_views.bp)
    app.register_blueprint(api.bp)
