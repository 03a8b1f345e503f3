"""Coordinates and the point-in-grid join: Chinese coordinate systems (GCJ-02, BD-09) and
projections, and the exact, vectorised assignment of points to grids.

Imports only ``geo.errors``: everything else builds on it."""
