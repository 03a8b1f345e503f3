"""Class breaks for choropleths, shared by the interactive map, the wall and the exports so
that a colour means the same value everywhere.

Methods come from mapclassify (the PySAL classifier library): quantiles and natural breaks
(Fisher-Jenks, the exact optimal form of Jenks' natural breaks).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

with warnings.catch_warnings():
    # mapclassify warns at import when numba is absent; the sizes here do not need it.
    warnings.simplefilter("ignore")
    import mapclassify

from geo.errors import BadParameter

METHODS = {
    "quantiles": ("分位数", "Quantiles"),
    "natural_breaks": ("自然断点 (Fisher-Jenks)", "Natural breaks (Fisher-Jenks)"),
}
DEFAULT_METHOD = "quantiles"
DEFAULT_K = 5
# ColorBrewer YlOrRd, 3 to 7 classes: light = few, dark = many.
PALETTES = {
    3: ["#ffeda0", "#feb24c", "#f03b20"],
    4: ["#ffffb2", "#fecc5c", "#fd8d3c", "#e31a1c"],
    5: ["#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"],
    6: ["#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026"],
    7: ["#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#b10026"],
}
NO_DATA_COLOR = "#bababa"


@dataclass(frozen=True)
class Classes:
    """Class limits: class i holds values in (bounds[i-1], bounds[i]]; class 0 starts at ``lower``."""

    method: str
    lower: float
    bounds: tuple[float, ...]
    colors: tuple[str, ...]
    # Printed limits that replace the computed ones (a suppressed export's "<5" class).
    texts: tuple[str, ...] | None = None

    def classify(self, values) -> np.ndarray:
        """Class index of each value (0 .. k-1)."""
        values = np.asarray(values, dtype=float)
        return np.minimum(np.searchsorted(np.asarray(self.bounds), values, side="left"), len(self.bounds) - 1)

    def color_of(self, values) -> list[str]:
        """Fill colour of each value."""
        return [self.colors[i] for i in self.classify(values)]

    def labels(self) -> list[str]:
        """Human-readable limits of each class, e.g. "0 – 120", "121 – 340"."""
        if self.texts is not None:
            return list(self.texts)
        out, lo = [], self.lower
        for i, hi in enumerate(self.bounds):
            start = lo if i == 0 else _next_after(self.bounds[i - 1])
            out.append(_fmt(hi) if start == hi else f"{_fmt(start)} – {_fmt(hi)}")
        return out

    def to_dict(self) -> dict:
        """JSON-friendly form (the web legend and the export legend both read this)."""
        return {"method": self.method, "lower": self.lower, "bounds": list(self.bounds),
                "colors": list(self.colors), "labels": self.labels()}


def _fmt(v: float) -> str:
    return f"{int(round(v)):,}" if float(v).is_integer() or abs(v) >= 10 else f"{v:.1f}"


def _next_after(v: float) -> float:
    return v + 1 if float(v).is_integer() else v


def _fisher_jenks(values: np.ndarray, k: int) -> np.ndarray:
    """Fisher-Jenks breaks; above 300 values, on 300 evenly spaced order statistics.

    Fisher-Jenks is O(k·n²) without numba; evenly spaced order statistics keep the shape of
    the distribution and, unlike mapclassify's random sample, give the same breaks every
    time, so the map and its export always agree.
    """
    sample = values
    if len(values) > 300:
        sample = np.quantile(values, np.linspace(0, 1, 300), method="nearest")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Numba not installed": fine at this size
        bins = mapclassify.FisherJenks(sample, k=k).bins
    bins[-1] = values.max()
    return bins


def _check(method: str, k) -> None:
    if method not in METHODS:
        raise BadParameter(f"unknown classification {method!r}; allowed: {', '.join(METHODS)}")
    if not 3 <= int(k) <= 7:
        raise BadParameter(f"number of classes {k!r} must be between 3 and 7")


def _breaks(values: np.ndarray, method: str, k: int) -> np.ndarray:
    """Upper class limits of ``values`` (at least 2 distinct) in at most ``k`` classes (k >= 2)."""
    if method == "quantiles":
        bins = mapclassify.Quantiles(values, k=k).bins
    else:
        bins = _fisher_jenks(values, k)
    bins = np.asarray(bins, dtype=float)
    if np.all(values == np.floor(values)):
        # Counts are whole numbers: v <= 2.8 means v <= 2, so whole limits classify the same
        # values and print without overlaps ("0 – 2", "3 – 5").
        bins = np.floor(bins)
    return np.unique(bins)


def classify(values, method: str = DEFAULT_METHOD, k: int = DEFAULT_K) -> Classes:
    """Compute class limits for ``values`` by ``method`` ("quantiles" or "natural_breaks")."""
    _check(method, k)
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return Classes(method, 0.0, (0.0,), (PALETTES[3][0],))
    distinct = np.unique(values)
    k = int(min(k, len(distinct)))
    if k < 2:
        return Classes(method, float(values.min()), (float(values.max()),), (PALETTES[3][-1],))
    bins = _breaks(values, method, k)
    palette = PALETTES[max(3, len(bins))][: len(bins)] if len(bins) >= 3 else PALETTES[3][-len(bins):]
    return Classes(method, float(values.min()), tuple(float(b) for b in bins), tuple(palette))


def classify_suppressed(values, threshold: int, method: str = DEFAULT_METHOD, k: int = DEFAULT_K) -> Classes:
    """Classes for a map whose small counts are suppressed (counts 1 to ``threshold - 1``
    print as "<5"): the legend and the colours must tell nothing finer than the printed text.

    ``values`` are the counts that may show through their colour: the printed ones and the
    small ones (never a secondary "*" cell, which the caller draws apart). Every small count
    falls in one class labelled ``"<5"``; zero, which is printed, keeps a class of its own;
    the other classes are computed by ``method`` over the counts from the threshold up, so no
    class limit lies below the threshold, and the first of them starts at the threshold
    (its lowest count is not given away). Without suppression use :func:`classify`.
    """
    from geo.access.scope import check_threshold, small_label

    threshold = check_threshold(threshold)
    _check(method, k)
    values = np.asarray(values, dtype=float)
    bounds: list[float] = []
    texts: list[str] = []
    if (values == 0).any():
        bounds.append(0.0)
        texts.append("0")
    if ((values >= 1) & (values < threshold)).any():
        bounds.append(float(threshold - 1))
        texts.append(small_label(threshold))
    upper = values[values >= threshold]
    if len(upper):
        # The classes the user asked for, less the ones above, but at least two when possible.
        k_upper = min(max(int(k) - len(bounds), 2), len(np.unique(upper)))
        upper_bounds = _breaks(upper, method, k_upper) if k_upper >= 2 else [float(upper.max())]
        lo = float(threshold)
        for b in upper_bounds:
            texts.append(_fmt(b) if lo == b else f"{_fmt(lo)} – {_fmt(b)}")
            bounds.append(float(b))
            lo = _next_after(float(b))
    if not bounds:  # nothing to colour
        return Classes(method, 0.0, (0.0,), (PALETTES[3][0],), ("0",))
    n = len(bounds)
    palette = PALETTES[max(3, n)][:n] if n >= 3 else PALETTES[3][:n]
    return Classes(method, 0.0, tuple(bounds), tuple(palette), tuple(texts))
