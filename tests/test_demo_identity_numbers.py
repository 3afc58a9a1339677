"""The demo's petitioner phone and ID numbers, written by table look-ups, are well formed."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from webapp.demo.synthetic import _ascii_digits, _id_numbers, _phone_digits, id_check_digit


def test_ascii_digits_pad_with_zeros():
    got = _ascii_digits(np.array([0, 7, 1234, 999_999_999, 1000]), 9)
    assert [bytes(r).decode() for r in got] == [
        "000000000",
        "000000007",
        "000001234",
        "999999999",
        "000001000",
    ]
    assert bytes(_ascii_digits(np.array([42]), 4)[0]) == b"0042"


def test_phone_numbers():
    got = _phone_digits(np.array([3, 9]), np.array([0, 123_456_789]))
    assert [bytes(r).decode() for r in got] == ["13000000000", "19123456789"]


def test_id_numbers_carry_birth_date_sequence_and_check():
    rng = np.random.default_rng(5)
    # Births on both sides of 1970 (negative epoch seconds), and at midnight exactly.
    birth = np.concatenate(
        [
            rng.uniform(-30 * 365.25 * 86400, 40 * 365.25 * 86400, 2000),
            [-86400.0, -1.0, 0.0, 86399.0, 86400.0],
        ]
    )
    seq = rng.integers(0, 1000, len(birth))
    got = [bytes(r).decode() for r in _id_numbers(birth, seq)]
    for text, b, s in zip(got, birth, seq, strict=True):
        day = datetime.fromtimestamp(int(b) - (int(b) % 86400), UTC)
        assert len(text) == 18
        assert text[:6] == "410726"
        assert text[6:14] == day.strftime("%Y%m%d"), (b, text)
        assert text[14:17] == f"{s:03d}"
        assert text[17] == id_check_digit(text[:17])
