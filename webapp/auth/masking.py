"""Masking of petitioners' personal data: names, phone numbers and ID numbers."""

from __future__ import annotations


def mask_name(name: str | None) -> str | None:
    """张三 → 张*, 欧阳娜娜 → 欧***: keep the first character."""
    if not name:
        return name
    return name[0] + "*" * max(len(name) - 1, 1)


def mask_phone(phone: str | None) -> str | None:
    """13812345678 → 138****5678: keep the first three and last four digits."""
    if not phone:
        return phone
    if len(phone) <= 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def mask_id_number(number: str | None) -> str | None:
    """410726199001011234 → 4107**********1234: keep the first four and last four."""
    if not number:
        return number
    if len(number) <= 8:
        return "*" * len(number)
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


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
