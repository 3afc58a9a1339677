"""Petitioners' contact data: checking and normalising phone and ID numbers (pure)."""

from __future__ import annotations

import re
from datetime import date

# GB 11643-1999: weights of the first 17 digits and the check character by remainder.
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
_ID_SHAPE = re.compile(r"^[1-9]\d{16}[\dX]$")
_PHONE_SEPARATORS = re.compile(r"[\s\-()（）]")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}\d{7,8}$")
_LOCAL = re.compile(r"^[2-9]\d{6,7}$")  # a landline without its area code


def id_check_char(first17: str) -> str:
    """The check character of a resident ID number from its first 17 digits."""
    return ID_CHECK[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def normalize_id_number(value: str | None) -> str | None:
    """Strip spaces and upper-case the check character ('x' → 'X'); None for blank."""
    if value is None:
        return None
    value = value.replace(" ", "").strip().upper()
    return value or None


def id_number_problem(value: str) -> str | None:
    """Why ``value`` (normalised) is not a valid 18-digit resident ID number, or None."""
    if not _ID_SHAPE.match(value):
        return "身份证号应为 18 位：前 17 位数字，最后一位为数字或 X"
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return "身份证号中的出生日期无效"
    if not 1900 <= int(value[6:10]) <= date.today().year:
        return "身份证号中的出生日期无效"
    if id_check_char(value[:17]) != value[17]:
        return "身份证号校验位不正确，请核对"
    return None


def normalize_phone(value: str | None) -> str | None:
    """Remove spaces, dashes and brackets, and a leading +86; None for blank."""
    if value is None:
        return None
    value = _PHONE_SEPARATORS.sub("", value.strip())
    if value.startswith("+86"):
        value = value[3:]
    elif value.startswith("0086"):
        value = value[4:]
    return value or None


def phone_problem(value: str) -> str | None:
    """Why ``value`` (normalised) is not a mobile, landline or local number, or None."""
    if _MOBILE.match(value) or _LANDLINE.match(value) or _LOCAL.match(value):
        return None
    return "电话号码格式不正确：手机号为 11 位，座机为 7 至 8 位（可带区号）"
