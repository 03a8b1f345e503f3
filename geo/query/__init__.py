"""The one read API: :class:`~geo.query.service.AtlasService` answers every question the map, the
API, the wall, time playback, exports and the CLI ask (counts, series, map data, classes, the
wall's board).

Imports ``geo.store``, ``geo.access``, ``geo.atlas``, ``geo.spatial`` and the basics."""
