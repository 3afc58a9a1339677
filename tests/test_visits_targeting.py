"""Scoring visit targets: a hand-made set whose ranking is written down, weights, reasons."""

from __future__ import annotations

import pytest

from webapp.errors import AppError
from webapp.visits.targeting import (
    Candidate,
    Facts,
    Rules,
    Weights,
    grids_without_case_targets,
    points,
    rank,
    score,
    with_hot_spot,
)


def case(case_id: int, grid: str = "410726100001001", **facts) -> Candidate:
    return Candidate("case", grid, 114.2, 35.2, Facts(kind="case", **facts), case_id=case_id)


def grid(code: str, **facts) -> Candidate:
    return Candidate("grid", code, 114.2, 35.2, Facts(kind="grid", **facts))


# With the default weights (open 10, overdue 20, repeat 8 per repeat, dissatisfied 25,
# follow-up due 15, hot spot 15, unvisited 3 per 30 days up to 180, leader backlog 20):
HAND_MADE = [
    # A: open, overdue, petitioned three times, visited 60 days ago: 10 + 20 + 16 + 6 = 52
    case(1, open=True, overdue_days=40, repeats=2, unvisited_days=60, visited_before=True),
    # B: concluded and dissatisfied, never visited since raised 90 days ago: 25 + 15 + 9 = 49
    case(2, dissatisfied=True, follow_up_due=True, unvisited_days=90),
    # C: a leader's case open for 400 days in a 99 % hot spot, visited 3 days ago:
    #    10 + 15 + 0.3 + 20 = 45.3
    case(3, open=True, hot_spot_bin=3, unvisited_days=3, visited_before=True, leader_case_days=400),
    # D: a grid nobody ever visited: 3 * 6 = 18
    grid("410726100001002"),
    # E: open, visited 10 days ago: 10 + 1 = 11
    case(5, open=True, unvisited_days=10, visited_before=True),
    # F: a grid visited 45 days ago, in a hot spot at only 90 %: 4.5 (90 % does not count)
    grid("410726100001003", unvisited_days=45, visited_before=True, hot_spot_bin=1),
    # G: nothing to visit for (a closed case visited today): not a target at all
    case(7, unvisited_days=0, visited_before=True),
]


def test_hand_made_ranking():
    ranked = rank(HAND_MADE, Weights())
    assert [t.key for t in ranked] == [
        ("case", 1),
        ("case", 2),
        ("case", 3),
        ("grid", "410726100001002"),
        ("case", 5),
        ("grid", "410726100001003"),
    ]
    assert [t.score for t in ranked] == [52.0, 49.0, 45.3, 18.0, 11.0, 4.5]


def test_changed_weights_change_the_ranking():
    # A planner who cares about hot spots and backlog more than overdue cases.
    weights = Weights.parse({"w_overdue": "0", "w_hot_spot": "40", "w_leader_backlog": "40"})
    ranked = rank(HAND_MADE, weights)
    assert [t.key for t in ranked][:3] == [("case", 3), ("case", 2), ("case", 1)]
    assert ranked[0].score == 10 + 40 + 0.3 + 40


def test_reasons_are_readable_and_add_up():
    s = score(HAND_MADE[0].facts, Weights())
    texts = [r.text for r in s.reasons]
    assert texts == ["已超过办理期限 40 天", "重复信访 2 次", "案件尚未办结", "已 60 天未走访"]
    assert sum(r.points for r in s.reasons) == s.points
    assert score(HAND_MADE[3].facts, Weights()).reasons[0].text == "网格内没有任何走访记录"
    never = score(HAND_MADE[1].facts, Weights()).reasons
    assert "首次信访后 90 天未曾走访" in [r.text for r in never]
    hot = score(HAND_MADE[2].facts, Weights()).reasons
    assert "所在网格为 Gi* 热点（99% 置信度）" in [r.text for r in hot]
    assert "包案领导积案，首次信访已 400 天" in [r.text for r in hot]


def test_caps_on_repeats_and_unvisited_days():
    many = score(Facts(kind="case", repeats=12, unvisited_days=0), Weights()).points
    assert many == 8 * 5  # at most five repeats count
    long = score(Facts(kind="grid", unvisited_days=900, visited_before=True), Weights()).points
    assert long == 3 * 6  # at most 180 days count


def test_backlog_needs_the_configured_age():
    facts = Facts(kind="case", open=True, leader_case_days=200)
    assert "leader_backlog" not in [r.factor for r in score(facts, Weights()).reasons]
    assert "leader_backlog" in [
        r.factor for r in score(facts, Weights(), Rules(backlog_days=180)).reasons
    ]


def test_zero_weights_drop_reasons_and_targets():
    weights = Weights.parse({k: 0 for k in Weights().as_dict()})
    assert rank(HAND_MADE, weights) == []


@pytest.mark.parametrize(
    "raw, field",
    [
        ({"w_open": "abc"}, "open"),
        ({"w_overdue": "-1"}, "overdue"),
        ({"w_repeat": "1e9"}, "repeat"),
        ({"w_hot_spot": "nan"}, "hot_spot"),
    ],
    ids=["not-a-number", "negative", "too-large", "nan"],
)
def test_bad_weights_are_refused_in_chinese(raw, field):
    with pytest.raises(AppError) as err:
        Weights.parse(raw)
    assert err.value.code == "invalid_weights" and field in err.value.details
    assert "权重" in err.value.message


def test_missing_weights_keep_their_defaults():
    w = Weights.parse({"w_open": "12", "w_unvisited": ""}, {"open": 1, "unvisited": 7})
    assert w.as_dict()["open"] == 12 and w.as_dict()["unvisited"] == 7


def test_grid_targets_only_where_no_case_leads():
    cases = [case(1, grid="A1"), case(2, grid="A1"), case(3, grid="B1")]
    grids = [grid("A1"), grid("B1"), grid("C1")]
    assert [g.grid_code for g in grids_without_case_targets(cases, grids)] == ["C1"]


def test_hot_spot_bins_fill_in_by_grid():
    c = with_hot_spot(case(1, grid="G1", open=True), {"G1": 3, "G2": 2})
    assert c.facts.hot_spot_bin == 3
    assert with_hot_spot(case(2, grid="G9"), {"G1": 3}).facts.hot_spot_bin == 0


def test_ties_are_broken_stably():
    a, b = case(9, open=True), case(4, open=True)
    g = grid("Z", unvisited_days=100, visited_before=True)  # 10 points, like the cases
    assert [t.key for t in rank([g, a, b], Weights())] == [("case", 4), ("case", 9), ("grid", "Z")]


@pytest.mark.parametrize("seed", range(20))
def test_the_fast_score_is_the_explained_score(seed):
    import random

    rng = random.Random(seed)
    weights = Weights.parse({k: str(rng.choice([0, 0.5, 3, 10, 25])) for k in Weights().as_dict()})
    for _ in range(200):
        facts = Facts(
            kind=rng.choice(["case", "grid"]),
            open=rng.random() < 0.5,
            overdue_days=rng.choice([0, 0, 3, 40]),
            repeats=rng.choice([0, 0, 1, 7]),
            dissatisfied=rng.random() < 0.2,
            follow_up_due=rng.random() < 0.2,
            hot_spot_bin=rng.choice([-2, 0, 0, 1, 2, 3]),
            unvisited_days=rng.choice([None, 0, 7, 45, 400]),
            visited_before=rng.random() < 0.5,
            leader_case_days=rng.choice([0, 100, 800]),
        )
        explained = score(facts, weights)
        assert points(facts, weights.as_dict()) == explained.points
        assert round(sum(r.points for r in explained.reasons), 1) == explained.points
