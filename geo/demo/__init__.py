"""The synthetic Ningbo: areas over the real district outlines, grids, checkpoints, daily events
and online figures at the seed report's scale, written as the files the rest of Grid Atlas reads.

Imports ``geo.ingest`` (to write event files), ``geo.atlas``, ``geo.spatial`` and the basics."""
