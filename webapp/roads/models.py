"""The road network of a county: road pieces (edges) between junctions (vertices).

A ``roads`` row is one piece of road between two junctions: its ``source`` and
``target`` are ``road_vertices`` ids, set when the county's topology is built after an
import (:func:`webapp.roads.queries.build_topology`). ``length_m`` is the geodesic
length, the cost of walking it either way. Vertices are where pieces meet; stops are
joined to their nearest vertex to route along the network.
"""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import BigInteger, CheckConstraint, Float, ForeignKey, Identity, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.db import Base


class Road(Base):
    """One piece of road between two junctions of a county's network."""

    __tablename__ = "roads"
    __table_args__ = (
        CheckConstraint("length_m >= 0", name="length_m"),
        Index("ix_roads_county_code", "county_code"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    county_code: Mapped[str] = mapped_column(
        String(6), ForeignKey("areas.code", onupdate="CASCADE", ondelete="CASCADE")
    )
    name: Mapped[str | None] = mapped_column(String(200))
    # As the file says: 县道, 村道, residential ...
    kind: Mapped[str | None] = mapped_column(String(50))
    length_m: Mapped[float] = mapped_column(Float)
    source: Mapped[int | None] = mapped_column(BigInteger)
    target: Mapped[int | None] = mapped_column(BigInteger)
    geom = mapped_column(Geometry("LINESTRING", srid=4326, spatial_index=True), nullable=False)


class RoadVertex(Base):
    """A junction (or dead end) of a county's road network; stops snap to the nearest one."""

    __tablename__ = "road_vertices"
    __table_args__ = (Index("ix_road_vertices_county_code", "county_code"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    county_code: Mapped[str] = mapped_column(
        String(6), ForeignKey("areas.code", onupdate="CASCADE", ondelete="CASCADE")
    )
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=True), nullable=False)
