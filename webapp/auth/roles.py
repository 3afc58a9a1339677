"""The roles of the people who use GridCase, and the level of area each one holds."""

from __future__ import annotations

import enum

from webapp.grid.models import AreaLevel


class Role(enum.StrEnum):
    GRID_WORKER = "grid_worker"
    VILLAGE_INFORMANT = "village_informant"
    TOWNSHIP_LEADER = "township_leader"
    COUNTY_STAFF = "county_staff"
    LEADER_IN_CHARGE = "leader_in_charge"
    PLANNER = "planner"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]

    @property
    def area_levels(self) -> tuple[AreaLevel, ...]:
        """The levels of area an account of this role may be given."""
        return ROLE_AREA_LEVELS[self]


ROLE_LABELS = {
    Role.GRID_WORKER: "网格员",
    Role.VILLAGE_INFORMANT: "村(社区)信访信息员",
    Role.TOWNSHIP_LEADER: "乡镇(街道)领导",
    Role.COUNTY_STAFF: "县信访局工作人员",
    Role.LEADER_IN_CHARGE: "包案领导",
    Role.PLANNER: "研判人员",
    Role.ADMIN: "管理员",
}

ROLE_AREA_LEVELS = {
    Role.GRID_WORKER: (AreaLevel.GRID,),
    Role.VILLAGE_INFORMANT: (AreaLevel.VILLAGE,),
    Role.TOWNSHIP_LEADER: (AreaLevel.TOWNSHIP,),
    Role.COUNTY_STAFF: (AreaLevel.COUNTY,),
    Role.LEADER_IN_CHARGE: (AreaLevel.COUNTY, AreaLevel.TOWNSHIP),
    Role.PLANNER: (AreaLevel.COUNTY, AreaLevel.TOWNSHIP),
    Role.ADMIN: (AreaLevel.COUNTY,),
}

# Roles that work a whole county's cases at the desk.
COUNTY_ROLES = frozenset({Role.COUNTY_STAFF, Role.ADMIN})
