"""Grid Atlas core: the city's areas, the exact point-in-grid join, the stores, imports, the one
query API, access control and exports. Nothing here imports Flask.

Packages, from the bottom up; each imports only those below it (and ``settings``, ``errors``):

==========  ==========================================================================
spatial     coordinate systems (WGS 84, GCJ-02, BD-09, CGCS2000) and the grid join
atlas       the area hierarchy and its codes, the metrics, the loaded atlas of areas
store       where data lives: SQLite or PostGIS, the counts' layout, migrations
access      users, jurisdictions, sign-in throttling, wall devices, the audit log
query       the one read API: counts, series, map data, classes, the wall's board
ingest      records in: file readers, row checks, imports, rebuilds, boundary updates
export      map images and files: figures, layout, shapes, charts, fonts
demo        the synthetic Ningbo the demo and the tests run on
cli         ``python -m geo``: the commands (may import every package)
==========  ==========================================================================
"""

__version__ = "0.1.0"
