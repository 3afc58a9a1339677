"""Stops as the people looking at them may see them, and the plan map's data.

Personal data on a plan follows one rule: the petitioner's name and phone number are
shown whole only to the person a stop is assigned to, and only once the plan is
published (that is when they need them to knock on the door); everyone else,
planners included, sees them masked. ID numbers never appear on a plan.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from webapp.auth.masking import mask_name, mask_phone
from webapp.cases.vocab import CHANNEL_LABELS, STATUS_LABELS, Satisfaction
from webapp.visits.builders import MapRoute, MapStop, PlanMap, colour_for, dash_for
from webapp.visits.models import STATE_LABELS, LegKind, TargetKind

WEEKDAYS = "一二三四五六日"


def day_label(d: date) -> str:
    return f"{d.month}月{d.day}日（周{WEEKDAYS[d.weekday()]}）"


def distance_label(metres: float | None) -> str:
    if metres is None:
        return ""
    return f"{metres:.0f} 米" if metres < 1000 else f"{metres / 1000:.1f} 公里"


def sees_contact(row, viewer_id: int | None, published: bool) -> bool:
    """Whether the viewer sees the petitioner's name and phone of this stop unmasked.

    ``viewer_id`` None: a planner's page, masked for everyone (see :data:`ON_A_PLAN`).
    """
    return (
        viewer_id is not None
        and published
        and row.kind == TargetKind.CASE.value
        and row.user_id == viewer_id
    )


# The viewer of a plan's own pages (the plan, a stop): contacts masked even for a planner
# who walks some of its stops (a township leader may do both), who sees them whole on the
# phone page and their own sheet, where each view is logged (``view_visit_contacts``).
ON_A_PLAN = None


@dataclass(frozen=True)
class StopView:
    id: int
    plan_id: int
    kind: str
    kind_label: str
    seq: int | None
    title: str
    subtitle: str
    grid_name: str
    village_name: str
    score: float
    reasons: list
    follow_up: bool
    user_id: int | None
    user_name: str | None
    day: date | None
    leg: str
    leg_m: float | None
    leg_kind: str | None
    state: str
    state_label: str
    unassigned_reason: str | None
    case_id: int | None
    case_number: str | None
    petitioner_name: str | None
    petitioner_phone: str | None
    contact_masked: bool
    lon: float
    lat: float
    last_note: str | None
    last_satisfaction: str | None
    new_case_number: str | None
    added_by_hand: bool

    @property
    def leg_text(self) -> str:
        """'距出发点 300 米' for the first stop of a day, '距上一站 …' for the others."""
        if not self.leg:
            return ""
        return ("距出发点 " if self.seq == 1 else "距上一站 ") + self.leg


def stop_view(row, viewer_id: int | None, published: bool) -> StopView:
    unmasked = sees_contact(row, viewer_id, published)
    if row.kind == TargetKind.CASE.value:
        title = f"{row.case_number} {row.case_title}"
        bits = [row.category_name or "", STATUS_LABELS.get(row.case_status, row.case_status or "")]
        if row.case_channel:
            bits.append(CHANNEL_LABELS.get(row.case_channel, row.case_channel))
        subtitle = " · ".join(b for b in bits if b)
    else:
        title = f"网格巡访：{row.grid_name}"
        subtitle = row.village_name or ""
    name, phone = row.petitioner_name, row.petitioner_phone
    if not unmasked:
        name, phone = mask_name(name), mask_phone(phone)
    return StopView(
        id=row.id,
        plan_id=row.plan_id,
        kind=row.kind,
        kind_label=("案件回访" if row.follow_up else "案件走访")
        if row.kind == "case"
        else "网格巡访",
        seq=row.seq,
        title=title,
        subtitle=subtitle,
        grid_name=row.grid_name,
        village_name=row.village_name or "",
        score=row.score,
        reasons=list(row.reasons or []),
        follow_up=row.follow_up,
        user_id=row.user_id,
        user_name=row.user_name,
        day=row.day,
        leg=distance_label(row.leg_m),
        leg_m=row.leg_m,
        leg_kind=row.leg_kind,
        state=row.state,
        state_label=STATE_LABELS.get(row.state, row.state),
        unassigned_reason=row.unassigned_reason,
        case_id=row.case_id,
        case_number=row.case_number,
        petitioner_name=name,
        petitioner_phone=phone,
        contact_masked=not unmasked,
        lon=row.lon,
        lat=row.lat,
        last_note=row.last_note,
        last_satisfaction=Satisfaction(row.last_satisfaction).label
        if row.last_satisfaction
        else None,
        new_case_number=row.new_case_number,
        added_by_hand=row.added_by_hand,
    )


@dataclass(frozen=True)
class DayGroup:
    user_id: int
    user_name: str
    day: date
    stops: list[StopView]

    @property
    def length_m(self) -> float:
        return sum(s.leg_m or 0.0 for s in self.stops)

    @property
    def length_km(self) -> str:
        """The day's walk in kilometres, as shown: "3.4 公里"."""
        return f"{self.length_m / 1000:.1f} 公里"

    @property
    def by_road(self) -> bool:
        """Whether the day's route was measured along roads (some legs may still be straight)."""
        return any(s.leg_kind == LegKind.ROAD.value for s in self.stops)

    @property
    def no_path_legs(self) -> int:
        return sum(s.leg_kind == LegKind.NO_PATH.value for s in self.stops)

    @property
    def route_label(self) -> str:
        """How the route was measured: "沿道路", "直线", or along roads with straight gaps."""
        if self.no_path_legs:
            return f"沿道路（{self.no_path_legs} 段道路不连通，按直线计）"
        return "沿道路" if self.by_road else "直线"

    @property
    def label(self) -> str:
        return f"{self.user_name} · {day_label(self.day)}"


def by_person_day(views: list[StopView]) -> list[DayGroup]:
    """Group assigned stops by person and day (in the order given)."""
    groups: dict[tuple[int, date], list[StopView]] = defaultdict(list)
    names: dict[int, str] = {}
    for v in views:
        if v.user_id is None:
            continue
        groups[(v.user_id, v.day)].append(v)  # type: ignore[index]
        names[v.user_id] = v.user_name or ""
    return [DayGroup(u, names[u], d, s) for (u, d), s in groups.items()]


def map_data(
    groups: list[DayGroup],
    starts: dict[int, tuple[float, float, str]],
    unassigned: list[StopView],
    outline: dict,
    person_order: list[int],
    tiles: str | None = None,
    attribution: str = "",
    paths: dict[int, list[list[float]]] | None = None,
) -> PlanMap:
    """The plan map's plain data: one route per person and day, coloured per person.

    ``paths`` holds the road path of each leg that has one (stop id → [[lon, lat], ...]);
    the other legs are drawn straight.
    """
    paths = paths or {}
    colour = {uid: colour_for(i) for i, uid in enumerate(person_order)}
    day_index: dict[int, list[date]] = defaultdict(list)
    for g in groups:
        day_index[g.user_id].append(g.day)
    routes = []
    for g in groups:
        lon, lat, label = starts[g.user_id]
        routes.append(
            MapRoute(
                label=g.label,
                start_lon=lon,
                start_lat=lat,
                start_label=label,
                stops=tuple(
                    MapStop(s.lon, s.lat, s.title, _detail(s), s.seq, s.state) for s in g.stops
                ),
                colour=colour.get(g.user_id, colour_for(0)),
                length_m=g.length_m,
                dash=dash_for(sorted(day_index[g.user_id]).index(g.day)),
                path=_day_path((lat, lon), g.stops, paths),
                route_label=g.route_label,
            )
        )
    loose = tuple(MapStop(s.lon, s.lat, s.title, _detail(s)) for s in unassigned)
    return PlanMap(tuple(routes), outline, loose, tiles, attribution)


def _day_path(
    start: tuple[float, float], stops: list[StopView], paths: dict[int, list[list[float]]]
) -> tuple[tuple[float, float], ...]:
    """The line walked in a day as (lat, lon): road legs along their path, others straight."""
    out = [start]
    for s in stops:
        leg = paths.get(s.id)
        if leg:
            out.extend((lat, lon) for lon, lat in leg)
        else:
            out.append((s.lat, s.lon))
    return tuple(p for i, p in enumerate(out) if i == 0 or p != out[i - 1])


def _detail(s: StopView) -> str:
    reasons = "；".join(r["text"] for r in s.reasons)
    state = f"【{s.state_label}】" if s.state != "pending" else ""
    return f"{state}{s.kind_label} · {s.grid_name} · 得分 {s.score:g}：{reasons}"
