"""Reading a petition ledger (信访台账) from Excel or CSV into checked rows.

Columns are found by their header, in the words county ledgers use (登记日期, 信访人,
联系电话, 身份证号, 问题类别, 来源, 人数, 乡镇, 村(社区), 经度, 纬度, 坐标系, 事由,
主要诉求, 办理状态, 办结日期 ...), wherever the header row is among the first rows (a
title row above it is common). Every cell is checked here, without the database:
dates, category (with the closest names when unknown), channel, status, numbers,
coordinates in their CRS (WGS84, CGCS2000, GCJ-02), or a village by name or code when
there are none. What needs the database (inside the county? already imported? the
same petitioner, day and category as a stored case?) is decided by ``importer``.
"""

from __future__ import annotations

import csv
import difflib
import gc
import hashlib
import io
import math
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from webapp import geo
from webapp.cases.vocab import CHANNEL_LABELS, STATUS_LABELS, CaseClass, Channel, Status
from webapp.security import CONTROL_CHARACTERS

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
EARLIEST = datetime(1990, 1, 1, tzinfo=LOCAL_TZ)
HEADER_SCAN_ROWS = 10
MAX_ROWS = 1_000_000

# field -> header words (normalised: no spaces, ASCII brackets, lower case).
HEADERS: dict[str, tuple[str, ...]] = {
    "reported_at": (
        "登记日期",
        "登记时间",
        "来访日期",
        "来信日期",
        "信访日期",
        "反映日期",
        "日期",
        "时间",
        "收件日期",
    ),
    "accepted_at": ("受理日期", "受理时间"),
    "concluded_at": ("办结日期", "办结时间", "结案日期", "化解日期"),
    "petitioner_name": (
        "信访人",
        "信访人姓名",
        "姓名",
        "来访人",
        "反映人",
        "当事人",
        "申请人",
        "信访人(代表)",
    ),
    "petitioner_phone": ("联系电话", "电话", "手机", "手机号", "手机号码", "联系方式", "电话号码"),
    "petitioner_id_number": ("身份证号", "身份证号码", "身份证", "证件号码", "公民身份号码"),
    "category": (
        "问题类别",
        "问题类型",
        "问题分类",
        "类别",
        "事项类别",
        "信访类别",
        "纠纷类型",
        "矛盾类别",
        "内容分类",
    ),
    "channel": ("来源", "渠道", "来源渠道", "信访渠道", "信访方式", "信访形式", "登记方式"),
    "people_count": ("人数", "信访人数", "来访人数", "涉及人数"),
    "township": ("乡镇", "乡镇(街道)", "乡镇街道", "所属乡镇", "乡(镇)", "镇(街道)"),
    "village": ("村(社区)", "村", "社区", "村社区", "所属村", "村(居)", "村(居委会)", "所在村"),
    "village_code": (
        "村代码",
        "村(社区)代码",
        "区划代码",
        "行政区划代码",
        "网格代码",
        "统计用区划代码",
    ),
    "lon": ("经度", "lon", "lng", "longitude", "x"),
    "lat": ("纬度", "lat", "latitude", "y"),
    "crs": ("坐标系", "坐标系统", "crs"),
    "title": ("事由", "标题", "信访事由", "事项名称", "问题摘要", "内容摘要"),
    "description": (
        "主要诉求",
        "诉求",
        "诉求内容",
        "反映问题",
        "问题描述",
        "信访内容",
        "主要内容",
        "具体诉求",
    ),
    "status": ("办理状态", "状态", "办理情况", "处理状态", "办理进度"),
    "case_class": ("事项性质", "信访性质", "事项类型"),
}
_HEADER_INDEX = {}


def normalise(text: object) -> str:
    """Fold width and case, ASCII brackets, drop spaces and line breaks."""
    value = unicodedata.normalize("NFKC", str(text)).lower()
    # str.split() splits at exactly the characters regex \s matches (every Unicode
    # space), several times faster than re.sub(r"\s+", "", value).
    return "".join(value.split())


for _field, _words in HEADERS.items():
    for _word in _words:
        _HEADER_INDEX[normalise(_word)] = _field

CHANNEL_WORDS: dict[str, Channel] = {normalise(v): k for k, v in CHANNEL_LABELS.items()}
CHANNEL_WORDS.update(
    {
        normalise(w): c
        for c, words in {
            Channel.VISIT: ("来访", "走访", "到访", "接访", "个访", "集体访"),
            Channel.LETTER: ("来信", "信件", "信访件"),
            Channel.ONLINE: ("网上", "网上信访", "网信", "网络", "网上投诉", "阳光信访"),
            Channel.SMS: ("短信", "手机短信"),
            Channel.HOTLINE: ("电话", "热线", "12345", "12345热线", "市长热线", "电话来访"),
            Channel.MAILBOX: ("信箱", "书记信箱", "领导信箱", "县长信箱"),
            Channel.LEADER: ("领导接访", "领导下访", "下访", "接访日"),
            Channel.GRID_SWEEP: ("网格员排查", "排查", "网格排查", "网格员"),
            Channel.VIDEO: ("视频", "视频接访"),
        }.items()
        for w in words
    }
)
CHANNEL_WORDS.update({c.value: c for c in Channel})

STATUS_WORDS: dict[str, Status] = {normalise(v): k for k, v in STATUS_LABELS.items()}
STATUS_WORDS.update(
    {
        normalise(w): s
        for s, words in {
            Status.REGISTERED: ("登记", "待受理", "新登记", "未受理"),
            Status.ACCEPTED: ("受理", "已受理"),
            Status.ASSIGNED: ("交办", "已交办", "转送", "已转送", "转办"),
            Status.IN_PROGRESS: ("办理中", "在办", "正在办理", "处理中", "未办结"),
            Status.CONCLUDED: ("办结", "已办结", "结案", "已结案"),
            Status.RESOLVED: ("化解", "已化解", "息诉", "息诉罢访"),
            Status.CLOSED: ("销号", "已销号"),
            Status.NOT_ACCEPTED: ("不予受理", "不受理"),
        }.items()
        for w in words
    }
)
STATUS_WORDS.update({s.value: s for s in Status})

CLASS_WORDS = {
    normalise(w): c
    for c, words in {
        CaseClass.SUGGESTION: ("建议意见类", "建议意见", "建议"),
        CaseClass.ACCUSATION: ("检举控告类", "检举控告", "检举", "控告"),
        CaseClass.REQUEST: ("申诉求决类", "申诉求决", "求决", "申诉"),
    }.items()
    for w in words
}

CRS_WORDS = {
    "": geo.WGS84,
    "wgs84": geo.WGS84,
    "wgs-84": geo.WGS84,
    "wgs1984": geo.WGS84,
    "4326": geo.WGS84,
    "epsg:4326": geo.WGS84,
    "gps": geo.WGS84,
    "cgcs2000": "EPSG:4490",
    "2000": "EPSG:4490",
    "国家2000": "EPSG:4490",
    "2000国家大地坐标系": "EPSG:4490",
    "4490": "EPSG:4490",
    "epsg:4490": "EPSG:4490",
    "gcj02": geo.GCJ02,
    "gcj-02": geo.GCJ02,
    "火星坐标": geo.GCJ02,
    "高德": geo.GCJ02,
    "腾讯": geo.GCJ02,
}


_CATEGORY_SUFFIX = re.compile(r"(类|问题|纠纷类)$")
_VILLAGE_SUFFIX = re.compile(r"(村民委员会|居民委员会|村委会|居委会)$")
_PHONE_SEPARATORS = re.compile(r"[\s-]")


# -- problems -----------------------------------------------------------------------------


@dataclass
class Problem:
    code: str
    message: str
    suggestions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        out = {"code": self.code, "message": self.message}
        if self.suggestions:
            out["suggestions"] = self.suggestions
        return out


# Row statuses, in the order a row's first problem decides it (and the report lists them).
ROW_STATUSES = {
    "ok": "可导入",
    "bad_date": "日期无效",
    "unknown_category": "未知问题类别",
    "unknown_village": "未知村(社区)",
    "outside_county": "不在本县",
    "duplicate": "重复",
    "invalid": "其他错误",
}
_STATUS_OF = {
    "bad_date": "bad_date",
    "missing_date": "bad_date",
    "unknown_category": "unknown_category",
    "missing_category": "unknown_category",
    "unknown_village": "unknown_village",
    "ambiguous_village": "unknown_village",
    "missing_location": "unknown_village",
    "outside_county": "outside_county",
    "already_imported": "duplicate",
    "duplicate_case": "duplicate",
    "duplicate_row": "duplicate",
}


def row_status(problems: list[Problem]) -> str:
    if not problems:
        return "ok"
    return _STATUS_OF.get(problems[0].code, "invalid")


# -- reference data the checks need ------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    code: str
    name: str
    township_code: str
    township_name: str
    lon: float
    lat: float


@dataclass
class Reference:
    """Categories and villages of the county, looked up by normalised name or code."""

    categories: dict[str, int]  # normalised name or code -> id
    category_names: list[str]
    villages_by_name: dict[str, list[Place]]
    places_by_code: dict[str, Place]

    def category(self, text: str) -> int | None:
        key = normalise(text)
        if key in self.categories:
            return self.categories[key]
        return self.categories.get(_CATEGORY_SUFFIX.sub("", key))

    def closest_categories(self, text: str) -> list[str]:
        return difflib.get_close_matches(str(text).strip(), self.category_names, n=3, cutoff=0.3)

    def village(self, name: str, township: str) -> tuple[Place | None, list[Place]]:
        """The village called ``name`` (in ``township`` when given): (found, candidates)."""
        key = normalise(name)
        keys = [key, _VILLAGE_SUFFIX.sub("", key)]
        keys += [k + "村" for k in keys[1:]] + [k + "社区" for k in keys[1:]]
        found: list[Place] = []
        for k in keys:
            found = self.villages_by_name.get(k, [])
            if found:
                break
        if township:
            t = normalise(township)
            found = [p for p in found if normalise(p.township_name) == t or p.township_code == t]
        if len(found) == 1:
            return found[0], found
        return None, found


# -- parsed rows -----------------------------------------------------------------------------------


@dataclass
class LedgerRow:
    row: int  # the row number in the sheet (as people see it in Excel)
    problems: list[Problem] = field(default_factory=list)
    reported_at: datetime | None = None
    accepted_at: datetime | None = None
    concluded_at: datetime | None = None
    title: str = ""
    description: str = ""
    category_id: int | None = None
    category_text: str = ""
    channel: Channel = Channel.VISIT
    case_class: CaseClass = CaseClass.REQUEST
    status: Status = Status.REGISTERED
    people_count: int = 1
    lon: float | None = None
    lat: float | None = None
    crs: str = geo.WGS84
    approx: bool = False
    place_text: str = ""
    petitioner_name: str | None = None
    petitioner_phone: str | None = None
    petitioner_id_number: str | None = None
    fingerprint: uuid.UUID | None = None
    duplicate_of: str | None = None  # a case number or "第 N 行"

    @property
    def status_code(self) -> str:
        return row_status(self.problems)

    def add(self, code: str, message: str, suggestions: list[str] | None = None) -> None:
        self.problems.append(Problem(code, message, suggestions or []))


@dataclass
class Ledger:
    filename: str
    header_row: int
    columns: dict[str, str]  # field -> header text as found
    unmapped: list[str]
    rows: list[LedgerRow]


class LedgerUnreadable(ValueError):
    """The file cannot be read as a ledger at all (no header, wrong format).

    ``code`` is stable for machines (shown with the failed import); the message is Chinese.
    """

    def __init__(self, message: str, code: str = "ledger_unreadable") -> None:
        super().__init__(message)
        self.code = code


# -- reading cells -------------------------------------------------------------------------------------


def _read_csv(data: bytes) -> Iterator[tuple[int, list]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise LedgerUnreadable("无法识别文件编码（应为 UTF-8 或 GBK）", "ledger_encoding")
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",\t;") if sample else csv.excel
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        yield from enumerate(reader, start=1)
    except csv.Error:
        # Most often a quote left open: the rest of the file became one cell, longer than
        # the csv module reads (131,072 characters). Not a row problem: the file's.
        raise LedgerUnreadable(
            f"无法读取 CSV 文件：第 {reader.line_num} 行附近有未配对的引号或过长的单元格",
            "ledger_broken_csv",
        ) from None


def _read_xlsx(path: Path) -> Iterator[tuple[int, list]]:
    import zipfile

    from openpyxl import load_workbook

    from webapp.archives import ArchiveTooLarge, check_archive

    try:
        check_archive(path)
    except ArchiveTooLarge as exc:
        raise LedgerUnreadable(exc.message, exc.code) from None
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise LedgerUnreadable(f"无法读取 Excel 文件：{exc}", "ledger_broken_xlsx") from None
    try:
        sheet = wb.active
        for i, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield i, list(row)
    finally:
        wb.close()


def read_cells(path: Path, filename: str | None = None) -> Iterator[tuple[int, list]]:
    """Yield (row number, cells) of the first sheet of an .xlsx, or of a .csv file."""
    suffix = Path(filename or path.name).suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(path)
    if suffix in (".csv", ".txt"):
        return _read_csv(path.read_bytes())
    raise LedgerUnreadable(
        "只支持 .xlsx 或 .csv 文件（旧版 .xls 请另存为 .xlsx）", "ledger_file_type"
    )


def _cell_text(value) -> str:
    if value.__class__ is str:  # every CSV cell: the common case first
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


# -- values ------------------------------------------------------------------------------------------------

_SERIAL_RE = re.compile(r"\d{5}(\.\d+)?")
_COMPACT_DATE_RE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_DATE_RE = re.compile(
    r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:[\sT]+(\d{1,2})[:：时](\d{1,2})(?:[:：分](\d{1,2}))?秒?)?$"
)


def parse_date(value, now: datetime) -> datetime:
    """A ledger date: an Excel date, a serial number, or 2024-03-05 / 2024/3/5 / 2024年3月5日 / 20240305."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=LOCAL_TZ)
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day, tzinfo=LOCAL_TZ)
    else:
        text = _cell_text(value)
        if isinstance(value, int | float) or _SERIAL_RE.fullmatch(text):
            serial = float(text)
            if not 20000 <= serial <= 80000:
                raise ValueError(text)
            moment = (datetime(1899, 12, 30) + timedelta(days=serial)).replace(tzinfo=LOCAL_TZ)
        elif m := _COMPACT_DATE_RE.fullmatch(text):
            moment = datetime(int(m[1]), int(m[2]), int(m[3]), tzinfo=LOCAL_TZ)
        elif m := _DATE_RE.fullmatch(text):
            moment = datetime(
                int(m[1]),
                int(m[2]),
                int(m[3]),
                int(m[4] or 0),
                int(m[5] or 0),
                int(m[6] or 0),
                tzinfo=LOCAL_TZ,
            )
        else:
            moment = datetime.fromisoformat(
                text.replace("Z", "+00:00")
            )  # ValueError if not ISO 8601
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=LOCAL_TZ)
    if not EARLIEST <= moment <= now + timedelta(days=1):
        raise ValueError(str(value))
    return moment


def _number(text: str) -> float:
    value = float(text.replace("°", ""))
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def fingerprint(r: LedgerRow, village_code: str | None) -> uuid.UUID:
    """A stable id of the row's content: the same row imported again is recognised by it."""
    place = village_code or (f"{r.lon:.5f},{r.lat:.5f}" if r.lon is not None else "")
    parts = [
        r.reported_at.astimezone(LOCAL_TZ).date().isoformat() if r.reported_at else "",
        normalise(r.petitioner_name or ""),
        normalise(r.petitioner_id_number or r.petitioner_phone or ""),
        str(r.category_id),
        normalise(r.title),
        normalise(r.description),
        place,
    ]
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return uuid.UUID(bytes=digest[:16], version=5)


# -- the whole file -------------------------------------------------------------------------------------


def _find_header(
    cells: Iterator[tuple[int, list]],
) -> tuple[int, dict[int, str], dict[str, str], list[str], list]:
    best: tuple[int, int, list] | None = None
    buffered = []
    for n, row in cells:
        buffered.append((n, row))
        hits = sum(1 for c in row if c is not None and normalise(c) in _HEADER_INDEX)
        if hits >= 2 and (best is None or hits > best[1]):
            best = (n, hits, row)
        if len(buffered) >= HEADER_SCAN_ROWS:
            break
    if best is None:
        raise LedgerUnreadable(
            "前 10 行中没有找到表头（如 登记日期、信访人、问题类别、乡镇、村(社区)、事由）",
            "ledger_no_header",
        )
    header_no, _, header = best
    index: dict[int, str] = {}
    columns: dict[str, str] = {}
    unmapped: list[str] = []
    for i, cell in enumerate(header):
        if cell is None or str(cell).strip() == "":
            continue
        fieldname = _HEADER_INDEX.get(normalise(cell))
        if fieldname and fieldname not in columns:
            index[i] = fieldname
            columns[fieldname] = str(cell).strip()
        else:
            unmapped.append(str(cell).strip())
    rest = [(n, row) for n, row in buffered if n > header_no]
    return header_no, index, columns, unmapped, rest


def read_ledger(
    path: Path,
    reference: Reference,
    default_crs: str = geo.WGS84,
    filename: str | None = None,
    now: datetime | None = None,
    progress=None,
) -> Ledger:
    """Read and check every row of a ledger file (everything that needs no database)."""
    with _collector_paused():
        return _read_ledger(path, reference, default_crs, filename, now, progress)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Automatic garbage collection off meanwhile (back on after, unless it was off before).

    Reading keeps three objects a row (the row, its problems, its fingerprint), and the
    collector passes over the whole heap each time it has grown by a quarter: at 100,000
    rows, four such passes took 0.4 s of the 2 s of reading. Memory is freed as ever;
    only cyclic garbage made meanwhile (by any thread: the switch is the process's)
    waits until the collector is back on.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read_ledger(
    path: Path,
    reference: Reference,
    default_crs: str,
    filename: str | None,
    now: datetime | None,
    progress,
) -> Ledger:
    now = now or datetime.now(LOCAL_TZ)
    tick = progress or (lambda stage, done, total: None)
    cells = iter(read_cells(path, filename))
    header_no, index, columns, unmapped, first = _find_header(cells)
    if "reported_at" not in columns and "accepted_at" in columns:
        # A ledger with only a 受理日期 dates its cases by it.
        index = {i: ("reported_at" if f == "accepted_at" else f) for i, f in index.items()}
        columns["reported_at"] = columns.pop("accepted_at")
    needed = {"reported_at", "category"}
    missing = needed - set(columns)
    if missing or not ({"title", "description"} & set(columns)):
        labels = {"reported_at": "登记日期", "category": "问题类别"}
        names = [labels[m] for m in sorted(missing)] + (
            [] if {"title", "description"} & set(columns) else ["事由或主要诉求"]
        )
        raise LedgerUnreadable("缺少必需的列：" + "、".join(names), "ledger_missing_columns")
    rows: list[LedgerRow] = []
    village_codes: list[str | None] = []
    checks = _Checks(reference, default_crs, now)
    width = max(index) + 1
    column = {f: i for i, f in index.items()}
    # A row's cells in FIELDS order; a field without a column reads the None after its end.
    pick = itemgetter(*(column.get(f, width) for f in FIELDS))
    for n, cells_row in _chain(first, cells):
        if all(_cell_text(c) == "" for c in cells_row):
            continue
        if len(rows) >= MAX_ROWS:
            raise LedgerUnreadable(f"文件超过 {MAX_ROWS} 行，请分批导入", "ledger_too_many_rows")
        # Cut or padded (a short row's missing cells are empty) to the last column read.
        cells_row = [*cells_row[:width], *[None] * (width - len(cells_row)), None]
        r, village_code = _check_row(n, pick(cells_row), checks)
        rows.append(r)
        village_codes.append(village_code)
        if len(rows) % 10_000 == 0:
            tick("读取文件", len(rows), 0)
    _transform(rows)
    seen: dict[uuid.UUID, int] = {}
    for r, code in zip(rows, village_codes, strict=True):
        if r.problems:
            continue
        r.fingerprint = fingerprint(r, code)
        if r.fingerprint in seen:
            r.duplicate_of = f"第 {seen[r.fingerprint]} 行"
            r.add("duplicate_row", f"与本文件第 {seen[r.fingerprint]} 行重复")
        else:
            seen[r.fingerprint] = r.row
    tick("读取文件", len(rows), len(rows))
    return Ledger(path.name if filename is None else filename, header_no, columns, unmapped, rows)


def _chain(first, rest):
    yield from first
    yield from rest


class _Memo(dict):
    """``compute(key)`` for each key, computed once (at most ``LIMIT`` keys kept)."""

    LIMIT = 50_000

    def __init__(self, compute: Callable) -> None:
        super().__init__()
        self.compute = compute

    def __missing__(self, key):
        value = self.compute(key)
        if len(self) < self.LIMIT:
            self[key] = value
        return value


class _Checks:
    """What checking the rows of one file needs: the reference, the clock, and memos.

    Ledgers repeat their dates, categories, channels, statuses, coordinate systems and
    villages row after row, and what such a cell means depends on its text alone (the
    reference, the default CRS and ``now`` being fixed for the file), so each distinct
    text is looked at once per file. A memo holds values only (immutable ones: a date,
    an id, a place, a tuple); a row's problems are made for the row.
    """

    def __init__(self, ref: Reference, default_crs: str, now: datetime) -> None:
        self.ref = ref
        self.default_crs = default_crs
        self.now = now
        self._dates = _Memo(self._parse_date)
        self.category = _Memo(self._category)
        self.channel = _Memo(lambda t: CHANNEL_WORDS.get(normalise(t)))
        self.case_class = _Memo(lambda t: CLASS_WORDS.get(normalise(t), CaseClass.REQUEST))
        self.status = _Memo(lambda t: STATUS_WORDS.get(normalise(t)))
        self.crs = _Memo(lambda t: CRS_WORDS.get(normalise(t)))
        self.village = _Memo(self._village)

    def date(self, value) -> datetime | None:
        """``parse_date`` of a cell, or None when it is not a valid date."""
        if value.__class__ is str:  # the text of a CSV cell (an Excel date is no str)
            return self._dates[value]
        return self._parse_date(value)

    def _parse_date(self, value) -> datetime | None:
        try:
            return parse_date(value, self.now)
        except (ValueError, OverflowError):
            return None

    def _category(self, text: str) -> tuple[int | None, tuple[str, ...]]:
        """(the category's id, ()) or (None, the closest names)."""
        category_id = self.ref.category(text)
        if category_id is not None:
            return category_id, ()
        return None, tuple(self.ref.closest_categories(text))

    def _village(self, key: tuple[str, str]) -> tuple[Place | None, tuple[Place, ...]]:
        """``Reference.village`` of (name, township)."""
        place, candidates = self.ref.village(*key)
        return place, tuple(candidates)


# Where _check_row finds a row's fields: every field of HEADERS, in this order.
FIELDS = (
    "reported_at",
    "accepted_at",
    "concluded_at",
    "petitioner_name",
    "petitioner_phone",
    "petitioner_id_number",
    "category",
    "channel",
    "people_count",
    "township",
    "village",
    "village_code",
    "lon",
    "lat",
    "crs",
    "title",
    "description",
    "status",
    "case_class",
)


def _check_row(n: int, cells: tuple, checks: _Checks) -> tuple[LedgerRow, str | None]:
    """Check row ``n``: its cells in ``FIELDS`` order (None for a column the ledger lacks)."""
    r = LedgerRow(row=n)
    (
        reported_text,
        accepted_text,
        concluded_text,
        name_text,
        phone_text,
        id_text,
        category_text,
        channel_text,
        count_text,
        township_text,
        village_text,
        code_text,
        lon_text,
        lat_text,
        crs_text,
        title_text,
        description_text,
        status_text,
        class_text,
    ) = texts = [c.strip() if c.__class__ is str else _cell_text(c) for c in cells]
    # A control character (NUL above all, which PostgreSQL cannot store) refuses the row
    # with a word on which column holds it, as the forms refuse one (security).
    if CONTROL_CHARACTERS.search("\t".join(texts)):
        for name, cell in zip(FIELDS, texts, strict=True):
            if CONTROL_CHARACTERS.search(cell):
                r.add(
                    "control_characters",
                    f"“{HEADERS[name][0]}”一栏含有不可见的控制字符，请删除后再导入",
                )
    # Dates.
    if reported_text == "":
        r.add("missing_date", "登记日期为空")
    else:
        r.reported_at = checks.date(cells[0])
        if r.reported_at is None:
            r.add("bad_date", f"登记日期“{reported_text[:40]}”无效或不在 1990 年至今之间")
    if accepted_text:
        r.accepted_at = checks.date(cells[1])
        if r.accepted_at is None:
            r.add("bad_date", f"受理日期“{accepted_text[:40]}”无效")
    if concluded_text:
        r.concluded_at = checks.date(cells[2])
        if r.concluded_at is None:
            r.add("bad_date", f"办结日期“{concluded_text[:40]}”无效")
    # What it is about.
    r.title = title_text or description_text[:40]
    r.description = description_text or r.title
    if not r.title:
        r.add("missing_title", "事由和主要诉求都为空")
    elif len(r.title) > 200:
        r.title = r.title[:199] + "…"
    r.category_text = category_text
    if not category_text:
        r.add("missing_category", "问题类别为空")
    else:
        r.category_id, close = checks.category[category_text]
        if r.category_id is None:
            hint = "，最接近的是：" + "、".join(close) if close else ""
            r.add(
                "unknown_category",
                f"问题类别“{category_text[:40]}”不在类别表中{hint}",
                list(close),
            )
    if channel_text:
        channel = checks.channel[channel_text]
        if channel is None:
            r.add("unknown_channel", f"来源/渠道“{channel_text[:20]}”无法识别")
        else:
            r.channel = channel
    if class_text:
        r.case_class = checks.case_class[class_text]
    if status_text:
        status = checks.status[status_text]
        if status is None:
            r.add("unknown_status", f"办理状态“{status_text[:20]}”无法识别")
        else:
            r.status = status
    elif r.concluded_at is not None:
        r.status = Status.CONCLUDED
    if count_text:
        try:
            count = float(count_text)
            if not count.is_integer() or not 1 <= count <= 100000:
                raise ValueError
            r.people_count = int(count)
        except ValueError:
            r.add("bad_number", f"人数“{count_text[:20]}”应为正整数")
    # Who.
    r.petitioner_name = name_text or None
    r.petitioner_phone = _PHONE_SEPARATORS.sub("", phone_text) or None
    r.petitioner_id_number = id_text.replace(" ", "").upper() or None
    for field_name, value, limit in (
        ("petitioner_name", r.petitioner_name, 100),
        ("petitioner_phone", r.petitioner_phone, 32),
        ("petitioner_id_number", r.petitioner_id_number, 32),
    ):
        if value and len(value) > limit:
            r.add("too_long", f"{field_name} 超过 {limit} 个字符")
    # Where: coordinates in their CRS, else the village by code or name.
    village_code = None
    if lon_text or lat_text:
        crs = checks.crs[crs_text] if crs_text else checks.default_crs
        if crs is None:
            r.add(
                "unsupported_crs",
                f"坐标系“{crs_text[:20]}”不支持（可用 WGS84、CGCS2000、GCJ-02）",
            )
        try:
            r.lon, r.lat = _number(lon_text), _number(lat_text)
            if not (-180 <= r.lon <= 180 and -90 <= r.lat <= 90):
                raise ValueError
            r.crs = crs or geo.WGS84
            r.place_text = f"{lon_text},{lat_text}"
        except ValueError:
            r.lon = r.lat = None
            r.add("bad_coordinates", f"经纬度“{lon_text[:20]},{lat_text[:20]}”无效")
    else:
        place = None
        if code_text:
            place = checks.ref.places_by_code.get(code_text)
            if place is None:
                r.add("unknown_village", f"区划代码“{code_text[:20]}”不在本县")
        elif village_text:
            place, candidates = checks.village[village_text, township_text]
            if place is None and candidates:
                where = "、".join(f"{p.township_name}{p.name}" for p in candidates[:5])
                r.add(
                    "ambiguous_village",
                    f"村(社区)“{village_text[:20]}”有重名（{where}），请填写乡镇",
                    [p.code for p in candidates[:5]],
                )
            elif place is None:
                r.add("unknown_village", f"村(社区)“{(township_text + village_text)[:30]}”不在本县")
        else:
            r.add("missing_location", "既无经纬度，也无村(社区)名称或代码")
        if place is not None:
            r.lon, r.lat, r.approx = place.lon, place.lat, True
            r.place_text = f"{place.township_name}{place.name}"
            village_code = place.code
    return r, village_code


def _transform(rows: list[LedgerRow]) -> None:
    """Transform the coordinates given in CGCS2000 or GCJ-02 to WGS84, one array per CRS."""
    by_crs: dict[str, list[LedgerRow]] = {}
    for r in rows:
        if r.lon is not None and not r.approx and r.crs != geo.WGS84:
            by_crs.setdefault(r.crs, []).append(r)
    for name, group in by_crs.items():
        coords = np.array([[r.lon, r.lat] for r in group], dtype=float)
        out = geo.to_wgs84_coords(coords, geo.parse_crs(name))
        for r, (lon, lat) in zip(group, out, strict=True):
            r.lon, r.lat = float(lon), float(lat)
