"""Getis-Ord Gi* with binary weights, analytic (normal) inference, as ArcGIS computes it.

    Gi* = (Σ_j w_ij x_j − X̄ Σ_j w_ij) / (S · sqrt((n Σ_j w_ij² − (Σ_j w_ij)²) / (n − 1)))

with w_ii = 1 (each area belongs to its own neighbourhood), X̄ and S the mean and
(population) standard deviation of all n values. The result is a z-score. For
binary weights this is exactly the z-score of PySAL esda's ``G_Local(star=True,
transform="B")`` (the test suite proves it). p-values here are two-sided,
p = 2 (1 − Φ(|z|)); esda's ``p_norm`` is one-sided.

Inference is analytic: it assumes the normal approximation. Permutation inference
(esda's ``p_sim``) often disagrees with it on real, skewed data; the app says which
one it uses wherever it shows a p-value.

Features are binned as ArcGIS's Hot Spot Analysis does: ±3 for 99 % confidence
(|z| ≥ 2.576), ±2 for 95 % (1.96), ±1 for 90 % (1.645), 0 not significant. With the
false-discovery-rate option, the critical p-value at each confidence level is
lowered by the Benjamini-Hochberg procedure before binning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from webapp.hotspots.weights import Neighbours

# (bin, two-sided alpha, critical |z|)
LEVELS = [(3, 0.01, 2.576), (2, 0.05, 1.96), (1, 0.10, 1.645)]
INFERENCE = "解析推断（正态近似，双侧检验）"

BIN_LABELS = {
    3: "热点（99% 置信度）",
    2: "热点（95% 置信度）",
    1: "热点（90% 置信度）",
    0: "不显著",
    -1: "冷点（90% 置信度）",
    -2: "冷点（95% 置信度）",
    -3: "冷点（99% 置信度）",
}


def normal_two_sided_p(z: np.ndarray) -> np.ndarray:
    """p = 2 (1 − Φ(|z|)) = erfc(|z| / √2), without SciPy."""
    erfc = np.vectorize(math.erfc, otypes=[float])
    return erfc(np.abs(z) / math.sqrt(2.0))


def gi_star(values: np.ndarray, neighbours: Neighbours) -> np.ndarray:
    """Return the Gi* z-score of every area (0 where the values do not vary)."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n != neighbours.n:
        raise ValueError("values and neighbours describe different areas")
    if n < 3:
        return np.zeros(n)
    mean = x.mean()
    s = math.sqrt(max((x**2).mean() - mean**2, 0.0))
    if s == 0.0:
        return np.zeros(n)
    # Σ_j w_ij x_j with w_ii = 1, and Σ_j w_ij = Σ_j w_ij² = k_i + 1 for binary weights.
    lag = np.bincount(neighbours.i, weights=x[neighbours.j], minlength=n) + x
    w_sum = neighbours.cardinalities().astype(float) + 1.0
    w_sq = w_sum
    denom = s * np.sqrt((n * w_sq - w_sum**2) / (n - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (lag - mean * w_sum) / denom
    return np.where(denom > 0, z, 0.0)


def bh_critical_p(p: np.ndarray, alpha: float) -> float:
    """The Benjamini-Hochberg critical p-value at false discovery rate ``alpha`` (0 if none)."""
    if len(p) == 0:
        return 0.0
    ranked = np.sort(p)
    k = np.arange(1, len(p) + 1)
    passing = ranked <= k / len(p) * alpha
    if not passing.any():
        return 0.0
    return float(ranked[np.nonzero(passing)[0].max()])


def confidence_bins(z: np.ndarray, p: np.ndarray, fdr: bool = False) -> np.ndarray:
    """Bin z-scores into −3…3 (cold/hot at 99/95/90 % confidence, 0 not significant)."""
    out = np.zeros(len(z), dtype=int)
    for level, alpha, critical in reversed(LEVELS):  # weakest first, strongest overwrites
        if fdr:
            cutoff = bh_critical_p(p, alpha)
            significant = p <= cutoff
        else:
            significant = np.abs(z) >= critical
        out[significant] = np.sign(z[significant]).astype(int) * level
    return out


@dataclass(frozen=True)
class HotSpots:
    """The result of a hot-spot analysis over the areas of one level."""

    codes: tuple[str, ...]
    values: np.ndarray
    z: np.ndarray
    p: np.ndarray
    bins: np.ndarray
    neighbours_kind: str
    threshold_m: float | None
    fdr: bool
    inference: str = INFERENCE

    def rows(self) -> list[dict]:
        return [
            {
                "code": c,
                "value": float(v),
                "z": float(z),
                "p": float(p),
                "bin": int(b),
                "label": BIN_LABELS[int(b)],
            }
            for c, v, z, p, b in zip(
                self.codes, self.values, self.z, self.p, self.bins, strict=True
            )
        ]


def analyse(values: np.ndarray, neighbours: Neighbours, fdr: bool = False) -> HotSpots:
    """Run Gi* on ``values`` (one per area, in ``neighbours.codes`` order) and bin the result."""
    z = gi_star(values, neighbours)
    p = normal_two_sided_p(z)
    return HotSpots(
        codes=neighbours.codes,
        values=np.asarray(values, dtype=float),
        z=z,
        p=p,
        bins=confidence_bins(z, p, fdr),
        neighbours_kind=neighbours.kind,
        threshold_m=neighbours.threshold_m,
        fdr=fdr,
    )
