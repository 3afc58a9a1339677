"""Giving ranked targets to people and days, never beyond anyone's daily capacity (pure).

Who takes a target, in order of preference:

1. the leader in charge of the case (包案领导), when that leader is on the plan;
2. the people whose own area holds the target's grid, the most local first: the
   grid's worker, then the village's informant, then the township leader (people of
   one level share by load);
3. nobody: the target stays on the plan unassigned, with the reason.

A leader in charge takes only the cases they own. Nobody is given a case that
accuses the body they work for (第30条). Targets are placed in score order on the
earliest day with room, so the most urgent visits come first; a person whose days
are full passes the target to the next in line, and a target nobody has room for
overflows and is reported, never squeezed in.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import date

# Roles that walk the grids of their own area.
AREA_ROLES = ("grid_worker", "village_informant", "township_leader")
LEADER_ROLE = "leader_in_charge"


@dataclass(frozen=True)
class Person:
    user_id: int
    role: str
    area_code: str
    capacity: int  # visits a day
    unit: str | None = None
    name: str = ""


@dataclass(frozen=True)
class Task:
    """What assignment needs to know about a target."""

    key: Hashable
    grid_code: str
    leader_id: int | None = None
    accused_unit: str | None = None


@dataclass(frozen=True)
class Placement:
    key: Hashable
    user_id: int | None
    day: date | None
    reason: str | None = None  # why it is unassigned

    @property
    def assigned(self) -> bool:
        return self.user_id is not None


NO_ONE = "计划人员中没有负责该网格的人员"
ALL_FULL = "负责人员在计划期内已排满"


def tiers(task: Task, people: Sequence[Person]) -> list[list[Person]]:
    """The people who may take ``task``, grouped by preference (best group first)."""
    allowed = [
        p for p in people if not (task.accused_unit and p.unit and p.unit == task.accused_unit)
    ]
    out: list[list[Person]] = []
    if task.leader_id is not None:
        leader = [p for p in allowed if p.user_id == task.leader_id and p.role == LEADER_ROLE]
        if leader:
            out.append(leader)
    local = [p for p in allowed if p.role in AREA_ROLES and task.grid_code.startswith(p.area_code)]
    for length in sorted({len(p.area_code) for p in local}, reverse=True):
        out.append([p for p in local if len(p.area_code) == length])
    return out


def assign(
    tasks: Sequence[Task], people: Sequence[Person], days: Sequence[date]
) -> list[Placement]:
    """Place ``tasks`` (best first) on people and days; return one placement per task.

    Never puts more than a person's capacity on one of their days.
    """
    load: dict[tuple[int, date], int] = {}
    total: dict[int, int] = {p.user_id: 0 for p in people}
    out = []
    for task in tasks:
        groups = tiers(task, people)
        placed = None
        for group in groups:
            best = None
            for p in group:
                day = next((d for d in days if load.get((p.user_id, d), 0) < p.capacity), None)
                if day is None:
                    continue
                rank = (day, total[p.user_id], p.user_id)
                if best is None or rank < best[0]:
                    best = (rank, p, day)
            if best is not None:
                _, p, day = best
                load[(p.user_id, day)] = load.get((p.user_id, day), 0) + 1
                total[p.user_id] += 1
                placed = Placement(task.key, p.user_id, day)
                break
        if placed is None:
            placed = Placement(task.key, None, None, ALL_FULL if groups else NO_ONE)
        out.append(placed)
    return out
