"""Synthesise towns, villages and grids inside the real district outlines.

The town level is Ningbo's real one: the 160 units of the 2020 statistical division codes
(``data/shapes/towns_2020.csv``), each with its official code and name in its own district.
Their outlines are not public, so they are synthesised: streets (街道) nearest the district's
core, towns (镇) around them, townships (乡) and special areas further out, each sized by the
density surface. About 3,200 villages/communities and exactly 10,205 grids follow, with grid
counts per district in proportion to the 2020 census.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.atlas.hierarchy import CITY_CODE
from geo.demo.density import DISTRICT_CORES, KM_PER_DEG_LAT, KM_PER_DEG_LON, density
from geo.demo.names import NamePool
from geo.demo.tessellate import MAX_SEGMENT_DEG, allocate, random_points_in, voronoi_split, weighted_seeds

N_GRIDS = 10_205
N_VILLAGES = 3_200
HOUSEHOLDS = 3_930_000
GRID_WORKERS = 35_600
TOWNS_FILE = "towns_2020.csv"

# 2020 census population (10,000s) per district.
DISTRICTS = {
    "330203": ("海曙区", 104.1),
    "330205": ("江北区", 48.9),
    "330206": ("北仑区", 82.9),
    "330211": ("镇海区", 51.0),
    "330212": ("鄞州区", 161.0),
    "330213": ("奉化区", 57.8),
    "330225": ("象山县", 56.8),
    "330226": ("宁海县", 69.5),
    "330281": ("余姚市", 125.4),
    "330282": ("慈溪市", 183.0),
}

# The 7th and 8th digits of a town-level code give its kind.
KIND_OF_DIGIT = {"0": "street", "1": "town", "2": "township", "4": "special"}

# The seed's town: 云龙镇 in 鄞州区, with 7 villages, one of them 甲村.
YUNLONG_CODE = "330212108"
YUNLONG_NAME = "云龙镇"
YUNLONG_SEED = (121.672, 29.788)
YUNLONG_VILLAGES = 7
JIACUN_NAME = "甲村"


def town_kind(code: str) -> str:
    """The kind of a town-level unit from its code: street, town, township or special (area)."""
    return KIND_OF_DIGIT[code[6]]


def read_towns(path) -> pd.DataFrame:
    """The town-level units file: ``code``, ``name`` and ``district`` as text, sorted by code."""
    towns = pd.read_csv(path, dtype=str, encoding="utf-8")
    towns = towns[["code", "name", "district"]].apply(lambda c: c.str.strip())
    bad = towns[(towns["code"].str.len() != 9) | (towns["code"].str.slice(0, 6) != towns["district"])
                | ~towns["code"].str.slice(6, 7).isin(list(KIND_OF_DIGIT)) | towns["code"].duplicated()]
    if len(bad):
        raise ValueError(f"{path}: malformed, misplaced or repeated town codes: {', '.join(bad['code'].head(5))}")
    return towns.sort_values("code", ignore_index=True)


def _mass(geom, rng, samples: int = 24) -> float:
    """Estimated population weight of a polygon: its area times its mean density."""
    pts = random_points_in(geom, samples, rng)
    return geom.area * float(density(pts[:, 0], pts[:, 1]).mean())


def _frame(rows, level):
    gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")
    gdf.insert(1, "level", level)
    return gdf


def _km_from(points: np.ndarray, lonlat) -> np.ndarray:
    dx = (points[:, 0] - lonlat[0]) * KM_PER_DEG_LON
    dy = (points[:, 1] - lonlat[1]) * KM_PER_DEG_LAT
    return np.hypot(dx, dy)


def _town_seeds(dgeom, dcode: str, codes: list[str], rng) -> np.ndarray:
    """One seed per town code (in code order), nearest the core for the lowest codes.

    Codes sort as streets (0xx) < towns (1xx) < townships (2xx) < special areas (4xx), so
    handing out the seeds by distance to the district's core puts the streets in the middle
    and the rest in rings around it. 云龙镇 keeps the seed's place.
    """
    seeds = weighted_seeds(dgeom, len(codes), rng, power=0.5)
    fixed = {}
    if YUNLONG_CODE in codes:
        # Take the seed nearest 云龙镇's place, so no other seed sits on top of it.
        j = int(np.argmin(_km_from(seeds, YUNLONG_SEED)))
        fixed[codes.index(YUNLONG_CODE)] = j
        seeds[j] = YUNLONG_SEED
    free_seeds = [j for j in np.argsort(_km_from(seeds, DISTRICT_CORES[dcode]), kind="stable")
                  if j not in fixed.values()]
    free_codes = [i for i in range(len(codes)) if i not in fixed]
    order = dict(zip(free_codes, free_seeds)) | fixed
    return seeds[[order[i] for i in range(len(codes))]]


def synthesise_areas(districts: gpd.GeoDataFrame, towns: pd.DataFrame, seed: int) -> dict[str, gpd.GeoDataFrame]:
    """Build the district, town, village and grid layers (EPSG:4326) from the district outlines.

    ``districts`` needs ``adcode`` and ``geometry``; ``towns`` is the town-level list (see
    ``read_towns``). The result maps each level to a GeoDataFrame with ``code``, ``level``,
    ``name``, ``parent`` and ``geometry``; grids also carry ``households``, ``population``,
    ``leaders`` and ``workers``.
    """
    unknown = sorted(set(towns["district"]) ^ set(DISTRICTS))
    if unknown:
        raise ValueError(f"the town list and Ningbo's districts disagree on {', '.join(unknown)}")
    rng = np.random.default_rng(seed)
    districts = districts.set_index("adcode").loc[list(DISTRICTS)]
    pops = np.array([DISTRICTS[c][1] for c in districts.index])
    grids_per_district = allocate(N_GRIDS, pops)
    areas_km2 = districts.geometry.to_crs(4549).area.to_numpy() / 1e6
    villages_per_district = allocate(N_VILLAGES, np.sqrt(pops * areas_km2))
    towns_by_district = {d: g for d, g in towns.groupby("district")}

    d_rows, t_rows, v_rows, g_rows = [], [], [], []
    for (dcode, drow), n_grids, n_vill in zip(districts.iterrows(), grids_per_district, villages_per_district):
        dname, _ = DISTRICTS[dcode]
        dgeom = shapely.segmentize(shapely.make_valid(drow.geometry), MAX_SEGMENT_DEG)
        d_rows.append({"code": dcode, "name": dname, "parent": CITY_CODE, "geometry": dgeom})

        units = towns_by_district[dcode]
        codes, names = units["code"].tolist(), units["name"].tolist()
        town_geoms = voronoi_split(dgeom, _town_seeds(dgeom, dcode, codes, rng))
        town_mass = np.array([_mass(t, rng) for t in town_geoms])
        # 云龙镇 gets its 7 villages by hand; the allocation keeps a 1-village slot for it.
        yunlong = np.array([c == YUNLONG_CODE for c in codes])
        n_vill_town = allocate(n_vill - (YUNLONG_VILLAGES - 1) * int(yunlong.any()),
                               town_mass ** 0.7 * ~yunlong + 1e-9)
        village_geoms, village_meta = [], []
        for tcode, tname, tgeom, nv in zip(codes, names, town_geoms, n_vill_town):
            if tcode == YUNLONG_CODE:
                nv = YUNLONG_VILLAGES
            t_rows.append({"code": tcode, "name": tname, "parent": dcode, "geometry": tgeom})
            vseeds = weighted_seeds(tgeom, int(nv), rng, power=0.8)
            vnames = NamePool(rng)
            # Towns and townships have villages (村); streets and special areas, communities (社区).
            suffix = "村" if town_kind(tcode) in ("town", "township") else "社区"
            for k, vgeom in enumerate(voronoi_split(tgeom, vseeds), start=1):
                vcode = f"{tcode}{k:03d}"
                vname = JIACUN_NAME if (tcode == YUNLONG_CODE and k == 1) else vnames.next() + suffix
                v_rows.append({"code": vcode, "name": vname, "parent": tcode, "geometry": vgeom})
                village_geoms.append(vgeom)
                village_meta.append((vcode, vname))

        vmass = np.array([_mass(v, rng) for v in village_geoms])
        n_grid_village = allocate(int(n_grids), vmass)
        for (vcode, vname), vgeom, ng in zip(village_meta, village_geoms, n_grid_village):
            gseeds = weighted_seeds(vgeom, int(ng), rng, power=1.0)
            for k, ggeom in enumerate(voronoi_split(vgeom, gseeds), start=1):
                g_rows.append({"code": f"{vcode}{k:03d}", "name": f"{vname}第{k}网格",
                               "parent": vcode, "geometry": ggeom})

    grids = _frame(g_rows, "grid")
    _add_grid_people(grids, rng)
    return {
        "district": _frame(d_rows, "district"),
        "town": _frame(t_rows, "town").sort_values("code", ignore_index=True),
        "village": _frame(v_rows, "village").sort_values("code", ignore_index=True),
        "grid": grids.sort_values("code", ignore_index=True),
    }


def _add_grid_people(grids: gpd.GeoDataFrame, rng) -> None:
    """Give each grid households, population, one leader and its share of grid workers."""
    mass = np.array([_mass(g, rng, samples=8) for g in grids.geometry])
    households = allocate(HOUSEHOLDS, mass, minimum=20)
    grids["households"] = households
    grids["population"] = np.round(households * 2.39).astype(int)
    grids["leaders"] = 1
    grids["workers"] = allocate(GRID_WORKERS, np.sqrt(households), minimum=2)
