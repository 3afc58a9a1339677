"""100,000 ledger rows check and import in minutes (the issue's figure), in one transaction."""

from __future__ import annotations

import csv
import time

import numpy as np
import pytest
from sqlalchemy import text

from tests.test_ledger_import import HEADER
from webapp.exchange.importer import import_ledger

ROWS = 100_000


@pytest.mark.slow
def test_100k_rows_import_in_minutes(session, tmp_path):
    points = session.execute(
        text(
            "SELECT ST_X(label_point), ST_Y(label_point) FROM areas WHERE level = 'grid' ORDER BY code"
        )
    ).all()
    cats = session.execute(text("SELECT name FROM categories ORDER BY id")).scalars().all()
    rng = np.random.default_rng(1)
    path = tmp_path / "big.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        for i in range(ROWS):
            lon, lat = points[int(rng.integers(len(points)))]
            day = f"2025-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}"
            w.writerow(
                [
                    i,
                    day,
                    f"批量{i}",
                    f"139{i:08d}",
                    "",
                    cats[i % len(cats)],
                    "来访",
                    "1",
                    "",
                    "",
                    lon,
                    lat,
                    "WGS84",
                    f"批量导入事项{i}",
                    "诉求",
                    "办理中",
                    "",
                ]
            )
    before = session.execute(text("SELECT count(*) FROM cases")).scalar_one()
    t0 = time.perf_counter()
    report = import_ledger(session, path)
    elapsed = time.perf_counter() - t0
    print(f"\n{ROWS} rows checked and imported in {elapsed:.1f} s")
    assert report.imported == ROWS, report.summary()
    assert session.execute(text("SELECT count(*) FROM cases")).scalar_one() == before + ROWS
    assert elapsed < 300
