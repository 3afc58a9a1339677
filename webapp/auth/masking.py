"""Masking of petitioners' personal data: names, phone numbers and ID numbers."""

from __future__ import annotations


def mask_name(name: str | None) -> str | None:
    """张三 → 张*, 欧阳娜娜 → 欧***: keep the first character."""
    if not name:
        return name
    return name[0] + "*" * max(len(name) - 1, 1)


def mask_phone(phone: str | None) -> str | None:
    """13812345678 → 138****5678: keep the first three and last four digits.

    At least four are always hidden: a shorter number keeps fewer at its head (an 8-digit
    local landline 55512345 → ****2345, not 555*2345); 7 digits or fewer: all hidden.
    """
    return _mask(phone, head=3, shown_whole=7)


def mask_id_number(number: str | None) -> str | None:
    """410726199001011234 → 4107**********1234: keep the first four and last four
    (at least four always hidden; 8 characters or fewer: all hidden)."""
    return _mask(number, head=4, shown_whole=8)


def _mask(value: str | None, head: int, shown_whole: int, tail: int = 4) -> str | None:
    """Keep ``head`` characters and the last ``tail``, hiding at least four between them;
    hide all of a value of ``shown_whole`` characters or fewer."""
    if not value:
        return value
    if len(value) <= shown_whole:
        return "*" * len(value)
    head = max(0, min(head, len(value) - tail - 4))
    return value[:head] + "*" * (len(value) - head - tail) + value[-tail:]


MASKS = {
    "petitioner_name": mask_name,
    "petitioner_phone": mask_phone,
    "petitioner_id_number": mask_id_number,
}


def personal_fields(case, masked: bool) -> dict[str, str | None]:
    """Return the petitioner's fields of ``case``, masked or not."""
    out = {}
    for field, mask in MASKS.items():
        value = getattr(case, field)
        out[field] = mask(value) if masked else value
    return out
