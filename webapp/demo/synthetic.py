"""Synthetic cases for the demo county, reproducible from a seed.

The mix follows ``shared/docs/domain.md``: categories and channels in the
proportions the seeds report, three real-looking hot spots (a demolition site, a
housing estate, a factory that did not pay wages), a spread of statuses over the
last three years that is mostly resolved, some backlog and repeat cases, collective
petitions, and grids where nothing happened. Everything is vectorised with numpy so
that a million cases are generated in seconds, as columns the bulk loader writes
without touching each value in Python; rows come out in time order (which keeps the
table's physical order close to its time order).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from webapp.cases import pgcopy
from webapp.cases.bulk import CaseColumns, PendingColumns

# (category code, weight, title templates). {v} is the village or community name.
CATEGORY_MIX: list[tuple[str, float, list[str]]] = [
    (
        "neighbour_family",
        17,
        [
            "{v}村民因宅基地界址发生邻里纠纷",
            "{v}两户因排水沟问题发生争执",
            "{v}家庭赡养纠纷请求调解",
        ],
    ),
    (
        "land_acquisition",
        9,
        ["{v}村民反映征地补偿款未足额发放", "{v}拆迁安置房交付延期", "{v}群众对征收补偿标准有异议"],
    ),
    (
        "natural_resources",
        9,
        ["{v}村民反映耕地被违规占用", "{v}土地承包经营权纠纷", "{v}宅基地审批问题"],
    ),
    (
        "labour_dispute",
        8,
        ["{v}村民反映务工单位拒签劳动合同", "{v}工伤赔偿纠纷", "{v}村民反映被无故辞退"],
    ),
    (
        "migrant_wages",
        8,
        ["{v}村民反映工地拖欠农民工工资", "{v}务工人员年底工资未结清", "{v}村民讨要劳务费"],
    ),
    (
        "housing_property",
        7,
        ["{v}业主反映商品房逾期交房", "{v}业主反映房产证迟迟未办", "{v}业主反映房屋质量问题"],
    ),
    (
        "compound_management",
        6,
        ["{v}居民反映物业服务不到位", "{v}小区公共收益不公开", "{v}居民反映小区电梯长期停用"],
    ),
    (
        "labour_security",
        6,
        ["{v}村民咨询养老保险待遇", "{v}村民反映医保报销问题", "{v}退役人员待遇诉求"],
    ),
    (
        "law_litigation",
        5,
        ["{v}当事人反映判决执行不到位", "{v}村民对案件处理结果不服", "{v}申请法律援助"],
    ),
    (
        "environment",
        4,
        ["{v}群众反映养殖场异味扰民", "{v}村民反映企业夜间施工噪声", "{v}河道垃圾堆积"],
    ),
    ("utilities", 4, ["{v}村民反映频繁停电", "{v}天然气接入收费问题", "{v}路灯损坏长期未修"]),
    (
        "traffic_parking",
        4,
        ["{v}群众反映村道破损", "{v}学校门口停车混乱", "{v}村民反映公交班次减少"],
    ),
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
    ("visit", 34),
    ("grid_sweep", 24),
    ("hotline", 15),
    ("online", 10),
    ("sms", 5),
    ("letter", 4),
    ("leader", 5),
    ("mailbox", 1),
    ("video", 2),
]

GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰建国志红梅林海波斌宇浩凯")
SURNAMES = list("王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董程曹袁邓许")
ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
ID_CHECK = "10X98765432"

DAY = 86400.0

# The county department a county-level case goes to (交办), by category.
COUNTY_UNITS = {
    "land_acquisition": "县自然资源局",
    "natural_resources": "县自然资源局",
    "labour_dispute": "县人力资源和社会保障局",
    "migrant_wages": "县人力资源和社会保障局",
    "labour_security": "县人力资源和社会保障局",
    "housing_property": "县住房和城乡建设局",
    "compound_management": "县住房和城乡建设局",
    "old_compound": "县住房和城乡建设局",
    "social_housing": "县住房和城乡建设局",
    "law_litigation": "县人民法院",
    "environment": "市生态环境局延津分局",
    "utilities": "县发展和改革委员会",
    "traffic_parking": "县交通运输局",
    "water_supply": "县水利局",
    "education": "县教育局",
    "fire_safety": "县消防救援大队",
    "mass_finance": "县金融工作局",
}


def seasonal_ages(n: int, span: float, now_ts: float, rng: np.random.Generator) -> np.ndarray:
    """Ages (seconds before ``now_ts``) of ``n`` cases over ``span``: a volume that grows a
    little (4 % a year), peaks before the Spring Festival (wages, year-end settlements) and
    again after the autumn harvest (land), and is quietest in summer. Drawn by rejection
    against the intensity, so the shape is exact whatever ``n``."""
    out = np.empty(0)
    years = span / (365.25 * DAY)
    while len(out) < n:
        age = rng.random(2 * (n - len(out)) + 16) * span
        t = now_ts - age
        doy = (t / DAY) % 365.25  # close enough to the day of the year for a season
        grown = 1 + 0.04 * ((span - age) / (365.25 * DAY) - years / 2)
        season = (
            1
            + 0.22 * np.cos(2 * np.pi * (doy - 20) / 365.25)
            + 0.08 * np.cos(2 * np.pi * (doy - 300) / 365.25)
        )
        keep = rng.random(len(age)) * 1.45 < grown * season
        out = np.concatenate([out, age[keep]])
    return out[:n]


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


def _points_in_grids(
    geoms, bounds: np.ndarray, grid_of: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """A uniform random point inside grid ``grid_of[i]`` for every i (vectorised rejection)."""
    out = np.empty((len(grid_of), 2))
    todo = np.arange(len(grid_of))
    while len(todo):
        g = grid_of[todo]
        b = bounds[g]
        u = rng.random((len(todo), 2))
        x = b[:, 0] + u[:, 0] * (b[:, 2] - b[:, 0])
        y = b[:, 1] + u[:, 1] * (b[:, 3] - b[:, 1])
        inside = shapely.contains_xy(geoms[g], x, y)
        out[todo[inside], 0] = x[inside]
        out[todo[inside], 1] = y[inside]
        todo = todo[~inside]
    return out


# Small vocabularies: rows carry codes into them (text is written once per word).
CASE_CLASSES = ["request", "suggestion", "accusation"]
STATUSES = [
    "closed",
    "resolved",
    "concluded",
    "reviewing",
    "in_progress",
    "assigned",
    "registered",
    "not_accepted",
    "accepted",
]
OPINIONS = ["support", "explain", "not_support"]
SATISFACTIONS = ["satisfied", "basically", "dissatisfied"]
LEVELS = ["village", "township", "county"]
DEMO_NOTE = "演示数据，纯属虚构。"


def generate(
    session: Session, n: int, seed: int = 2026, now: datetime | None = None
) -> tuple[CaseColumns, list[HotSpot]]:
    """Return ``n`` synthetic cases as columns for ``cases.bulk`` and the hot spots.

    Everything is computed on whole numpy arrays and handed to the bulk loader as
    codes into small vocabularies and byte matrices: no Python object is made per
    case, so a million cases take seconds.
    """
    parts = _generate(session, n, seed, now)
    _points, spots = next(parts)
    return next(parts), spots


def generate_in_background(
    session: Session, n: int, seed: int = 2026, now: datetime | None = None
) -> tuple[PendingColumns, list[HotSpot]]:
    """:func:`generate`'s cases (the same for the seed), their points first.

    Where and when the cases happened (their points) is computed here; the rest of their
    columns (how it went, who, the texts: about half the time of ``generate``) in a
    thread, while the bulk loader places the points in PostgreSQL, which leaves the
    client idle (:class:`cases.bulk.PendingColumns`). The database is read here only.
    """
    parts = _generate(session, n, seed, now)
    points, spots = next(parts)
    pool = ThreadPoolExecutor(1, thread_name_prefix="demo-generate")
    rest = pool.submit(next, parts)
    pool.shutdown(wait=False)  # the thread ends with the generation
    return PendingColumns(points, rest), spots


def _generate(
    session: Session, n: int, seed: int, now: datetime | None
) -> Iterator[tuple[pgcopy.Point, list[HotSpot]] | CaseColumns]:
    """:func:`generate` in two steps: the points and hot spots, then every column.

    The database is read before the first step ends: the second runs on numpy alone.
    """
    rng = np.random.default_rng(seed)
    now = now or datetime.now(UTC)
    codes, pops, vnames, geoms, labels, townships = _grids(session)
    county = shapely.union_all(geoms)
    shapely.prepare(county)
    shapely.prepare(geoms)
    bounds = shapely.bounds(geoms)
    cat_ids = dict(session.execute(text("SELECT code, id FROM categories")).all())
    spots = pick_hot_spots(codes, townships, labels, rng)
    ng = len(codes)
    spot_grid = np.array([codes.index(s.grid_code) for s in spots], dtype=np.int64)

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
    # The grid a case was drawn in: it names the village in the title (words only:
    # PostGIS decides the case's grid when it is stored).
    grid_of = np.where(bg, 0, spot_grid[np.maximum(spot_of, 0)])
    grid_of[bg] = rng.choice(ng, size=int(bg.sum()), p=weights / weights.sum())
    lonlat[bg] = _points_in_grids(geoms, bounds, grid_of[bg], rng)
    for k, s in enumerate(spots):
        rows = np.flatnonzero(spot_of == k)
        lonlat[rows] = _scatter(s, len(rows), county, rng)

    # --- when -----------------------------------------------------------------
    span = 3 * 365 * DAY
    now_ts = now.timestamp()
    age = seasonal_ages(n, span, now_ts, rng)
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
    reported = now_ts - age
    order = np.argsort(reported, kind="stable")
    reported, lonlat, spot_of, backlog = (
        reported[order],
        lonlat[order],
        spot_of[order],
        backlog[order],
    )
    grid_of = grid_of[order]

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
    case_class = rng.choice(len(CASE_CLASSES), size=n, p=[0.86, 0.08, 0.06])
    people = np.where(rng.random(n) < 0.05, rng.integers(5, 40, n), rng.integers(1, 4, n))
    collective_spot = (spot_of >= 0) & (rng.random(n) < 0.25)
    people[collective_spot] = rng.integers(5, 60, int(collective_spot.sum()))
    skip_level = rng.random(n) < 0.02

    # Repeats: the same matter raised again by the same person, close by, later.
    repeat = (rng.random(n) < 0.06) & (np.arange(n) > 50)
    target = np.where(repeat, np.arange(n) - rng.integers(1, 50, n), -1)
    cat[repeat] = cat[target[repeat]]
    grid_of[repeat] = grid_of[target[repeat]]
    lonlat[repeat] = lonlat[target[repeat]] + rng.normal(0, 0.0002, (int(repeat.sum()), 2))
    outside = ~shapely.contains_xy(county, lonlat[:, 0], lonlat[:, 1])
    lonlat[repeat & outside] = lonlat[target[repeat & outside]]
    geom = pgcopy.Point(np.round(lonlat[:, 0], 7), np.round(lonlat[:, 1], 7))
    # What the rest reads from the database, read now (see _generate).
    tnames = dict(
        session.execute(text("SELECT code, name FROM areas WHERE level = 'township'")).all()
    )
    county_name = session.execute(
        text("SELECT name FROM areas WHERE level = 'county' LIMIT 1")
    ).scalar()
    yield geom, spots

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

    S = {name: i for i, name in enumerate(STATUSES)}
    status = np.full(n, S["closed"])
    resolved_mask = (t_res <= now_ts) & ~stuck & ~not_accepted & ~reviewing
    status[resolved_mask & (now_ts - t_res < 30 * DAY)] = S["resolved"]
    concluded_mask = (t_con <= now_ts) & ~resolved_mask
    status[concluded_mask] = S["concluded"]
    status[reviewing & (t_res <= now_ts)] = S["reviewing"]
    progress_mask = (t_con > now_ts) | (stuck & (t_acc <= now_ts))
    status[progress_mask & ~resolved_mask] = S["in_progress"]
    assigned_mask = progress_mask & (now_ts - t_acc < 2 * DAY) & (t_acc <= now_ts)
    status[assigned_mask] = S["assigned"]
    status[t_acc > now_ts] = S["registered"]
    status[not_accepted] = S["not_accepted"]
    accepted_recent = (t_acc <= now_ts) & (now_ts - t_acc < 0.5 * DAY) & ~not_accepted
    status[accepted_recent] = S["accepted"]

    is_resolved = np.isin(status, [S["resolved"], S["closed"]])
    has_con = is_resolved | np.isin(status, [S["concluded"], S["reviewing"]])
    has_acc = ~np.isin(status, [S["registered"], S["not_accepted"]])
    opinion = rng.choice(len(OPINIONS), size=n, p=[0.55, 0.35, 0.10])
    satisfaction = np.where(dissatisfied, 2, rng.choice(2, size=n, p=[0.88, 0.12]))
    level = rng.choice(len(LEVELS), size=n, p=[0.68, 0.24, 0.08])
    due = t_acc + 60 * DAY

    # --- where it was sent (交办) -----------------------------------------------------
    # Matters end where they were sent, mostly; open ones are split the same way.
    assigned = has_acc & (status != S["accepted"])
    to_level = np.where(
        is_resolved, np.minimum(level, 2), rng.choice(3, size=n, p=[0.3, 0.55, 0.15])
    )
    tcodes = sorted(set(townships))
    units = [v + ("居民委员会" if v.endswith("社区") else "村民委员会") for v in vnames]
    units += [tnames.get(t, t) + "人民政府" for t in tcodes]
    units += [COUNTY_UNITS.get(c, f"{county_name or '县'}人民政府办公室") for c in cat_codes]
    town_of_grid = np.array([tcodes.index(t) for t in townships])
    unit = np.select(
        [to_level == 0, to_level == 1],
        [grid_of, ng + town_of_grid[grid_of]],
        ng + len(tcodes) + cat,
    )

    # --- who ----------------------------------------------------------------------
    has_person = np.where(
        channel == ch_codes.index("grid_sweep"), rng.random(n) < 0.5, rng.random(n) < 0.9
    )
    sur = rng.integers(0, len(SURNAMES), n)
    given1 = rng.integers(0, len(GIVEN), n)
    # 0 = a one-character given name, else 1 + the second character.
    given2 = np.where(rng.random(n) < 0.6, 1 + rng.integers(0, len(GIVEN), n), 0)
    phone_second = rng.choice(np.array([3, 5, 7, 8, 9]), n)
    phone_rest = rng.integers(0, 10**9, n)
    birth = now_ts - rng.uniform(20, 80, n) * 365.25 * DAY
    seq = rng.integers(0, 1000, n)
    # The same person raises it again: follow each repeat back to the first case.
    root = target.copy()
    chained = root >= 0
    chained[chained] = repeat[root[chained]]
    while chained.any():
        root[chained] = target[root[chained]]
        chained[chained] = repeat[root[chained]]
    r = np.flatnonzero(repeat)
    t = root[r]
    for arr in (sur, given1, given2, phone_second, phone_rest, birth, seq, has_person):
        arr[r] = arr[t]

    ncat = len(cat_codes)
    names_vocab = [
        SURNAMES[a] + GIVEN[b] + ("" if c == 0 else GIVEN[c - 1])
        for a in range(len(SURNAMES))
        for b in range(len(GIVEN))
        for c in range(len(GIVEN) + 1)
    ]
    name_code = (sur * len(GIVEN) + given1) * (len(GIVEN) + 1) + given2
    templates = [t for _, _, t in CATEGORY_MIX]
    tpl_pick = rng.integers(0, 3, n)
    tpl_count = np.array([len(t) for t in templates])
    tpl_base = np.cumsum(tpl_count) - tpl_count
    title_vocab = [
        tpl.format(v=vnames[g]) for c in range(ncat) for tpl in templates[c] for g in range(ng)
    ]
    title_code = (tpl_base[cat] + tpl_pick % tpl_count[cat]) * ng + grid_of
    no_person = ~has_person
    cat_ids_arr = np.array([cat_ids[c] for c in cat_codes])[cat]
    columns = {
        "ord": pgcopy.int8(np.arange(n)),
        "client_id": pgcopy.Ascii(np.zeros((n, 16), dtype=np.uint8), null=np.ones(n, dtype=bool)),
        "title": pgcopy.Categorical(title_code, title_vocab),
        # A short line, not the title again: the demo says what it is in few bytes.
        "description": pgcopy.Categorical(np.zeros(n, dtype=np.int64), [DEMO_NOTE]),
        "category_id": pgcopy.int4(cat_ids_arr),
        "channel": pgcopy.Categorical(channel, ch_codes),
        "case_class": pgcopy.Categorical(case_class, CASE_CLASSES),
        "people_count": pgcopy.int4(people),
        "batch_count": pgcopy.int4(np.ones(n, dtype=np.int64)),
        "geom": geom,
        "location_approx": pgcopy.boolean(np.zeros(n, dtype=bool)),
        "status": pgcopy.Categorical(status, STATUSES),
        "reported_at": pgcopy.timestamptz(np.floor(reported)),
        "accepted_at": pgcopy.timestamptz(np.floor(t_acc), null=~has_acc),
        "concluded_at": pgcopy.timestamptz(np.floor(t_con), null=~has_con),
        "resolved_at": pgcopy.timestamptz(np.floor(t_res), null=~is_resolved),
        # The deadline to conclude, kept after concluding.
        "due_at": pgcopy.timestamptz(np.floor(due), null=~has_acc),
        "opinion": pgcopy.Categorical(np.where(has_con, opinion, -1), OPINIONS),
        "satisfaction": pgcopy.Categorical(
            np.where(is_resolved | (status == S["reviewing"]), satisfaction, -1), SATISFACTIONS
        ),
        "resolved_level": pgcopy.Categorical(np.where(is_resolved, level, -1), LEVELS),
        "is_first": pgcopy.boolean(~repeat),
        "repeat_ord": pgcopy.int8(np.maximum(target, 0), null=~repeat),
        "skip_level": pgcopy.boolean(skip_level),
        "petitioner_name": pgcopy.Categorical(np.where(has_person, name_code, -1), names_vocab),
        "petitioner_phone": pgcopy.Ascii(_phone_digits(phone_second, phone_rest), null=no_person),
        "petitioner_id_number": pgcopy.Ascii(_id_numbers(birth, seq), null=no_person),
        # Assigned two hours after acceptance, as the demo's event history says.
        "assigned_at": pgcopy.timestamptz(np.floor(t_acc) + 7200, null=~assigned),
        "assigned_level": pgcopy.Categorical(np.where(assigned, to_level, -1), LEVELS[:3]),
        "assigned_unit": pgcopy.Categorical(np.where(assigned, unit, -1), units),
        # The written answer the appeal windows run from: the conclusion.
        "answered_at": pgcopy.timestamptz(np.floor(t_con), null=~has_con),
    }
    first = ~repeat
    conditions = {
        "beijing_abnormal_at": ~first | skip_level,
        "province_collective_at": people >= 5,
        "extreme_incident_at": np.ones(n, dtype=bool),
    }
    columns.update(escalations(conditions, np.floor(reported), now_ts, seed))
    yield CaseColumns(columns)


# The ASCII digits of 0-999, zero-padded: row v is b"%03d" % v. Numbers are written
# three digits at a time by looking them up here (one integer division per three
# digits; dividing int64 columns digit by digit cost a second per million IDs).
_ASCII3 = np.frombuffer("".join(f"{i:03d}" for i in range(1000)).encode(), dtype=np.uint8).reshape(
    1000, 3
)


def _ascii_digits(values: np.ndarray, width: int) -> np.ndarray:
    """The decimal digits of non-negative integers, zero-padded, as an (n, width) ASCII matrix."""
    x = np.asarray(values, dtype=np.int64)
    groups = -(-width // 3)
    out = np.empty((len(x), 3 * groups), dtype=np.uint8)
    for g in range(groups - 1, -1, -1):
        x, r = np.divmod(x, 1000)
        out[:, 3 * g : 3 * g + 3] = _ASCII3[r]
    return out[:, 3 * groups - width :]


def _phone_digits(second: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """Mobile numbers 1[35789]xxxxxxxxx as an (n, 11) ASCII matrix."""
    out = np.empty((len(rest), 11), dtype=np.uint8)
    out[:, 0] = ord("1")
    out[:, 1] = np.asarray(second) + ord("0")
    out[:, 2:] = _ascii_digits(rest, 9)
    return out


ID_COUNTY = "410726"


def _id_numbers(birth: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """Resident ID numbers (county 410726, date of birth, sequence, check) as ASCII rows.

    Births span a few tens of thousands of days: each day's eight digits and its share
    of the check sum are computed once and looked up, as are the sequence's.
    """
    seconds = np.asarray(birth, dtype="float64").astype("int64")
    day = seconds // 86400  # days since 1970-01-01, floored as datetime64 does
    n = len(day)
    out = np.empty((n, 18), dtype=np.uint8)
    out[:, :6] = np.frombuffer(ID_COUNTY.encode(), dtype=np.uint8)
    if n == 0:
        return out
    first = int(day.min())
    days = np.arange(first, int(day.max()) + 1).astype("datetime64[D]")
    ymd = np.frombuffer(
        "".join(d.strftime("%Y%m%d") for d in days.astype(object)).encode(), dtype=np.uint8
    ).reshape(len(days), 8)
    weights = ID_WEIGHTS.astype(np.int64)
    day_sum = (ymd.astype(np.int64) - 48) @ weights[6:14]
    seq_sum = (_ASCII3.astype(np.int64) - 48) @ weights[14:17]
    county_sum = int(np.array([int(c) for c in ID_COUNTY]) @ weights[:6])
    k = day - first
    seq = np.asarray(seq, dtype=np.int64)
    out[:, 6:14] = ymd[k]
    out[:, 14:17] = _ASCII3[seq]
    checks = np.frombuffer(ID_CHECK.encode(), dtype=np.uint8)
    out[:, 17] = checks[(county_sum + day_sum[k] + seq_sum[seq]) % 11]
    return out


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


# Rare escalations for the 三无 figures, as (column, share in ten thousand, which cases).
# Abnormal petitions to Beijing come from repeat or skip-level petitioners, collective
# petitions to the province from collective cases, extreme incidents from anything.
# The 三无 events a few demo cases led to: (column, chance in 10,000 among the cases
# that meet the condition given for it in ``generate``).
ESCALATIONS = (
    ("beijing_abnormal_at", 300),  # repeats and skip-level petitions
    ("province_collective_at", 250),  # collective ones (5 people or more)
    ("extreme_incident_at", 4),
)


def escalations(
    conditions: dict[str, np.ndarray], reported: np.ndarray, now_ts: float, seed: int
) -> dict[str, pgcopy.Fixed]:
    """The event-time columns of the 三无 events, drawn with a generator of their own.

    The event happens 3 to 42 days after the case was reported, never in the future.
    Their own generator keeps every other column of a seed unchanged.
    """
    rng = np.random.default_rng([seed, 3])
    n = len(reported)
    out = {}
    for column, per_10000 in ESCALATIONS:
        hit = conditions[column] & (rng.random(n) * 10_000 < per_10000)
        at = np.minimum(reported + (3 + rng.integers(0, 40, n)) * DAY, np.floor(now_ts))
        out[column] = pgcopy.timestamptz(at, null=~hit)
    return out
