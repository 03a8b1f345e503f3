"""Records in: readers of CSV, Excel, GeoJSON, GeoPackage and Shapefile, row checks and their
report, imports into the store, full rebuilds of the counts (locally or on Dask), event files and
grid boundary updates.

Imports ``geo.query``, ``geo.store``, ``geo.access``, ``geo.atlas``, ``geo.spatial`` and the basics."""
