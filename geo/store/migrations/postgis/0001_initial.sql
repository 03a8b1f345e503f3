-- 0001: the first PostGIS schema. The same tables as the embedded SQLite store (geo/store.py
-- and geo/count_store.py), plus the areas and checkpoints, which live here with spatial indexes
-- instead of in the demo folder's GeoPackage. Runs inside the project's schema (search_path).

CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta (key, value) VALUES ('version', '0');

-- Counts: one daily series per (metric, grid); int32 little-endian, day 0 = 2020-01-24.
CREATE TABLE grid_series (
    metric TEXT NOT NULL, grid_code TEXT NOT NULL, daily BYTEA NOT NULL,
    PRIMARY KEY (metric, grid_code)
);
CREATE TABLE checkpoint_series (checkpoint_code TEXT PRIMARY KEY, daily BYTEA NOT NULL);

CREATE TABLE records (
    metric TEXT NOT NULL, record_id TEXT NOT NULL, day TEXT NOT NULL,
    lon DOUBLE PRECISION NOT NULL, lat DOUBLE PRECISION NOT NULL, grid_code TEXT, source TEXT,
    imported_at TEXT,
    PRIMARY KEY (metric, record_id)
);
CREATE TABLE worker_online (
    district_code TEXT NOT NULL, day TEXT NOT NULL, online INTEGER NOT NULL, total INTEGER NOT NULL,
    PRIMARY KEY (district_code, day)
);
CREATE TABLE imports (
    import_id TEXT PRIMARY KEY, kind TEXT NOT NULL, source TEXT, imported_at TEXT NOT NULL,
    report TEXT NOT NULL, rejects_path TEXT
);
CREATE TABLE users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, area TEXT NOT NULL, password_hash TEXT NOT NULL,
    must_change INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, password_changed_at TEXT NOT NULL,
    last_login_at TEXT
);
CREATE TABLE wall_devices (
    name TEXT PRIMARY KEY, area TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL, revoked_at TEXT, claimed_at TEXT, claimed_from TEXT, last_seen_at TEXT
);
CREATE TABLE audit_log (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at TEXT NOT NULL, "user" TEXT NOT NULL,
    action TEXT NOT NULL, target TEXT NOT NULL, outcome TEXT NOT NULL, detail TEXT NOT NULL, client TEXT
);
CREATE TABLE login_failures (key TEXT NOT NULL, at DOUBLE PRECISION NOT NULL);
CREATE INDEX login_failures_key ON login_failures (key, at);
CREATE INDEX login_failures_at ON login_failures (at);

-- Every district, town, village and grid. The numbers are the grids' own (NULL above them).
CREATE TABLE areas (
    code TEXT PRIMARY KEY,
    level TEXT NOT NULL CHECK (level IN ('district', 'town', 'village', 'grid')),
    name TEXT NOT NULL,
    parent TEXT,
    households BIGINT, population BIGINT, leaders BIGINT, workers BIGINT,
    geom public.geometry(MultiPolygon, 4326) NOT NULL
);
CREATE INDEX areas_geom ON areas USING GIST (geom);
CREATE INDEX areas_level_parent ON areas (level, parent);

-- ord keeps the order the checkpoints were given in, as the GeoPackage layer does.
CREATE TABLE checkpoints (
    code TEXT PRIMARY KEY, ord INTEGER NOT NULL, name TEXT NOT NULL, kind TEXT, grid_code TEXT,
    geom public.geometry(Point, 4326) NOT NULL
);
CREATE INDEX checkpoints_geom ON checkpoints USING GIST (geom);
CREATE INDEX checkpoints_grid ON checkpoints (grid_code);
