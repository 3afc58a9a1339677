"""Figures as people read them: formatted values, table columns, CSV rows."""

from __future__ import annotations

from sqlalchemy.orm import Session

from webapp.cases.queries import categories as all_categories
from webapp.cases.vocab import CHANNEL_LABELS, Channel
from webapp.escaping import spreadsheet_text
from webapp.stats import figures as F

NONE = "—"


def category_choices(session: Session) -> list[tuple[str, str]]:
    """The filter form's categories: (code, name)."""
    return [(c.code, c.name) for c in all_categories(session)]


def channel_choices() -> list[tuple[str, str]]:
    """The filter form's channels: (value, label)."""
    return [(ch.value, CHANNEL_LABELS[ch]) for ch in Channel]


def format_value(key: str, value) -> str:
    """A figure's value as the pages show it: 1,234 · 95.6% · 4.06 · 是/否 · — when undefined."""
    if value is None:
        return NONE
    f = F.BY_KEY[key]
    if f.kind == "flag":
        return "是" if value else "否"
    if f.is_count:
        return f"{int(value):,}"
    if f.unit == "%":
        sign = "+" if f.key == "yoy_change" and value > 0 else ""
        return f"{sign}{value * 100:.1f}%"
    return f"{value:.2f}"


def export_value(key: str, value):
    """A figure's value for a spreadsheet cell: numbers stay numbers (rates as fractions)."""
    if value is None:
        return None
    f = F.BY_KEY[key]
    if f.kind == "flag":
        return "是" if value else "否"
    if f.is_count:
        return int(value)
    return round(float(value), 6)


def column_title(key: str) -> str:
    f = F.BY_KEY[key]
    return f"{f.name}（{f.unit}）" if f.unit else f.name


def columns_for(rows: list[dict], wanted: tuple[str, ...] = F.RANKING) -> list[str]:
    """The figure keys of ``wanted`` that the rows carry, in order."""
    present = set(rows[0]) if rows else set()
    return [k for k in wanted if k in present]


def csv_rows(rows: list[dict], total: dict | None, keys: list[str], label: str) -> list[list]:
    """A ranking table as CSV rows: a header, one row per area, a totals row; text neutralised.

    Rates are written as percentages with one decimal (as on the page), counts as integers.
    """
    header = ["代码", label] + [column_title(k) for k in keys]
    out = [header]
    for r in rows + ([total] if total else []):
        name = r["name"] if r is not total else f"合计（{r['name']}）"
        cells = [spreadsheet_text(r["code"]), spreadsheet_text(name)]
        for k in keys:
            v = r.get(k)
            f = F.BY_KEY[k]
            if v is None:
                cells.append("")
            elif f.kind == "flag":
                cells.append("是" if v else "否")
            elif f.is_count:
                cells.append(int(v))
            elif f.unit == "%":
                cells.append(f"{v * 100:.1f}")
            else:
                cells.append(f"{v:.2f}")
        out.append(cells)
    return out
