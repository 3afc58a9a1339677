"""Case pages: the list, due and overdue cases, desk registration, the case file and its actions."""

from __future__ import annotations

import uuid
from datetime import timedelta

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for

from webapp.auth import audit
from webapp.auth.identity import current_user, roles_required
from webapp.auth.permissions import may_reveal_personal_data
from webapp.auth.roles import COUNTY_ROLES
from webapp.cases import presenting, queries, rules, schemas, workflow
from webapp.cases.deadlines import last_day_of, urgency
from webapp.cases.models import Case, Category
from webapp.cases.petitioners import normalize_id_number, normalize_phone
from webapp.db import get_session
from webapp.errors import AppError, wants_json
from webapp.forms import content_hash, form_id, sent_id

bp = Blueprint("cases", __name__, url_prefix="/cases")

COUNTY = tuple(COUNTY_ROLES)


@bp.app_template_filter("due_day")
def due_day(due_at) -> str:
    """The last day of a period that runs out at ``due_at`` (stored as the midnight after it)."""
    return last_day_of(due_at).isoformat() if due_at else ""


def _now(session):
    return queries._db_now(session)


@bp.get("/")
def index():
    user, session = current_user(), get_session()
    filters = schemas.parse_filters(request.args)
    now, county_rules = _now(session), rules.county_rules(user.county_code)
    soon = timedelta(days=county_rules.limits.due_soon_days)
    page = queries.paginate(session, queries.case_list(user, filters, now, soon), filters.page)
    return render_template(
        "cases/index.html",
        page=page,
        filters=filters,
        now=now,
        limits=county_rules.limits,
        urgency=urgency,
        categories=queries.categories(session, active_only=False),
        category_names=queries.category_names(session),
        townships=queries.townships(session, user),
        area_names=queries.area_names(session, {c.township_code for c in page.items}),
    )


@bp.get("/due")
def due():
    user, session = current_user(), get_session()
    now, county_rules = _now(session), rules.county_rules(user.county_code)
    soon = timedelta(days=county_rules.limits.due_soon_days)
    area = schemas.parse_filters(request.args).area
    lists = {
        kind: queries.paginate(
            session,
            queries.case_list(user, schemas.CaseFilters(due=kind, area=area), now, soon)
            .order_by(None)
            .order_by(Case.due_at, Case.id),
            1,
            200,
        )
        for kind in ("overdue", "due_soon")
    }
    codes = {c.township_code for p in lists.values() for c in p.items}
    return render_template(
        "cases/due.html",
        lists=lists,
        by_area=queries.due_by_area(session, user, now, soon),
        now=now,
        area=area,
        limits=county_rules.limits,
        area_names=queries.area_names(session, codes),
        category_names=queries.category_names(session),
    )


# Which field of the desk form a refusal from storing the case belongs to.
_ERROR_FIELDS = {"outside_county": "location", "village_not_found": "location"}


@bp.route("/new", methods=["GET", "POST"])
@roles_required(*COUNTY)
def register():
    user, session = current_user(), get_session()
    categories = queries.categories(session)
    form, errors, status = request.form, {}, 200
    # The form's id: kept while the same form is corrected and sent again, so a resend of
    # it is one case; a new one once it was used for another registration.
    client_id = form_id(form.get("client_id"))
    if request.method == "POST":
        result = schemas.parse_registration(form, {c.id for c in categories})
        errors, status = result.errors, 422
        if result.value is not None:
            try:
                stored = queries.register_case(
                    session, user, result.value, rules.county_rules(user.county_code)
                )
            except AppError as err:
                if err.status not in (409, 422):
                    raise
                session.rollback()
                errors = {_ERROR_FIELDS.get(err.code, "form"): err.message}
                if err.code == "form_resubmitted":
                    client_id, status = str(uuid.uuid4()), 409
            else:
                session.commit()
                return redirect(url_for("cases.detail", case_id=stored.id), 303)
        if wants_json():  # a script posting the form gets the problems with a stable code
            raise AppError(
                "form_resubmitted" if status == 409 else "invalid_form",
                "；".join(errors.values()),
                status,
                "invalid form: " + ", ".join(errors),
                errors,
            )
    return render_template(
        "cases/register.html",
        form=form,
        errors=errors,
        categories=categories,
        channels=schemas.DESK_CHANNELS,
        villages=queries.villages_by_township(session, user.county_code),
        outline=queries.county_outline(session, user.county_code),
        collective_min=schemas.COLLECTIVE_MIN,
        radius_m=rules.repeat_radius_m(),
        client_id=client_id,
    ), status


@bp.get("/repeat-candidates")
@roles_required(*COUNTY)
def repeat_candidates():
    """Possible earlier cases of a matter being registered (JSON for the desk form)."""
    user, session = current_user(), get_session()
    args = request.args

    def number(name, lo, hi):
        try:
            value = float(args.get(name, ""))
        except ValueError:
            return None
        return value if lo <= value <= hi else None

    lon, lat = number("lon", -180, 180), number("lat", -90, 90)
    if lon is None or lat is None:
        lon = lat = None
        if point := queries.village_label_point(
            session, args.get("village_code", ""), user.county_code
        ):
            lon, lat = point
    try:
        category_id = int(args.get("category_id") or 0) or None
    except ValueError:
        category_id = None
    found = queries.repeat_candidates(
        session,
        user,
        phone=normalize_phone(args.get("phone")),
        id_number=normalize_id_number(args.get("id_number")),
        category_id=category_id,
        lon=lon,
        lat=lat,
        radius_m=rules.repeat_radius_m(),
        since=_now(session) - timedelta(days=rules.repeat_window_days()),
    )
    return jsonify(
        {
            "candidates": [
                presenting.repeat_candidate(c, url_for("cases.detail", case_id=c.id)) for c in found
            ]
        }
    )


def _render_file(
    case_id: int, revealed: bool = False, error: AppError | None = None, status: int = 200
):
    user, session = current_user(), get_session()
    case = queries.scoped_case(session, user, case_id)
    now, county_rules = _now(session), rules.county_rules(case.county_code)
    facts = queries.case_facts(session, case)
    actions = workflow.available(facts, user.role_enum, now, county_rules)
    candidates = []
    if user.role_enum in COUNTY_ROLES:
        since = now - timedelta(days=rules.repeat_window_days())
        candidates = queries.repeat_candidates_for(
            session, user, case, rules.repeat_radius_m(), since
        )
    events = queries.timeline(session, case.id)
    names = queries.user_names(session, [case.leader_id, case.reporter_id])
    repeat_of = queries.get_case(session, case.repeat_of_id) if case.repeat_of_id else None
    return render_template(
        "cases/detail.html",
        case=case,
        person=presenting.personal_view(case, user, revealed),
        places=queries.case_places(session, case),
        events=events,
        actions=actions,
        Action=workflow.Action,
        error=error,
        now=now,
        limits=county_rules.limits,
        urgency=urgency(case.due_at, now, county_rules.limits),
        candidates=candidates,
        names=names,
        category=session.get(Category, case.category_id),
        leaders=queries.leaders(session, case.county_code)
        if workflow.Action.SET_LEADER in actions
        else [],
        repeat_of=repeat_of if repeat_of is not None and _visible(user, repeat_of) else None,
        view=presenting.case_file(case),
        form_id=str(uuid.uuid4()),  # the action forms' (webapp.forms)
        windows=workflow.open_windows(facts, county_rules),
        # A deadline in a year without the State Council's holiday notice is an estimate.
        due_estimated=case.due_at is not None
        and not county_rules.calendar.known(last_day_of(case.due_at)),
        event_view=presenting.event_view,
    ), status


def _visible(user, case) -> bool:
    try:
        queries.scoped_case(get_session(), user, case.id)
    except AppError:
        return False
    return True


@bp.get("/<int:case_id>")
def detail(case_id: int):
    return _render_file(case_id)


def _version() -> int | None:
    try:
        return int(request.form.get("version", ""))
    except ValueError:
        return None


@bp.post("/<int:case_id>/actions/<action>")
def act(case_id: int, action: str):
    user, session = current_user(), get_session()
    sent = sent_id(request.form.get("form_id"))
    form = {"form_id": sent, "form_hash": content_hash(request.form)} if sent else None
    try:
        queries.apply_action(
            session,
            user,
            case_id,
            _version(),
            action,
            request.form.to_dict(),
            rules.county_rules(user.county_code),
            form=form,
        )
    except AppError as err:
        session.rollback()
        if not (
            isinstance(err, queries.StaleCase)
            and form
            and queries.action_done(session, user, case_id, action, form)
        ):
            if wants_json() or err.status not in (409, 422):
                raise
            return _render_file(case_id, error=err, status=err.status)
        flash("这项操作已办理，未重复执行。", "info")  # the same form sent again
    else:
        session.commit()
    if wants_json():
        case = queries.scoped_case(session, user, case_id)
        return jsonify({"id": case.id, "status": case.status, "version": case.version})
    return redirect(url_for("cases.detail", case_id=case_id) + "#timeline", 303)


@bp.post("/<int:case_id>/reveal")
def reveal(case_id: int):
    """Show the petitioner's data unmasked, once, to a role allowed to; logged."""
    user, session = current_user(), get_session()
    case = queries.scoped_case(session, user, case_id)
    if not may_reveal_personal_data(user, case):
        raise AppError(
            "reveal_forbidden", "您的角色无权查看当事人的完整个人信息", 403, "may not reveal"
        )
    audit.record(session, "reveal_personal_data", user, case_id=case.id)
    session.commit()
    return _render_file(case_id, revealed=True)


@bp.post("/<int:case_id>/repeat")
@roles_required(*COUNTY)
def link_repeat(case_id: int):
    user, session = current_user(), get_session()
    try:
        other = int(request.form.get("other_id", ""))
    except ValueError:
        raise AppError("repeat_of_invalid", "请选择要关联的案件", 422) from None
    try:
        queries.link_repeat(session, user, case_id, _version(), other)
    except AppError as err:
        session.rollback()
        if err.status not in (409, 422):
            raise
        return _render_file(case_id, error=err, status=err.status)
    session.commit()
    return redirect(url_for("cases.detail", case_id=case_id), 303)


@bp.post("/<int:case_id>/repeat/<int:other_id>/dismiss")
@roles_required(*COUNTY)
def dismiss_repeat(case_id: int, other_id: int):
    user, session = current_user(), get_session()
    queries.dismiss_repeat(session, user, case_id, other_id)
    session.commit()
    return redirect(url_for("cases.detail", case_id=case_id), 303)
