"""The area hierarchy: county → township → village/community → grid."""

from __future__ import annotations

import enum
from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import CheckConstraint, DateTime, Float, ForeignKey, Index, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from webapp.db import Base


class AreaLevel(enum.StrEnum):
    COUNTY = "county"
    TOWNSHIP = "township"
    VILLAGE = "village"
    GRID = "grid"

    @property
    def label(self) -> str:
        return LEVEL_LABELS[self]

    @property
    def parent(self) -> AreaLevel | None:
        order = list(AreaLevel)
        i = order.index(self)
        return order[i - 1] if i else None

    @property
    def child(self) -> AreaLevel | None:
        order = list(AreaLevel)
        i = order.index(self)
        return order[i + 1] if i + 1 < len(order) else None


LEVEL_LABELS = {
    AreaLevel.COUNTY: "县",
    AreaLevel.TOWNSHIP: "乡镇",
    AreaLevel.VILLAGE: "村(社区)",
    AreaLevel.GRID: "网格",
}

# Length of the statistical area code at each level; a grid appends its own number
# (at least one digit) to its village's 12 digits.
CODE_LENGTH = {
    AreaLevel.COUNTY: 6,
    AreaLevel.TOWNSHIP: 9,
    AreaLevel.VILLAGE: 12,
}
GRID_CODE_MAX = 20


class Area(Base):
    """One area of any level, with its boundary in WGS84 and its ancestors' codes.

    ``county_code``, ``township_code`` and ``village_code`` repeat the codes of the
    area's ancestors (and its own at its level), so that members of any level are
    found by an equality on an indexed column, and cases can carry the same codes.
    """

    __tablename__ = "areas"
    __table_args__ = (
        CheckConstraint("level IN ('county','township','village','grid')", name="level"),
        CheckConstraint("code ~ '^[0-9]{6,20}$'", name="code_digits"),
        CheckConstraint("population IS NULL OR population >= 0", name="population"),
        CheckConstraint("households IS NULL OR households >= 0", name="households"),
        Index("ix_areas_code_prefix", "code", postgresql_ops={"code": "text_pattern_ops"}),
        Index("ix_areas_level_township", "level", "township_code"),
        Index("ix_areas_level_village", "level", "village_code"),
        Index(
            "ix_areas_grid_geom",
            "geom",
            postgresql_using="gist",
            postgresql_where="level = 'grid'",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(GRID_CODE_MAX), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    county_code: Mapped[str] = mapped_column(String(6))
    township_code: Mapped[str | None] = mapped_column(String(9))
    village_code: Mapped[str | None] = mapped_column(String(12))
    population: Mapped[int | None] = mapped_column(Integer)
    households: Mapped[int | None] = mapped_column(Integer)
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=False)
    # A point inside the area (ST_PointOnSurface): where an approximate case sits.
    label_point = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    area_m2: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    def __repr__(self) -> str:
        return f"<Area {self.level} {self.code} {self.name}>"


class Setting(Base):
    """A small key/value store for facts about this deployment (e.g. demo data loaded)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(2000))
