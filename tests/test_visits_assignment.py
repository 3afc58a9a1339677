"""Giving targets to people and days: capacity is never exceeded, preferences hold."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, timedelta

import pytest

from webapp.visits.assignment import ALL_FULL, NO_ONE, Person, Task, assign, room, tiers

VILLAGE = "410726100001"
G1, G2, G3 = VILLAGE + "001", VILLAGE + "002", VILLAGE + "003"
DAYS = [date(2026, 12, 1) + timedelta(days=i) for i in range(3)]


def worker(uid, grid, cap=2, unit=None):
    return Person(uid, "grid_worker", grid, cap, unit)


def test_the_grid_worker_first_then_the_village_then_the_township():
    people = [
        Person(3, "township_leader", VILLAGE[:9], 5),
        Person(2, "village_informant", VILLAGE, 5),
        worker(1, G1),
    ]
    groups = tiers(Task("t", G1), people)
    assert [[p.user_id for p in g] for g in groups] == [[1], [2], [3]]
    assert [[p.user_id for p in g] for g in tiers(Task("t", G2), people)] == [[2], [3]]


def test_a_leader_takes_only_their_own_cases_and_takes_them_first():
    leader = Person(9, "leader_in_charge", "410726", 5)
    people = [leader, worker(1, G1)]
    assert tiers(Task("own", G1, leader_id=9), people)[0] == [leader]
    assert all(leader not in g for g in tiers(Task("other", G1, leader_id=None), people))
    assert all(leader not in g for g in tiers(Task("someone else's", G1, leader_id=8), people))


def test_nobody_is_given_a_case_that_accuses_their_unit():
    people = [worker(1, G1, unit="县住建局"), worker(2, G1)]
    placed = assign([Task("t", G1, accused_unit="县住建局")], people, DAYS)
    assert placed[0].user_id == 2


def test_overflow_moves_to_later_days_then_to_the_next_in_line_then_unassigned():
    people = [worker(1, G1, cap=2), Person(2, "village_informant", VILLAGE, 1)]
    tasks = [Task(i, G1) for i in range(9)]
    placed = assign(tasks, people, DAYS)
    assert [(p.user_id, p.day) for p in placed[:6]] == [
        (1, DAYS[0]),
        (1, DAYS[0]),
        (1, DAYS[1]),
        (1, DAYS[1]),
        (1, DAYS[2]),
        (1, DAYS[2]),
    ]
    assert [(p.user_id, p.day) for p in placed[6:]] == [(2, DAYS[0]), (2, DAYS[1]), (2, DAYS[2])]
    more = assign(tasks + [Task(99, G1)], people, DAYS)
    assert more[-1].user_id is None and more[-1].reason == ALL_FULL
    nobody = assign([Task("far", "410726101001001")], people, DAYS)
    assert nobody[0].user_id is None and nobody[0].reason == NO_ONE


def test_people_of_one_level_share_by_load():
    people = [worker(1, G1, cap=3), worker(2, G1, cap=3)]
    placed = assign([Task(i, G1) for i in range(4)], people, DAYS)
    assert Counter(p.user_id for p in placed) == {1: 2, 2: 2}


@pytest.mark.parametrize("seed", range(60))
def test_capacity_is_never_exceeded_on_random_instances(seed):
    rng = random.Random(seed)
    grids = [f"{VILLAGE[:9]}{v:03d}{g:03d}" for v in range(1, 4) for g in range(1, 4)]
    people = []
    uid = 0
    for _ in range(rng.randint(1, 8)):
        uid += 1
        role = rng.choice(
            [
                "grid_worker",
                "grid_worker",
                "village_informant",
                "township_leader",
                "leader_in_charge",
            ]
        )
        area = {
            "grid_worker": rng.choice(grids),
            "village_informant": rng.choice(grids)[:12],
            "township_leader": VILLAGE[:9],
            "leader_in_charge": "410726",
        }[role]
        people.append(Person(uid, role, area, rng.randint(1, 6), rng.choice([None, None, "某局"])))
    days = DAYS[: rng.randint(1, 3)]
    tasks = [
        Task(
            i,
            rng.choice(grids),
            leader_id=rng.choice([None, None, rng.randint(1, uid)]),
            accused_unit=rng.choice([None, None, None, "某局"]),
        )
        for i in range(rng.randint(0, 120))
    ]
    placed = assign(tasks, people, days)
    assert [p.key for p in placed] == [t.key for t in tasks]  # one placement per task, in order
    capacity = {p.user_id: p.capacity for p in people}
    load = Counter((p.user_id, p.day) for p in placed if p.assigned)
    assert all(n <= capacity[u] for (u, _), n in load.items())
    by_id = {p.user_id: p for p in people}
    for task, p in zip(tasks, placed, strict=True):
        if not p.assigned:
            assert p.reason in (ALL_FULL, NO_ONE)
            # unassigned only if everyone allowed to take it is full every day
            for group in tiers(task, people):
                for person in group:
                    assert all(load[(person.user_id, d)] >= person.capacity for d in days)
            continue
        person = by_id[p.user_id]
        assert p.day in days
        assert not (task.accused_unit and person.unit == task.accused_unit)
        if person.role == "leader_in_charge":
            assert task.leader_id == person.user_id
        else:
            assert task.grid_code.startswith(person.area_code)


def _within_room(tasks, room):
    """The tasks that Room keeps, as the ranking statement keeps them (places per group)."""
    seen: Counter = Counter()
    kept = []
    for t in tasks:
        group, places = room.areas[t.grid_code]
        leader = t.leader_id if t.leader_id in room.leaders else None
        unit = t.accused_unit if t.accused_unit in room.units else None
        key = (group, leader, unit)
        seen[key] += 1
        if seen[key] <= places + room.leaders.get(leader, 0):
            kept.append(t)
    return kept


@pytest.mark.parametrize("seed", range(200))
def test_leaving_out_what_room_leaves_out_changes_no_placement(seed):
    """Room's bound holds: every assigned task is kept, and the kept ones are placed alike."""
    rng = random.Random(seed)
    township = VILLAGE[:9]
    villages = [f"{township}{v:03d}" for v in range(1, 4)]
    grids = [f"{v}{g:03d}" for v in villages for g in range(1, 4)]
    units = ["县住建局", "县人社局", ""]
    people = []
    for uid in range(1, rng.randint(1, 9) + 1):
        role = rng.choice(
            [
                "grid_worker",
                "grid_worker",
                "village_informant",
                "township_leader",
                "leader_in_charge",
            ]
        )
        area = {
            "grid_worker": rng.choice(grids),
            "village_informant": rng.choice(villages),
            "township_leader": township,
            "leader_in_charge": "410726",
        }[role]
        people.append(Person(uid, role, area, rng.randint(1, 4), rng.choice([None, None, *units])))
    days = DAYS[: rng.randint(1, 3)]
    tasks = [
        Task(
            i,
            rng.choice(grids),
            leader_id=rng.choice([None, None, None, rng.randint(1, 12)]),
            accused_unit=rng.choice([None, None, None, *units]),
        )
        for i in range(rng.randint(0, 150))
    ]
    placed = {p.key: p for p in assign(tasks, people, days)}
    kept = _within_room(tasks, room(people, grids, len(days)))
    assert {t.key for t in tasks if placed[t.key].assigned} <= {t.key for t in kept}
    assert assign(kept, people, days) == [placed[t.key] for t in kept]


def test_room_groups_grids_by_the_people_who_walk_them():
    people = [
        worker(1, G1, cap=2),
        Person(2, "village_informant", VILLAGE, 3),
        Person(3, "leader_in_charge", "410726", 4),
    ]
    r = room(people, [G1, G2, G3, "410726101001001"], days=2)
    assert r.areas[G2] == r.areas[G3] == (r.areas[G2][0], 6)  # the informant's 3 a day
    assert r.areas[G1][1] == 10 and r.areas[G1][0] != r.areas[G2][0]
    assert r.areas["410726101001001"][1] == 0  # nobody walks it
    assert r.leaders == {3: 8} and r.units == frozenset()
