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

from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
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
    return _Directory(people).tiers(task)


class _Directory:
    """People indexed by their area code and id, so a task finds its people in O(levels)."""

    def __init__(self, people: Sequence[Person]) -> None:
        self.by_area: dict[str, list[Person]] = defaultdict(list)
        self.leaders: dict[int, Person] = {}
        for p in people:
            if p.role in AREA_ROLES:
                self.by_area[p.area_code].append(p)
            elif p.role == LEADER_ROLE:
                self.leaders[p.user_id] = p
        self.lengths = sorted({len(code) for code in self.by_area}, reverse=True)

    def tiers(self, task: Task) -> list[list[Person]]:
        def allowed(p: Person) -> bool:
            return not (task.accused_unit and p.unit and p.unit == task.accused_unit)

        out: list[list[Person]] = []
        leader = self.leaders.get(task.leader_id) if task.leader_id is not None else None
        if leader is not None and allowed(leader):
            out.append([leader])
        for length in self.lengths:
            if length > len(task.grid_code):
                continue
            group = [p for p in self.by_area.get(task.grid_code[:length], ()) if allowed(p)]
            if group:
                out.append(group)
        return out


@dataclass(frozen=True)
class Room:
    """The most targets that could ever be assigned, by who could take them.

    Targets that exactly the same people may take compete for the same places: of
    those, only the best ``places`` (the people's capacity over the plan) can be
    assigned, since each earlier one either took a place from them or found them all
    full, and a full person stays full. Ranking can stop there, group by group (a
    target left out that way is unassigned in :func:`assign` whatever else is on the
    plan, and leaving out unassigned targets changes no one else's placement).

    The people of a target are those of its grid (``areas``: grid code → group
    number and places), with the case's leader in charge when on the plan
    (``leaders``: user id → places), less anyone whose unit the case accuses: a case
    that accuses one of ``units`` is grouped with the cases accusing that unit only.
    """

    areas: dict[str, tuple[int, int]]
    leaders: dict[int, int]
    units: frozenset[str]


def room(people: Sequence[Person], grid_codes: Iterable[str], days: int) -> Room:
    """The groups and places of :class:`Room` for ``people`` over ``days`` days."""
    directory = _Directory(people)
    groups: dict[tuple[int, ...], int] = {}
    areas: dict[str, tuple[int, int]] = {}
    for code in grid_codes:
        walkers = [p for group in directory.tiers(Task(None, code)) for p in group]
        ids = tuple(sorted(p.user_id for p in walkers))
        places = sum(p.capacity for p in walkers) * days
        areas[code] = (groups.setdefault(ids, len(groups)), places)
    leaders = {uid: p.capacity * days for uid, p in directory.leaders.items()}
    return Room(areas, leaders, frozenset(p.unit for p in people if p.unit))


def assign(
    tasks: Sequence[Task], people: Sequence[Person], days: Sequence[date]
) -> list[Placement]:
    """Place ``tasks`` (best first) on people and days; return one placement per task.

    Never puts more than a person's capacity on one of their days. Days fill in order,
    so each person keeps a pointer to their first day with room.
    """
    directory = _Directory(people)
    load: dict[tuple[int, date], int] = {}
    total: dict[int, int] = {p.user_id: 0 for p in people}
    first_free: dict[int, int] = {p.user_id: 0 for p in people}
    capacity = {p.user_id: p.capacity for p in people}
    n_days = len(days)

    def free_day(uid: int) -> int | None:
        i = first_free[uid]
        while i < n_days and load.get((uid, days[i]), 0) >= capacity[uid]:
            i += 1
        first_free[uid] = i
        return i if i < n_days else None

    out = []
    for task in tasks:
        groups = directory.tiers(task)
        placed = None
        for group in groups:
            best = None
            for p in group:
                i = free_day(p.user_id)
                if i is None:
                    continue
                rank = (i, total[p.user_id], p.user_id)
                if best is None or rank < best[0]:
                    best = (rank, p)
            if best is not None:
                (i, _, _), p = best
                day = days[i]
                load[(p.user_id, day)] = load.get((p.user_id, day), 0) + 1
                total[p.user_id] += 1
                placed = Placement(task.key, p.user_id, day)
                break
        if placed is None:
            placed = Placement(task.key, None, None, ALL_FULL if groups else NO_ONE)
        out.append(placed)
    return out
