"""New databases order text by code point with collation C (fast comparisons), which is
the order the cluster's C.UTF-8 gave: nothing shown changes order."""

from __future__ import annotations

import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from webapp.db import create_database, drop_database

WORDS = [
    "张三",
    "李四",
    "王五",
    "赵六",
    "410726100",
    "410726-2024-0000001",
    "Zeta",
    "alpha",
    "Ａ全角",
    "东岗村",
    "城关镇",
    "41072610",
    "b",
    "_x",
    "é",
    "ü",
    "𠀀",
]


def test_a_new_database_orders_text_by_code_point_in_collation_c(server_url):
    url = make_url(server_url).set(database=f"gridcase_collation_{uuid.uuid4().hex[:8]}")
    url = url.render_as_string(hide_password=False)
    assert create_database(url) is True
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            collate, encoding = conn.execute(
                text(
                    "SELECT datcollate, pg_encoding_to_char(encoding) FROM pg_database "
                    "WHERE datname = current_database()"
                )
            ).one()
            ordered = (
                conn.execute(
                    text("SELECT w FROM unnest(CAST(:w AS text[])) w ORDER BY w"), {"w": WORDS}
                )
                .scalars()
                .all()
            )
            # The order the cluster's C.UTF-8 (when the server has it) gives is the same.
            has_c_utf8 = conn.execute(
                text("SELECT count(*) FROM pg_collation WHERE collname = 'C.utf8'")
            ).scalar_one()
            if has_c_utf8:
                before = (
                    conn.execute(
                        text(
                            'SELECT w FROM unnest(CAST(:w AS text[])) w ORDER BY w COLLATE "C.utf8"'
                        ),
                        {"w": WORDS},
                    )
                    .scalars()
                    .all()
                )
                assert before == ordered
    finally:
        engine.dispose()
        drop_database(url)
    assert (collate, encoding) == ("C", "UTF8")
    assert ordered == sorted(WORDS)  # code point order


def test_the_test_databases_were_made_the_same_way(session):
    assert (
        session.execute(
            text("SELECT datcollate FROM pg_database WHERE datname = current_database()")
        ).scalar_one()
        == "C"
    )
