"""The public case number is a STORED generated column: spelt once, by the table

``cases.number`` (``county-YYYY-id``: the grid's county, the year of ``reported_at`` in
Asia/Shanghai, the id zero-padded to seven digits) was written by every statement that
inserts cases: the single report (cases.queries.INSERT_CASE_VALUES, reused by the field
report) and the bulk load's INSERT (cases.bulk). A bulk load that copies whole rows
straight into ``cases`` would have had to spell it a third time, in Python. Now
PostgreSQL computes it from the row's own ``county_code``, ``reported_at`` and ``id``,
whoever inserts the row, and nothing may write it.

A generated column allows only immutable functions: ``to_char`` is not, so the year is
``date_part('year', timezone('Asia/Shanghai', reported_at))`` (the same four digits for
the years 1000-9999; ``to_char`` zero-padded a year below 1000). Every number so far is
the same string (tests/test_case_number.py migrates down and up and compares). One
difference, on purpose: an id of eight digits or more is written in full, where
``lpad(id::text, 7, '0')`` cut it to its first seven digits (a number already taken by
a lower id, i.e. a unique violation once ids reached 10,000,000).

Cost, measured at a million rows on this two-core machine: the expression alone takes
about 0.6 s per million rows (the ``to_char`` form 0.74 s; an ``extract``/``greatest``
form 1.35 s); a stored generated column of any expression also costs PostgreSQL 15 a
copy of every inserted row (about 1.8 s per million rows of ``cases``). A bulk load pays
that back by copying its rows straight into ``cases`` (cases.bulk).

``reported_at`` is never changed after the insert by the app (the number would change
with it). A column cannot become a generated one in place: it is dropped and added
again (the table is rewritten once), with its unique constraint ``uq_cases_number``.

Revision ID: k01
Revises: u01
"""

from __future__ import annotations

from alembic import op

revision = "k01"
down_revision = "u01"
branch_labels = None
depends_on = None

NUMBER_SQL = (
    "(county_code || '-' || date_part('year', timezone('Asia/Shanghai', reported_at))::integer::text "
    "|| '-' || CASE WHEN id < 10000000 THEN lpad(id::text, 7, '0') ELSE id::text END)"
)
# What the inserts wrote before (and what a downgrade writes again).
OLD_NUMBER_SQL = (
    "county_code || '-' || to_char(reported_at AT TIME ZONE 'Asia/Shanghai', 'YYYY') "
    "|| '-' || lpad(id::text, 7, '0')"
)


def upgrade() -> None:
    op.execute("ALTER TABLE cases DROP CONSTRAINT uq_cases_number")
    op.execute("ALTER TABLE cases DROP COLUMN number")
    op.execute(
        f"ALTER TABLE cases ADD COLUMN number varchar(32) NOT NULL "
        f"GENERATED ALWAYS AS ({NUMBER_SQL}) STORED"
    )
    op.execute("ALTER TABLE cases ADD CONSTRAINT uq_cases_number UNIQUE (number)")


def downgrade() -> None:
    op.execute("ALTER TABLE cases DROP CONSTRAINT uq_cases_number")
    op.execute("ALTER TABLE cases DROP COLUMN number")
    op.execute("ALTER TABLE cases ADD COLUMN number varchar(32)")
    op.execute(f"UPDATE cases SET number = {OLD_NUMBER_SQL}")
    op.execute("ALTER TABLE cases ALTER COLUMN number SET NOT NULL")
    op.execute("ALTER TABLE cases ADD CONSTRAINT uq_cases_number UNIQUE (number)")
