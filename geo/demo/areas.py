"""Synthesise towns, villages and grids inside the real district outlines.

Counts: 156 towns/streets, about 3,200 villages/communities and exactly
10,205 grids, with grid counts per district in proportion to the 2020 census. Density comes
from ``density.py``, so grids are small in the urban cores and large in the hills.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from geo.atlas.hierarchy import CITY_CODE
from geo.demo.density import density
from geo.demo.names import NamePool
from geo.demo.tessellate import MAX_SEGMENT_DEG, allocate, random_points_in, voronoi_split, weighted_seeds

N_GRIDS = 10_205
N_VILLAGES = 3_200
HOUSEHOLDS = 3_930_000
GRID_WORKERS = 35_600

# 2020 census population (10,000s) and the number of towns/streets per district.
DISTRICTS = {
    "330203": ("海曙区", 104.1, 17),
    "330205": ("江北区", 48.9, 8),
    "330206": ("北仑区", 82.9, 11),
    "330211": ("镇海区", 51.0, 7),
    "330212": ("鄞州区", 161.0, 24),
    "330213": ("奉化区", 57.8, 12),
    "330225": ("象山县", 56.8, 18),
    "330226": ("宁海县", 69.5, 18),
    "330281": ("余姚市", 125.4, 21),
    "330282": ("慈溪市", 183.0, 20),
}

# The seed's town: 云龙镇 in 鄞州区, with 7 villages, one of them 甲村.
YUNLONG_CODE = "330212101"
YUNLONG_NAME = "云龙镇"
YUNLONG_SEED = (121.672, 29.788)
YUNLONG_VILLAGES = 7
JIACUN_NAME = "甲村"

# A town whose density at its seed exceeds this is an urban street (街道), else a town (镇).
URBAN_DENSITY = 6.0


def _mass(geom, rng, samples: int = 24) -> float:
    """Estimated population weight of a polygon: its area times its mean density."""
    pts = random_points_in(geom, samples, rng)
    return geom.area * float(density(pts[:, 0], pts[:, 1]).mean())


def _frame(rows, level):
    gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")
    gdf.insert(1, "level", level)
    return gdf


def synthesise_areas(districts: gpd.GeoDataFrame, seed: int) -> dict[str, gpd.GeoDataFrame]:
    """Build the district, town, village and grid layers (EPSG:4326) from the district outlines.

    ``districts`` needs ``adcode`` and ``geometry``. The result maps each level to a
    GeoDataFrame with ``code``, ``level``, ``name``, ``parent`` and ``geometry``; grids also
    carry ``households``, ``population``, ``leaders`` and ``workers``.
    """
    rng = np.random.default_rng(seed)
    districts = districts.set_index("adcode").loc[list(DISTRICTS)]
    pops = np.array([DISTRICTS[c][1] for c in districts.index])
    grids_per_district = allocate(N_GRIDS, pops)
    areas_km2 = districts.geometry.to_crs(4549).area.to_numpy() / 1e6
    villages_per_district = allocate(N_VILLAGES, np.sqrt(pops * areas_km2))
    town_names = NamePool(rng, taken=[YUNLONG_NAME[:2]])

    d_rows, t_rows, v_rows, g_rows = [], [], [], []
    for (dcode, drow), n_grids, n_vill in zip(districts.iterrows(), grids_per_district, villages_per_district):
        dname, _, n_towns = DISTRICTS[dcode]
        dgeom = shapely.segmentize(shapely.make_valid(drow.geometry), MAX_SEGMENT_DEG)
        d_rows.append({"code": dcode, "name": dname, "parent": CITY_CODE, "geometry": dgeom})

        seeds = weighted_seeds(dgeom, n_towns, rng, power=0.5)
        if dcode == YUNLONG_CODE[:6]:
            seeds[0] = YUNLONG_SEED
        towns = voronoi_split(dgeom, seeds)
        seed_density = density(seeds[:, 0], seeds[:, 1])
        # Streets (001..) first, then towns (101..), as real adcodes number them.
        is_urban = seed_density >= URBAN_DENSITY
        if dcode == YUNLONG_CODE[:6]:
            is_urban[0] = False
        order = sorted(range(n_towns), key=lambda i: (not is_urban[i], i))
        town_codes, street_no, town_no = {}, 0, 100
        for i in order:
            if is_urban[i]:
                street_no += 1
                town_codes[i] = f"{dcode}{street_no:03d}"
            else:
                town_no += 1
                town_codes[i] = f"{dcode}{town_no:03d}"
        town_mass = np.array([_mass(t, rng) for t in towns])
        # 云龙镇 gets its 7 villages by hand; the allocation keeps a 1-village slot for it.
        n_vill_town = allocate(n_vill - (YUNLONG_VILLAGES - 1 if dcode == YUNLONG_CODE[:6] else 0),
                               town_mass ** 0.7 * [0 if town_codes[i] == YUNLONG_CODE else 1 for i in range(n_towns)] + 1e-9)
        village_geoms, village_meta = [], []
        for i in order:
            tcode, tgeom = town_codes[i], towns[i]
            if tcode == YUNLONG_CODE:
                tname, nv = YUNLONG_NAME, YUNLONG_VILLAGES
            else:
                tname = town_names.next() + ("街道" if is_urban[i] else "镇")
                nv = int(n_vill_town[i])
            t_rows.append({"code": tcode, "name": tname, "parent": dcode, "geometry": tgeom})
            vseeds = weighted_seeds(tgeom, nv, rng, power=0.8)
            vnames = NamePool(rng)
            suffix = "社区" if is_urban[i] else "村"
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
