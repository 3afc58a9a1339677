"""Case tallies: the period figures' per-case facts summed per grid (or village and category) and local month.

The database keeps this table equal to a ``GROUP BY`` over ``cases`` in the same
transaction as every write to ``cases``: statement-level triggers on ``cases`` (made by
migration t01, see ``stats.tallies``) subtract the old rows' facts and add the new
ones'. Nothing in the app writes to it; ``stats.queries`` reads it instead of the cases
of whole months when that gives exactly the same numbers.

``heat_tallies`` (migrations w01 and m01, kept by the same triggers) holds the cases and
people per local month, township and fixed cell of the cases' points: what the heat map
sums (``maps.queries.heat_lattice`` re-bins whole months of it to the view's lattice).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.db import Base


def _fact() -> Mapped[int]:
    return mapped_column(Integer, nullable=False, server_default="0")


class TallyFacts:
    """The per-case facts a tally row sums (``stats.tallies`` says what each is)."""

    cases: Mapped[int] = _fact()
    people: Mapped[int] = _fact()
    visit_batches: Mapped[int] = _fact()
    visit_persons: Mapped[int] = _fact()
    resolved: Mapped[int] = _fact()
    followups: Mapped[int] = _fact()
    satisfied: Mapped[int] = _fact()
    due_concluded: Mapped[int] = _fact()
    due_pending: Mapped[int] = _fact()
    on_time: Mapped[int] = _fact()
    first: Mapped[int] = _fact()
    first_once: Mapped[int] = _fact()
    repeats: Mapped[int] = _fact()
    collective: Mapped[int] = _fact()
    skip_level: Mapped[int] = _fact()
    resolved_leveled: Mapped[int] = _fact()
    resolved_village: Mapped[int] = _fact()
    resolved_township: Mapped[int] = _fact()
    resolved_county: Mapped[int] = _fact()
    resolved_above: Mapped[int] = _fact()
    open: Mapped[int] = _fact()
    overdue_pending: Mapped[int] = _fact()


# The facts summed per row, in the tables' column order.
FACT_COLUMNS = tuple(TallyFacts.__annotations__)


class CaseTally(TallyFacts, Base):
    """The facts of the cases reported in one local calendar month in one grid."""

    __tablename__ = "case_tallies"
    __table_args__ = (
        # "Is any stored time ahead of as_of?" reads this (almost always empty) index.
        Index("ix_case_tallies_ahead_at", "ahead_at", postgresql_where="ahead_at IS NOT NULL"),
        # The rows with open cases (about half at a million cases): "open", "overdue" and
        # "backlog" sum them over every month (stats.queries).
        Index("ix_case_tallies_open", "county_code", "township_code", postgresql_where="open <> 0"),
    )

    county_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    township_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    village_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    grid_code: Mapped[str] = mapped_column(String(20), primary_key=True)
    # The first day of the month (Asia/Shanghai) the cases were reported in.
    month: Mapped[date] = mapped_column(Date, primary_key=True)

    # The latest reported/concluded/resolved time of the row's cases that was ahead of
    # the database clock when written (NULL: none). Never lowered while the row lives.
    ahead_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CaseCategoryTally(TallyFacts, Base):
    """The facts of the cases of one category reported in one local month in one village.

    Kept by the same triggers and bulk function as :class:`CaseTally` (migration x01),
    for statistics filtered or grouped by category: at a million cases a grid ×
    category key would hold about one case a row, a village × category key about six.
    Its primary key leads with the month and category so that the typical question (a
    county's or township's month, a few categories) is one range of the index. The
    cases are those of ``case_tallies``, so that table's ``ahead_at`` stands for both.
    """

    __tablename__ = "case_category_tallies"
    __table_args__ = (
        # The rows with open cases (a sixth at a million cases), as ix_case_tallies_open.
        Index(
            "ix_case_category_tallies_open",
            "county_code",
            "category_id",
            "township_code",
            postgresql_where="open <> 0",
        ),
    )

    county_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    category_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    township_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    village_code: Mapped[str] = mapped_column(String(12), primary_key=True)


# The heat tally's fixed cells (migrations w01, m01): fine cells per degree of longitude and
# of latitude (about 100 by 93 metres at 35 degrees north), and the side of a coarse cell
# in fine cells (about 500 metres: the county's and a township's view). A point's cell is
# heat_cell(coordinate, per degree, scale) in SQL.
HEAT_PER_DEGREE_X = 900
HEAT_PER_DEGREE_Y = 1200
HEAT_COARSE = 5


class HeatTally(Base):
    """The cases reported in one local month in one township whose point lies in one fixed cell.

    Cells are coarse (``scale`` :data:`HEAT_COARSE` fine cells a side, about 500 m),
    keyed by the county and the township (village and grid are ''; the key keeps them,
    and ``scale``, so that a finer level could be added without a new table): a cell
    crossing a township border is one row per township, a county view sums them.
    ``cx``/``cy``: the cell's column and row, counted from longitude and latitude 0 in
    cells of its scale. Kept by the case tallies' triggers (w01, which says why there is
    no fine level; m01 keyed it by township).
    """

    __tablename__ = "heat_tallies"

    scale: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    township_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    # The first day of the month (Asia/Shanghai) the cases were reported in.
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    village_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    grid_code: Mapped[str] = mapped_column(String(20), primary_key=True)
    cx: Mapped[int] = mapped_column(Integer, primary_key=True)
    cy: Mapped[int] = mapped_column(Integer, primary_key=True)

    cases: Mapped[int] = _fact()
    people: Mapped[int] = _fact()
