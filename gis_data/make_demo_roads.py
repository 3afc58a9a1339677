"""Make the demo county's road network (fictional): roads between villages, streets in town.

    python gis_data/make_demo_roads.py

Reads ``yanjin/villages.geojson`` and writes ``yanjin/roads.geojson``, which
``flask --app webapp demo load`` imports as the road layer of 延津县 (410726). The
output depends only on the village file: there is no randomness.

- Every village (its representative point) is joined to the network by the edges of a
  minimum spanning tree over all villages, so the network is connected, plus an edge
  to each of its two nearest neighbours within 2.5 km (so there are loops and detours).
  Each road bends a little (a midpoint offset of ±4 % of its length, by a fixed rule).
  Roads between townships are 乡道, within a township 村道.
- The communities of the county seat (岗口镇, the villages named 社区) get a grid of
  streets, 9 × 9 lines 350 m apart (经一路 … running north-south, 纬一路 … east-west);
  villages inside the grid's square join its nearest crossing, and the grid joins the
  rural roads at its crossings nearest to the villages around it.
- Roads are cut into pieces of at most 400 m that meet end to end (a junction every
  400 m at most), so a stop is never far from a junction to join the network at.

The coordinates are WGS84 with six decimals (about 0.1 m).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pyproj import Transformer
from shapely.geometry import shape

ROOT = Path(__file__).resolve().parent
OUT_DIR = ROOT / "yanjin"
SEAT_TOWNSHIP = "410726100"
LON_0 = 114.2
NEIGHBOUR_M = 2500.0
PIECE_M = 400.0
STREETS = 9
STREET_SPACING_M = 350.0
NUMERALS = ["一", "二", "三", "四", "五", "六", "七", "八", "九"]

TO_M = Transformer.from_crs(
    "EPSG:4326", f"+proj=tmerc +lon_0={LON_0} +k=1 +x_0=0 +y_0=0 +ellps=WGS84", always_xy=True
)


def villages() -> list[dict]:
    data = json.loads((OUT_DIR / "villages.geojson").read_text(encoding="utf-8"))
    out = []
    for f in sorted(data["features"], key=lambda f: f["properties"]["code"]):
        p = shape(f["geometry"]).representative_point()
        x, y = TO_M.transform(p.x, p.y)
        out.append({"code": f["properties"]["code"], "name": f["properties"]["name"], "xy": (x, y)})
    return out


def minimum_spanning_tree(xy: np.ndarray) -> list[tuple[int, int]]:
    """Prim's algorithm on the complete graph of the points (ties: the lowest index)."""
    n = len(xy)
    dist = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    inside = np.zeros(n, dtype=bool)
    inside[0] = True
    best = dist[0].copy()
    parent = np.zeros(n, dtype=int)
    edges = []
    for _ in range(n - 1):
        cand = np.where(inside, np.inf, best)
        j = int(np.argmin(cand))
        edges.append((min(parent[j], j), max(parent[j], j)))
        inside[j] = True
        closer = dist[j] < best
        best = np.where(closer, dist[j], best)
        parent = np.where(closer, j, parent)
    return edges


def bent(a: tuple[float, float], b: tuple[float, float], sign: int) -> list[tuple[float, float]]:
    """A road from a to b with its middle pushed sideways by 4 % of its length."""
    (ax, ay), (bx, by) = a, b
    dx, dy = bx - ax, by - ay
    mid = ((ax + bx) / 2 - sign * 0.04 * dy, (ay + by) / 2 + sign * 0.04 * dx)
    return [a, mid, b]


def pieces(line: list[tuple[float, float]]) -> list[list[tuple[float, float]]]:
    """Cut a polyline into consecutive pieces of at most PIECE_M metres."""
    pts = np.array(line, dtype=float)
    seg = np.hypot(*np.diff(pts, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    total = cum[-1]
    n = max(1, int(np.ceil(total / PIECE_M)))
    cuts = np.linspace(0.0, total, n + 1)
    out = []
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        inner = [tuple(p) for p, c in zip(pts, cum, strict=True) if lo < c < hi]
        out.append([_at(pts, cum, lo), *inner, _at(pts, cum, hi)])
    return out


def _at(pts: np.ndarray, cum: np.ndarray, s: float) -> tuple[float, float]:
    i = int(np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(pts) - 2))
    t = 0.0 if cum[i + 1] == cum[i] else (s - cum[i]) / (cum[i + 1] - cum[i])
    x = pts[i][0] + t * (pts[i + 1][0] - pts[i][0])
    y = pts[i][1] + t * (pts[i + 1][1] - pts[i][1])
    return (float(x), float(y))


def build() -> list[dict]:
    vs = villages()
    seat = [v for v in vs if v["code"].startswith(SEAT_TOWNSHIP) and v["name"].endswith("社区")]
    cx = float(np.mean([v["xy"][0] for v in seat]))
    cy = float(np.mean([v["xy"][1] for v in seat]))
    half = (STREETS - 1) * STREET_SPACING_M / 2
    xs = [cx - half + i * STREET_SPACING_M for i in range(STREETS)]
    ys = [cy - half + i * STREET_SPACING_M for i in range(STREETS)]

    def in_town(p) -> bool:
        return abs(p[0] - cx) <= half and abs(p[1] - cy) <= half

    roads: list[tuple[str, str, list[tuple[float, float]]]] = []
    # The street grid: each street runs across the whole grid; cut at every crossing.
    for i, x in enumerate(xs):
        roads.append((f"经{NUMERALS[i]}路", "城区街道", [(x, y) for y in ys]))
    for j, y in enumerate(ys):
        roads.append((f"纬{NUMERALS[j]}路", "城区街道", [(x, y) for x in xs]))
    crossings = np.array([(x, y) for x in xs for y in ys])

    def nearest_crossing(p) -> tuple[float, float]:
        k = int(np.argmin(np.hypot(crossings[:, 0] - p[0], crossings[:, 1] - p[1])))
        return (float(crossings[k][0]), float(crossings[k][1]))

    # Villages inside the town join its nearest crossing; the others make the rural network,
    # where the town takes part through its crossing nearest to each rural neighbour.
    rural = [v for v in vs if not in_town(v["xy"])]
    for v in vs:
        if in_town(v["xy"]):
            c = nearest_crossing(v["xy"])
            if np.hypot(c[0] - v["xy"][0], c[1] - v["xy"][1]) > 1:
                roads.append((f"{v['name']}路", "城区街道", [v["xy"], c]))
    xy = np.array([v["xy"] for v in rural] + [(cx, cy)])
    town = len(rural)  # the index of the town in xy
    edges = set(minimum_spanning_tree(xy))
    dist = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    np.fill_diagonal(dist, np.inf)
    for i in range(len(xy)):
        for j in np.argsort(dist[i], kind="stable")[:2]:
            if dist[i, j] <= NEIGHBOUR_M:
                edges.add((min(i, int(j)), max(i, int(j))))
    for i, j in sorted(edges):
        if town in (i, j):
            v = rural[j if i == town else i]
            a, b = v["xy"], nearest_crossing(v["xy"])
            name, kind = f"{v['name']}进城路", "乡道"
        else:
            a, b = rural[i]["xy"], rural[j]["xy"]
            same = rural[i]["code"][:9] == rural[j]["code"][:9]
            name = f"{rural[i]['name']}至{rural[j]['name']}路"
            kind = "村道" if same else "乡道"
        roads.append((name, kind, bent(a, b, 1 if (i + j) % 2 else -1)))

    features = []
    for name, kind, line in roads:
        parts = (
            [[line[k], line[k + 1]] for k in range(len(line) - 1)]
            if kind == "城区街道"
            else pieces(line)
        )
        for part in parts:
            lon, lat = TO_M.transform(*zip(*part, strict=True), direction="INVERSE")
            coords = [[round(a, 6), round(b, 6)] for a, b in zip(lon, lat, strict=True)]
            features.append(
                {
                    "type": "Feature",
                    "properties": {"name": name, "kind": kind},
                    "geometry": {"type": "LineString", "coordinates": coords},
                }
            )
    return features


def main() -> None:
    features = build()
    out = OUT_DIR / "roads.geojson"
    text = json.dumps(
        {"type": "FeatureCollection", "features": features},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    one_per_line = text.replace('{"type":"Feature"', '\n{"type":"Feature"')
    out.write_text(one_per_line + "\n", encoding="utf-8")
    print(f"{out}: {len(features)} road pieces")


if __name__ == "__main__":
    main()
