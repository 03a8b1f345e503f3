"""The city as data: the area hierarchy (city › district › town › village › grid) and its codes,
the metrics, the daily online figures, and the :class:`~geo.atlas.areas.Atlas` of loaded areas.

Imports ``geo.spatial`` and the basics (``geo.settings``, ``geo.errors``)."""
