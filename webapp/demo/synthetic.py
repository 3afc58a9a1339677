"""Synthetic cases for the demo county, reproducible from a seed.

The mix follows ``shared/docs/domain.md``: categories and channels in the
proportions the seeds report, three real-looking hot spots (a demolition site, a
housing estate, a factory that did not pay wages), a spread of statuses over the
last three years that is mostly resolved, some backlog and repeat cases, collective
petitions, and grids where nothing happened. Everything is vectorised with numpy so
that a million cases are generated in seconds; rows come out in time order (which
keeps the table's physical order close to its time order).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

# (category code, weight, title templates). {v} is the village or community name.
CATEGORY_MIX: list[tuple[str, float, list[str]]] = [
    ("neighbour_family", 17, ["{v}村民因宅基地界址发生邻里纠纷", "{v}两户因排水沟问题发生争执", "{v}家庭赡养纠纷请求调解"]),
    ("land_acquisition", 9, ["{v}村民反映征地补偿款未足额发放", "{v}拆迁安置房交付延期", "{v}群众对征收补偿标准有异议"]),
    ("natural_resources", 9, ["{v}村民反映耕地被违规占用", "{v}土地承包经营权纠纷", "{v}宅基地审批问题"]),
    ("labour_dispute", 8, ["{v}村民反映务工单位拒签劳动合同", "{v}工伤赔偿纠纷", "{v}村民反映被无故辞退"]),
    ("migrant_wages", 8, ["{v}村民反映工地拖欠农民工工资", "{v}务工人员年底工资未结清", "{v}村民讨要劳务费"]),
    ("housing_property", 7, ["{v}业主反映商品房逾期交房", "{v}业主反映房产证迟迟未办", "{v}业主反映房屋质量问题"]),
    ("compound_management", 6, ["{v}居民反映物业服务不到位", "{v}小区公共收益不公开", "{v}居民反映小区电梯长期停用"]),
    ("labour_security", 6, ["{v}村民咨询养老保险待遇", "{v}村民反映医保报销问题", "{v}退役人员待遇诉求"]),
    ("law_litigation", 5, ["{v}当事人反映判决执行不到位", "{v}村民对案件处理结果不服", "{v}申请法律援助"]),
    ("environment", 4, ["{v}群众反映养殖场异味扰民", "{v}村民反映企业夜间施工噪声", "{v}河道垃圾堆积"]),
    ("utilities", 4, ["{v}村民反映频繁停电", "{v}天然气接入收费问题", "{v}路灯损坏长期未修"]),
    ("traffic_parking", 4, ["{v}群众反映村道破损", "{v}学校门口停车混乱", "{v}村民反映公交班次减少"]),
    ("water_supply", 3, ["{v}村民反映自来水水压不足", "{v}供水管网漏水", "{v}饮水水质浑浊"]),
    ("old_compound", 2, ["{v}居民反映老旧小区改造进度慢", "{v}改造后雨水管道倒灌"]),
    ("education", 2, ["{v}家长反映入学划片问题", "{v}村小撤并后上学远"]),
    ("social_housing", 1, ["{v}群众申请公租房未获回复", "{v}保障房分配有异议"]),
    ("fire_safety", 1, ["{v}群众反映消防通道被占用", "{v}电动车楼道充电隐患"]),
    ("mass_finance", 1, ["{v}群众反映投资理财公司无法兑付", "{v}村民反映被非法集资"]),
    ("other", 2, ["{v}群众其他诉求", "{v}群众咨询政策"]),
]

# Channels, from the seeds' mix (延津县 2017: mostly visits) plus grid sweeps and 12345.
CHANNEL_MIX = [
    ("visit", 34), ("grid_sweep", 24), ("hotline", 15), ("online", 10), ("sms", 5),
    ("letter", 4), ("leader", 5), ("mailbox", 1), ("video", 2),
]

GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰建国志红梅林海波斌宇浩凯")
SURNAMES = list("王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董程曹袁邓许")
ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
ID_CHECK = "10X98765432"

DAY = 86400.0


@dataclass(frozen=True)
class HotSpot:
    name: str
    grid_code: str
    lon: float
    lat: float
    sigma_m: float
    share: float
    categories: tuple[str, ...]


def id_check_digit(first17: str) -> str:
    """Return the check character of a mainland resident ID number (GB 11643)."""
    digits = np.array([int(c) for c in first17])
    return ID_CHECK[int((digits * ID_WEIGHTS).sum() % 11)]


def _grids(session: Session):
    rows = session.execute(
        text(
            """
            SELECT g.code, coalesce(g.population, 0), v.name, ST_AsBinary(g.geom),
                   ST_X(g.label_point), ST_Y(g.label_point), g.township_code
            FROM areas g JOIN areas v ON v.code = g.village_code
            WHERE g.level = 'grid' ORDER BY g.code
            """
        )
    ).all()
    if not rows:
        raise RuntimeError("no grids loaded")
    codes = [r[0] for r in rows]
    pops = np.array([r[1] for r in rows], dtype=float)
    vnames = [r[2] for r in rows]
    geoms = shapely.from_wkb([bytes(r[3]) for r in rows])
    labels = np.array([[r[4], r[5]] for r in rows])
    townships = [r[6] for r in rows]
    return codes, pops, vnames, geoms, labels, townships


def pick_hot_spots(codes, townships, labels, rng: np.random.Generator) -> list[HotSpot]:
    """Choose the three demo hot spots among the grids, reproducibly."""
    codes_arr = np.array(codes)
    seat = townships[0]
    community = [i for i, c in enumerate(codes) if c.startswith(seat) and c[9:12] < "200"]
    seat_village = [i for i, c in enumerate(codes) if c.startswith(seat) and c[9:12] >= "200"]
    others = [i for i, t in enumerate(townships) if t != seat]
    spots = []
    for name, pool, sigma, share, cats in [
        ("拆迁工地", seat_village, 450.0, 0.06, ("land_acquisition",)),
        ("楼盘小区", community, 250.0, 0.05, ("housing_property", "compound_management")),
        ("欠薪工厂", others, 350.0, 0.04, ("migrant_wages", "labour_dispute")),
    ]:
        i = int(rng.choice(pool))
        spots.append(HotSpot(name, str(codes_arr[i]), *labels[i], sigma, share, cats))
    return spots


def _points_in(geom, n: int, rng: np.random.Generator) -> np.ndarray:
    minx, miny, maxx, maxy = geom.bounds
    out = np.empty((0, 2))
    while len(out) < n:
        pts = rng.uniform([minx, miny], [maxx, maxy], size=(max(2 * (n - len(out)), 8), 2))
        pts = pts[shapely.contains_xy(geom, pts[:, 0], pts[:, 1])]
        out = np.vstack([out, pts])
    return out[:n]


def generate(
    session: Session, n: int, seed: int = 2026, now: datetime | None = None
) -> tuple[Iterator[tuple], list[HotSpot]]:
    """Return an iterator of ``n`` staging rows (``cases.bulk.COLUMNS`` order) and the hot spots."""
    rng = np.random.default_rng(seed)
    now = now or datetime.now(UTC)
    codes, pops, vnames, geoms, labels, townships = _grids(session)
    county = shapely.union_all(geoms)
    shapely.prepare(county)
    for g in geoms:
        shapely.prepare(g)
    cat_ids = dict(session.execute(text("SELECT code, id FROM categories")).all())
    spots = pick_hot_spots(codes, townships, labels, rng)
    ng = len(codes)

    # --- where ----------------------------------------------------------------
    weights = pops + 50.0
    quiet = rng.random(ng) < 0.06  # grids where nothing happened in three years
    weights[quiet] = 0.0
    spot_of = np.full(n, -1)
    u = rng.random(n)
    edge = 0.0
    for k, s in enumerate(spots):
        spot_of[(u >= edge) & (u < edge + s.share)] = k
        edge += s.share
    lonlat = np.empty((n, 2))
    bg = spot_of < 0
    grid_idx = rng.choice(ng, size=int(bg.sum()), p=weights / weights.sum())
    bg_rows = np.flatnonzero(bg)
    for g in np.unique(grid_idx):
        rows = bg_rows[grid_idx == g]
        lonlat[rows] = _points_in(geoms[g], len(rows), rng)
    for k, s in enumerate(spots):
        rows = np.flatnonzero(spot_of == k)
        lonlat[rows] = _scatter(s, len(rows), county, rng)

    # --- when -----------------------------------------------------------------
    span = 3 * 365 * DAY
    # Slightly rising volume, more before the Spring Festival (unpaid wages), less in summer.
    age = span * (1 - np.sqrt(rng.random(n)) * 0.95 - 0.05 * rng.random(n))
    backlog = rng.random(n) < 0.006
    age[backlog] = span + rng.uniform(0, 1.5 * 365 * DAY, int(backlog.sum()))
    for k, s in enumerate(spots):
        rows = spot_of == k
        if s.name == "拆迁工地":  # a demolition that started 18 months ago and is heating up
            age[rows] = 540 * DAY * np.sqrt(rng.random(int(rows.sum())))
        elif s.name == "欠薪工厂":  # wages owed before each Spring Festival
            year_back = rng.integers(0, 3, int(rows.sum()))
            age[rows] = (year_back * 365 + 300 + rng.uniform(0, 60, int(rows.sum()))) * DAY
            age[rows] = np.minimum(age[rows], span - DAY)
    now_ts = now.timestamp()
    reported = now_ts - age
    order = np.argsort(reported, kind="stable")
    reported, lonlat, spot_of, backlog = reported[order], lonlat[order], spot_of[order], backlog[order]

    # --- what -------------------------------------------------------------------
    cat_codes = [c for c, _, _ in CATEGORY_MIX]
    cat_w = np.array([w for _, w, _ in CATEGORY_MIX], dtype=float)
    cat = rng.choice(len(cat_codes), size=n, p=cat_w / cat_w.sum())
    for k, s in enumerate(spots):
        rows = np.flatnonzero(spot_of == k)
        choices = [cat_codes.index(c) for c in s.categories]
        cat[rows] = rng.choice(choices, size=len(rows))
    ch_codes = [c for c, _ in CHANNEL_MIX]
    ch_w = np.array([w for _, w in CHANNEL_MIX], dtype=float)
    channel = rng.choice(len(ch_codes), size=n, p=ch_w / ch_w.sum())
    case_class = rng.choice(["request", "suggestion", "accusation"], size=n, p=[0.86, 0.08, 0.06])
    people = np.where(rng.random(n) < 0.05, rng.integers(5, 40, n), rng.integers(1, 4, n))
    collective_spot = (spot_of >= 0) & (rng.random(n) < 0.25)
    people[collective_spot] = rng.integers(5, 60, int(collective_spot.sum()))
    skip_level = rng.random(n) < 0.02

    # Repeats: the same matter raised again by the same person, close by, later.
    repeat = (rng.random(n) < 0.06) & (np.arange(n) > 50)
    target = np.where(repeat, np.arange(n) - rng.integers(1, 50, n), -1)
    cat[repeat] = cat[target[repeat]]
    lonlat[repeat] = lonlat[target[repeat]] + rng.normal(0, 0.0002, (int(repeat.sum()), 2))
    outside = ~shapely.contains_xy(county, lonlat[:, 0], lonlat[:, 1])
    lonlat[repeat & outside] = lonlat[target[repeat & outside]]

    # --- how it went --------------------------------------------------------------
    d_acc = rng.uniform(0.1, 4.0, n) * DAY
    d_con = rng.gamma(2.2, 11.0, n) * DAY
    late = rng.random(n) < 0.07
    d_con[late] += rng.uniform(30, 80, int(late.sum())) * DAY
    d_res = rng.uniform(1, 15, n) * DAY
    t_acc = reported + d_acc
    t_con = t_acc + d_con
    t_res = t_con + d_res
    stuck = rng.random(n) < 0.025
    stuck |= backlog & (rng.random(n) < 0.5)
    not_accepted = (rng.random(n) < 0.02) & ~stuck
    dissatisfied = rng.random(n) < 0.05
    reviewing = dissatisfied & (rng.random(n) < 0.3) & (now_ts - t_res < 60 * DAY)

    status = np.full(n, "closed", dtype=object)
    resolved_mask = (t_res <= now_ts) & ~stuck & ~not_accepted & ~reviewing
    status[resolved_mask & (now_ts - t_res < 30 * DAY)] = "resolved"
    concluded_mask = (t_con <= now_ts) & ~resolved_mask
    status[concluded_mask] = "concluded"
    status[reviewing & (t_res <= now_ts)] = "reviewing"
    progress_mask = (t_con > now_ts) | (stuck & (t_acc <= now_ts))
    status[progress_mask & ~resolved_mask] = "in_progress"
    assigned_mask = progress_mask & (now_ts - t_acc < 2 * DAY) & (t_acc <= now_ts)
    status[assigned_mask] = "assigned"
    status[t_acc > now_ts] = "registered"
    status[not_accepted] = "not_accepted"
    accepted_recent = (t_acc <= now_ts) & (now_ts - t_acc < 0.5 * DAY) & ~not_accepted
    status[accepted_recent] = "accepted"

    is_resolved = np.isin(status, ["resolved", "closed"])
    has_con = is_resolved | np.isin(status, ["concluded", "reviewing"])
    has_acc = ~np.isin(status, ["registered", "not_accepted"])
    opinion = rng.choice(["support", "explain", "not_support"], size=n, p=[0.55, 0.35, 0.10])
    satisfaction = np.where(
        dissatisfied, "dissatisfied", rng.choice(["satisfied", "basically"], size=n, p=[0.88, 0.12])
    )
    level = rng.choice(["village", "township", "county"], size=n, p=[0.68, 0.24, 0.08])
    due = t_acc + 60 * DAY

    # --- who ----------------------------------------------------------------------
    has_person = np.where(channel == ch_codes.index("grid_sweep"), rng.random(n) < 0.5, rng.random(n) < 0.9)
    sur = rng.choice(SURNAMES, n)
    given1 = rng.choice(GIVEN, n)
    given2 = np.where(rng.random(n) < 0.6, rng.choice(GIVEN, n), "")
    phone_prefix = rng.choice(["13", "15", "17", "18", "19"], n)
    phone_rest = rng.integers(0, 10**9, n)
    birth = now_ts - rng.uniform(20, 80, n) * 365.25 * DAY
    seq = rng.integers(0, 1000, n)
    for r in np.flatnonzero(repeat):  # the same person raises it again
        t = target[r]
        sur[r], given1[r], given2[r] = sur[t], given1[t], given2[t]
        phone_prefix[r], phone_rest[r], birth[r], seq[r] = phone_prefix[t], phone_rest[t], birth[t], seq[t]
        has_person[r] = has_person[t]

    cat_ids_arr = np.array([cat_ids[c] for c in cat_codes])[cat]
    templates = [t for _, _, t in CATEGORY_MIX]
    tpl_pick = rng.integers(0, 3, n)
    # The village named in a title is the one nearest the point (words only: PostGIS
    # decides the case's grid when it is stored).
    grid_of = _nearest_grid_label(lonlat, labels)
    titles = [
        templates[c][k % len(templates[c])].format(v=vnames[g])
        for c, k, g in zip(cat.tolist(), tpl_pick.tolist(), grid_of.tolist(), strict=True)
    ]
    names = np.char.add(np.char.add(sur.astype(str), given1.astype(str)), given2.astype(str))
    phones = np.char.add(phone_prefix.astype(str), np.char.zfill(phone_rest.astype(str), 9))
    birth_dates = np.char.replace(_iso(birth, "D").astype(str), "-", "")
    first17 = np.char.add(np.char.add("410726", birth_dates), np.char.zfill(seq.astype(str), 3))
    ids = np.char.add(first17, id_check_digits(first17))
    rep_s, acc_s, con_s, res_s, due_s = (_iso(t) for t in (reported, t_acc, t_con, t_res, due))
    lon_r = np.round(lonlat[:, 0], 7).tolist()
    lat_r = np.round(lonlat[:, 1], 7).tolist()
    ch_s = np.array(ch_codes)[channel].tolist()
    columns = [
        np.arange(n).tolist(),
        [None] * n,
        titles,
        [t + "。（演示数据，纯属虚构）" for t in titles],
        cat_ids_arr.tolist(),
        ch_s,
        case_class.tolist(),
        people.tolist(),
        [1] * n,
        lon_r,
        lat_r,
        [False] * n,
        status.tolist(),
        rep_s.tolist(),
        np.where(has_acc, acc_s, None).tolist(),
        np.where(has_con, con_s, None).tolist(),
        np.where(is_resolved, res_s, None).tolist(),
        np.where(has_acc, due_s, None).tolist(),  # the deadline to conclude, kept after concluding
        np.where(has_con, opinion, None).tolist(),
        np.where(is_resolved | (status == "reviewing"), satisfaction, None).tolist(),
        np.where(is_resolved, level, None).tolist(),
        (~repeat).tolist(),
        np.where(repeat, target, None).tolist(),
        skip_level.tolist(),
        np.where(has_person, names, None).tolist(),
        np.where(has_person, phones, None).tolist(),
        np.where(has_person, ids, None).tolist(),
    ]
    return zip(*columns, strict=True), spots


def id_check_digits(first17: np.ndarray) -> np.ndarray:
    """Vectorised :func:`id_check_digit` over an array of 17-digit strings."""
    digits = np.frombuffer("".join(first17.tolist()).encode("ascii"), dtype=np.uint8).reshape(-1, 17) - 48
    return np.array(list(ID_CHECK))[(digits.astype(int) * ID_WEIGHTS).sum(axis=1) % 11]


def _iso(epoch: np.ndarray, unit: str = "s") -> np.ndarray:
    """Format epoch seconds as ISO 8601 UTC strings (or dates with ``unit='D'``)."""
    stamps = np.asarray(epoch, dtype="float64").astype("int64").astype("datetime64[s]")
    if unit == "D":
        return np.datetime_as_string(stamps.astype("datetime64[D]"))
    return np.char.add(np.datetime_as_string(stamps), "+00:00")


def _scatter(s: HotSpot, k: int, county, rng: np.random.Generator) -> np.ndarray:
    """``k`` points normally scattered around a hot spot, kept inside the county."""
    deg_lat = s.sigma_m / 111_320.0
    deg_lon = deg_lat / np.cos(np.radians(s.lat))
    out = np.empty((0, 2))
    while len(out) < k:
        pts = np.column_stack(
            [rng.normal(s.lon, deg_lon, 2 * k + 8), rng.normal(s.lat, deg_lat, 2 * k + 8)]
        )
        pts = pts[shapely.contains_xy(county, pts[:, 0], pts[:, 1])]
        out = np.vstack([out, pts])
    return out[:k]


def _nearest_grid_label(lonlat: np.ndarray, labels: np.ndarray) -> np.ndarray:
    tree = shapely.STRtree(shapely.points(labels))
    idx = tree.query_nearest(shapely.points(lonlat), return_distance=False, all_matches=False)
    out = np.empty(len(lonlat), dtype=int)
    out[idx[0]] = idx[1]
    return out


# Rare escalations for the 三无 figures, as (column, share in ten thousand, which cases).
# Abnormal petitions to Beijing come from repeat or skip-level petitioners, collective
# petitions to the province from collective cases, extreme incidents from anything.
ESCALATIONS = [
    ("beijing_abnormal_at", 300, "(NOT c.is_first OR c.skip_level)"),
    ("province_collective_at", 250, "c.people_count >= 5"),
    ("extreme_incident_at", 4, "true"),
]


def plant_escalations(session: Session, first_id: int, last_id: int, seed: int = 2026) -> int:
    """Mark a few demo cases as having led to a 三无 event (set-based, reproducible by seed).

    The event happens some days after the case was reported, never in the future.
    Returns the number of events planted.
    """
    planted = 0
    for column, per_10000, condition in ESCALATIONS:
        result = session.execute(
            text(
                f"""
                UPDATE cases c
                SET {column} = least(
                    c.reported_at + make_interval(days => 3 + abs(hashtext(c.id::text || :salt)) % 40),
                    now())
                WHERE c.id BETWEEN :lo AND :hi AND {condition}
                  AND abs(hashtext(:salt || '|' || c.id::text)) % 10000 < :rate
                """
            ),
            {"lo": first_id, "hi": last_id, "salt": f"{seed}:{column}", "rate": per_10000},
        )
        planted += result.rowcount or 0
    return planted
