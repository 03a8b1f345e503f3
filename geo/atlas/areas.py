"""The atlas of areas: every district, town, village and grid, with names, parents and shapes.

Loaded once from the demo (or an imported) ``areas.gpkg``; answers "what is area X", "what
are its children", "find areas named like Y". Geometry stays in EPSG:4326.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.atlas.hierarchy import CITY_CODE, CITY_NAME, LEVELS, child_level, level_of
from geo.errors import AreaNotFound, BadParameter, DataNotReady

AREA_LAYERS = ("district", "town", "village", "grid")


def areas_file(folder: Path) -> Path:
    """The GeoPackage holding the area layers and the checkpoints inside ``folder``."""
    return Path(folder) / "areas.gpkg"


@dataclass
class Atlas:
    """All areas of the city. ``layers`` maps each level to a GeoDataFrame sorted by code."""

    layers: dict[str, gpd.GeoDataFrame]
    checkpoints: gpd.GeoDataFrame
    _index: pd.DataFrame = field(init=False, repr=False)

    def __post_init__(self):
        frames = [pd.DataFrame({"code": [CITY_CODE], "level": ["city"], "name": [CITY_NAME], "parent": [None]})]
        frames += [self.layers[lv][["code", "level", "name", "parent"]] for lv in AREA_LAYERS]
        self._index = pd.concat(frames, ignore_index=True).set_index("code", drop=False)

    @classmethod
    def load(cls, folder: Path) -> "Atlas":
        """Read the atlas from ``folder/areas.gpkg``; DataNotReady if it has not been built."""
        path = areas_file(folder)
        if not path.exists():
            raise DataNotReady(f"no area data at {path}: run `python -m geo demo` (or `make run`) first")
        layers = {lv: gpd.read_file(path, layer=lv, engine="pyogrio").sort_values("code", ignore_index=True)
                  for lv in AREA_LAYERS}
        checkpoints = gpd.read_file(path, layer="checkpoint", engine="pyogrio")
        return cls(layers, checkpoints)

    @property
    def grids(self) -> gpd.GeoDataFrame:
        """The grid layer, sorted by code (row i is grid index i everywhere in the core)."""
        return self.layers["grid"]

    @cached_property
    def grid_codes(self) -> np.ndarray:
        """Grid codes in index order."""
        return self.grids["code"].to_numpy(dtype=str)

    @cached_property
    def grid_index(self):
        """The point-in-grid :class:`~geo.join.GridIndex` over :attr:`grids`, built once per atlas
        (its raster takes seconds; every import and rebuild of this atlas shares it)."""
        from geo.spatial.join import GridIndex

        return GridIndex(self.grids.geometry.to_numpy())

    @cached_property
    def city_outline(self):
        """The whole city as one (multi)polygon."""
        return shapely.union_all(self.layers["district"].geometry.to_numpy())

    def get(self, code: str) -> pd.Series:
        """Return code, level, name and parent of one area, or raise AreaNotFound."""
        try:
            level_of(code)
        except BadParameter:
            raise AreaNotFound(f"no area with code {code!r}") from None
        if code not in self._index.index:
            raise AreaNotFound(f"no area with code {code!r}")
        return self._index.loc[code]

    def children(self, code: str) -> pd.DataFrame:
        """The child areas of ``code`` (code, level, name, parent), sorted by code; empty for a grid."""
        self.get(code)
        return self._index[self._index["parent"] == code].reset_index(drop=True)

    def geometry_of(self, code: str):
        """The polygon of one area (the union of districts for the city)."""
        level = self.get(code)["level"]
        if level == "city":
            return self.city_outline
        layer = self.layers[level]
        return layer.geometry.iloc[int(np.searchsorted(layer["code"].to_numpy(), code))]

    def child_frame(self, code: str) -> gpd.GeoDataFrame:
        """The children of ``code`` as a GeoDataFrame (a grid's "children" is the grid itself)."""
        level = self.get(code)["level"]
        below = child_level(level) or "grid"
        layer = self.layers[below]
        if level == "grid":
            return layer[layer["code"] == code].reset_index(drop=True)
        if level == "city":
            return layer.reset_index(drop=True)
        return layer[layer["parent"] == code].reset_index(drop=True)

    def lineage(self, code: str) -> list[dict]:
        """The breadcrumb from the city down to ``code``: a list of {code, level, name}."""
        out = []
        current = code
        while current is not None:
            row = self.get(current)
            out.append({"code": row["code"], "level": row["level"], "name": row["name"]})
            current = row["parent"]
        return out[::-1]

    def search(self, text: str, limit: int = 20, within: str | None = None) -> pd.DataFrame:
        """Find areas by code (prefix) or by Chinese name or part of it, ranked: exact, prefix, part.

        ``within`` limits the result to one area's descendants (for scoped users).
        """
        text = (text or "").strip()
        if not text:
            return self._index.iloc[0:0].reset_index(drop=True)
        idx = self._index
        if within and within != CITY_CODE:
            idx = idx[idx["code"].str.startswith(within)]
        if text.isdigit():
            hits = idx[idx["code"].str.startswith(text)]
            rank = (hits["code"] != text).astype(int)
        else:
            names = idx["name"]
            hits = idx[names.str.contains(text, regex=False)]
            rank = (hits["name"] != text).astype(int) + (~hits["name"].str.startswith(text)).astype(int)
        order = pd.DataFrame({"rank": rank, "lvl": hits["level"].map(LEVELS.index), "code": hits["code"]})
        order.index.name = None  # the index is also named "code": sorting by it would be ambiguous
        hits = hits.loc[order.sort_values(["rank", "lvl", "code"]).index]
        return hits.head(limit).reset_index(drop=True)


def write_atlas_file(atlas: Atlas, target: Path) -> None:
    """Write every layer of ``atlas`` to a new GeoPackage beside ``target``, then rename it into
    place, so a reader never opens half a file."""
    tmp = target.with_name(target.stem + ".new.gpkg")
    tmp.unlink(missing_ok=True)
    try:
        for level in AREA_LAYERS:
            atlas.layers[level].to_file(tmp, layer=level, driver="GPKG", engine="pyogrio")
        atlas.checkpoints.to_file(tmp, layer="checkpoint", driver="GPKG", engine="pyogrio")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
