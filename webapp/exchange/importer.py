"""Ledger import: the dry run that reports every row, and the real run that stores the good ones.

Both read and check the file the same way (``ledger``), then decide in SQL what only
the database knows, set-based over a staging table:

- outside the county: the point lies in no grid (polygon-first, like ``cases.bulk``)
  of the importing account's county;
- already imported: the row's fingerprint is the ``client_id`` of a stored case;
- duplicate of a stored case: the same petitioner (name), local day and category, in
  that county (another county's cases are not the importer's to see).

With no account (``flask cases import`` without ``--user``) the county is the whole
database's.

The real run then loads the good rows with ``cases.bulk`` (COPY + polygon-first join)
in the caller's one transaction, their fingerprints as client ids, so running the
same file twice imports nothing new; an advisory lock keeps two imports from racing.
Every imported case gets its first event (登记, with the import and row number).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from webapp import geo
from webapp.auth.masking import mask_name
from webapp.cases import bulk, pgcopy
from webapp.exchange.ledger import (
    LOCAL_TZ,
    ROW_STATUSES,
    Ledger,
    LedgerRow,
    Place,
    Reference,
    normalise,
    read_ledger,
)

Progress = Callable[[str, int, int], None]
_IMPORT_LOCK = 7_261_947_007


def load_reference(session: Session, county: str | None = None) -> Reference:
    """Categories and the villages of ``county`` (with their label points; None: every
    county's), for the checks."""
    categories: dict[str, int] = {}
    names: list[str] = []
    for cid, code, name in session.execute(
        text("SELECT id, code, name FROM categories WHERE active ORDER BY sort_order, id")
    ):
        names.append(name)
        for key in {
            normalise(code),
            normalise(name),
            normalise(name.replace("/", "")),
            *[normalise(p) for p in name.split("/")],
        }:
            categories.setdefault(key, cid)
    by_name: dict[str, list[Place]] = {}
    by_code: dict[str, Place] = {}
    rows = session.execute(
        text(
            """
            SELECT a.code, a.name, a.level, coalesce(t.code, '') AS tcode, coalesce(t.name, '') AS tname,
                   ST_X(a.label_point) AS lon, ST_Y(a.label_point) AS lat
            FROM areas a LEFT JOIN areas t ON t.code = a.township_code
            WHERE a.level IN ('village', 'grid')
              AND (CAST(:county AS text) IS NULL OR a.county_code = :county)
            """
        ),
        {"county": county},
    )
    for code, name, level, tcode, tname, lon, lat in rows:
        place = Place(code, name, tcode, tname, lon, lat)
        by_code[code] = place
        if level == "village":
            by_name.setdefault(normalise(name), []).append(place)
    return Reference(categories, names, by_name, by_code)


@dataclass
class ImportReport:
    ledger: Ledger
    counts: Counter = field(default_factory=Counter)
    imported: int = 0
    dry_run: bool = True

    @property
    def rows(self) -> list[LedgerRow]:
        return self.ledger.rows

    def summary(self) -> dict:
        return {
            "rows": len(self.rows),
            "counts": {k: self.counts.get(k, 0) for k in ROW_STATUSES},
            "imported": self.imported,
            "dry_run": self.dry_run,
            "header_row": self.ledger.header_row,
            "columns": self.ledger.columns,
            "unmapped": self.ledger.unmapped,
        }

    def lines(self, only_problems: bool = True) -> list[str]:
        """A report for a terminal: one line per row (per problem row unless asked for all)."""
        out = []
        for r in self.rows:
            if only_problems and not r.problems:
                continue
            out.append(
                f"第 {r.row} 行：{ROW_STATUSES[r.status_code]}"
                + (f" — {'；'.join(p.message for p in r.problems)}" if r.problems else "")
            )
        s = self.summary()
        out.append(
            f"共 {s['rows']} 行："
            + "，".join(f"{ROW_STATUSES[k]} {v}" for k, v in s["counts"].items() if v)
            + (f"；已导入 {self.imported} 个案件" if not self.dry_run else "；试运行，未写入")
        )
        return out

    def csv_bytes(self) -> bytes:
        """Every row with its status and problems, for download (spreadsheet-safe text)."""
        from webapp.escaping import spreadsheet_text

        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(
            [
                "行号",
                "结果",
                "结果代码",
                "问题",
                "建议",
                "登记日期",
                "信访人",
                "问题类别",
                "位置",
                "重复于",
            ]
        )
        for r in self.rows:
            w.writerow(
                [
                    r.row,
                    ROW_STATUSES[r.status_code],
                    r.status_code,
                    spreadsheet_text("；".join(p.message for p in r.problems)),
                    spreadsheet_text("、".join(s for p in r.problems for s in p.suggestions)),
                    r.reported_at.date().isoformat() if r.reported_at else "",
                    spreadsheet_text(mask_name(r.petitioner_name) or ""),
                    spreadsheet_text(r.category_text),
                    spreadsheet_text(r.place_text),
                    spreadsheet_text(r.duplicate_of or ""),
                ]
            )
        return buf.getvalue().encode("utf-8-sig")

    def problem_rows(self, limit: int = 1000) -> list[dict]:
        out = []
        for r in self.rows:
            if r.problems:
                out.append(
                    {
                        "row": r.row,
                        "status": r.status_code,
                        "status_label": ROW_STATUSES[r.status_code],
                        "problems": [p.to_dict() for p in r.problems],
                    }
                )
                if len(out) >= limit:
                    break
        return out


_STAGE_DDL = """
CREATE TEMP TABLE ledger_stage (
    row_no integer PRIMARY KEY,
    client_id uuid NOT NULL,
    lon double precision NOT NULL,
    lat double precision NOT NULL,
    category_id integer NOT NULL,
    petitioner_name text,
    day date NOT NULL,
    geom geometry(Point, 4326) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED
) ON COMMIT DROP
"""


def _stage(session: Session, rows: list[LedgerRow]) -> None:
    """Copy the rows (binary COPY, a column at a time) into the ``ledger_stage`` temp table."""
    session.execute(text("DROP TABLE IF EXISTS ledger_stage"))
    session.execute(text(_STAGE_DDL))
    columns = [
        pgcopy.int4([r.row for r in rows]),
        pgcopy.uuids([r.fingerprint for r in rows]),
        pgcopy.float8([r.lon for r in rows]),
        pgcopy.float8([r.lat for r in rows]),
        pgcopy.int4([r.category_id for r in rows]),
        pgcopy.Text([r.petitioner_name or None for r in rows]),
        pgcopy.dates([r.reported_at.astimezone(LOCAL_TZ).date() for r in rows]),
    ]
    raw = session.connection().connection.dbapi_connection
    with raw.cursor() as cur:
        cur.copy_expert(
            "COPY ledger_stage (row_no, client_id, lon, lat, category_id, petitioner_name, day) "
            "FROM STDIN (FORMAT binary)",
            pgcopy.ChunkReader(pgcopy.copy_chunks(columns)),
            size=1 << 20,
        )
    session.execute(text("CREATE INDEX ON ledger_stage USING gist (geom)"))
    session.execute(text("ANALYZE ledger_stage"))


def _database_checks(
    session: Session, rows: list[LedgerRow], tick: Progress, county: str | None = None
) -> None:
    """Mark rows outside every grid of ``county``, already imported, or the same as a
    stored case of ``county`` (None: of any county)."""
    candidates = [r for r in rows if not r.problems]
    if not candidates:
        return
    by_row = {r.row: r for r in candidates}
    tick("核对数据库", 0, 3)
    _stage(session, candidates)
    inside = set(
        session.execute(
            text(
                """
                SELECT DISTINCT s.row_no
                FROM (
                    SELECT geom FROM areas
                    WHERE level = 'grid'
                      AND (CAST(:county AS text) IS NULL OR county_code = :county)
                ) g
                CROSS JOIN LATERAL (
                    SELECT row_no FROM ledger_stage s WHERE ST_Covers(g.geom, s.geom) OFFSET 0
                ) s
                """
            ),
            {"county": county},
        ).scalars()
    )
    for n, r in by_row.items():
        if n not in inside:
            r.add("outside_county", f"位置（{r.place_text[:40]}）不在本县任何网格内")
    tick("核对数据库", 1, 3)
    for n, number in session.execute(
        text(
            "SELECT s.row_no, c.number FROM ledger_stage s JOIN cases c ON c.client_id = s.client_id"
        )
    ):
        r = by_row[n]
        r.duplicate_of = number
        r.add("already_imported", f"已导入过（案件 {number}）")
    tick("核对数据库", 2, 3)
    for n, number in session.execute(
        text(
            """
            SELECT DISTINCT ON (s.row_no) s.row_no, c.number
            FROM ledger_stage s
            JOIN cases c ON c.petitioner_name = s.petitioner_name AND c.category_id = s.category_id
             AND c.reported_at >= (s.day::timestamp AT TIME ZONE 'Asia/Shanghai')
             AND c.reported_at < ((s.day + 1)::timestamp AT TIME ZONE 'Asia/Shanghai')
            WHERE s.petitioner_name <> '' AND (c.client_id IS NULL OR c.client_id <> s.client_id)
              AND (CAST(:county AS text) IS NULL OR c.county_code = :county)
            ORDER BY s.row_no, c.id
            """
        ),
        {"county": county},
    ):
        r = by_row[n]
        if r.duplicate_of is None:
            r.duplicate_of = number
            r.add("duplicate_case", f"与已有案件 {number} 的信访人、日期、类别相同")
    tick("核对数据库", 3, 3)


def check_ledger(
    session: Session,
    path: Path,
    default_crs: str = geo.WGS84,
    filename: str | None = None,
    progress: Progress | None = None,
    county: str | None = None,
) -> ImportReport:
    """The dry run: read, check every row against the file and the database (the cases
    and grids of ``county``: the importing account's); store nothing."""
    report = _check(session, path, default_crs, filename, progress, county)
    session.execute(text("DROP TABLE IF EXISTS ledger_stage"))
    return report


def _check(
    session: Session,
    path: Path,
    default_crs: str,
    filename: str | None,
    progress: Progress | None,
    county: str | None = None,
) -> ImportReport:
    """The dry run's checks, leaving ``ledger_stage`` (the rows the file's checks passed) behind."""
    tick = progress or (lambda stage, done, total: None)
    reference = load_reference(session, county)
    ledger = read_ledger(path, reference, default_crs, filename, progress=tick)
    _database_checks(session, ledger.rows, tick, county)
    return ImportReport(ledger, Counter(r.status_code for r in ledger.rows))


def import_ledger(
    session: Session,
    path: Path,
    user=None,
    import_id: int | None = None,
    default_crs: str = geo.WGS84,
    filename: str | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """The real run: check as the dry run does, then load the good rows; flush, no commit.

    Serialised with other imports by a transaction-level advisory lock, so that two
    runs of the same file cannot both find its rows new.
    """
    tick = progress or (lambda stage, done, total: None)
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _IMPORT_LOCK})
    report = _check(session, path, default_crs, filename, tick, user.county_code if user else None)
    report.dry_run = False
    good = [r for r in report.rows if r.status_code == "ok"]
    if not good:
        session.execute(text("DROP TABLE IF EXISTS ledger_stage"))
        return report
    result = bulk.bulk_insert_cases(
        session, (_bulk_row(r) for r in good), progress=tick, total=len(good)
    )
    report.imported = result.inserted
    if result.outside:  # cannot happen after the check, unless the grids changed meanwhile
        outside = set(result.outside)
        for r in good:
            if r.row in outside:
                r.add("outside_county", "位置不在本县任何网格内")
        report.counts = Counter(r.status_code for r in report.rows)
    if result.first_id is not None:
        # The check's stage holds every row it looked at, the good ones among them; the
        # cases numbered in this load's id range are exactly the good rows loaded.
        session.execute(
            text(
                """
                INSERT INTO case_events (case_id, action, at, actor_id, actor_name, from_status, to_status, note, data)
                SELECT c.id, 'register', c.reported_at, :uid, :uname, NULL, c.status,
                       '台账导入（第 ' || s.row_no || ' 行）',
                       jsonb_build_object('source', 'ledger_import', 'import_id', CAST(:iid AS bigint), 'row', s.row_no)
                FROM ledger_stage s JOIN cases c ON c.client_id = s.client_id
                WHERE c.id BETWEEN :lo AND :hi
                """
            ),
            {
                "uid": user.id if user else None,
                "uname": user.display_name if user else "命令行导入",
                "iid": import_id,
                "lo": result.first_id,
                "hi": result.last_id,
            },
        )
    session.execute(text("DROP TABLE IF EXISTS ledger_stage"))
    session.flush()
    return report


_IN_BULK_ORDER = itemgetter(*bulk.COLUMNS)


def _bulk_row(r: LedgerRow) -> tuple:
    """The row as ``cases.bulk`` takes it: a tuple in ``bulk.COLUMNS`` order, times as datetimes."""
    resolved = r.concluded_at if r.status.value in ("resolved", "closed") else None
    return _IN_BULK_ORDER(
        {
            "ord": r.row,
            "client_id": r.fingerprint,
            "title": r.title,
            "description": r.description,
            "category_id": r.category_id,
            "channel": r.channel.value,
            "case_class": r.case_class.value,
            "people_count": r.people_count,
            "batch_count": 1,
            "lon": r.lon,
            "lat": r.lat,
            "location_approx": r.approx,
            "status": r.status.value,
            "reported_at": r.reported_at,
            "accepted_at": r.accepted_at,
            "concluded_at": r.concluded_at,
            "resolved_at": resolved,
            "due_at": None,
            "opinion": None,
            "satisfaction": None,
            "resolved_level": None,
            "is_first": True,
            "repeat_ord": None,
            "skip_level": False,
            "petitioner_name": r.petitioner_name,
            "petitioner_phone": r.petitioner_phone,
            "petitioner_id_number": r.petitioner_id_number,
        }
    )
