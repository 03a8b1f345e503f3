"""The one settings object of Grid Atlas.

Values come, in rising priority, from the defaults here, a ``.env`` file in the working
directory, environment variables prefixed ``GRIDATLAS_`` and, for tests, an explicit override
(``Settings(**overrides)``). The CLI, the web app, the wall and the exporter all read this.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Settings with the ``GRIDATLAS_`` environment prefix, also read from ``.env``."""

    model_config = SettingsConfigDict(env_prefix="GRIDATLAS_", env_file=".env", extra="ignore")

    # Where the demo data, the store and the caches live. Relative paths are taken from the
    # project root, so `make run` and the CLI agree wherever they are started.
    data_dir: Path = Path("data")
    # Flask's session secret. Empty means one made once and kept in <data_dir>/secret_key, which
    # the server processes of one machine share. Several machines (the PostGIS store) must be
    # given the same value here.
    secret_key: str = ""
    # Optional base-map tiles from an intranet tile server, e.g. http://tiles.local/{z}/{x}/{y}.png.
    # Off by default: the base map is the city's own outlines.
    tile_url: str = ""
    # Coordinate system of those tiles: "wgs84" (OSM-style, default) or "gcj02" (Amap-style).
    # (checked at start-up: a typo fails there, not as a 400 on every page).
    tile_crs: Literal["wgs84", "gcj02"] = "wgs84"
    tile_attribution: str = ""
    # Scale of the demo events built by `python -m geo demo` (1 = the seed's totals; 0.1 builds
    # a tenth of the records, quicker for a first look).
    demo_scale: float = 1.0
    demo_seed: int = 2020
    # Wall refresh interval in seconds.
    wall_refresh_seconds: int = 30
    wall_tour_seconds: int = 20
    # Wall playback: days the map loops through by default (0 = off; a wall's URL
    # can ask for it with ?playback=14), and seconds per day.
    wall_playback_days: int = 0
    wall_playback_step_seconds: float = 1.5
    # Wall devices (`python -m geo users wall-token`): a device's session ends after this many
    # hours without a request (a wall polls every few seconds), and its link lasts this many days.
    wall_device_idle_hours: int = 72
    wall_device_days: int = 30
    # Memory each server process may use to keep warm JSON answers and their compressed forms
    # (web/caching.py); the all-grids GeoJSON of the city is about 4 MB of it.
    response_cache_mb: float = 64.0
    # Largest accepted upload in bytes.
    max_upload_bytes: int = 200 * 1024 * 1024
    # Largest total size the entries of an uploaded zip (zipped Shapefile, XLSX) may inflate
    # to; more is treated as a zip bomb and the whole upload is refused.
    max_unzipped_bytes: int = 1024 * 1024 * 1024
    # Suppressed exports print counts from 1 to one below this value as "<N" (5: 1..4 print
    # "<5"), and their legend has one "<N" class. At least 2.
    small_count_threshold: int = Field(5, ge=2)
    # Source line printed on exported maps and under "About the data" on the map; empty means
    # the demo data's own description (which parts are real, which synthesised).
    export_source: str = ""
    # The store: empty means the embedded SQLite file under data_dir. A URL such as
    # postgresql://user@host:5432/gridatlas means PostgreSQL with PostGIS (areas, counts,
    # records and users there; several server processes and machines can share it), with
    # Grid Atlas's tables in the schema database_schema (created if missing).
    database_url: str = ""
    database_schema: str = Field("gridatlas", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    # Access control. Send the session cookie over HTTPS only: set true in
    # production behind TLS (the demo on http://127.0.0.1 needs false).
    session_cookie_secure: bool = False
    # A signed-in session ends after this many hours, however active.
    session_hours: int = 8
    # Failed logins allowed per user name and per client address in login_window_minutes.
    login_attempts: int = 5
    login_window_minutes: int = 15

    @cached_property
    def data_path(self) -> Path:
        """The data folder as an absolute path."""
        p = Path(self.data_dir)
        return p if p.is_absolute() else PROJECT_ROOT / p

    @property
    def shapes_dir(self) -> Path:
        """Committed source shapes (the real district outlines)."""
        return PROJECT_ROOT / "data" / "shapes"

    @property
    def demo_dir(self) -> Path:
        """Generated demo data: area polygons, checkpoints and event files."""
        return self.data_path / "demo"

    @property
    def store_path(self) -> Path:
        """The embedded SQLite store of counts, records and users."""
        return self.data_path / "gridatlas.sqlite"


def get_settings(**overrides) -> Settings:
    """Build the settings, applying ``overrides`` last (used by tests and the app factory)."""
    return Settings(**overrides)
