"""Synthesise about 10,000 smart checkpoints and their daily check counts.

Kinds: community gates (most, placed where households are), road checkpoints (on town
edges and main roads, thinner) and transport hubs (stations, port, airport, near the cores).
云龙镇 gets exactly three road checkpoints, which together checked 18,388 travellers from
6 February (the seed) at scale 1.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.atlas.metrics import N_DAYS, PERIOD_START
from geo.demo.areas import YUNLONG_CODE
from geo.demo.points import PolygonSampler

N_GATES = 8_740
N_ROADS = 1_200
N_HUBS = 60
YUNLONG_ROADS = 3
YUNLONG_CHECKS = 18_388
YUNLONG_TEAM_START = pd.Timestamp("2020-02-06").date()
KIND_ZH = {"community_gate": "小区门岗", "road": "道路卡口", "transport_hub": "交通枢纽"}
MEAN_DAILY_CHECKS = {"community_gate": 120.0, "road": 260.0, "transport_hub": 1500.0}


def synthesise_checkpoints(grids: gpd.GeoDataFrame, towns: gpd.GeoDataFrame, seed: int) -> gpd.GeoDataFrame:
    """Place checkpoints in grids: code, name, kind, grid_code and point geometry (EPSG:4326)."""
    rng = np.random.default_rng(seed + 1)
    sampler = PolygonSampler(grids.geometry.to_numpy())
    households = grids["households"].to_numpy(float)
    in_yunlong = grids["code"].str.startswith(YUNLONG_CODE).to_numpy()
    town_names = dict(zip(towns["code"], towns["name"]))

    gate_g = rng.choice(len(grids), N_GATES, p=households / households.sum())
    # Roads: spread more evenly than people (sqrt), never in 云龙镇, which gets its own three.
    w = np.sqrt(households) * ~in_yunlong
    road_g = rng.choice(len(grids), N_ROADS - YUNLONG_ROADS, p=w / w.sum())
    yl = np.flatnonzero(in_yunlong)
    yl_g = rng.choice(yl, YUNLONG_ROADS, replace=False, p=households[yl] / households[yl].sum())
    w = households ** 2 * ~in_yunlong
    hub_g = rng.choice(len(grids), N_HUBS, p=w / w.sum())

    owner = np.concatenate([gate_g, road_g, yl_g, hub_g])
    kind = np.array(["community_gate"] * N_GATES + ["road"] * N_ROADS + ["transport_hub"] * N_HUBS)
    x, y = sampler.sample(owner, rng)
    grid_code = grids["code"].to_numpy()[owner]
    frame = pd.DataFrame({"grid_code": grid_code, "kind": kind, "x": x, "y": y})
    frame = frame.sort_values(["grid_code", "kind"], kind="stable", ignore_index=True)
    frame["town_code"] = frame["grid_code"].str.slice(0, 9)
    seq = frame.groupby("town_code").cumcount() + 1
    frame["code"] = frame["town_code"] + "K" + seq.map("{:04d}".format)
    frame["name"] = [f"{town_names[t]}{KIND_ZH[k]}{n}号" for t, k, n in zip(frame["town_code"], frame["kind"], seq)]
    return gpd.GeoDataFrame(
        frame[["code", "name", "kind", "grid_code"]],
        geometry=shapely.points(frame["x"], frame["y"]), crs="EPSG:4326",
    )


def _daily_shape() -> np.ndarray:
    """Relative checkpoint traffic per day: checkpoints open on 26 January, peak in late February."""
    t = np.arange(N_DAYS, dtype=float)
    shape = np.where(t < 2, 0.0, 0.4 + np.exp(-((t - 32) ** 2) / (2 * 14.0 ** 2)))
    return shape


def synthesise_checks(checkpoints: gpd.GeoDataFrame, scale: float, seed: int) -> pd.DataFrame:
    """Daily check counts per checkpoint: columns checkpoint_code, date, checks (only non-zero)."""
    rng = np.random.default_rng(seed + 2)
    n = len(checkpoints)
    shape = _daily_shape()
    mean = checkpoints["kind"].map(MEAN_DAILY_CHECKS).to_numpy() * rng.gamma(4.0, 0.25, n)
    lam = mean[:, None] * shape[None, :] * scale
    checks = rng.poisson(lam)
    # 云龙镇's three road checkpoints: exactly the seed's 18,388 checks (× scale) from 6 February.
    yl = np.flatnonzero((checkpoints["kind"] == "road").to_numpy()
                        & checkpoints["code"].str.startswith(YUNLONG_CODE).to_numpy())
    first = (YUNLONG_TEAM_START - PERIOD_START).days
    checks[yl, :] = 0
    total = int(round(YUNLONG_CHECKS * scale))
    p = np.zeros(N_DAYS)
    p[first:] = shape[first:]
    cells = rng.choice(len(yl) * N_DAYS, total, p=np.tile(p / p.sum(), len(yl)) / len(yl))
    np.add.at(checks, (yl[cells // N_DAYS], cells % N_DAYS), 1)
    cp, day = np.nonzero(checks)
    return pd.DataFrame({
        "checkpoint_code": checkpoints["code"].to_numpy()[cp],
        "date": pd.to_datetime(PERIOD_START) + pd.to_timedelta(day, unit="D"),
        "checks": checks[cp, day].astype(np.int64),
    })
